"""Entity changes and their merge: any order, any duplication, the same final state."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import PAYLOADS, payload_names
from zenoti_bridge.catalog import lookup
from zenoti_bridge.entities import (
    EntityState,
    Version,
    appointment_group_id,
    changes_for,
    merge,
    project,
)
from zenoti_bridge.envelope import timestamp_key

Event = tuple[str, Any, Version]  # (event_type, data, version)


def sample(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((PAYLOADS / f"{name}.json").read_text())
    return document


def apply_all(events: list[Event]) -> dict[tuple[str, str], dict[str, Any]]:
    """Merge events into states, then project every entity (appointments see their group)."""
    states: dict[tuple[str, str], EntityState] = {}
    for event_type, data, version in events:
        for change in changes_for(event_type, data):
            merge(states.setdefault((change.resource, change.id), EntityState()), change, version)
    rows = {}
    for (resource, entity_id), state in states.items():
        group = None
        if resource == "appointment":
            group = states.get(("appointment_group", str(appointment_group_id(state))))
        rows[(resource, entity_id)] = {
            "state": state.to_json(),
            "row": project(resource, entity_id, state, group),
        }
    return rows


def test_every_sample_maps_to_at_least_one_change() -> None:
    for name in payload_names():
        document = sample(name)
        assert changes_for(document["event_type"], document["data"]), name


def test_timestamp_keys_keep_ticks_and_sort() -> None:
    assert timestamp_key("2024-06-03T15:12:41.1180243Z") == "2024-06-03T15:12:41.118024300"
    assert timestamp_key("2024-06-03T15:12:41Z") < timestamp_key("2024-06-03T15:12:41.0000001Z")
    assert timestamp_key("2024-06-03T17:12:41+02:00") == "2024-06-03T15:12:41.000000000"


def test_an_older_create_cannot_resurrect_a_deleted_guest() -> None:
    created, deleted = sample("Guest.Created"), sample("Guest.Deleted")
    rows = apply_all(
        [
            ("Guest.Deleted", deleted["data"], ("2024-06-20", "b")),
            ("Guest.Created", created["data"], ("2024-06-03", "a")),
        ]
    )
    (guest,) = rows.values()
    assert guest["row"]["deleted"] is True


def test_opt_out_newer_than_the_snapshot_wins_and_older_does_not() -> None:
    created, opted_out = sample("Guest.Created"), sample("Guest.OptedOut")
    assert created["data"]["preferences"]["receive_marketing_email"] is True
    opted_out["data"]["current_preferences"]["marketing"]["email"] = "opted-out"
    newer = apply_all(
        [
            ("Guest.Created", created["data"], ("1", "a")),
            ("Guest.OptedOut", opted_out["data"], ("2", "b")),
        ]
    )
    older = apply_all(
        [
            ("Guest.Created", created["data"], ("2", "a")),
            ("Guest.OptedOut", opted_out["data"], ("1", "b")),
        ]
    )
    assert next(iter(newer.values()))["row"]["marketing_email"] is False
    assert next(iter(older.values()))["row"]["marketing_email"] is True


def test_appointments_missing_from_a_newer_snapshot_are_removed() -> None:
    updated = sample("AppointmentGroup.Updated")["data"]  # two appointments
    later = copy.deepcopy(updated)
    later["appointments"] = later["appointments"][:1]
    for order in ([0, 1], [1, 0]):
        events: list[Event] = [
            ("AppointmentGroup.Updated", updated, ("1", "a")),
            ("AppointmentGroup.Updated", later, ("2", "b")),
        ]
        rows = apply_all([events[i] for i in order])
        kept, gone = (updated["appointments"][i]["id"] for i in (0, 1))
        assert rows[("appointment", kept)]["row"]["removed"] is False
        assert rows[("appointment", gone)]["row"]["removed"] is True


def test_an_empty_appointment_list_deletes_the_group_and_its_appointments() -> None:
    created = sample("AppointmentGroup.Created")["data"]
    emptied = {**created, "appointments": []}
    rows = apply_all(
        [
            ("AppointmentGroup.Created", created, ("1", "a")),
            ("AppointmentGroup.Updated", emptied, ("2", "b")),
        ]
    )
    group_id = created["appointment_group_id"]
    assert rows[("appointment_group", group_id)]["row"]["deleted"] is True
    assert rows[("appointment", created["appointments"][0]["id"])]["row"]["deleted"] is True


def test_group_status_reaches_its_appointments_and_progress_is_kept() -> None:
    created = sample("AppointmentGroup.Created")["data"]
    status = sample("AppointmentGroup.Status")["data"]
    started = sample("Appointment.Started")["data"]
    rows = apply_all(
        [
            ("AppointmentGroup.Created", created, ("1", "a")),
            ("AppointmentGroup.Status", status, ("2", "b")),
            ("Appointment.Started", started, ("3", "c")),
        ]
    )
    appointment = rows[("appointment", created["appointments"][0]["id"])]["row"]
    assert (appointment["status"], appointment["status_name"]) == (2, "checkin")
    assert appointment["progress"] == "started"
    assert appointment["start_local"].hour == 10 and appointment["start_utc"].hour == 17


def test_membership_history_keeps_every_event_once() -> None:
    events: list[Event] = [
        (name, sample(name)["data"], (str(i), name))
        for i, name in enumerate(
            [
                "Guest.Membership.Created",
                "Guest.Membership.Freeze",
                "Guest.Membership.Unfreeze",
                "Guest.Membership.Cancelled",
            ]
        )
    ]
    rows = apply_all(events + events[:2])
    (membership,) = rows.values()
    assert len(membership["state"]["h"]) == 4
    row = membership["row"]
    assert row["state"] == "cancelled" and row["cancelled"] and not row["frozen"]
    assert row["guest_id"] == "b37523a5-3b4a-4ee2-8463-513755ac0ecd", "kept from Created"


def booking(name: str, **changes: Any) -> dict[str, Any]:
    """A class-booking sample, for registration 640211 unless told otherwise."""
    return {**sample(name)["data"], "registration_id": 640211, **changes}


def test_a_later_null_waitlist_keeps_the_known_value() -> None:
    created = booking("Class.Booking.Created", waitlist=True)
    for later in ("Class.Booking.Cancelled", "Class.Booking.NoShow", "Class.Booking.Deleted"):
        assert booking(later)["waitlist"] is None
        events: list[Event] = [
            ("Class.Booking.Created", created, ("1", "a")),
            (later, booking(later), ("2", "b")),
        ]
        for order in (events, events[::-1]):
            (row,) = (r["row"] for r in apply_all(order).values())
            assert row["waitlist"] is True, later


def test_a_newer_stated_waitlist_wins_and_an_unstated_one_is_unknown() -> None:
    rows = apply_all(
        [
            ("Class.Booking.Created", booking("Class.Booking.Created", waitlist=True), ("1", "a")),
            (
                "Class.Booking.Approved",
                booking("Class.Booking.Approved", waitlist=False),
                ("2", "b"),
            ),
            ("Class.Booking.Cancelled", booking("Class.Booking.Cancelled"), ("3", "c")),
        ]
    )
    (row,) = (r["row"] for r in rows.values())
    assert (row["waitlist"], row["status"]) == (False, "cancelled")
    (only_cancelled,) = apply_all(
        [("Class.Booking.Cancelled", booking("Class.Booking.Cancelled"), ("1", "a"))]
    ).values()
    assert only_cancelled["row"]["waitlist"] is None


def test_a_later_null_does_not_erase_a_bookings_guest_session_or_center() -> None:
    blank = {"guest_id": None, "center_id": None, "session_id": None, "class_id": None}
    rows = apply_all(
        [
            ("Class.Booking.Created", booking("Class.Booking.Created"), ("1", "a")),
            ("Class.Booking.Cancelled", booking("Class.Booking.Cancelled", **blank), ("2", "b")),
        ]
    )
    (row,) = (r["row"] for r in rows.values())
    assert row["guest_id"] == "b37523a5-3b4a-4ee2-8463-513755ac0ecd"
    assert row["center_id"] == "5e6a0a2e-dd70-434d-81d7-7cffb7decc0c"
    assert (row["session_id"], row["class_id"], row["status"]) == ("53021", "7710", "cancelled")


def guest_with_mobile(mobile: Any) -> dict[str, Any]:
    data: dict[str, Any] = copy.deepcopy(sample("Guest.Created")["data"])
    data["personal_info"]["mobile_phone"] = mobile
    return data


def test_a_guest_mobile_phone_is_read_from_a_string_or_an_object() -> None:
    cases = [
        ("+1 5550104477", "+1 5550104477"),
        ({"country_code": 1, "number": "5551234567"}, "+1 5551234567"),
        ({"country_code": "44", "number": 7700900123}, "+44 7700900123"),
        ({"country_code": 1, "number": ""}, None),
        ({"country_code": 1, "number": 0}, None),
        ({"number": "5551234567"}, "5551234567"),
        (None, None),
    ]
    for mobile, phone in cases:
        (guest,) = apply_all([("Guest.Created", guest_with_mobile(mobile), ("1", "a"))]).values()
        assert guest["row"]["mobile_phone"] == phone, mobile


def test_a_guest_first_seen_through_an_opt_in_has_its_name_and_email() -> None:
    for name in ("Guest.OptedIn", "Guest.OptedOut"):
        (guest,) = apply_all([(name, sample(name)["data"], ("1", "a"))]).values()
        row = guest["row"]
        assert (row["first_name"], row["last_name"]) == ("Avery", "Lindqvist"), name
        assert row["email"] == "avery.lindqvist@example.test"
        assert row["mobile_phone"] == "+1 5550104477"
        assert row["center_id"] is None and row["code"] is None, "the opt-in does not say"


def test_an_opt_in_fills_only_what_it_states_and_only_when_newer() -> None:
    updated = guest_with_mobile({"country_code": 1, "number": "5550000001"})
    updated["personal_info"].update(first_name="Avery-Jo", email="new@example.test")
    opted_in = copy.deepcopy(sample("Guest.OptedIn")["data"])
    opted_in["details"]["email"] = ""  # not stated: the snapshot's email stays
    opted_in["details"]["center_id"] = "5D96CF7F-265B-4DA9-8F0C-26EF4243ED52"
    newer = apply_all(
        [
            ("Guest.Updated", updated, ("1", "a")),
            ("Guest.OptedIn", opted_in, ("2", "b")),
        ]
    )
    row = next(iter(newer.values()))["row"]
    assert (row["first_name"], row["email"]) == ("Avery", "new@example.test")
    assert row["mobile_phone"] == "+1 5550104477"
    assert row["code"] == "HP20931", "the snapshot's, the opt-in does not carry it"
    older = apply_all(
        [
            ("Guest.OptedIn", opted_in, ("1", "b")),
            ("Guest.Updated", updated, ("2", "a")),
        ]
    )
    row = next(iter(older.values()))["row"]
    assert (row["first_name"], row["email"]) == ("Avery-Jo", "new@example.test")
    assert row["mobile_phone"] == "+1 5550000001"
    (only,) = apply_all([("Guest.OptedIn", opted_in, ("1", "b"))]).values()
    assert only["row"]["center_id"] == "5d96cf7f-265b-4da9-8f0c-26ef4243ed52"


def test_an_appointment_known_only_from_its_progress_has_group_center_and_times() -> None:
    started = sample("Appointment.Started")["data"]
    appointment_id = started["appointments"][0]["id"]
    for name in ("Appointment.Started", "Appointment.Completed"):
        rows = apply_all([(name, sample(name)["data"], ("1", "a"))])
        row = rows[("appointment", appointment_id)]["row"]
        assert row["appointment_group_id"] == "00d9f4ad-53a2-42b6-b3f5-f28807f0cbd4", name
        assert row["center_id"] == "5d96cf7f-265b-4da9-8f0c-26ef4243ed52"
        assert row["start_utc"].hour == 17 and row["end_utc"].hour == 18
        assert row["start_local"] is None, "the progress events carry no local time"
        assert row["service_name"] == "Hydrating Facial 60"
        assert row["therapist_id"] == "683447c1-0cc8-4f11-9d4e-abbd1fcfb980"
        assert row["progress"] == ("started" if name.endswith("Started") else "completed")


def test_a_progress_only_appointment_sees_its_groups_status_and_snapshots() -> None:
    started = sample("Appointment.Started")["data"]
    status = sample("AppointmentGroup.Status")["data"]
    appointment_id = started["appointments"][0]["id"]
    updated = copy.deepcopy(sample("AppointmentGroup.Updated")["data"])
    updated["appointments"] = [a for a in updated["appointments"] if a["id"] != appointment_id]
    assert updated["appointments"], "the group lives on, without the started appointment"
    base: list[Event] = [
        ("Appointment.Started", started, ("2", "b")),
        ("AppointmentGroup.Status", status, ("3", "c")),
    ]
    row = apply_all(base)[("appointment", appointment_id)]["row"]
    assert (row["status"], row["status_name"], row["removed"]) == (2, "checkin", False)
    newer = apply_all([*base, ("AppointmentGroup.Updated", updated, ("4", "d"))])
    assert newer[("appointment", appointment_id)]["row"]["removed"] is True
    older = apply_all([*base, ("AppointmentGroup.Updated", updated, ("1", "a"))])
    assert older[("appointment", appointment_id)]["row"]["removed"] is False


def test_the_newer_of_a_group_snapshot_and_a_progress_event_wins_per_field() -> None:
    created = sample("AppointmentGroup.Created")["data"]
    appointment = created["appointments"][0]
    started = copy.deepcopy(sample("Appointment.Started")["data"])
    started["appointments"][0].update(id=appointment["id"], room_id="ROOM-9", start_time=None)
    snapshot: Event = ("AppointmentGroup.Created", created, ("1", "a"))
    progress: Event = ("Appointment.Started", started, ("2", "b"))
    newer_progress = apply_all([snapshot, progress])[("appointment", appointment["id"])]["row"]
    assert newer_progress["room_id"] == "room-9"
    older = (progress[0], progress[1], ("0", "b"))
    newer_snapshot = apply_all([snapshot, older])[("appointment", appointment["id"])]["row"]
    assert newer_snapshot["room_id"] == appointment["room_id"]
    for row in (newer_progress, newer_snapshot):
        assert row["start_utc"].hour == 17, "a null start time in the newer event says nothing"
        assert row["start_local"].hour == 10, "only the snapshot carries local times"
        assert row["guest_id"] == "b37523a5-3b4a-4ee2-8463-513755ac0ecd"


# -- the property: order and duplication do not matter ----------------------------------------

GUEST_STREAM = [
    "Guest.Created",
    "Guest.Updated",
    "Guest.OptedIn",
    "Guest.OptedOut",
    "Guest.Deleted",
]
GROUP_STREAM = [
    "AppointmentGroup.Created",
    "AppointmentGroup.Updated",
    "AppointmentGroup.Status",
    "Appointment.Started",
    "Appointment.Completed",
    "AppointmentGroup.Delete",
]
BOOKING_STREAM = [
    "Class.Booking.Created",
    "Class.Booking.Approved",
    "Class.Booking.Rejected",
    "Class.Booking.Cancelled",
    "Class.Booking.NoShow",
    "Class.Booking.Deleted",
]
MEMBERSHIP_STREAM = [
    "Guest.Membership.Created",
    "Guest.Membership.Freeze",
    "Guest.Membership.Unfreeze",
    "Guest.Membership.Cancelled",
    "Guest.Membership.Reinstate",
]


def variant(name: str, n: int) -> dict[str, Any]:
    """The sample with a few values changed, so snapshots differ from one another."""
    data: dict[str, Any] = copy.deepcopy(sample(name)["data"])
    if name.startswith("Guest.") and "personal_info" in data:
        data["personal_info"]["first_name"] = f"Name{n}"
    if name == "AppointmentGroup.Updated" and n % 2:
        data["appointments"] = data["appointments"][:1]
    if name == "AppointmentGroup.Status":
        data["appointment_group_status"] = [-2, -1, 0, 2, 4][n % 5]
    if name == "Guest.OptedOut":
        data["current_preferences"]["marketing"]["sms"] = ["opted-in", "opted-out"][n % 2]
    if name in ("Guest.OptedIn", "Guest.OptedOut"):
        data["details"]["first_name"] = f"Opted{n}"
        data["details"]["email"] = "" if n % 3 == 0 else f"opted{n}@example.test"
    if name.startswith("Class.Booking."):
        data["registration_id"] = 640211  # one booking, told by every event type
        if data["waitlist"] is not None:
            data["waitlist"] = n % 2 == 0
    if name in ("Appointment.Started", "Appointment.Completed"):
        data["appointments"][0]["room_id"] = f"room-{n}"
        data["appointments"][0]["start_time"] = None if n % 3 == 0 else "2024-06-11T17:00:00"
    return data


def streams(names: list[str]) -> st.SearchStrategy[list[Event]]:
    event = st.tuples(
        st.sampled_from(names), st.integers(0, 9), st.integers(0, 50), st.integers(0, 10**6)
    ).map(
        lambda t: (
            t[0],
            variant(t[0], t[1]),
            (f"2024-06-{10 + t[2] // 10:02d}T{t[2] % 10:02d}", f"{t[3]:024x}"),
        )
    )
    return st.lists(event, min_size=1, max_size=12, unique_by=lambda e: e[2][1])


@settings(max_examples=200, deadline=None)
@given(
    data=st.data(),
    names=st.sampled_from([GUEST_STREAM, GROUP_STREAM, BOOKING_STREAM, MEMBERSHIP_STREAM]),
)
def test_any_permutation_and_duplication_equals_applying_once_in_order(
    data: st.DataObject, names: list[str]
) -> None:
    events = data.draw(streams(names))
    in_order = apply_all(sorted(events, key=lambda e: e[2]))
    duplicated = events + data.draw(st.lists(st.sampled_from(events), max_size=10))
    shuffled = data.draw(st.permutations(duplicated))
    assert apply_all(list(shuffled)) == in_order


def test_a_membership_shows_the_expiry_and_center_of_its_newest_event() -> None:
    created = sample("Guest.Membership.Created")["data"]
    frozen = {**sample("Guest.Membership.Freeze")["data"], "expiry_date": "2025-07-10T19:00:00"}
    newer_freeze = apply_all(
        [
            ("Guest.Membership.Created", created, ("1", "a")),
            ("Guest.Membership.Freeze", frozen, ("2", "b")),
        ]
    )
    (membership,) = newer_freeze.values()
    assert membership["row"]["expiry_date"] == datetime(2025, 7, 10, 19, 0, tzinfo=UTC)
    older_freeze = apply_all(
        [
            ("Guest.Membership.Freeze", frozen, ("1", "b")),
            ("Guest.Membership.Created", created, ("2", "a")),
        ]
    )
    (membership,) = older_freeze.values()
    assert membership["row"]["expiry_date"] == datetime(2025, 6, 10, 0, 0, tzinfo=UTC), (
        "the Created is newer"
    )
    assert membership["row"]["center_id"] == "5d96cf7f-265b-4da9-8f0c-26ef4243ed52"


def test_a_class_session_is_keyed_by_session_id_when_the_misspelled_key_is_null() -> None:
    data = {**sample("Class.Schedule.Created")["data"], "sesion_id": None, "session_id": 77}
    (change,) = changes_for("Class.Schedule.Created", data)
    assert (change.resource, change.id) == ("class_session", "77")
    assert lookup("Class.Schedule.Created").entity_id(data) == "77", "as the intake keys it"
