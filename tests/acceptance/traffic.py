"""Realistic Zenoti traffic for acceptance tests, and the mirror it must produce.

A month at a few centers, as Zenoti sends it: events of most types, built from the samples in
``tests/fixtures/zenoti/payloads`` with fresh ``event_id`` values, about 620 entities (guests,
appointment groups and their appointments, memberships, packages, invoices, class sessions and
bookings, employees, feedback, guest passes), timestamps in any order (some equal, so ties break
by ``event_id``), and some events delivered more than once, as Zenoti's retries do. The expected
mirror comes from the pure reference ``tests.unit.test_entities.apply_all`` over the distinct
events.

Usage::

    rng = random.Random(seed)
    events = make_events(20_000, rng)
    deliveries = make_deliveries(events, duplicates=2_000, rng=rng)  # shuffled, signed
    answers = asyncio.run(deliver([port_a, port_b], deliveries))
    with Reader(url) as reader:
        compared, differences = mirror_mismatches(reader, events)
    assert not differences
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import func, select

from tests.conftest import payload, payload_names
from tests.unit.test_entities import apply_all
from zenoti_bridge.entities import EntityState
from zenoti_bridge.envelope import timestamp_key
from zenoti_bridge.signature import DEFAULT_HEADER, sign
from zenoti_bridge.storage.queries import Reader
from zenoti_bridge.storage.schema import MIRROR_COLUMNS, jobs, mirror_membership_history

from .webhook_client import Connection, NoAnswer

SOURCE = "acme"
SECRET = "traffic-acceptance-secret"
CONNECTIONS = 32
REQUEST_TIMEOUT = 10.0  # Zenoti's own delivery timeout
POLL_INTERVAL = 0.02
TIE_SHARE = 0.1  # events that reuse an earlier timestamp of the same entity
SAMPLES: dict[str, bytes] = {name: payload(name) for name in payload_names()}
TEMPLATES: dict[str, dict[str, Any]] = {name: orjson.loads(body) for name, body in SAMPLES.items()}


@dataclass(frozen=True, slots=True)
class Event:
    """One Zenoti event: what the reference needs, and the body Zenoti sends."""

    event_id: str
    event_type: str
    event_timestamp: str
    data: dict[str, Any]
    body: bytes


@dataclass(frozen=True, slots=True)
class Delivery:
    """One signed webhook request; a retried event is delivered with the same bytes."""

    event_id: str
    body: bytes
    headers: dict[str, str]


@dataclass(slots=True)
class Answers:
    """What the sender got back: every answer's status per event, and any failure."""

    statuses: dict[str, list[str]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def counts(self) -> Counter[str]:
        return Counter(s for statuses in self.statuses.values() for s in statuses)

    @property
    def acknowledged(self) -> int:
        return sum(len(statuses) for statuses in self.statuses.values())


# -- the world and its events -----------------------------------------------------------------


def _guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


@dataclass(frozen=True, slots=True)
class World:
    """The entities the events are about."""

    guests: list[str]
    groups: list[tuple[str, list[str]]]  # appointment group id, its appointment ids
    memberships: list[str]
    packages: list[str]
    invoices: list[str]
    bookings: list[int]
    sessions: list[int]
    employees: list[str]
    guestpasses: list[str]

    @classmethod
    def create(cls, rng: random.Random) -> World:
        return cls(
            guests=[_guid(rng) for _ in range(150)],
            groups=[(_guid(rng), [_guid(rng), _guid(rng)]) for _ in range(60)],
            memberships=[_guid(rng) for _ in range(50)],
            packages=[_guid(rng) for _ in range(40)],
            invoices=[_guid(rng) for _ in range(50)],
            bookings=rng.sample(range(600_000, 700_000), 50),
            sessions=rng.sample(range(50_000, 60_000), 30),
            employees=[_guid(rng) for _ in range(30)],
            guestpasses=[_guid(rng) for _ in range(20)],
        )


Builder = Callable[[str, World, int, random.Random], tuple[str, dict[str, Any]]]


def _data(event_type: str) -> dict[str, Any]:
    """A fresh copy of the sample's data, to change freely."""
    data: dict[str, Any] = orjson.loads(SAMPLES[event_type])["data"]
    return data


def _guest(event_type: str, world: World, n: int, rng: random.Random) -> tuple[str, dict[str, Any]]:
    guest = rng.choice(world.guests)
    data = _data(event_type)
    data["id"] = guest
    if "personal_info" in data:
        data["personal_info"]["first_name"] = f"Guest{n}"
        data["preferences"]["receive_marketing_email"] = rng.random() < 0.5
    if event_type == "Guest.Merged":
        data["merged_guest_id"] = rng.choice([g for g in world.guests if g != guest])
    if "current_preferences" in data:
        marketing = data["current_preferences"]["marketing"]
        marketing["email"] = rng.choice(["opted-in", "opted-out"])
        marketing["sms"] = rng.choice(["opted-in", "opted-out"])
    return guest, data


def _appointment(appointment: str, n: int) -> dict[str, Any]:
    data: dict[str, Any] = _data("AppointmentGroup.Created")["appointments"][0]
    data.update(id=appointment, service_name=f"Service{n}")
    return data


def _group(event_type: str, world: World, n: int, rng: random.Random) -> tuple[str, dict[str, Any]]:
    group, appointments = rng.choice(world.groups)
    data = _data(event_type)
    data["appointment_group_id"] = group
    if event_type in ("AppointmentGroup.Created", "AppointmentGroup.Updated"):
        listed = appointments if rng.random() < 0.7 else appointments[:1]
        data["appointments"] = [_appointment(a, n) for a in listed]
        data["guest"]["id"] = rng.choice(world.guests)
    elif event_type == "AppointmentGroup.Status":
        data["appointment_group_status"] = rng.choice([-2, -1, 0, 1, 2, 4])
    elif event_type == "AppointmentGroup.Delete":
        data["appointment_id"] = appointments[0]
    else:  # Appointment.Started, Appointment.Completed
        template = data["appointments"][0]
        data["appointments"] = [
            {**template, "id": a, "appointment_progress": rng.randrange(3)}
            for a in rng.sample(appointments, rng.randint(1, len(appointments)))
        ]
    return group, data


def _membership(
    event_type: str, world: World, n: int, rng: random.Random
) -> tuple[str, dict[str, Any]]:
    membership = rng.choice(world.memberships)
    data = _data(event_type)
    data["user_membership_id"] = membership
    data["status"] = rng.choice([1, 2, 3, 4, 5])
    if "guest_id" in data:
        data["guest_id"] = rng.choice(world.guests)
    return membership, data


def _package(
    event_type: str, world: World, n: int, rng: random.Random
) -> tuple[str, dict[str, Any]]:
    package = rng.choice(world.packages)
    data = _data(event_type)
    data.update(
        user_package_id=package,
        status=rng.choice([1, 2, 3]),
        user_package_state=rng.choice([1, 2, 3]),
    )
    return package, data


def _invoice(
    event_type: str, world: World, n: int, rng: random.Random
) -> tuple[str, dict[str, Any]]:
    invoice = rng.choice(world.invoices)
    data = _data(event_type)
    data["invoice"]["id"] = invoice
    data["invoice"]["receipt_number"] = f"R{n}"
    data["invoice"]["total_price"]["sum_total"] = round(rng.uniform(10, 900), 2)
    return invoice, data


def _booking(
    event_type: str, world: World, n: int, rng: random.Random
) -> tuple[str, dict[str, Any]]:
    booking = rng.choice(world.bookings)
    data = _data(event_type)
    data.update(
        registration_id=booking,
        guest_id=rng.choice(world.guests),
        session_id=rng.choice(world.sessions),
    )
    return str(booking), data


def _session(
    event_type: str, world: World, n: int, rng: random.Random
) -> tuple[str, dict[str, Any]]:
    session = rng.choice(world.sessions)
    data = _data(event_type)
    data.update(sesion_id=session, class_name=f"Class{n}", capacity=rng.randint(4, 30))
    return str(session), data


def _employee(
    event_type: str, world: World, n: int, rng: random.Random
) -> tuple[str, dict[str, Any]]:
    employee = rng.choice(world.employees)
    data = _data(event_type)
    data["id"] = employee
    data["personal_info"]["first_name"] = f"Employee{n}"
    return employee, data


def _feedback(
    event_type: str, world: World, n: int, rng: random.Random
) -> tuple[str, dict[str, Any]]:
    visit = rng.randrange(20)  # one guest's feedback on one visit, sent again as it changes
    group, guest = world.groups[visit][0], world.guests[visit]
    data = _data(event_type)
    data.update(
        appointment_group_id=group,
        user_id=guest,
        rating_value=rng.randint(1, 5),
        comments=f"Visit {n}",
    )
    return f"{group}:{guest}", data


def _guestpass(
    event_type: str, world: World, n: int, rng: random.Random
) -> tuple[str, dict[str, Any]]:
    redemption = rng.choice(world.guestpasses)
    data = _data(event_type)
    data.update(id=redemption, guest_id=rng.choice(world.guests), balance=rng.randint(0, 5))
    return redemption, data


# (weight, event types, builder): most traffic is guests and appointments, as in a real day
FAMILIES: list[tuple[int, list[str], Builder]] = [
    (
        30,
        [
            "Guest.Created",
            "Guest.Updated",
            "Guest.OptedIn",
            "Guest.OptedOut",
            "Guest.Deleted",
            "Guest.Merged",
        ],
        _guest,
    ),
    (
        25,
        [
            "AppointmentGroup.Created",
            "AppointmentGroup.Updated",
            "AppointmentGroup.Status",
            "AppointmentGroup.Delete",
            "Appointment.Started",
            "Appointment.Completed",
        ],
        _group,
    ),
    (
        8,
        [
            "Guest.Membership.Created",
            "Guest.Membership.Freeze",
            "Guest.Membership.Unfreeze",
            "Guest.Membership.Cancelled",
            "Guest.Membership.Reinstate",
        ],
        _membership,
    ),
    (
        6,
        [
            "Guest.Package.Creation",
            "Guest.Package.Redemption",
            "Guest.Package.RedemptionReversal",
            "Guest.Package.StatusUpdate",
            "Guest.Package.ValidityUpdate",
        ],
        _package,
    ),
    (8, ["Invoice.Closed"], _invoice),
    (
        8,
        [
            "Class.Booking.Created",
            "Class.Booking.Cancelled",
            "Class.Booking.Deleted",
            "Class.Booking.NoShow",
            "Class.Booking.Approved",
            "Class.Booking.Rejected",
        ],
        _booking,
    ),
    (
        5,
        [
            "Class.Schedule.Created",
            "Class.Schedule.Updated",
            "Class.Schedule.Cancelled",
            "Class.Schedule.Deleted",
        ],
        _session,
    ),
    (5, ["Employee.Created", "Employee.Updated", "Employee.Deleted"], _employee),
    (3, ["Appointment.Feedback.Created"], _feedback),
    (2, ["Guestpass.Redeemed"], _guestpass),
]
START = datetime(2024, 6, 1, tzinfo=UTC)
SPAN_SECONDS = 30 * 86_400


def _timestamp(rng: random.Random) -> str:
    moment = START + timedelta(seconds=rng.randrange(SPAN_SECONDS))
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{rng.randrange(10**7):07d}Z"


def make_events(count: int, rng: random.Random) -> list[Event]:
    """``count`` events with distinct 24-hex ids over one world, in no particular time order."""
    world = World.create(rng)
    event_prefix = f"{rng.getrandbits(32):08x}"
    delivery_prefix = f"{rng.getrandbits(32):08x}"
    weights = [weight for weight, _, _ in FAMILIES]
    stamps: dict[str, list[str]] = {}  # entity key -> timestamps used, for deliberate ties
    events = []
    for n in range(count):
        _, types, build = rng.choices(FAMILIES, weights)[0]
        event_type = rng.choice(types)
        entity, data = build(event_type, world, n, rng)
        used = stamps.setdefault(f"{build.__name__}:{entity}", [])
        stamp = rng.choice(used) if used and rng.random() < TIE_SHARE else _timestamp(rng)
        used.append(stamp)
        event_id = f"{event_prefix}{n:016x}"
        envelope = {
            **TEMPLATES[event_type],
            "id": f"{delivery_prefix}{n:016x}",
            "event_id": event_id,
            "event_type": event_type,
            "event_timestamp": stamp,
            "data": data,
        }
        events.append(Event(event_id, event_type, stamp, data, orjson.dumps(envelope)))
    return events


def make_deliveries(
    events: Sequence[Event], *, duplicates: int, rng: random.Random
) -> list[Delivery]:
    """Every event once plus ``duplicates`` re-deliveries of random events, shuffled."""
    signed = [
        Delivery(
            e.event_id,
            e.body,
            {"content-type": "application/json", DEFAULT_HEADER: sign(SECRET, e.body)},
        )
        for e in events
    ]
    deliveries = signed + rng.choices(signed, k=duplicates)
    rng.shuffle(deliveries)
    return deliveries


# -- sending ----------------------------------------------------------------------------------


async def deliver(
    ports: Sequence[int],
    deliveries: Sequence[Delivery],
    *,
    connections: int = CONNECTIONS,
    answers: Answers | None = None,
) -> Answers:
    """Send every delivery over keep-alive connections spread evenly over ``ports``.

    The answers are recorded as they come into ``answers`` (a new one by default), so a watcher
    can see the progress.
    """
    answers = Answers() if answers is None else answers
    pending: Iterator[Delivery] = iter(deliveries)
    path = f"/webhooks/zenoti/{SOURCE}"

    async def sender(port: int) -> None:
        connection = Connection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
        try:
            for delivery in pending:
                try:
                    status, body = await connection.post(path, delivery.body, delivery.headers)
                except NoAnswer as exc:
                    answers.failures.append(f"{delivery.event_id} on {port}: {exc}")
                    continue
                if status != 200:
                    answers.failures.append(f"{delivery.event_id} on {port}: HTTP {status}")
                    continue
                answer = orjson.loads(body)["status"]
                answers.statuses.setdefault(delivery.event_id, []).append(answer)
        finally:
            await connection.close()

    async with asyncio.TaskGroup() as senders:
        for n in range(connections):
            senders.create_task(sender(ports[n % len(ports)]))
    return answers


# -- reading the outcome ----------------------------------------------------------------------


def succeeded_jobs(reader: Reader) -> int:
    """Mirror jobs done; fails at once if any went dead (nothing here should ever fail)."""
    counts = reader.job_counts()
    dead = counts.get(("mirror", "dead"), 0)
    assert not dead, f"{dead} mirror jobs are dead: {counts}"
    return counts.get(("mirror", "succeeded"), 0)


def wait_for_succeeded(
    reader: Reader,
    at_least: int,
    *,
    timeout: float,
    alive: Callable[[], None] = lambda: None,
) -> int:
    """Poll until ``at_least`` mirror jobs succeeded; ``alive`` raises if a process died."""
    deadline = time.monotonic() + timeout
    while (done := succeeded_jobs(reader)) < at_least:
        alive()
        assert time.monotonic() < deadline, (
            f"only {done} of {at_least} mirror jobs succeeded within {timeout:.0f} s: "
            f"{reader.job_counts()}"
        )
        time.sleep(POLL_INTERVAL)
    return done


def job_outcomes(reader: Reader) -> Counter[tuple[str, str, int]]:
    """Jobs by (consumer, status, attempts): attempts count the commits that finished a job."""
    query = select(jobs.c.consumer, jobs.c.status, jobs.c.attempts, func.count()).group_by(
        jobs.c.consumer, jobs.c.status, jobs.c.attempts
    )
    with reader.engine.connect() as conn:
        return Counter({(c, s, int(a)): int(n) for c, s, a, n in conn.execute(query)})


def membership_history_rows(reader: Reader) -> int:
    query = select(func.count()).select_from(mirror_membership_history)
    with reader.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def expected_mirror(events: Sequence[Event]) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (resource, id): the typed columns, ``deleted``, the last event and ``data``."""
    reference = apply_all(
        [(e.event_type, e.data, (timestamp_key(e.event_timestamp), e.event_id)) for e in events]
    )
    expected = {}
    for key, entity in reference.items():
        state = EntityState.from_json(entity["state"])
        assert state.version is not None
        snapshot = state.value("snapshot")
        if snapshot is None:
            snapshot = state.value("latest")
        expected[key] = {
            **entity["row"],
            "last_event_timestamp": state.version[0],
            "last_event_id": state.version[1],
            "data": snapshot if snapshot is not None else {},
        }
    return expected


def _comparable(value: Any) -> Any:
    # PostgreSQL answers aware datetimes, SQLite naive ones; both are UTC or center-local
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def mirror_mismatches(reader: Reader, events: Sequence[Event]) -> tuple[int, list[str]]:
    """(entities expected, every difference between the mirror and the reference)."""
    expected = expected_mirror(events)
    mirrored = {
        (resource, row["id"]): row
        for resource in MIRROR_COLUMNS
        for row in reader.entities(resource, SOURCE, limit=1_000_000)
    }
    problems = [f"missing from the mirror: {key}" for key in expected.keys() - mirrored.keys()]
    problems += [f"not expected in the mirror: {key}" for key in mirrored.keys() - expected.keys()]
    for key in sorted(expected.keys() & mirrored.keys()):
        want, got = expected[key], mirrored[key]
        problems += [
            f"{key} {column}: mirror {got[column]!r}, expected {value!r}"
            for column, value in want.items()
            if _comparable(got[column]) != _comparable(value)
        ]
    return len(expected), problems
