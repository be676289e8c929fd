"""Entity changes and their merge: any order, any duplication, the same final state."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import PAYLOADS, payload_names
from zenoti_bridge.entities import (
    EntityState,
    Version,
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
            group = states.get(("appointment_group", str(state.value("member"))))
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
@given(data=st.data(), names=st.sampled_from([GUEST_STREAM, GROUP_STREAM, MEMBERSHIP_STREAM]))
def test_any_permutation_and_duplication_equals_applying_once_in_order(
    data: st.DataObject, names: list[str]
) -> None:
    events = data.draw(streams(names))
    in_order = apply_all(sorted(events, key=lambda e: e[2]))
    duplicated = events + data.draw(st.lists(st.sampled_from(events), max_size=10))
    shuffled = data.draw(st.permutations(duplicated))
    assert apply_all(list(shuffled)) == in_order
