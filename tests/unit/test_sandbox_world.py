"""The sandbox's synthetic organization: deterministic from its seed, and realistic."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, time
from itertools import islice
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from zenoti_bridge.sandbox.model import Occurrence
from zenoti_bridge.sandbox.scenario import every_type, plan
from zenoti_bridge.sandbox.world import EMAIL_DOMAINS, World

START = datetime(2024, 6, 3, 15, tzinfo=UTC)
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
GUID_ANY_CASE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-")
EMAIL = re.compile(r"[\w.+-]+@[\w.-]+")


def story(seed: int) -> list[Occurrence]:
    world = World.generate(seed, centers=2, guests_per_center=20, start=START)
    return every_type(world, START) + list(islice(plan("busy-salon", seed, START, None), 300))


def bodies(occurrences: list[Occurrence]) -> list[bytes]:
    return [o.body(o.event_id) for o in occurrences]


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def test_the_same_seed_gives_the_same_world() -> None:
    first = World.generate(42, centers=3, guests_per_center=25, start=START)
    again = World.generate(42, centers=3, guests_per_center=25, start=START)
    assert first == again


def test_the_same_seed_gives_the_same_occurrences_byte_for_byte() -> None:
    assert bodies(story(7)) == bodies(story(7))


def test_another_seed_gives_another_world_and_story() -> None:
    first = World.generate(1, start=START)
    other = World.generate(2, start=START)
    assert first.organization.id != other.organization.id
    assert {g.id for g in first.guests}.isdisjoint({g.id for g in other.guests})
    assert bodies(story(1)) != bodies(story(2))


def test_a_world_has_the_size_asked_for() -> None:
    world = World.generate(3, centers=20, guests_per_center=12, start=START)
    assert len(world.centers) == 20
    assert len({c.id for c in world.centers}) == 20
    assert len({c.code for c in world.centers}) == 20, "invoice prefixes must not collide"
    assert len(world.guests) == 240
    for center in world.centers:
        jobs = {e.job_name for e in world.employees if e.center_id == center.id}
        assert {"FRONT DESK", "ESTHETICIAN", "MASSAGE THERAPIST", "STYLIST"} <= jobs
        assert any(c.center_id == center.id for c in world.classes)


def test_every_id_is_a_lowercase_version_4_guid() -> None:
    world = World.generate(5, centers=2, start=START)
    ids = [world.organization.id, *world.job_ids.values()]
    ids += [c.id for c in world.centers] + [r.id for r in world.rooms]
    ids += [e.id for e in world.employees] + [g.id for g in world.guests]
    ids += [s.id for s in world.services] + [p.id for p in world.products]
    ids += [m.id for m in world.memberships] + [p.id for p in world.packages]
    assert all(GUID.match(i) for i in ids), [i for i in ids if not GUID.match(i)][:3]
    assert len(set(ids)) == len(ids)


def test_generated_guids_in_payloads_are_lowercase_except_where_zenoti_shouts() -> None:
    shouting = {"Appointment.Feedback.Created", "Class.Booking.Approved", "Class.Booking.Rejected"}
    for occurrence in story(3):
        guids = [s for s in strings(occurrence.data) if GUID_ANY_CASE.match(s)]
        upper = [g for g in guids if g != g.lower()]
        if occurrence.event_type in shouting:
            assert upper, occurrence.event_type
        else:
            assert not upper, (occurrence.event_type, upper)


def test_every_email_is_on_an_example_domain() -> None:
    world = World.generate(9, centers=3, start=START)
    addresses = [g.email for g in world.guests] + [e.email for e in world.employees]
    for occurrence in story(9):
        addresses += [m for s in strings(occurrence.data) for m in EMAIL.findall(s)]
    assert addresses
    assert {a.rsplit("@", 1)[1] for a in addresses} <= set(EMAIL_DOMAINS)


def test_centers_keep_real_time_zones_and_business_hours() -> None:
    world = World.generate(11, centers=20, start=START)
    for center in world.centers:
        ZoneInfo(center.time_zone)
        assert time(8) <= center.opens < center.closes <= time(21)
        opening = center.opening_after(START)
        assert center.is_open(opening)
        assert center.local(opening).time() == center.opens or opening == START
        assert not center.is_open(center.closing_after(opening))
    assert len({c.time_zone for c in world.centers}) > 5
    assert len({c.currency for c in world.centers}) > 3


def test_guests_look_like_people() -> None:
    world = World.generate(13, start=START)
    for guest in world.guests:
        assert guest.first_name.isalpha() and guest.last_name.isalpha()
        assert guest.created < START
        assert guest.code.startswith(world.center(guest.center_id).code)
        assert guest.mobile is None or guest.mobile.isdigit()
    assert len({g.number for g in world.guests}) == len(world.guests)


def test_a_naive_start_is_refused_with_a_hint() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        World.generate(1, start=datetime(2024, 6, 3))
