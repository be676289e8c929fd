"""Zenoti's ``data`` objects, built from the sandbox's state records (pure).

One function per payload shape, written against the samples in ``zenoti/payloads``: the same keys,
nesting and value types, Zenoti's typos included (``sesion_id``, ``serviceduration_in_miutes``,
``TherapistId``, ``center_Name``, ``recieve_lp_stmt``, ``num_occurences``, ``frequncy``...).
Times without offset: UTC where Zenoti sends UTC, the center's wall clock where it sends local
times, and ``0001-01-01T00:00:00`` for .NET's "no value". GUIDs are lowercase except in feedback
and class approvals, where Zenoti sends them in uppercase.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from .state import (
    Appointment,
    Booking,
    Feedback,
    Group,
    GuestRecord,
    Invoice,
    Item,
    Membership,
    Package,
    PassUse,
    Redemption,
    Session,
    StaffRecord,
)
from .world import Center, Employee, Guest

NET_NULL = "0001-01-01T00:00:00"
ZERO_GUID = "00000000-0000-0000-0000-000000000000"
FEEDBACK_TAGS = ((1, "ambience"), (2, "staff"), (3, "service quality"), (4, "cleanliness"))

Data = dict[str, Any]


def stamp(moment: datetime) -> str:
    """A time as Zenoti writes it: seconds, no offset (UTC or wall clock, as given)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def utc_stamp(moment: datetime) -> str:
    """A UTC time without offset, from an aware datetime."""
    return stamp(moment.astimezone(UTC).replace(tzinfo=None))


def day(value: date) -> str:
    """A business date: midnight, no offset."""
    return stamp(datetime.combine(value, time()))


def money(cents: int) -> float:
    """Cents as Zenoti's decimal number."""
    return cents / 100


def upper(value: str) -> str:
    """A GUID as Zenoti writes it in feedback and class approvals."""
    return value.upper()


# -- guests -----------------------------------------------------------------------------------


def _phone(center: Center, number: str | None) -> Data | None:
    return (
        None if number is None else {"country_code": center.country.calling_code, "number": number}
    )


def guest(record: GuestRecord, center: Center) -> Data:
    """Guest.Created, Guest.Updated and Guest.Deleted: the full profile."""
    profile = record.profile
    marketing, transactional = record.consent["marketing"], record.consent["transactional"]
    return {
        "id": profile.id,
        "_id": profile.number,
        "code": profile.code,
        "center_id": profile.center_id,
        "center_name": center.name,
        "created_date": utc_stamp(profile.created),
        "personal_info": {
            "user_name": "",
            "first_name": profile.first_name,
            "last_name": profile.last_name,
            "middle_name": "",
            "email": profile.email,
            "mobile_phone": _phone(center, profile.mobile),
            "work_phone": None,
            "home_phone": None,
            "gender": profile.gender,
            "date_of_birth": day(profile.birth_date),
            "is_minor": False,
            "nationality_id": profile.country_id,
            "anniversary_date": None,
            "lock_guest_custom_data": False,
            "pan": "",
            "dob_incomplete_year": None,
        },
        "address_info": {
            "address_1": profile.address_1,
            "address_2": "",
            "city": profile.city,
            "country_id": profile.country_id,
            "state_id": -1,
            "state_other": center.state,
            "zip_code": profile.zip_code,
        },
        "preferences": {
            "receive_transactional_email": transactional["email"],
            "receive_transactional_sms": transactional["sms"],
            "receive_marketing_email": marketing["email"],
            "receive_marketing_sms": marketing["sms"],
            "recieve_lp_stmt": record.loyalty,
            "opt_in_for_loyalty_program": record.loyalty,
            "transactional_sms_optin": _optin(transactional["sms"]),
            "transactional_email_optin": _optin(transactional["email"]),
            "marketing_sms_optin": _optin(marketing["sms"]),
            "marketing_email_optin": _optin(marketing["email"]),
            "transactional_whatsapp_optin": _optin(transactional["whatsapp"]),
            "receive_transactional_whatsapp": transactional["whatsapp"],
        },
    }


def _optin(value: bool) -> int:
    return 1 if value else 2


def merged(survivor: GuestRecord, center: Center, merged_id: str) -> Data:
    """Guest.Merged: the surviving profile and the id of the profile merged into it."""
    return {**guest(survivor, center), "merged_guest_id": merged_id}


def consent(
    record: GuestRecord, center: Center, category: str, channel: str, moment: datetime
) -> Data:
    """Guest.OptedIn and Guest.OptedOut: one preference changed, and all of them now."""
    profile = record.profile
    code = str(center.country.calling_code)
    return {
        "id": profile.id,
        "_id": profile.number,
        "timestamp": utc_stamp(moment) + "Z",
        "details": {
            "first_name": profile.first_name,
            "last_name": profile.last_name,
            "email": profile.email,
            "phone": [
                {"type": "Mobile", "country_code": code, "number": profile.mobile or ""},
                {"type": "Home", "country_code": code, "number": ""},
                {"type": "Work", "country_code": code, "number": ""},
            ],
        },
        "preference_update": {"category": category, "channel": channel},
        "current_preferences": {
            name: {ch: "opted-in" if on else "opted-out" for ch, on in channels.items()}
            for name, channels in record.consent.items()
        },
    }


# -- employees --------------------------------------------------------------------------------


def employee(record: StaffRecord, center: Center) -> Data:
    """Employee.Created, Employee.Updated and Employee.Deleted: the full employee."""
    person = record.profile
    calling = center.country.calling_code
    return {
        "id": person.id,
        "code": person.code,
        "center_id": person.center_id,
        "is_consultant": None,
        "created_by": ZERO_GUID,
        "personal_info": {
            "first_name": person.first_name,
            "middle_name": "",
            "last_name": person.last_name,
            "nick_name": "",
            "notification_name": person.full_name,
            "email": person.email,
            "mobile_phone": {"country_code": calling, "number": person.mobile},
            "home_phone": {"country_code": calling, "number": ""},
            "work_phone": {"country_code": calling, "number": ""},
            "gender": person.gender,
            "birth_date": NET_NULL,
            "anniversary_date": NET_NULL,
        },
        "address": {
            "address_1": "",
            "address_2": "",
            "city": "",
            "country_id": center.country.id,
            "state_id": -1,
            "zip_code": "",
        },
        "login_info": {"username": person.email},
        "job_info": _job(record, center),
        "preference_info": _staff_preferences(),
        "payroll_info": {"include_in_payroll": 1},
        "vanity_image_url": None,
        "roles": {"security_profile_id": ZERO_GUID},
        "catalog_info": {
            "show_in_catalog": record.show_in_catalog,
            "display_name": "",
            "description": "",
        },
    }


def _job(record: StaffRecord, center: Center) -> Data:
    person = record.profile
    return {
        "job_id": person.job_id,
        "job_name": person.job_name,
        "designation_id": None,
        "company_name": center.company_name,
        "salary": 0,
        "hourly_rate": 0,
        "overtime_baseline_hours": 0,
        "overtime_type": 0,
        "overtime_multiplier": 1,
        "work_task_ids": None,
        "request_therapist_bonus": 0,
        "mandatory_break_period": 0,
        "is_elgible_for_additional_commision_bonus": False,
        "max_work_hours": 0,
        "target_revenue": 0,
        "vacation_days": 0,
        "special_leave_days": 0,
        "start_date": day(person.hired),
        "end_date": NET_NULL if record.end_date is None else day(record.end_date),
        "tenure_start_date": NET_NULL,
        "pay_type": 0,
    }


def _staff_preferences() -> Data:
    return {
        "culture_id": 54,
        "search_tags": "",
        "receive_marketing_emails": True,
        "receive_marketing_messages": True,
        "receive_transactional_emails": True,
        "receive_transactional_messages": True,
        "receive_daily_reports": False,
        "receive_register_closure_report": False,
        "waive_biometric_checkin": False,
        "access_manager_productivity_app": False,
        "is_mentor": False,
        "access_employee_productivity_app": False,
        "access_code": "",
        "keyword": "",
        "allow_analytics_access": 0,
        "allow_api_access": False,
        "text_field_1": "",
        "text_field_2": "",
        "additional_date_1": NET_NULL,
        "additional_date_2": NET_NULL,
        "send_confirmation_for_scheduled_appointments": True,
    }


# -- appointment groups and appointments ------------------------------------------------------


def _guest_summary(profile: Guest) -> Data:
    return {
        "id": profile.id,
        "first_name": profile.first_name,
        "last_name": profile.last_name,
        "email": profile.email,
    }


def _booked(appointment: Appointment, center: Center, updated: datetime) -> Data:
    return {
        "id": appointment.id,
        "invoice_item_id": appointment.invoice_item_id,
        "service_name": appointment.service.name,
        "service_id": appointment.service.id,
        "start_time": utc_stamp(appointment.start),
        "end_time": utc_stamp(appointment.end),
        "start_time_in_center": stamp(center.local(appointment.start)),
        "end_time_in_center": stamp(center.local(appointment.end)),
        "creation_date": utc_stamp(appointment.created),
        "last_updated_on": utc_stamp(updated),
        "service_duration_in_minutes": appointment.service.minutes,
        "has_add_ons": False,
        "is_add_on": False,
        "therapist_name": appointment.therapist.full_name,
        "therapist_id": appointment.therapist.id,
        "is_recurring": False,
        "show_in_calendar": True,
        "appointment_type": 2,
        "therapist_request_type": 1 if appointment.requested else 0,
        "room_id": appointment.room.id,
        "room_name": appointment.room.name,
        "equipment_name": "",
    }


def group(
    record: Group, organization_id: str, profile: Guest, moment: datetime, *, created: bool
) -> Data:
    """AppointmentGroup.Created (with UTM fields) and .Updated: the group's current appointments."""
    data: Data = {
        "invoice_id": record.invoice_id,
        "invoice_number": record.invoice_number,
        "invoice_number_prefix": record.center.code + "T",
    }
    if created:
        data.update(utm_source=record.utm[0], utm_medium=record.utm[1])
    return data | {
        "appointment_group_id": record.id,
        "organization_id": organization_id,
        "center_id": record.center.id,
        "center_Name": record.center.name,
        "guest": _guest_summary(profile),
        "appointments": []
        if record.deleted
        else [_booked(a, record.center, moment) for a in record.current],
    }


def group_status(record: Group, status: int, fee: bool) -> Data:
    """AppointmentGroup.Status: the group's new status; ``fee``: a late cancel or no-show fee."""
    answer = "Yes" if fee else "No"
    return {
        "invoice_id": record.invoice_id,
        "invoice_number": record.invoice_number,
        "receipt_number": "0",
        "appointment_group_id": record.id,
        "appointment_group_status": status,
        "is_noshowfeerequired": answer if status == -2 else "No",
        "is_cancellationfeerequired": answer if status == -1 else "No",
    }


def group_deleted(record: Group, organization_id: str, appointment_id: str) -> Data:
    """AppointmentGroup.Delete: the group's last appointment was deleted."""
    return {
        "appointment_group_id": record.id,
        "appointment_id": appointment_id,
        "organization_id": organization_id,
        "center_id": record.center.id,
    }


def _served(appointment: Appointment) -> Data:
    return {
        "id": appointment.id,
        "invoice_item_id": appointment.invoice_item_id,
        "service_name": appointment.service.name,
        "service_id": appointment.service.id,
        "start_time": utc_stamp(appointment.start),
        "end_time": utc_stamp(appointment.end),
        "serviceduration_in_miutes": appointment.service.minutes,
        "has_add_ons": False,
        "is_add_on": False,
        "therapist_name": appointment.therapist.full_name,
        "TherapistId": appointment.therapist.id,
        "is_recurring": False,
        "appointment_type": 2,
        "therapist_request_type": 1 if appointment.requested else 0,
        "room_name": appointment.room.name,
        "equipment_name": "",
    }


def progress(record: Group, appointment: Appointment) -> Data:
    """Appointment.Started (progress 1) and Appointment.Completed (progress 2)."""
    served = _served(appointment) | {
        "room_id": appointment.room.id,
        "equipment_id": "",
        "appointment_progress": appointment.progress,
    }
    return {
        "invoice_id": record.invoice_id,
        "invoice_number": record.invoice_number,
        "appointment_group_id": record.id,
        "center_id": record.center.id,
        "appointments": [served],
    }


def feedback(record: Feedback, organization_id: str, tags: list[int]) -> Data:
    """Appointment.Feedback.Created, version 2 (GUIDs in uppercase, as Zenoti sends them)."""
    return {
        "organization_id": upper(organization_id),
        "center_id": upper(record.center_id),
        "user_id": upper(record.guest_id),
        "version": 2,
        "appointment_group_id": upper(record.group_id),
        "rating_value": record.rating,
        "guest_feedback_tags": [{"id": n, "name": name} for n, name in FEEDBACK_TAGS if n in tags],
        "comments": record.comments,
        "source": 0,
    }


# -- invoices ---------------------------------------------------------------------------------


def _price(center: Center, item: Item) -> Data:
    return {
        "currency_id": center.country.currency_id,
        "sales": money(item.sales),
        "tax": money(item.tax),
        "final": money(item.final),
        "discount": money(item.discount),
    }


def invoice(record: Invoice, profile: Guest) -> Data:
    """Invoice.Closed: totals, guest, lines, the appointments served, and the payment."""
    center = record.center
    mobile = f"+{center.country.calling_code} {profile.mobile}" if profile.mobile else ""
    return {
        "invoice": {
            "id": record.id,
            "invoice_number": record.number,
            "invoice_number_prefix": center.code + "T",
            "receipt_number": record.receipt,
            "appointment_group_id": record.group_id,
            "group_invoice_id": record.group_invoice_id,
            "lock": True,
            "is_closed": record.closed,
            "is_refund": record.refund,
            "invoice_date": day(record.local_date),
            "center_id": center.id,
            "total_price": {
                "currency_id": center.country.currency_id,
                "net_price": money(record.net),
                "tax": money(record.tax),
                "rounding_adjustment": 0,
                "sum_total": money(record.total),
            },
            "guest": {
                "id": profile.id,
                "first_name": profile.first_name,
                "last_name": profile.last_name,
                "gender": profile.gender,
                "code": profile.code,
                "mobile_phone": mobile,
                "guest_email": profile.email,
                "email": profile.email,
            },
            "invoice_items": [
                {
                    "invoice_item_id": item.invoice_item_id,
                    "id": item.item_id,
                    "name": item.name,
                    "type": item.kind,
                    "code": item.code,
                    "price": _price(center, item),
                    "quantity": 1,
                    "sale_by_id": item.seller.id if item.seller else None,
                    "therapist_name": item.seller.full_name if item.seller else "",
                }
                for item in record.items
            ],
            "appointments": [_served(a) for a in record.appointments],
            "transactions": [
                {"amount_paid": money(record.total), "total_amount_paid": money(record.total)}
            ],
        }
    }


# -- memberships ------------------------------------------------------------------------------


def _membership_invoice(record: Membership, *, with_item: bool) -> Data:
    invoice_ = record.invoice
    return {
        "allow_other_centers_for_action_on_invoices": False,
        "item_id": invoice_.items[0].invoice_item_id if with_item else None,
        "receipt_no": invoice_.receipt,
        "status": 4,
        "id": invoice_.id,
        "no": record.center.code + "T" + invoice_.number,
    }


def _purchase(record: Membership | Package, when: str) -> Data:
    item = record.invoice.items[0]
    return {
        "price": {
            "currency_id": record.center.country.currency_id,
            "sales": money(item.sales),
            "tax": money(item.tax),
            "final": money(item.final),
        },
        "date": when,
    }


def _service_balance(record: Membership, services: dict[str, tuple[str, int]]) -> list[Data]:
    service_id = record.plan.included_service_id
    if service_id is None:
        return []
    name, minutes = services[service_id]
    return [
        {
            "service": {
                "sale_as_part_of_package_or_membership_only": None,
                "book_with_partial_balance": 1,
                "item_type": None,
                "id": service_id,
                "name": name,
                "duration": minutes,
                "has_segments": False,
            },
            "total": 1,
            "balance": 1,
            "redeemable_balance": 0,
            "used": 0,
            "transfered": 0,
            "expired": 0,
            "frequncy": "Any",
            "last_usage_date": None,
            "accrued_on": None,
            "is_category": False,
            "exists_in_current_center": True,
            "discount_details": {
                "discount_type": 0,
                "peak_discount": 0,
                "offpeak_discount": 0,
                "post_credit_peak_discount": 0,
                "post_credit_offpeak_discount": 0,
            },
            "price": None,
        }
    ]


def _members(profile: Guest) -> list[Data]:
    return [{"id": profile.id, "name": f"{profile.first_name} {profile.last_name[0]} (Primary)"}]


def _credit(record: Membership) -> Data:
    credit = money(record.center.price(record.plan.service_credit))
    return {"total": credit, "service": credit, "product": 0, "other": 0, "comments": None}


def _renewal(record: Membership) -> Data:
    return {
        "selected_option": {
            "renew_status": True,
            "is_expired": False,
            "renew_membership_amount": 0,
            "id": record.plan.id,
            "name": record.plan.name,
        }
    }


def _next_collection(record: Membership, today: date) -> str:
    months = (today.year - record.start.year) * 12 + today.month - record.start.month + 1
    year, month = divmod(record.start.month - 1 + months, 12)
    return day(date(record.start.year + year, month + 1, min(record.start.day, 28)))


def membership_created(
    record: Membership, profile: Guest, services: dict[str, tuple[str, int]]
) -> Data:
    """Guest.Membership.Created: the full membership as sold."""
    center, plan = record.center, record.plan
    zone = center.zone
    return {
        "guest_id": record.guest_id,
        "payments": {
            "payment_type": 0,
            "duration": 0,
            "duration_type": 0,
            "default_payment_info": None,
        },
        "pending_waive_collections": 0,
        "next_collection_date": _next_collection(record, record.start),
        "grace_period_date": None,
        "grace_period_days": 0,
        "recurrence_status": 1,
        "sold_by": {"id": record.seller.id, "name": record.seller.full_name},
        "payment_history": [],
        "has_digital_form": False,
        "user_membership_id": record.id,
        "group_user_membership_id": record.group_id,
        "status": 1,
        "is_refunded": False,
        "invoice": _membership_invoice(record, with_item=True),
        "membership": {
            "code": plan.code,
            "OTP_required": False,
            "T&C": None,
            "add_on_members_count": 0,
            "redemption_post_expiry_settings": {
                "can_select_specific_post_expiry_setting": False,
                "redeem_post_expiry": True,
                "grace_period_days": None,
            },
            "guestpass_total": plan.guestpasses,
            "guestpass_balance": plan.guestpasses - record.passes_used,
            "lock_cycles": 0,
            "restrict_cross_center_redemption": False,
            "type": 1,
            "freeze_fee_reason_enabled": False,
            "freeze_fee": None,
            "is_dicount_only_membership": None,
            "id": plan.id,
            "name": plan.name,
        },
        "recurring_details": None,
        "purchase": _purchase(record, day(record.start)),
        "tc_acceptedon": None,
        "expiry_date": day(record.expiry),
        "member_code": record.member_code,
        "members": _members(profile),
        "credit_balance": _credit(record),
        "center": {
            "id": center.id,
            "name": center.name,
            "location": {
                "address_1": center.address_1,
                "address_2": None,
                "city": center.city,
                "state": center.state or None,
                "country": center.country_code,
            },
            "time_zone": {
                "id": 0,
                "name": center.time_zone,
                "standard_name": center.time_zone,
                "identifier_name": center.time_zone,
                "abbreviation": zone.tzname(datetime.combine(record.start, time(12))),
            },
        },
        "service_balance": _service_balance(record, services),
        "auto_renewal": _renewal(record),
    }


def _membership_head(record: Membership) -> Data:
    return {
        "user_membership_id": record.id,
        "group_user_membership_id": record.group_id,
        "status": 1,
        "recurrence_status": 3,
        "expiry_date": day(record.expiry),
        "member_code": record.member_code,
        "center": {"id": record.center.id, "name": record.center.name},
    }


def _utc_midnight(center: Center, value: date) -> str:
    return utc_stamp(center.utc(datetime.combine(value, time())))


def membership_frozen(record: Membership, today: date, days: int, by: Employee) -> Data:
    """Guest.Membership.Freeze: a freeze from tomorrow for ``days`` days, with its fee."""
    center = record.center
    start = today + timedelta(days=1)
    return _membership_head(record) | {
        "next_collection_date": _next_collection(record, start + timedelta(days=days)),
        "freeze": {
            "start_date": _utc_midnight(center, start),
            "end_date": _utc_midnight(center, start + timedelta(days=days)),
            "type": 2,
            "fee": center.price(1000) // 100,
            "fee_type": 2,
            "comments": "travelling" if days > 20 else "recovering from an injury",
            "froze_by": by.full_name,
        },
    }


def membership_unfrozen(record: Membership, today: date) -> Data:
    """Guest.Membership.Unfreeze: the membership runs again."""
    head = _membership_head(record) | {"recurrence_status": 1}
    return head | {"next_collection_date": _next_collection(record, today)}


def membership_cancelled(record: Membership, moment: datetime, reason: str, by: Employee) -> Data:
    """Guest.Membership.Cancelled: terminated at the end of the local day."""
    center = record.center
    today = center.local(moment).date()
    end_of_day = _utc_midnight(center, today + timedelta(days=1))
    return _membership_head(record) | {
        "grace_period_date": day(today + timedelta(days=5)),
        "grace_period_days": 5,
        "cancel": {
            "cancel_initiated_date": utc_stamp(moment),
            "cancel_date": end_of_day,
            "termination_date": end_of_day,
            "reason": reason,
            "cancelled_by": by.full_name,
        },
    }


def membership_reinstated(
    record: Membership, profile: Guest, today: date, services: dict[str, tuple[str, int]]
) -> Data:
    """Guest.Membership.Reinstate: the membership, whole again after a cancellation."""
    plan = record.plan
    return {
        "user_membership_id": record.id,
        "group_user_membership_id": record.group_id,
        "payments": {
            "payment_type": 0,
            "duration": 1,
            "duration_type": 1,
            "default_payment_info": "Card on file",
        },
        "pending_waive_collections": 0,
        "next_collection_date": _next_collection(record, today),
        "grace_period_date": day(today + timedelta(days=5)),
        "grace_period_days": 5,
        "recurrence_status": 1,
        "has_digital_form": False,
        "status": 1,
        "is_refunded": False,
        "invoice": _membership_invoice(record, with_item=False),
        "membership": {
            "code": plan.code,
            "OTP_required": False,
            "T&C": "Monthly; cancel anytime",
            "redemption_post_expiry_settings": {
                "can_select_specific_post_expiry_setting": False,
                "redeem_post_expiry": False,
            },
            "type": 1,
            "id": plan.id,
            "name": plan.name,
        },
        "purchase": _purchase(record, day(record.start)),
        "expiry_date": day(record.expiry),
        "member_code": record.member_code,
        "members": _members(profile),
        "credit_balance": _credit(record),
        "center": {"id": record.center.id, "name": record.center.name},
        "service_balance": _service_balance(record, services),
        "auto_renewal": _renewal(record),
    }


def guestpass(record: PassUse, membership: Membership, invoice_id: str) -> Data:
    """Guestpass.Redeemed: a member's friend came to a class on one of the member's passes."""
    total = membership.plan.guestpasses
    return {
        "id": record.id,
        "date": stamp(record.date_local),
        "guestpass_id": membership.guestpass_id,
        "guest_id": record.guest_id,
        "session_id": record.session_id,
        "invoice_id": invoice_id,
        "user_membership_id": membership.id,
        "membership": {"id": membership.plan.id, "name": membership.plan.name},
        "is_category": True,
        "total": total,
        "balance": record.balance,
        "used": total - record.balance,
        "transferred": 0,
        "expired": 0,
        "frequency": "Any",
    }


# -- packages ---------------------------------------------------------------------------------


def package(record: Package, *, first_redemption: bool) -> Data:
    """The part every Guest.Package event carries."""
    center = record.center
    return {
        "user_package_id": record.id,
        "status": record.status,
        "user_package_state": record.state,
        "invoice": {
            "status": 4,
            "receipt_no": record.invoice.receipt,
            "id": record.invoice.id,
            "no": center.code + "T" + record.invoice.number,
        },
        "package": {
            "code": record.plan.code,
            "is_OTP_required": False,
            "type": 0,
            "id": record.plan.id,
            "name": record.plan.name,
        },
        "purchase": _purchase(record, stamp(record.purchased_local)),
        "date": {
            "end_date_with_grace": day(record.end + timedelta(days=31)),
            "start": day(record.start),
            "end": day(record.end),
        },
        "schedule": {"completed_schedules": None, "next_schedule_date": None},
        "center": {"id": center.id, "name": center.name},
        "is_refunded": False,
        "sale_invoice": {"id": None, "no": None},
        "lookup_package_user_id": None,
        "start_validity_at_first_redemption": False,
        "never_expires": False,
        "has_first_redemption": first_redemption,
        "expiration_days": (record.end - record.start).days,
    }


def package_created(record: Package, name: str, minutes: int) -> Data:
    """Guest.Package.Creation: the package and the sessions it holds."""
    plan = record.plan
    per_session = record.invoice.items[0].sales // plan.sessions
    return package(record, first_redemption=False) | {
        "services": [
            {
                "service_type_info": {
                    "service_category_type": 2,
                    "id": plan.service_id,
                    "name": name,
                    "duration": minutes,
                    "has_segments": False,
                },
                "exists_in_current_center": True,
                "total": plan.sessions,
                "used": record.used,
                "balance": record.balance,
                "balance_amount": money(per_session * record.balance),
                "price": None,
                "package_service_price": money(per_session),
                "sale_as_part_of_package_or_membership_only": False,
                "book_with_partial_balance": 1,
            }
        ]
    }


def _use(record: Package, use: Redemption, kind: str, item: tuple[str, str], item_id: str) -> Data:
    center = record.center
    return {
        "invoice": {
            "status": 4,
            "id": use.invoice.id,
            "no": use.invoice.number,
            "item_id": item_id,
        },
        kind: {"id": item[0], "name": item[1]},
        f"{kind}_type_info": {f"{kind}_category_type": 2, "id": item[0], "name": item[1]},
        "therapist": {"id": use.therapist.id, "name": use.therapist.full_name},
        "usage_date": use.usage_local.strftime("%Y-%m-%d %H:%M:%S.000"),
        "center": {"id": center.id, "name": center.name},
    }


def package_redemption(
    record: Package,
    use: Redemption,
    service: tuple[str, str],
    product: tuple[str, str] | None,
    *,
    reversal: bool,
) -> Data:
    """Guest.Package.Redemption and .RedemptionReversal: one use of the package."""
    suffix = "_reversal" if reversal else ""
    products = []
    if product is not None and use.product_item_id is not None:
        products.append(_use(record, use, "product", product, use.product_item_id))
    return package(record, first_redemption=True) | {
        f"service_redemptions{suffix}": [
            _use(record, use, "service", service, use.service_item_id)
        ],
        f"product_redemptions{suffix}": products,
    }


# -- classes ----------------------------------------------------------------------------------


def session(record: Session) -> Data:
    """Class.Schedule.*: the session (``sesion_id`` sic), in the center's wall-clock time."""
    offering = record.offering
    blank = "" if record.updated else None
    return {
        "sesion_id": record.id,
        "center_id": record.center.id,
        "class_name": offering.name,
        "start_time": stamp(record.start_local),
        "end_time": stamp(record.start_local + timedelta(minutes=offering.minutes)),
        "duration_in_mins": offering.minutes,
        "instructor_details_list": None,
        "room_id": None,
        "capacity": record.capacity,
        "web_capacity": min(offering.web_capacity, record.capacity),
        "show_in_catalog": 1,
        "is_free_session": False,
        "description": blank,
        "html_description": blank,
        "is_recurring": False,
        "recurrence_start_time": None,
        "recurrence_end_time": None,
        "recurrence_type": None,
        "frequency": None,
        "num_occurences": None,
        "weekdays": None,
        "override_conflict_check": False,
        "enforce_add_on_conflict": False,
        "class_type": 1,
        "code": None,
        "event_id": -1 if record.updated else None,
        "student_virtual_link": blank,
        "instructor_virtual_link": blank,
        "recurrence_id": None,
        "recurrence_session_ids": None,
    }


def booking(record: Booking, *, created: bool) -> Data:
    """Class.Booking.Created, .Cancelled, .Deleted and .NoShow."""
    offering = record.session.offering
    return {
        "workshop_id": offering.id,
        "track_id": -1,
        "class_id": offering.id,
        "session_id": record.session.id,
        "add_to_all": 0 if created else None,
        "training_virtual_guests": None,
        "guest_id": record.guest_id,
        "center_id": record.session.center.id,
        "waitlist": record.waitlist if created else None,
        "booking_source": None,
        "registration_id": record.id,
        "group_invoice_id": None,
        "is_recurring": False,
        "recurrence_id": None,
        "recurrence_registration_ids": None,
        "guest_registration_ids": None,
    }


def booking_decided(record: Booking, friend: Guest | None) -> Data:
    """Class.Booking.Approved and .Rejected: a waitlist request, GUIDs in uppercase."""
    offering, center = record.session.offering, record.session.center
    guests = []
    if friend is not None and record.friend is not None:
        guests.append(
            {
                "guest_id": upper(friend.id),
                "registration_id": record.friend[1],
                "first_name": friend.first_name,
                "last_name": friend.last_name,
                "email": friend.email,
                "mobile_phone": {
                    "country_code": center.country.calling_code,
                    "number": int(friend.mobile or 0),
                },
                "gender": friend.gender,
            }
        )
    return {
        "workshop_id": offering.id,
        "track_id": 2000 + offering.id % 1000,
        "class_id": offering.id,
        "session_id": record.session.id,
        "add_to_all": 0,
        "guest_id": upper(record.guest_id),
        "center_id": upper(center.id),
        "waitlist": True,
        "booking_source": 0,
        "registration_id": record.id,
        "group_invoice_id": upper(record.group_invoice_id or ZERO_GUID),
        "training_virtual_guests": guests,
        "recurrence_id": 3000 + offering.id % 1000,
        "recurrence_registration_ids": [record.session.id],
    }
