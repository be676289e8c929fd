"""Activity levels, and playing one on a time scale (a day of Zenoti in a minute).

A :class:`Level` says how big the organization is and how busy each center gets. :func:`plan`
is the pure core: it plays a level and yields its occurrences in time order, acting only inside
each center's business hours (in the center's own time zone), with Poisson arrivals. :func:`run`
paces that plan against a clock: at ``speed`` 1440 a simulated day passes in a real minute.

    async def send(occurrence: Occurrence) -> None: ...
    await run("busy-salon", speed=1440, emit=send, duration=60, seed=7, start=start)
"""

from __future__ import annotations

import asyncio
import heapq
import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from .activity import Activity
from .model import Occurrence
from .world import Center, World


@dataclass(frozen=True, slots=True)
class Level:
    """How much happens: centers, guests on file, and business actions per open hour."""

    name: str
    centers: int
    guests_per_center: int
    actions_per_hour: float  # per center, during business hours
    description: str


LEVELS: dict[str, Level] = {
    level.name: level
    for level in (
        Level("quiet-spa", 1, 150, 6, "one day spa: a handful of bookings and check-ins an hour"),
        Level("busy-salon", 2, 400, 40, "two busy salons: a steady stream at the front desks"),
        Level("chain-20", 20, 250, 25, "a chain of 20 centers across many time zones"),
    )
}


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a run stands: the simulated time reached and the occurrences emitted so far."""

    simulated: datetime
    occurrences: int


def level_named(level: str | Level) -> Level:
    """The level itself, or the one registered under that name."""
    if isinstance(level, Level):
        return level
    found = LEVELS.get(level)
    if found is None:
        raise ValueError(f"unknown activity level {level!r}; choose one of {', '.join(LEVELS)}")
    return found


def world_for(level: str | Level, seed: int, start: datetime) -> World:
    """The organization a level plays in."""
    chosen = level_named(level)
    return World.generate(
        seed, centers=chosen.centers, guests_per_center=chosen.guests_per_center, start=start
    )


def next_action(center: Center, after: datetime, open_seconds: float) -> datetime:
    """The moment ``open_seconds`` of the center's business time have passed after ``after``."""
    moment = center.opening_after(after)
    while True:
        closing = center.closing_after(moment)
        left = (closing - moment).total_seconds()
        if open_seconds < left:
            return moment + timedelta(seconds=open_seconds)
        open_seconds -= left
        moment = center.opening_after(closing)


def arrivals(
    world: World, level: str | Level, seed: int, start: datetime
) -> Iterator[tuple[datetime, Center]]:
    """When and where the level's next business actions happen, in time order, forever.

    Poisson arrivals per center, counted in the center's open hours only.
    """
    chosen = level_named(level)
    rng = random.Random(f"arrivals:{seed}")
    centers = world.centers
    rate = chosen.actions_per_hour / 3600
    queue = [(next_action(c, start, rng.expovariate(rate)), n) for n, c in enumerate(centers)]
    heapq.heapify(queue)
    while True:
        moment, index = heapq.heappop(queue)
        yield moment, centers[index]
        heapq.heappush(queue, (next_action(centers[index], moment, rng.expovariate(rate)), index))


def play(
    activity: Activity,
    level: str | Level,
    seed: int,
    sim_seconds: float | None,
    *,
    start: datetime | None = None,
) -> Iterator[Occurrence]:
    """Drive ``activity`` at the level's pace for ``sim_seconds`` (forever if None).

    Time starts at ``start``, by default the world's start; a later one continues an activity
    that has already been acting (its occurrences never go back in time anyway).
    """
    start = activity.world.start if start is None else start
    end = None if sim_seconds is None else start + timedelta(seconds=sim_seconds)
    for moment, center in arrivals(activity.world, level, seed, start):
        if end is not None and moment > end:
            return
        yield from activity.step(moment, center.id)


def plan(
    level: str | Level, seed: int, start: datetime, sim_seconds: float | None
) -> Iterator[Occurrence]:
    """Every occurrence of ``sim_seconds`` of the level from ``start``, without waiting."""
    world = world_for(level, seed, start)
    yield from play(Activity(world, seed=seed), level, seed, sim_seconds)


async def run(
    level: str | Level,
    *,
    speed: float,
    emit: Callable[[Occurrence], Awaitable[None]],
    duration: float | None = None,
    seed: int = 0,
    start: datetime,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    on_progress: Callable[[Progress], None] | None = None,
) -> int:
    """Play ``level`` for ``duration`` real seconds (forever if None) at ``speed``.

    Simulated time runs ``speed`` times faster than real time; between two occurrences the run
    sleeps their simulated gap divided by ``speed``. Returns how many occurrences it emitted.
    """
    if speed <= 0:
        raise ValueError(f"speed must be positive (1440 plays a day in a minute), not {speed}")
    sim_seconds = None if duration is None else duration * speed
    clock, count = start, 0
    for occurrence in plan(level, seed, start, sim_seconds):
        gap = (occurrence.event_timestamp - clock).total_seconds() / speed
        if gap > 0:
            await sleep(gap)
        clock = max(clock, occurrence.event_timestamp)
        await emit(occurrence)
        count += 1
        if on_progress is not None:
            on_progress(Progress(clock, count))
    if sim_seconds is not None:
        rest = (start + timedelta(seconds=sim_seconds) - clock).total_seconds() / speed
        if rest > 0:
            await sleep(rest)
    return count


STORY = (
    "Employee.Created",
    "Employee.Updated",
    "Guest.Created",
    "Guest.Updated",
    "Guest.OptedOut",
    "Guest.OptedIn",
    "Guest.Merged",
    "AppointmentGroup.Created",
    "AppointmentGroup.Updated",
    "AppointmentGroup.Status",
    "AppointmentGroup.Delete",
    "Class.Schedule.Created",
    "Class.Schedule.Updated",
    "Class.Booking.Created",
    "Class.Booking.Approved",
    "Class.Booking.Rejected",
    "Class.Booking.Cancelled",
    "Class.Booking.Deleted",
    "Class.Schedule.Cancelled",
    "Class.Schedule.Deleted",
    "Guest.Membership.Created",
    "Guest.Membership.Freeze",
    "Guest.Membership.Unfreeze",
    "Guestpass.Redeemed",
    "Guest.Membership.Cancelled",
    "Guest.Membership.Reinstate",
    "Guest.Package.Creation",
    "Appointment.Started",
    "Appointment.Completed",
    "Invoice.Closed",
    "Guest.Package.Redemption",
    "Guest.Package.RedemptionReversal",
    "Guest.Package.StatusUpdate",
    "Guest.Package.ValidityUpdate",
    "Appointment.Feedback.Created",
    "Class.Booking.NoShow",
    "Guest.Deleted",
    "Employee.Deleted",
)


def every_type(source: World | Activity, at: datetime) -> list[Occurrence]:
    """At least one occurrence of every catalog type, in one consistent story from ``at``.

    Given a :class:`World`, a fresh :class:`Activity` (seeded with the world's seed) tells it;
    given an activity, the story continues that activity's state.
    """
    activity = source if isinstance(source, Activity) else Activity(source, seed=source.seed)
    occurrences: list[Occurrence] = []
    for n, event_type in enumerate(STORY):
        occurrences += activity.trigger(event_type, at + timedelta(minutes=9 * n))
    return occurrences
