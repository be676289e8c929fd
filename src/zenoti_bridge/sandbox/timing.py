"""Clocks for the sandbox: real time, scaled time for demos, and a fake that tests advance.

Every wait in the delivery engine goes through a :class:`~.model.SandboxClock`, including the
request timeout (:func:`within`), so a :class:`FakeClock` plays Zenoti's whole delivery policy
(10 s timeouts, backoff up to 10 min, 20 failures) in milliseconds::

    clock = FakeClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    engine = DeliveryEngine(state, clock, ...)
    await engine.submit(occurrence)
    await clock.advance(30)  # the first retry's backoff elapses; the retry runs before this returns
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from .model import SandboxClock

T = TypeVar("T")

# How many times advance() hands the loop over so woken tasks run: a woken sleeper resumes in the
# next iteration and may chain a few awaits (a lock, a future) before it parks again.
_SETTLE_ROUNDS = 20


class RealClock:
    """Wall-clock time in UTC; sleeping is :func:`asyncio.sleep`."""

    def now(self) -> datetime:
        """Now, in UTC."""
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of real time."""
        await asyncio.sleep(max(0.0, seconds))


class ScaledClock:
    """Simulated time running ``speed`` times faster than real time, for demos.

    ``ScaledClock(60)`` turns the 10 min maximum backoff into 10 real seconds.
    """

    def __init__(
        self,
        speed: float,
        start: datetime | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.speed = speed
        self._origin = start or datetime.now(UTC)
        self._monotonic = monotonic
        self._origin_monotonic = monotonic()

    def now(self) -> datetime:
        """The simulated time: the start plus ``speed`` times the real time elapsed."""
        elapsed = (self._monotonic() - self._origin_monotonic) * self.speed
        return self._origin + timedelta(seconds=elapsed)

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of simulated time (``seconds / speed`` of real time)."""
        await asyncio.sleep(max(0.0, seconds) / self.speed)


class FakeClock:
    """A clock that moves only when a test calls :meth:`advance`.

    Sleepers wake in deadline order (ties in the order they went to sleep), each one seeing
    :meth:`now` equal to its own deadline, and :meth:`advance` lets the event loop run the woken
    tasks before it returns.
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware (UTC)")
        self._now = start
        self._sequence = itertools.count()
        self._heap: list[tuple[datetime, int, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        """The current fake time."""
        return self._now

    async def sleep(self, seconds: float) -> None:
        """Wait until the clock has been advanced ``seconds`` past now."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        wakeup: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        deadline = self._now + timedelta(seconds=seconds)
        heapq.heappush(self._heap, (deadline, next(self._sequence), wakeup))
        try:
            await wakeup
        finally:
            wakeup.cancel()  # a cancelled sleeper no longer counts in `sleepers`

    @property
    def sleepers(self) -> int:
        """How many sleeps are pending."""
        return sum(1 for _, _, wakeup in self._heap if not wakeup.done())

    def next_deadline(self) -> datetime | None:
        """When the earliest pending sleep ends, or None when nobody sleeps."""
        self._drop_finished()
        return self._heap[0][0] if self._heap else None

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, waking every sleeper whose deadline is reached."""
        if seconds < 0:
            raise ValueError(f"time cannot go backwards ({seconds} s)")
        target = self._now + timedelta(seconds=seconds)
        await _settle()
        while (deadline := self.next_deadline()) is not None and deadline <= target:
            _, _, wakeup = heapq.heappop(self._heap)
            self._now = deadline
            wakeup.set_result(None)
            await _settle()
        self._now = target
        await _settle()

    def _drop_finished(self) -> None:
        while self._heap and self._heap[0][2].done():
            heapq.heappop(self._heap)


async def _settle() -> None:
    """Let the event loop run everything that is ready before going on."""
    for _ in range(_SETTLE_ROUNDS):
        await asyncio.sleep(0)


async def within(clock: SandboxClock, seconds: float, work: Awaitable[T]) -> T:
    """``work``'s result, or :class:`TimeoutError` once ``seconds`` have passed on ``clock``.

    Unlike :func:`asyncio.wait_for` the deadline runs on the given clock, so a fake clock decides
    when a request times out. The losing side is cancelled and awaited.
    """
    task = asyncio.ensure_future(work)
    timer = asyncio.ensure_future(clock.sleep(seconds))
    try:
        await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pending in (task, timer):
            pending.cancel()
        await asyncio.gather(task, timer, return_exceptions=True)
    if task.cancelled():
        raise TimeoutError(f"no answer within {seconds:g} s")
    return task.result()
