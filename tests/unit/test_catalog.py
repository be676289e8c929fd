from __future__ import annotations

import json

import pytest

from tests.conftest import PAYLOADS, payload_names
from zenoti_bridge import catalog


def test_every_documented_type_has_one_catalog_entry() -> None:
    assert len(catalog.EVENT_TYPES) == 38
    assert len({t.name for t in catalog.EVENT_TYPES}) == 38


def test_every_fixture_type_is_in_the_catalog() -> None:
    assert sorted(t.name for t in catalog.EVENT_TYPES) == payload_names()


@pytest.mark.parametrize(
    "spelling",
    [
        "Guestpass.Redeemed",
        "guestpass.redeemed",
        "GUESTPASS.REDEEMED",
        "Guest pass.Redeemed",
        "guest_pass.redeemed",
        "Guest-Pass.Redeemed",
    ],
)
def test_type_names_match_ignoring_case_and_separators(spelling: str) -> None:
    kind = catalog.lookup(spelling)
    assert kind.routed
    assert kind.name == "Guestpass.Redeemed"
    assert kind.resource == "guestpass_redemption"


def test_spaces_inside_a_segment_are_dropped() -> None:
    assert catalog.lookup("Class.Booking.No Show").name == "Class.Booking.NoShow"


def test_unknown_types_are_unrouted_not_rejected() -> None:
    kind = catalog.lookup("Gift.Card.Sold")
    assert not kind.routed
    assert kind.name == "Gift.Card.Sold"
    assert kind.resource is None and kind.family is None
    assert kind.entity_id({"id": "x"}) is None


EXPECTED_KEYS = {
    "Invoice.Closed": ("invoice", "d330a549-4d14-4f1a-8cc3-46363c234038"),
    "Guest.Created": ("guest", "b37523a5-3b4a-4ee2-8463-513755ac0ecd"),
    "Class.Schedule.Created": ("class_session", None),
    "Class.Booking.Created": ("class_booking", None),
    "AppointmentGroup.Created": ("appointment_group", "00d9f4ad-53a2-42b6-b3f5-f28807f0cbd4"),
    "AppointmentGroup.Delete": ("appointment_group", "00d9f4ad-53a2-42b6-b3f5-f28807f0cbd4"),
}


@pytest.mark.parametrize("name", payload_names())
def test_every_fixture_yields_an_entity_key(name: str) -> None:
    document = json.loads((PAYLOADS / f"{name}.json").read_text())
    kind = catalog.lookup(document["event_type"])
    entity = kind.entity_id(document["data"])
    assert entity is not None, name
    assert entity == entity.lower(), "GUIDs are lowercased"
    assert kind.ordering_key(document["data"]) is not None
    if name in EXPECTED_KEYS:
        resource, expected = EXPECTED_KEYS[name]
        assert kind.resource == resource
        if expected:
            assert entity == expected


def test_class_ids_are_integers_as_text() -> None:
    kind = catalog.lookup("Class.Schedule.Updated")
    assert kind.entity_id({"sesion_id": 80412}) == "80412"
    assert kind.entity_id({"session_id": 7}) == "7", "tolerates a corrected spelling"


def test_uppercase_guids_are_lowercased() -> None:
    kind = catalog.lookup("Appointment.Feedback.Created")
    key = kind.entity_id({"appointment_group_id": "ABCD-EF", "user_id": "0A-B"})
    assert key == "abcd-ef:0a-b"


def test_appointment_events_are_ordered_by_their_group() -> None:
    kind = catalog.lookup("Appointment.Started")
    data = {"appointment_group_id": "G1", "appointments": [{"id": "A1"}]}
    assert kind.entity_id(data) == "a1"
    assert kind.ordering_key(data) == "appointment_group:g1"


@pytest.mark.parametrize("data", [None, [], "text", 5, {"invoice": None}, {"invoice": []}])
def test_key_extraction_never_raises_on_odd_data(data: object) -> None:
    assert catalog.lookup("Invoice.Closed").entity_id(data) is None


def test_families_cover_zenotis_event_type_list() -> None:
    assert set(catalog.FAMILIES) == {
        "Invoice",
        "Guest",
        "Class",
        "Guest Membership",
        "Guest Package",
        "Guest Pass",
        "Appointment",
        "Appointment Group",
        "Employee",
    }


@pytest.mark.parametrize("name", payload_names())
def test_the_ordering_key_is_the_entity_unless_the_type_names_another(name: str) -> None:
    document = json.loads((PAYLOADS / f"{name}.json").read_text())
    kind = catalog.lookup(document["event_type"])
    entity, ordering = kind.keys(document["data"])
    assert entity == kind.entity_id(document["data"])
    assert ordering == kind.ordering_key(document["data"])
    if kind.ordering is None:
        assert ordering == f"{kind.resource}:{entity}"


def test_keys_of_data_that_is_not_an_object_are_none() -> None:
    data: object
    for data in (None, [], "text", 7):
        assert catalog.lookup("Guest.Created").keys(data) == (None, None)
        assert catalog.lookup("Invoice.Closed").keys(data) == (None, None)
    assert catalog.lookup("No.Such.Type").keys({"id": "x"}) == (None, None)
