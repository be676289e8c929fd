"""Mapping events to entity changes, and merging changes into entity state (pure).

An entity's state is a set of last-writer-wins registers ("sections"), each stamped with the
version of the event that wrote it, plus a grow-only history. A version is
``(event_timestamp to 100 ns, event_id)``, so any two events compare, and merging is
commutative, associative and idempotent: applying a stream of events in any order, any number of
times, gives the state that applying each once in timestamp order gives. That is what makes
retries, duplicates and out-of-order deliveries harmless.

Deletes are a ``deleted`` register: a late, older create loses to a newer delete. Appointment
groups carry their current appointment list; an appointment missing from the group's newest list
is ``removed`` (decided when projecting, from the group's state, so the order in which snapshots
arrive cannot matter).

Some payloads repeat only part of an entity and send null for the rest (a cancelled class booking
says ``waitlist: null``); an opt-in repeats a few profile fields. A null there means "not given",
so such a field is a register of its own, written only by the events that state it: a later null
cannot erase a known value, and the newest stated value wins.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .catalog import lookup, normalize_id
from .envelope import parse_net_datetime

Version = tuple[str, str]
T = TypeVar("T")
APPOINTMENT_STATUS = {
    -2: "no_show",
    -1: "cancelled",
    0: "new",
    1: "closed",
    2: "checkin",
    4: "confirm",
    10: "break",
    11: "not_specified",
    20: "available",
    21: "voided",
}
MEMBERSHIP_STATUS = {
    1: "active",
    2: "inactive",
    3: "frozen",
    4: "cancelled",
    5: "expired",
    6: "closed",
    7: "not_started",
    8: "suspended",
    9: "refund",
    10: "deleted",
    12: "failed",
    -1: "default",
}


@dataclass(frozen=True, slots=True)
class EntityChange:
    """What one event says about one entity: new values for some of its sections."""

    resource: str
    id: str
    sections: Mapping[str, Any]
    history: Any = None  # an entry for the entity's history, keyed by the event


@dataclass(slots=True)
class EntityState:
    sections: dict[str, tuple[Version, Any]] = field(default_factory=dict)
    history: dict[str, tuple[Version, Any]] = field(default_factory=dict)

    @property
    def version(self) -> Version | None:
        versions = [v for v, _ in self.sections.values()] + [v for v, _ in self.history.values()]
        return max(versions) if versions else None

    def value(self, section: str, default: Any = None) -> Any:
        entry = self.sections.get(section)
        return default if entry is None else entry[1]

    def stamp(self, section: str) -> Version | None:
        entry = self.sections.get(section)
        return None if entry is None else entry[0]

    def to_json(self) -> dict[str, Any]:
        return {
            "s": {k: [v[0], v[1], value] for k, (v, value) in self.sections.items()},
            "h": {k: [v[0], v[1], value] for k, (v, value) in self.history.items()},
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any] | None) -> EntityState:
        if not document:
            return cls()
        return cls(
            sections={k: ((e[0], e[1]), e[2]) for k, e in document.get("s", {}).items()},
            history={k: ((e[0], e[1]), e[2]) for k, e in document.get("h", {}).items()},
        )


def merge(state: EntityState, change: EntityChange, version: Version) -> bool:
    """Apply ``change`` at ``version`` in place; True if anything changed."""
    changed = False
    for name, value in change.sections.items():
        current = state.sections.get(name)
        if current is None or version > current[0]:
            state.sections[name] = (version, value)
            changed = True
    if change.history is not None and version[1] not in state.history:
        state.history[version[1]] = (version, change.history)
        changed = True
    return changed


# -- events to changes ------------------------------------------------------------------------


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _change(
    resource: str, key: Any, sections: dict[str, Any], history: Any = None
) -> list[EntityChange]:
    entity_id = normalize_id(key)
    return [] if entity_id is None else [EntityChange(resource, entity_id, sections, history)]


def changes_for(event_type: str, data: Any) -> list[EntityChange]:
    """The entity changes one event carries; empty for unknown types or unusable data."""
    name = lookup(event_type).name
    data = _dict(data)
    family = name.split(".")
    if name in ("Guest.Created", "Guest.Updated"):
        return _change("guest", data.get("id"), {"snapshot": data, "deleted": False})
    if name == "Guest.Deleted":
        return _change("guest", data.get("id"), {"snapshot": data, "deleted": True})
    if name == "Guest.Merged":
        survivor = normalize_id(data.get("id"))
        changes = _change("guest", survivor, {"snapshot": data, "deleted": False})
        return changes + _change(
            "guest", data.get("merged_guest_id"), {"deleted": True, "merged_into": survivor}
        )
    if name in ("Guest.OptedIn", "Guest.OptedOut"):
        consent = {
            "current": data.get("current_preferences"),
            "update": data.get("preference_update"),
            "opted": "in" if name == "Guest.OptedIn" else "out",
        }
        return _change("guest", data.get("id"), {"consent": consent, **_opt_in_details(data)})
    if family[0] == "Employee":
        return _change(
            "employee", data.get("id"), {"snapshot": data, "deleted": name.endswith("Deleted")}
        )
    if name == "Invoice.Closed":
        invoice = _dict(data.get("invoice"))
        return _change("invoice", invoice.get("id"), {"snapshot": invoice, "deleted": False})
    if name.startswith("Class.Schedule."):
        # Zenoti's typo first; a null there (as in the sample, beside session_id) falls through
        key = data.get("sesion_id")
        if key is None:
            key = data.get("session_id")
        sections: dict[str, Any] = {"snapshot": data}
        if name.endswith("Deleted"):
            sections["deleted"] = True
        elif name.endswith("Cancelled"):
            sections["cancelled"] = True
        elif name.endswith("Created"):
            sections.update(deleted=False, cancelled=False)
        return _change("class_session", key, sections)
    if name.startswith("Class.Booking."):
        status = {
            "Created": "booked",
            "Cancelled": "cancelled",
            "Deleted": "deleted",
            "NoShow": "no_show",
            "Approved": "approved",
            "Rejected": "rejected",
        }[family[2]]
        sections = {"snapshot": data, "status": status, "deleted": status == "deleted"}
        return _change(
            "class_booking", data.get("registration_id"), {**sections, **_stated(data, _BOOKING)}
        )
    if name.startswith("Guest.Membership."):
        return _membership(family[2], data)
    if name.startswith("Guest.Package."):
        entry = {
            "event": family[2],
            "status": data.get("status"),
            "state": data.get("user_package_state"),
        }
        sections = {"snapshot": data, "deleted": False}
        return _change("package", data.get("user_package_id"), sections, entry)
    if name == "Guestpass.Redeemed":
        return _change("guestpass_redemption", data.get("id"), {"snapshot": data, "deleted": False})
    if name == "Appointment.Feedback.Created":
        key = lookup(name).entity_id(data)
        return _change("feedback", key, {"snapshot": data, "deleted": False})
    if name in ("AppointmentGroup.Created", "AppointmentGroup.Updated"):
        return _group_snapshot(data)
    if name == "AppointmentGroup.Status":
        return _change(
            "appointment_group",
            data.get("appointment_group_id"),
            {"status": data.get("appointment_group_status"), "status_event": data},
        )
    if name == "AppointmentGroup.Delete":
        return _change("appointment_group", data.get("appointment_group_id"), {"deleted": True})
    if name in ("Appointment.Started", "Appointment.Completed"):
        state = "started" if name.endswith("Started") else "completed"
        context = {
            "appointment_group_id": normalize_id(data.get("appointment_group_id")),
            "center_id": data.get("center_id"),
            "invoice_id": data.get("invoice_id"),
        }
        progressed: list[EntityChange] = []
        for item in data.get("appointments") or []:
            appointment = _dict(item)
            progress = {
                "state": state,
                "appointment_progress": appointment.get("appointment_progress"),
            }
            served = {**appointment, "_group": context}
            progressed += _change(
                "appointment", appointment.get("id"), {"progress": progress, "served": served}
            )
        return progressed
    return []


# the fields Class.Booking.Cancelled, .Deleted and .NoShow may send as null ("not given")
_BOOKING = ("waitlist", "center_id", "guest_id", "session_id", "class_id")


def _stated(data: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """One register per field the event states; a null or blank field states nothing."""
    return {name: data[name] for name in names if data.get(name) not in (None, "")}


def _opt_in_details(data: dict[str, Any]) -> dict[str, Any]:
    """The profile fields an opt-in repeats, as ``details.<column>`` registers, when stated."""
    details = _dict(data.get("details"))
    phones = [_dict(p) for p in details.get("phone") or []]
    mobile = next((p for p in phones if str(p.get("type", "")).lower() == "mobile"), None)
    values = {
        "first_name": _text(details.get("first_name")),
        "last_name": _text(details.get("last_name")),
        "email": _text(details.get("email")),
        "mobile_phone": _phone(mobile),
        "center_id": normalize_id(details.get("center_id") or data.get("center_id")),
    }
    return {f"details.{k}": v for k, v in values.items() if v is not None}


def _membership(kind: str, data: dict[str, Any]) -> list[EntityChange]:
    state = {
        "Created": "active",
        "Reinstate": "active",
        "Unfreeze": "active",
        "Freeze": "frozen",
        "Cancelled": "cancelled",
    }.get(kind, kind.lower())
    sections: dict[str, Any] = {"state": state, "deleted": False}
    if "status" in data:
        sections["status"] = data["status"]
    if kind in ("Created", "Reinstate"):
        sections["snapshot"] = data
    else:
        sections["latest"] = data  # partial: no guest, no catalog membership
    if kind == "Freeze":
        sections["freeze"] = data.get("freeze")
    elif kind in ("Unfreeze", "Reinstate"):
        sections["freeze"] = None
    if kind == "Cancelled":
        sections["cancel"] = data.get("cancel")
    elif kind == "Reinstate":
        sections["cancel"] = None
    if normalize_id(data.get("guest_id")):
        sections["guest_id"] = normalize_id(data.get("guest_id"))
    entry = {"event": kind, "status": data.get("status"), "state": state}
    return _change("membership", data.get("user_membership_id"), sections, entry)


def _group_snapshot(data: dict[str, Any]) -> list[EntityChange]:
    group_id = normalize_id(data.get("appointment_group_id"))
    appointments = [_dict(a) for a in data.get("appointments") or []]
    ids = [i for i in (normalize_id(a.get("id")) for a in appointments) if i]
    group = {k: v for k, v in data.items() if k != "appointments"}
    changes = _change(
        "appointment_group",
        group_id,
        {"snapshot": group, "appointment_ids": ids, "deleted": not appointments},
    )
    context = {
        "appointment_group_id": group_id,
        "center_id": data.get("center_id"),
        "guest": data.get("guest"),
        "invoice_id": data.get("invoice_id"),
    }
    for appointment in appointments:
        changes += _change(
            "appointment",
            appointment.get("id"),
            {"snapshot": {**appointment, "_group": context}},
        )
    return changes


# -- state to rows ----------------------------------------------------------------------------


def _from_newest(state: EntityState, key: str, *sections: str) -> Any:
    """``key`` from whichever of ``sections`` holds it and was written by the newest event
    (a Freeze after a Created carries the expiry date that now holds)."""
    found = [
        (stamp, value[key])
        for name in sections
        if (stamp := state.stamp(name)) is not None
        and isinstance(value := state.value(name), dict)
        and value.get(key) is not None
    ]
    return max(found, key=lambda pair: pair[0])[1] if found else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value != "" else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def integer(value: Any) -> int | None:
    """An integer as the columns take it: never a boolean (``True`` is an ``int`` in Python,
    and PostgreSQL refuses it for an integer column)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _time(value: Any) -> Any:
    return parse_net_datetime(value)


def _phone(value: Any) -> str | None:
    """A phone as text. Zenoti sends a string ("+1 5550104477" in invoices) or an object
    ``{"country_code": 1, "number": "5550104477"}`` (employees, class guests, some guest
    payloads; the number may be an integer): objects are written as invoices write phones.
    """
    if not isinstance(value, dict):
        return _text(value)
    number, code = value.get("number"), value.get("country_code")
    if integer(number):
        number = str(number)
    number = _text(number.strip()) if isinstance(number, str) else None
    code = str(code).strip().lstrip("+") if integer(code) or isinstance(code, str) else ""
    if number is None or number.startswith("+") or code in ("", "0"):
        return number
    return f"+{code} {number}"


def _newest(sources: list[dict[str, Any]], read: Callable[[dict[str, Any]], T | None]) -> T | None:
    """The first value ``read`` finds in ``sources`` (newest first): a null says nothing."""
    return next((v for v in map(read, sources) if v is not None), None)


def _described(appointment: EntityState) -> list[tuple[Version, dict[str, Any]]]:
    """The appointment as group snapshots and progress events describe it, newest first."""
    found = [
        (at, _dict(appointment.value(name)))
        for name in ("snapshot", "served")
        if (at := appointment.stamp(name)) is not None
    ]
    return sorted(found, key=lambda entry: entry[0], reverse=True)


def _group_of(described: dict[str, Any]) -> str | None:
    return normalize_id(_dict(described.get("_group")).get("appointment_group_id"))


def appointment_group_id(appointment: EntityState) -> str | None:
    """The group the newest event that names one puts the appointment in."""
    return _newest([d for _, d in _described(appointment)], _group_of)


def appointment_removed(appointment: EntityState, group: EntityState | None) -> bool:
    """Missing from the group's newest snapshot, which is newer than every event that placed it
    in the group (a snapshot listing it, or a progress event naming the group)."""
    placed = [(at, d) for at, d in _described(appointment) if _group_of(d)]
    if group is None or not placed:
        return False
    (placed_at, described), group_at = placed[0], group.stamp("appointment_ids")
    if group_at is None or group_at <= placed_at:
        return False
    return normalize_id(described.get("id")) not in (group.value("appointment_ids") or [])


def _profile(state: EntityState, column: str, from_snapshot: Any) -> Any:
    """A guest's profile column: an opt-in newer than the snapshot wins where it states it."""
    stated_at, snapshot_at = state.stamp(f"details.{column}"), state.stamp("snapshot")
    if stated_at is not None and (snapshot_at is None or stated_at > snapshot_at):
        return state.value(f"details.{column}")
    return from_snapshot


def project(
    resource: str, entity_id: str, state: EntityState, group: EntityState | None = None
) -> dict[str, Any]:
    """The typed columns of an entity row (besides id, state, data and versions)."""
    snapshot = _dict(state.value("snapshot")) or _dict(state.value("latest"))
    deleted = bool(state.value("deleted", False))
    row: dict[str, Any] = {"deleted": deleted}
    if resource == "guest":
        info = _dict(snapshot.get("personal_info"))
        prefs = _dict(snapshot.get("preferences"))
        marketing_email, marketing_sms = (
            prefs.get("receive_marketing_email"),
            prefs.get("receive_marketing_sms"),
        )
        consent_at, snapshot_at = state.stamp("consent"), state.stamp("snapshot")
        if consent_at is not None and (snapshot_at is None or consent_at > snapshot_at):
            marketing = _dict(_dict(_dict(state.value("consent")).get("current")).get("marketing"))
            marketing_email = (
                marketing.get("email") == "opted-in" if "email" in marketing else marketing_email
            )
            marketing_sms = (
                marketing.get("sms") == "opted-in" if "sms" in marketing else marketing_sms
            )
        row.update(
            center_id=_profile(state, "center_id", normalize_id(snapshot.get("center_id"))),
            code=_text(snapshot.get("code")),
            first_name=_profile(state, "first_name", _text(info.get("first_name"))),
            last_name=_profile(state, "last_name", _text(info.get("last_name"))),
            email=_profile(state, "email", _text(info.get("email"))),
            mobile_phone=_profile(state, "mobile_phone", _phone(info.get("mobile_phone"))),
            created_at=_time(snapshot.get("created_date")),
            marketing_email=marketing_email if isinstance(marketing_email, bool) else None,
            marketing_sms=marketing_sms if isinstance(marketing_sms, bool) else None,
            merged_into=state.value("merged_into"),
        )
    elif resource == "employee":
        info = _dict(snapshot.get("personal_info"))
        job = _dict(snapshot.get("job_info"))
        row.update(
            center_id=normalize_id(snapshot.get("center_id")),
            code=_text(snapshot.get("code")),
            first_name=_text(info.get("first_name")),
            last_name=_text(info.get("last_name")),
            email=_text(info.get("email")),
            job_name=_text(job.get("job_name")),
            start_date=_time(job.get("start_date")),
            end_date=_time(job.get("end_date")),
        )
    elif resource == "invoice":
        total = _dict(snapshot.get("total_price"))
        row.update(
            center_id=normalize_id(snapshot.get("center_id")),
            guest_id=normalize_id(_dict(snapshot.get("guest")).get("id")),
            appointment_group_id=normalize_id(snapshot.get("appointment_group_id")),
            group_invoice_id=normalize_id(snapshot.get("group_invoice_id")),
            invoice_number=_text(snapshot.get("invoice_number")),
            receipt_number=_text(snapshot.get("receipt_number")),
            invoice_date=_time(snapshot.get("invoice_date")),
            is_closed=snapshot.get("is_closed")
            if isinstance(snapshot.get("is_closed"), bool)
            else None,
            is_refund=bool(snapshot.get("is_refund")),
            currency_id=integer(total.get("currency_id")),
            net_price=_number(total.get("net_price")),
            tax=_number(total.get("tax")),
            sum_total=_number(total.get("sum_total")),
        )
    elif resource == "class_session":
        row.update(
            center_id=normalize_id(snapshot.get("center_id")),
            class_name=_text(snapshot.get("class_name")),
            start_time=_time(snapshot.get("start_time")),
            end_time=_time(snapshot.get("end_time")),
            capacity=integer(snapshot.get("capacity")),
            cancelled=bool(state.value("cancelled", False)),
        )
    elif resource == "class_booking":
        waitlist = state.value("waitlist")
        row.update(
            center_id=normalize_id(state.value("center_id")),
            guest_id=normalize_id(state.value("guest_id")),
            session_id=normalize_id(state.value("session_id")),
            class_id=normalize_id(state.value("class_id")),
            status=state.value("status"),
            waitlist=waitlist if isinstance(waitlist, bool) else None,  # None: never stated
        )
    elif resource == "membership":
        center = _dict(_from_newest(state, "center", "snapshot", "latest"))
        status = integer(state.value("status"))
        row.update(
            guest_id=state.value("guest_id"),
            center_id=normalize_id(center.get("id")),
            membership_name=_text(_dict(snapshot.get("membership")).get("name")),
            status=status,
            status_name=MEMBERSHIP_STATUS.get(status) if status is not None else None,
            state=state.value("state"),
            frozen=state.value("freeze") is not None,
            cancelled=state.value("cancel") is not None,
            expiry_date=_time(_from_newest(state, "expiry_date", "snapshot", "latest")),
        )
    elif resource == "package":
        center = _dict(snapshot.get("center"))
        dates = _dict(snapshot.get("date"))
        row.update(
            center_id=normalize_id(center.get("id")),
            package_name=_text(_dict(snapshot.get("package")).get("name")),
            status=integer(snapshot.get("status")),
            package_state=integer(snapshot.get("user_package_state")),
            start_date=_time(dates.get("start")),
            end_date=_time(dates.get("end")),
        )
    elif resource == "feedback":
        row.update(
            center_id=normalize_id(snapshot.get("center_id")),
            guest_id=normalize_id(snapshot.get("user_id")),
            appointment_group_id=normalize_id(snapshot.get("appointment_group_id")),
            rating=integer(snapshot.get("rating_value")),
            comments=_text(snapshot.get("comments")),
        )
    elif resource == "guestpass_redemption":
        row.update(
            guest_id=normalize_id(snapshot.get("guest_id")),
            redeemed_at=_time(snapshot.get("date")),
            membership_id=normalize_id(snapshot.get("user_membership_id")),
            balance=integer(snapshot.get("balance")),
        )
    elif resource == "appointment_group":
        status = integer(state.value("status"))
        row.update(
            center_id=normalize_id(snapshot.get("center_id")),
            guest_id=normalize_id(_dict(snapshot.get("guest")).get("id")),
            invoice_id=normalize_id(
                snapshot.get("invoice_id") or _dict(state.value("status_event")).get("invoice_id")
            ),
            status=status,
            status_name=APPOINTMENT_STATUS.get(status) if status is not None else None,
            appointment_count=len(state.value("appointment_ids") or []),
        )
    elif resource == "appointment":
        # a group snapshot and the progress events both describe the appointment: per column,
        # the newest that states it wins (progress events carry no guest and no local times)
        sources = [d for _, d in _described(state)]
        group_status = integer(group.value("status")) if group is not None else None
        progress = _dict(state.value("progress"))
        row.update(
            appointment_group_id=appointment_group_id(state),
            center_id=_newest(
                sources, lambda d: normalize_id(_dict(d.get("_group")).get("center_id"))
            ),
            guest_id=_newest(
                sources,
                lambda d: normalize_id(_dict(_dict(d.get("_group")).get("guest")).get("id")),
            ),
            service_id=_newest(sources, lambda d: normalize_id(d.get("service_id"))),
            service_name=_newest(sources, lambda d: _text(d.get("service_name"))),
            therapist_id=_newest(
                sources, lambda d: normalize_id(d.get("therapist_id") or d.get("TherapistId"))
            ),
            room_id=_newest(sources, lambda d: normalize_id(d.get("room_id"))),
            start_utc=_newest(sources, lambda d: _time(d.get("start_time"))),
            end_utc=_newest(sources, lambda d: _time(d.get("end_time"))),
            start_local=_newest(sources, lambda d: _time(d.get("start_time_in_center"))),
            end_local=_newest(sources, lambda d: _time(d.get("end_time_in_center"))),
            status=group_status,
            status_name=APPOINTMENT_STATUS.get(group_status) if group_status is not None else None,
            progress=progress.get("state"),
            removed=appointment_removed(state, group),
            deleted=deleted or bool(group is not None and group.value("deleted", False)),
        )
    return row
