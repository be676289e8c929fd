"""Zenoti's event catalog: every known event type, its family, and how to find its entity.

Pure code. Type names are matched tolerantly (case, spaces, underscores and dashes ignored), so
``guestpass.redeemed`` and ``Guestpass.Redeemed`` are the same type. Unknown types are not errors:
:func:`lookup` returns an :class:`EventType` with ``routed=False`` and the bridge stores them as
``unrouted``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Confidence(StrEnum):
    """How sure we are that Zenoti sends this type (zenoti/README.md marks)."""

    DOC = "doc"
    OBSERVED = "obs"
    INFERRED = "inf"
    LISTED = "listed"


KeyFn = Callable[[Any], "str | None"]


@dataclass(frozen=True, slots=True)
class EventType:
    """One event type. ``name`` is the canonical spelling; ``routed`` is False for unknown types."""

    name: str
    family: str | None
    resource: str | None
    confidence: Confidence | None
    key: KeyFn
    ordering: KeyFn | None  # None: "resource:entity id"
    routed: bool = True

    def entity_id(self, data: Any) -> str | None:
        """The id of the entity this event changes, normalised (GUIDs lowercased)."""
        try:
            return self.key(data)
        except (KeyError, TypeError, AttributeError, IndexError):
            return None

    def ordering_key(self, data: Any) -> str | None:
        """The key under which jobs for this event must not run concurrently."""
        return self.keys(data)[1]

    def keys(self, data: Any) -> tuple[str | None, str | None]:
        """:meth:`entity_id` and :meth:`ordering_key` at once (the intake's hot path: the
        usual ordering key is made from the entity id, which is then found only once)."""
        entity = self.entity_id(data)
        if self.ordering is None:
            return entity, None if entity is None else f"{self.resource}:{entity}"
        try:
            return entity, self.ordering(data)
        except (KeyError, TypeError, AttributeError, IndexError):
            return entity, None


def normalize_id(value: Any) -> str | None:
    """Ids as strings: GUIDs lowercased, integers as decimal, blanks as None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if "\x00" in text:  # no id holds one, and PostgreSQL's text columns refuse it
            return None
        return text or None
    return None


def _field(*path: str) -> KeyFn:
    def get(data: Any) -> str | None:
        node = data
        for part in path:
            if type(node) is not dict and not isinstance(node, Mapping):
                return None
            node = node.get(part)
        return normalize_id(node)

    return get


def _first_of(*getters: KeyFn) -> KeyFn:
    def get(data: Any) -> str | None:
        for getter in getters:
            value = getter(data)
            if value is not None:
                return value
        return None

    return get


def _feedback_key(data: Any) -> str | None:
    group = normalize_id(data.get("appointment_group_id"))
    user = normalize_id(data.get("user_id"))
    if group is None:
        return None
    return f"{group}:{user}" if user else group


def _first_appointment(data: Any) -> str | None:
    appointments = data.get("appointments")
    if isinstance(appointments, list) and appointments and isinstance(appointments[0], Mapping):
        return normalize_id(appointments[0].get("id"))
    return None


def _prefixed(resource: str, getter: KeyFn) -> KeyFn:
    def get(data: Any) -> str | None:
        value = getter(data)
        return None if value is None else f"{resource}:{value}"

    return get


_GROUP_ID = _field("appointment_group_id")
_D, _O, _I, _L = Confidence.DOC, Confidence.OBSERVED, Confidence.INFERRED, Confidence.LISTED

# (names, family as shown in Zenoti's "Event Type" list, resource, confidence, key, ordering key).
# When ordering is None the ordering key is "resource:id".
_SPEC: list[tuple[tuple[str, ...], str, str, Confidence, KeyFn, KeyFn | None]] = [
    (("Invoice.Closed",), "Invoice", "invoice", _D, _field("invoice", "id"), None),
    (("Guest.Created", "Guest.Updated", "Guest.Deleted"), "Guest", "guest", _D, _field("id"), None),
    (("Guest.Merged",), "Guest", "guest", _L, _field("id"), None),
    (("Guest.OptedIn", "Guest.OptedOut"), "Guest", "guest", _D, _field("id"), None),
    (
        (
            "Class.Schedule.Created",
            "Class.Schedule.Updated",
            "Class.Schedule.Cancelled",
            "Class.Schedule.Deleted",
        ),
        "Class",
        "class_session",
        _D,
        _first_of(_field("sesion_id"), _field("session_id")),
        None,
    ),
    (
        (
            "Class.Booking.Created",
            "Class.Booking.Cancelled",
            "Class.Booking.Deleted",
            "Class.Booking.NoShow",
        ),
        "Class",
        "class_booking",
        _D,
        _field("registration_id"),
        None,
    ),
    (
        ("Class.Booking.Approved", "Class.Booking.Rejected"),
        "Class",
        "class_booking",
        _I,
        _field("registration_id"),
        None,
    ),
    (
        ("Guest.Membership.Created",),
        "Guest Membership",
        "membership",
        _D,
        _field("user_membership_id"),
        None,
    ),
    (
        (
            "Guest.Membership.Freeze",
            "Guest.Membership.Unfreeze",
            "Guest.Membership.Cancelled",
            "Guest.Membership.Reinstate",
        ),
        "Guest Membership",
        "membership",
        _I,
        _field("user_membership_id"),
        None,
    ),
    (
        (
            "Guest.Package.Creation",
            "Guest.Package.Redemption",
            "Guest.Package.RedemptionReversal",
            "Guest.Package.StatusUpdate",
            "Guest.Package.ValidityUpdate",
        ),
        "Guest Package",
        "package",
        _I,
        _field("user_package_id"),
        None,
    ),
    (("Guestpass.Redeemed",), "Guest Pass", "guestpass_redemption", _D, _field("id"), None),
    (
        ("Appointment.Started", "Appointment.Completed"),
        "Appointment",
        "appointment",
        _I,
        _first_of(_first_appointment, _GROUP_ID),
        _prefixed("appointment_group", _GROUP_ID),
    ),
    (
        ("Appointment.Feedback.Created",),
        "Appointment",
        "feedback",
        _I,
        _feedback_key,
        None,
    ),
    (
        ("AppointmentGroup.Created", "AppointmentGroup.Status"),
        "Appointment Group",
        "appointment_group",
        _D,
        _GROUP_ID,
        None,
    ),
    (("AppointmentGroup.Updated",), "Appointment Group", "appointment_group", _O, _GROUP_ID, None),
    (("AppointmentGroup.Delete",), "Appointment Group", "appointment_group", _I, _GROUP_ID, None),
    (
        ("Employee.Created", "Employee.Updated", "Employee.Deleted"),
        "Employee",
        "employee",
        _D,
        _field("id"),
        None,
    ),
]

_NON_NAME = re.compile(r"[^0-9a-z.]")


def normalize_type(name: str) -> str:
    """The matching form of a type name: lowercase alphanumerics and dots."""
    return _NON_NAME.sub("", name.lower())


def _build() -> dict[str, EventType]:
    types: dict[str, EventType] = {}
    for names, family, resource, confidence, key, ordering in _SPEC:
        for name in names:
            types[normalize_type(name)] = EventType(
                name=name,
                family=family,
                resource=resource,
                confidence=confidence,
                key=key,
                ordering=ordering,
            )
    return types


CATALOG: Mapping[str, EventType] = _build()
EVENT_TYPES: tuple[EventType, ...] = tuple(CATALOG.values())
FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(t.family for t in EVENT_TYPES if t.family))


def _none(_data: Any) -> str | None:
    return None


def _unknown(name: str) -> EventType:
    return EventType(
        name=name,
        family=None,
        resource=None,
        confidence=None,
        key=_none,
        ordering=_none,
        routed=False,
    )


_seen: dict[str, EventType] = {}


def lookup(name: str) -> EventType:
    """The catalog entry for a type name as received; unknown names give an unrouted entry."""
    found = _seen.get(name)
    if found is None:
        found = CATALOG.get(normalize_type(name)) or _unknown(name)
        if len(_seen) < 4096:  # bounded: a sender inventing names cannot grow it forever
            _seen[name] = found
    return found


def types_in_family(family: str) -> list[EventType]:
    """The event types Zenoti lists under one "Event Type" in its webhook form."""
    return [t for t in EVENT_TYPES if t.family == family]
