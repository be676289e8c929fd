"""The sandbox's clocks: the fake one tests advance, the scaled one demos use, and timeouts
that run on either."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from zenoti_bridge.sandbox.timing import FakeClock, ScaledClock, within

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


async def test_sleepers_wake_in_deadline_order_each_at_its_deadline() -> None:
    clock = FakeClock(START)
    woke: list[tuple[str, datetime]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.now()))

    tasks = [asyncio.create_task(sleeper(name, s)) for name, s in [("c", 30), ("a", 10), ("b", 20)]]
    await clock.advance(0)
    assert clock.sleepers == 3

    await clock.advance(25)
    assert woke == [("a", START + timedelta(seconds=10)), ("b", START + timedelta(seconds=20))]
    assert clock.now() == START + timedelta(seconds=25)
    assert clock.sleepers == 1
    assert clock.next_deadline() == START + timedelta(seconds=30)

    await clock.advance(5)
    assert [name for name, _ in woke] == ["a", "b", "c"]
    assert clock.sleepers == 0 and clock.next_deadline() is None
    await asyncio.gather(*tasks)


async def test_a_sleeper_is_not_woken_before_its_deadline() -> None:
    clock = FakeClock(START)
    sleeping = asyncio.create_task(clock.sleep(10))
    await clock.advance(9.999)
    assert not sleeping.done()
    await clock.advance(0.001)
    assert sleeping.done()


async def test_a_woken_sleeper_that_sleeps_again_is_woken_in_the_same_advance() -> None:
    clock = FakeClock(START)
    rounds: list[datetime] = []

    async def twice() -> None:
        for _ in range(2):
            await clock.sleep(10)
            rounds.append(clock.now())

    task = asyncio.create_task(twice())
    await clock.advance(30)
    assert rounds == [START + timedelta(seconds=10), START + timedelta(seconds=20)]
    await task


async def test_a_cancelled_sleeper_no_longer_counts() -> None:
    clock = FakeClock(START)
    sleeping = asyncio.create_task(clock.sleep(10))
    await clock.advance(0)
    sleeping.cancel()
    await asyncio.gather(sleeping, return_exceptions=True)
    assert clock.sleepers == 0 and clock.next_deadline() is None


async def test_time_does_not_go_backwards() -> None:
    with pytest.raises(ValueError, match="backwards"):
        await FakeClock(START).advance(-1)
    with pytest.raises(ValueError, match="timezone-aware"):
        FakeClock(datetime(2026, 1, 5))  # naive: the mistake under test


async def test_within_times_out_on_the_given_clock_and_cancels_the_work() -> None:
    clock = FakeClock(START)
    never = asyncio.Event()
    waiting = asyncio.create_task(within(clock, 10, never.wait()))
    await clock.advance(9.9)
    assert not waiting.done()
    await clock.advance(0.1)
    with pytest.raises(TimeoutError, match="no answer within 10 s"):
        await waiting
    assert clock.sleepers == 0


async def test_within_returns_the_result_and_drops_its_timer() -> None:
    clock = FakeClock(START)
    assert await within(clock, 10, asyncio.sleep(0, result="answer")) == "answer"
    assert clock.sleepers == 0


def test_a_scaled_clock_runs_faster_than_real_time() -> None:
    real = [100.0]
    clock = ScaledClock(60, start=START, monotonic=lambda: real[0])
    assert clock.now() == START
    real[0] += 10  # ten real seconds are ten simulated minutes
    assert clock.now() == START + timedelta(minutes=10)
    with pytest.raises(ValueError, match="speed must be positive"):
        ScaledClock(0)
