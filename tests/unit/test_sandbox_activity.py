"""The sandbox's business activity: every event type, shaped like Zenoti's, in one story."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

import pytest

from tests.conftest import PAYLOADS
from zenoti_bridge.catalog import EVENT_TYPES, lookup
from zenoti_bridge.envelope import object_id_time, parse_envelope, parse_timestamp
from zenoti_bridge.sandbox.activity import Activity
from zenoti_bridge.sandbox.model import Occurrence
from zenoti_bridge.sandbox.scenario import every_type, play
from zenoti_bridge.sandbox.world import World

START = datetime(2024, 6, 3, 15, tzinfo=UTC)
CATALOG = sorted(t.name for t in EVENT_TYPES)
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$")
# Zenoti sends null here on invoices that are not for a visit (retail, memberships, packages)
NULLABLE = {"data.invoice.appointment_group_id"}


def sample(event_type: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((PAYLOADS / f"{event_type}.json").read_text())
    return document


def world(seed: int = 21) -> World:
    return World.generate(seed, centers=2, guests_per_center=25, start=START)


@pytest.fixture(scope="module")
def occurrences() -> list[Occurrence]:
    """A story with every type, then three busy days of the same world."""
    activity = Activity(world(), seed=21)
    story = every_type(activity, START)
    return story + list(islice(play(activity, "busy-salon", 21, None), 1500))


def shape_errors(expected: Any, actual: Any, path: str = "data") -> list[str]:
    """Where ``actual`` differs from the sample: keys, nesting, list items, JSON value types."""
    if expected is None or (actual is None and path in NULLABLE):
        return []
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: {type(actual).__name__} where the sample has an object"]
        errors = []
        if set(expected) != set(actual):
            missing, extra = (
                sorted(set(expected) - set(actual)),
                sorted(set(actual) - set(expected)),
            )
            errors.append(f"{path}: missing keys {missing}, unexpected keys {extra}")
        for key in expected.keys() & actual.keys():
            errors += shape_errors(expected[key], actual[key], f"{path}.{key}")
        return errors
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{path}: {type(actual).__name__} where the sample has a list"]
        first = expected[0] if expected else None  # every item has the first one's shape
        return [e for n, x in enumerate(actual) for e in shape_errors(first, x, f"{path}[{n}]")]
    if _kind(expected) != _kind(actual):
        return [f"{path}: {_kind(actual)} {actual!r} where the sample has a {_kind(expected)}"]
    return []


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def test_every_type_produces_every_catalog_type() -> None:
    story = every_type(world(5), START)
    assert sorted({o.event_type for o in story}) == CATALOG


@pytest.mark.parametrize("event_type", CATALOG)
def test_trigger_makes_the_type_happen_last(event_type: str) -> None:
    activity = Activity(world(), seed=3)
    activity.trigger("Guest.Created", START)  # some history first
    made = activity.trigger(event_type, START + timedelta(hours=1))
    assert made[-1].event_type == event_type
    again = activity.trigger(event_type, START + timedelta(hours=2))
    assert again[-1].event_type == event_type, "a second time, from a world that has history"


def test_trigger_matches_names_tolerantly() -> None:
    made = Activity(world(), seed=1).trigger("guestpass.redeemed", START)
    assert made[-1].event_type == "Guestpass.Redeemed"


def test_trigger_refuses_unknown_types_with_a_hint() -> None:
    with pytest.raises(ValueError, match=r"unknown Zenoti event type 'Guest\.Teleported'"):
        Activity(world(), seed=1).trigger("Guest.Teleported", START)


def test_data_has_the_shape_of_zenotis_sample(occurrences: list[Occurrence]) -> None:
    errors = {
        (o.event_type, error)
        for o in occurrences
        for error in shape_errors(sample(o.event_type)["data"], o.data)
    }
    assert not errors, sorted(errors)[:10]


def test_the_envelope_is_zenotis(occurrences: list[Occurrence]) -> None:
    for n, occurrence in enumerate(occurrences):
        document = json.loads(occurrence.body(f"{n:024x}"))
        assert TIMESTAMP.match(document["event_timestamp"]), document["event_timestamp"]
        assert document["event_resource"] == sample(occurrence.event_type)["event_resource"]
        assert document["event_schema"] == "v1"
        envelope = parse_envelope(occurrence.body(f"{n:024x}"))
        assert envelope.event_type == occurrence.event_type
        seconds = parse_timestamp(envelope.event_timestamp).replace(microsecond=0)
        assert object_id_time(envelope.event_id) == seconds, "an ObjectId starts with its time"


def test_event_ids_are_unique(occurrences: list[Occurrence]) -> None:
    ids = [o.event_id for o in occurrences]
    assert len(set(ids)) == len(ids)


def test_every_event_names_its_entity(occurrences: list[Occurrence]) -> None:
    for occurrence in occurrences:
        assert lookup(occurrence.event_type).entity_id(occurrence.data), occurrence.event_type


def test_timestamps_never_go_backwards(occurrences: list[Occurrence]) -> None:
    times = [o.event_timestamp for o in occurrences]
    assert times == sorted(times)
    assert times[-1] - times[0] > timedelta(days=2), "the busy days really passed"


def test_invoices_close_for_guests_and_visits_that_exist(occurrences: list[Occurrence]) -> None:
    guests = {g.id for g in world().guests}
    appointments: dict[str, str] = {}  # id -> its group
    completed: set[str] = set()
    for occurrence in occurrences:
        data, kind = occurrence.data, occurrence.event_type
        if kind == "Guest.Created":
            guests.add(data["id"])
        elif kind in ("AppointmentGroup.Created", "AppointmentGroup.Updated"):
            appointments |= {a["id"]: data["appointment_group_id"] for a in data["appointments"]}
        elif kind == "Appointment.Completed":
            completed |= {a["id"] for a in data["appointments"]}
        elif kind == "Invoice.Closed":
            invoice = data["invoice"]
            assert invoice["guest"]["id"] in guests
            for appointment in invoice["appointments"]:
                assert appointments[appointment["id"]] == invoice["appointment_group_id"]
                assert appointment["id"] in completed, "an invoice closes after the service"
            if invoice["is_refund"]:
                assert invoice["total_price"]["sum_total"] < 0
            elif invoice["appointment_group_id"] is None:
                assert {i["type"] for i in invoice["invoice_items"]} <= {2, 3, 4, 6}


def _guests_named(kind: str, data: dict[str, Any], owners: dict[str, str]) -> set[str]:
    if kind.startswith("Guest.") and "id" in data and not kind.startswith("Guest.Package"):
        named = {data["id"]}
    elif kind == "Invoice.Closed":
        named = {data["invoice"]["guest"]["id"]}
    elif kind.startswith("AppointmentGroup.") and "guest" in data:
        named = {data["guest"]["id"]}
    elif kind == "Appointment.Feedback.Created":
        named = {data["user_id"]}
    else:
        named = {data[k] for k in ("guest_id",) if isinstance(data.get(k), str)}
    named |= {g["guest_id"] for g in data.get("training_virtual_guests") or []}
    named |= {m["id"] for m in data.get("members") or []}
    for key in ("user_membership_id", "user_package_id", "appointment_group_id"):
        if isinstance(data.get(key), str) and data[key].lower() in owners:
            named.add(owners[data[key].lower()])
    return {n.lower() for n in named}


def test_nothing_happens_to_a_guest_after_their_deletion(occurrences: list[Occurrence]) -> None:
    owners: dict[str, str] = {}  # membership, package and group ids -> their guest
    gone: set[str] = set()
    deletions = 0
    for occurrence in occurrences:
        data, kind = occurrence.data, occurrence.event_type
        named = _guests_named(kind, data, owners)
        assert not named & gone, (kind, named & gone)
        if kind == "Guest.Membership.Created":
            owners[data["user_membership_id"]] = data["guest_id"]
        elif kind == "AppointmentGroup.Created":
            owners[data["appointment_group_id"]] = data["guest"]["id"]
        elif kind == "Guest.Package.Creation":
            owners[data["user_package_id"]] = _package_buyer(occurrences, data["invoice"]["id"])
        elif kind == "Guest.Deleted":
            gone.add(data["id"])
            deletions += 1
        elif kind == "Guest.Merged":
            gone.add(data["merged_guest_id"])
            deletions += 1
    assert deletions >= 2


def _package_buyer(occurrences: list[Occurrence], invoice_id: str) -> str:
    buyer: str = next(
        o.data["invoice"]["guest"]["id"]
        for o in occurrences
        if o.event_type == "Invoice.Closed" and o.data["invoice"]["id"] == invoice_id
    )
    return buyer


def test_local_times_are_the_centers_wall_clock(occurrences: list[Occurrence]) -> None:
    activity = Activity(world(), seed=21)
    zones = {c.id: c for c in activity.world.centers}
    for occurrence in occurrences:
        if occurrence.event_type == "AppointmentGroup.Created":
            center = zones[occurrence.data["center_id"]]
            for appointment in occurrence.data["appointments"]:
                utc = datetime.fromisoformat(appointment["start_time"]).replace(tzinfo=UTC)
                local = appointment["start_time_in_center"]
                assert center.local(utc).isoformat() == local
                assert "+" not in local and "Z" not in local


def test_net_null_dates_are_dotnet_zero(occurrences: list[Occurrence]) -> None:
    employees = [o for o in occurrences if o.event_type == "Employee.Created"]
    assert employees
    for occurrence in employees:
        assert occurrence.data["personal_info"]["birth_date"] == "0001-01-01T00:00:00"
        assert occurrence.data["job_info"]["end_date"] == "0001-01-01T00:00:00"


def test_busy_days_are_a_realistic_mix() -> None:
    busy = list(islice(play(Activity(world(), seed=4), "busy-salon", 4, None), 1500))
    counts = {t: sum(1 for o in busy if o.event_type == t) for t in CATALOG}
    assert counts["AppointmentGroup.Created"] > counts["Guest.Created"] > counts["Employee.Created"]
    assert counts["Invoice.Closed"] >= counts["Appointment.Completed"] / 2
    assert counts["Appointment.Started"] > 0 and counts["Class.Booking.Created"] > 0


def test_expected_names_exactly_the_entities_the_events_touched() -> None:
    activity = Activity(world(), seed=8)
    story = every_type(activity, START)
    keys: dict[str, set[str]] = {}
    for occurrence in story:
        kind = lookup(occurrence.event_type)
        assert kind.resource is not None
        keys.setdefault(kind.resource, set()).add(kind.entity_id(occurrence.data) or "")
        if occurrence.event_type == "Guest.Merged":
            keys["guest"].add(occurrence.data["merged_guest_id"])
        if occurrence.event_type.startswith("AppointmentGroup.") and occurrence.data.get(
            "appointments"
        ):
            keys.setdefault("appointment", set()).update(
                a["id"] for a in occurrence.data["appointments"]
            )
    expected = activity.expected()
    assert {r: set(ids) for r, ids in expected.items()} == keys
    assert all(
        isinstance(row["deleted"], bool) for rows in expected.values() for row in rows.values()
    )


def test_steps_need_aware_times() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Activity(world(), seed=1).step(datetime(2024, 6, 3, 12))
