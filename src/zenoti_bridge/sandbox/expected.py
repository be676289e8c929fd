"""What the bridge's mirror should hold after the sandbox's occurrences: the world's own view.

:func:`expected` describes every entity an occurrence touched (the rows the mirror keeps), with
the typed columns of ``storage.schema.MIRROR_COLUMNS`` that the events sent so far make certain.
It reads the activity's state, never the payloads, so comparing it with the mirror tests both.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any

from .payloads import money
from .state import PROGRESS_NAMES, STATUS_NAMES, Group
from .timeline import Timeline

Expected = dict[str, dict[str, dict[str, Any]]]


def expected(state: Timeline) -> Expected:
    """``{resource: {id: {"deleted": bool, column: value, ...}}}`` for every touched entity.

    Ids are lowercase, as the bridge normalises them. Datetimes are aware (UTC) for the mirror's
    UTC columns and naive for its wall-clock ones. A column is left out when the events sent so
    far do not make its value certain (a consent change names the guest, but not their center).
    """
    views: dict[str, Callable[[Timeline, str], dict[str, Any]]] = {
        "guest": _guest,
        "employee": _employee,
        "invoice": _invoice,
        "appointment_group": _group,
        "appointment": _appointment,
        "membership": _membership,
        "package": _package,
        "class_session": _session,
        "class_booking": _booking,
        "feedback": _feedback,
        "guestpass_redemption": _pass,
    }
    return {
        resource: {key: views[resource](state, key) for key in keys}
        for resource, keys in state.touched().items()
    }


def _midnight(value: date) -> datetime:
    return datetime.combine(value, time())


def _guest(state: Timeline, key: str) -> dict[str, Any]:
    record = state.guests[key]
    profile = record.profile
    marketing = record.consent["marketing"]
    calling_code = state.world.center(profile.center_id).country.calling_code
    row: dict[str, Any] = {
        "deleted": record.deleted,
        "first_name": profile.first_name,
        "last_name": profile.last_name,
        "email": profile.email,
        "mobile_phone": f"+{calling_code} {profile.mobile}" if profile.mobile else None,
        "marketing_email": marketing["email"],
        "marketing_sms": marketing["sms"],
        "merged_into": record.merged_into,
    }
    if record.published:  # only full snapshots carry these
        row.update(center_id=profile.center_id, code=profile.code, created_at=profile.created)
    return row


def _employee(state: Timeline, key: str) -> dict[str, Any]:
    record = state.staff[key]
    person = record.profile
    return {
        "deleted": record.deleted,
        "center_id": person.center_id,
        "code": person.code,
        "first_name": person.first_name,
        "last_name": person.last_name,
        "email": person.email,
        "job_name": person.job_name,
        "start_date": _midnight(person.hired),
        "end_date": _midnight(record.end_date) if record.end_date else None,
    }


def _invoice(state: Timeline, key: str) -> dict[str, Any]:
    invoice = state.invoices[key]
    return {
        "deleted": False,
        "center_id": invoice.center.id,
        "guest_id": invoice.guest_id,
        "appointment_group_id": invoice.group_id,
        "group_invoice_id": invoice.group_invoice_id,
        "invoice_number": invoice.number,
        "receipt_number": invoice.receipt,
        "invoice_date": _midnight(invoice.local_date),
        "is_closed": invoice.closed,
        "is_refund": invoice.refund,
        "currency_id": invoice.center.country.currency_id,
        "net_price": money(invoice.net),
        "tax": money(invoice.tax),
        "sum_total": money(invoice.total),
    }


def _status_columns(group: Group) -> dict[str, Any]:
    status = group.reported_status
    if status is None:
        return {}
    return {"status": status, "status_name": STATUS_NAMES[status]}


def _group(state: Timeline, key: str) -> dict[str, Any]:
    group = state.groups[key]
    return {
        "deleted": group.deleted,
        "center_id": group.center.id,
        "guest_id": group.guest_id,
        "invoice_id": group.invoice_id,
        "appointment_count": group.listed,
        **_status_columns(group),
    }


def _appointment(state: Timeline, key: str) -> dict[str, Any]:
    group = state.visit_of(key)
    appointment = next(a for a in group.appointments if a.id == key)
    center = group.center
    return {
        "deleted": group.deleted,
        "appointment_group_id": group.id,
        "center_id": center.id,
        "guest_id": group.guest_id,
        "service_id": appointment.service.id,
        "service_name": appointment.service.name,
        "therapist_id": appointment.therapist.id,
        "room_id": appointment.room.id,
        "start_utc": appointment.start,
        "end_utc": appointment.end,
        "start_local": center.local(appointment.start),
        "end_local": center.local(appointment.end),
        "progress": PROGRESS_NAMES.get(appointment.progress),
        "removed": appointment.removed,
        **_status_columns(group),
    }


def _membership(state: Timeline, key: str) -> dict[str, Any]:
    membership = state.memberships[key]
    return {
        "deleted": False,
        "guest_id": membership.guest_id,
        "center_id": membership.center.id,
        "membership_name": membership.plan.name,
        "status": 1,
        "status_name": "active",
        "state": membership.state,
        "frozen": membership.frozen,
        "cancelled": membership.cancelled,
        "expiry_date": _midnight(membership.expiry),
    }


def _package(state: Timeline, key: str) -> dict[str, Any]:
    package = state.packages[key]
    return {
        "deleted": False,
        "center_id": package.center.id,
        "package_name": package.plan.name,
        "status": package.status,
        "package_state": package.state,
        "start_date": _midnight(package.start),
        "end_date": _midnight(package.end),
    }


def _session(state: Timeline, key: str) -> dict[str, Any]:
    session = state.sessions[int(key)]
    return {
        "deleted": session.deleted,
        "center_id": session.center.id,
        "class_name": session.offering.name,
        "start_time": session.start_local,
        "end_time": session.start_local + timedelta(minutes=session.offering.minutes),
        "capacity": session.capacity,
        "cancelled": session.cancelled,
    }


def _booking(state: Timeline, key: str) -> dict[str, Any]:
    booking = state.bookings[int(key)]
    return {
        "deleted": booking.status == "deleted",
        "center_id": booking.session.center.id,
        "guest_id": booking.guest_id,
        "session_id": str(booking.session.id),
        "class_id": str(booking.session.offering.id),
        "status": booking.status,
        "waitlist": booking.waitlist,
    }


def _feedback(state: Timeline, key: str) -> dict[str, Any]:
    record = state.feedback[key]
    return {
        "deleted": False,
        "center_id": record.center_id,
        "guest_id": record.guest_id,
        "appointment_group_id": record.group_id,
        "rating": record.rating,
        "comments": record.comments,
    }


def _pass(state: Timeline, key: str) -> dict[str, Any]:
    use = state.passes[key]
    return {
        "deleted": False,
        "guest_id": use.guest_id,
        "redeemed_at": use.date_local,
        "membership_id": use.membership_id,
        "balance": use.balance,
    }
