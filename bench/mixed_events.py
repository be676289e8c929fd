"""Realistic mixed events for the pipeline benchmark: many guests' lives, as Zenoti tells them.

Each *story* is one guest's visit, built from the samples in ``tests/fixtures/zenoti/payloads``:
the guest is created and updated, books an appointment group (one appointment), checks in,
starts and completes it, pays (``Invoice.Closed`` with its items), buys a membership and a package,
books a class, gives feedback and opts in to marketing; every 25th story also updates one of
20 employees and one of 40 class sessions, so a few entities are written often. Every id that
belongs to the guest's story (guest, group, appointments, invoice and its items, membership,
package, class booking) gets its own value per story; catalog ids (centers, services, rooms,
products, catalog memberships and packages, therapists) stay shared, as in one organization.

Every event has a new 24-hex ``event_id`` and ``id``, and an ``event_timestamp`` from its
story's time line (stories start 1.7 s apart, steps minutes apart, so thousands of stories
interleave). Events are delivered in time order with a little jitter, and one in a hundred
arrives up to 30 minutes late, so the mirror also sees some out-of-order events (newer wins).
Bodies are compact JSON. Everything is seeded: the same arguments give the same events.

:func:`expected_mirror` says, with the product's own pure mapping (``entities.changes_for``),
which entity rows the mirror must end up with and the newest event each must carry.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from signed_events import EventFile
from zenoti_bridge.entities import changes_for
from zenoti_bridge.envelope import parse_envelope, timestamp_key
from zenoti_bridge.signature import sign

PAYLOADS = Path(__file__).resolve().parents[1] / "tests/fixtures/zenoti/payloads"
_UUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")

# ids at these keys name catalog things every story shares (centers, services, therapists...)
_SHARED_LEAVES = frozenset(
    {
        "center_id",
        "organization_id",
        "service_id",
        "therapist_id",
        "TherapistId",
        "sale_by_id",
        "room_id",
        "job_id",
        "created_by",
        "security_profile_id",
        "item_id",
    }
)
_SHARED_PARENTS = frozenset(
    {
        "center",
        "service",
        "service_type_info",
        "sold_by",
        "therapist",
        "product",
        "product_type_info",
        "membership",
        "package",
        "selected_option",
    }
)
_STORY_INTS = {"registration_id": 1_000_000}  # integer ids that are the story's own
_SESSION_INTS = {"session_id": 50_000, "sesion_id": 50_000}  # one of SESSIONS class sessions
EMPLOYEES = 20
SESSIONS = 40
HOT_EVERY = 25  # every n-th story also updates an employee and a class session


@dataclass(frozen=True, slots=True)
class Step:
    """One event of a story: the sample, minutes after the story starts, and who it is about."""

    sample: str
    minutes: float
    pool: int | None = None  # None: the story's own entity; n: one of n shared entities


STORY: tuple[Step, ...] = (
    Step("Guest.Created", 0),
    Step("Guest.Updated", 2),
    Step("AppointmentGroup.Created", 5),
    Step("AppointmentGroup.Status", 55),
    Step("Appointment.Started", 60),
    Step("Appointment.Completed", 125),
    Step("Invoice.Closed", 130),
    Step("Guest.Membership.Created", 131),
    Step("Guest.Package.Creation", 132),
    Step("Class.Booking.Created", 200),
    Step("Appointment.Feedback.Created", 240),
    Step("Guest.OptedIn", 300),
)
HOT_STEPS: tuple[Step, ...] = (
    Step("Employee.Updated", 30, pool=EMPLOYEES),
    Step("Class.Schedule.Updated", 90, pool=SESSIONS),
)
STORY_START_GAP = timedelta(seconds=1.7)
JITTER_SECONDS = 3.0
LATE_SHARE = 0.01
LATE_SECONDS = 1800.0


@dataclass(frozen=True, slots=True)
class MixedEvent:
    event_id: str
    event_type: str
    body: bytes


def _load_samples() -> dict[str, dict[str, Any]]:
    names = {s.sample for s in (*STORY, *HOT_STEPS)}
    return {name: orjson.loads((PAYLOADS / f"{name}.json").read_bytes()) for name in names}


def _shared_ids(samples: Iterable[Any]) -> frozenset[str]:
    found: set[str] = set()

    def walk(node: Any, key: str, parent: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, k, key)
        elif isinstance(node, list):
            for item in node:
                walk(item, key, parent)
        elif (
            isinstance(node, str)
            and _UUID.match(node)
            and (key in _SHARED_LEAVES or (key == "id" and parent in _SHARED_PARENTS))
        ):
            found.add(node.lower())

    for sample in samples:
        walk(sample, "", "")
    return frozenset(found)


def _rewrite(node: Any, key: str, owner: int, shared: frozenset[str]) -> Any:
    """A copy of ``node`` whose story-owned ids belong to ``owner`` (a story or pool member)."""
    if isinstance(node, dict):
        return {k: _rewrite(v, k, owner, shared) for k, v in node.items()}
    if isinstance(node, list):
        return [_rewrite(item, key, owner, shared) for item in node]
    if isinstance(node, str) and _UUID.match(node) and node.lower() not in shared:
        return f"{node[:24]}{owner:012x}"  # same sample id, same story: same new id
    if isinstance(node, int) and not isinstance(node, bool):
        if key in _STORY_INTS:
            return _STORY_INTS[key] + owner
        if key in _SESSION_INTS:
            return _SESSION_INTS[key] + owner % SESSIONS
    return node


def _zenoti_time(value: datetime, ticks: int) -> str:
    """Zenoti's shape: seven fractional digits (100 ns ticks) and Z."""
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond:06d}{ticks}Z"


def generate(
    count: int, *, seed: int, epoch_seconds: int, first_story: int = 0
) -> list[MixedEvent]:
    """``count`` events in delivery order; ids are new for every (epoch_seconds, seed) pair."""
    samples = _load_samples()
    shared = _shared_ids(samples.values())
    rng = random.Random(seed)
    base = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    stamp = f"{epoch_seconds & 0xFFFFFFFF:08x}"
    timed: list[tuple[float, str, str, dict[str, Any]]] = []
    story = first_story
    per_story = len(STORY) + len(HOT_STEPS) / HOT_EVERY
    while len(timed) < count * 1.02 + per_story:
        start = base + (story - first_story) * STORY_START_GAP
        steps = STORY + (HOT_STEPS if story % HOT_EVERY == 0 else ())
        for step in steps:
            owner = story if step.pool is None else (story // HOT_EVERY) % step.pool
            when = start + timedelta(minutes=step.minutes, microseconds=rng.randrange(1_000_000))
            sample = samples[step.sample]
            document = dict(sample)
            document["data"] = _rewrite(sample["data"], "data", owner, shared)
            document["event_timestamp"] = _zenoti_time(when, rng.randrange(10))
            late = rng.random() < LATE_SHARE
            delay = rng.uniform(0, LATE_SECONDS if late else JITTER_SECONDS)
            arrival = (when - base).total_seconds() + delay
            timed.append((arrival, step.sample, document["event_timestamp"], document))
        story += 1
    timed.sort(key=lambda item: (item[0], item[2]))
    events: list[MixedEvent] = []
    for number, (_, event_type, _, document) in enumerate(timed[:count]):
        event_id = f"{stamp}{seed & 0xFFFF:04x}{2 * number:012x}"
        document["event_id"] = event_id
        document["id"] = f"{stamp}{seed & 0xFFFF:04x}{2 * number + 1:012x}"
        events.append(MixedEvent(event_id, event_type, orjson.dumps(document)))
    return events


def write_signed(path: Path, events: list[MixedEvent], secret: str) -> EventFile:
    """One ``signature<TAB>body`` line per event, the format of ``signed_events.py``."""
    with path.open("wb") as out:
        for event in events:
            out.write(sign(secret, event.body).encode() + b"\t" + event.body + b"\n")
    mean = sum(len(e.body) for e in events) // max(1, len(events))
    return EventFile(path=path, event_ids=tuple(e.event_id for e in events), body_bytes=mean)


@dataclass(frozen=True, slots=True)
class ExpectedMirror:
    """The rows the mirror must hold: ``newest[resource][id]`` is the event_id each carries."""

    newest: dict[str, dict[str, str]]

    def counts(self) -> dict[str, int]:
        return {resource: len(rows) for resource, rows in sorted(self.newest.items())}


def expected_mirror(events: Iterable[MixedEvent]) -> ExpectedMirror:
    """Every entity the events touch, with its newest event (the version the mirror keeps)."""
    best: dict[tuple[str, str], tuple[str, str]] = {}
    for event in events:
        envelope = parse_envelope(event.body)
        version = (timestamp_key(envelope.event_timestamp), envelope.event_id)
        for change in changes_for(envelope.event_type, envelope.data):
            key = (change.resource, change.id)
            if key not in best or version > best[key]:
                best[key] = version
    newest: dict[str, dict[str, str]] = {}
    for (resource, entity_id), (_, event_id) in best.items():
        newest.setdefault(resource, {})[entity_id] = event_id
    return ExpectedMirror(newest)


def type_counts(events: Iterable[MixedEvent]) -> dict[str, int]:
    return dict(Counter(e.event_type for e in events).most_common())
