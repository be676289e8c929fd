"""Activity levels played on a time scale: business hours, pace, determinism, every type."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from zenoti_bridge.catalog import EVENT_TYPES
from zenoti_bridge.sandbox.activity import Activity
from zenoti_bridge.sandbox.model import Occurrence
from zenoti_bridge.sandbox.scenario import (
    LEVELS,
    STORY,
    Progress,
    every_type,
    next_action,
    plan,
    play,
    run,
    world_for,
)

START = datetime(2024, 6, 3, tzinfo=UTC)  # a Monday, midnight UTC
DAY = 86400


def test_the_story_covers_the_whole_catalog_once() -> None:
    assert sorted(STORY) == sorted(t.name for t in EVENT_TYPES)


def test_every_type_accepts_a_world_or_an_activity() -> None:
    world = world_for("quiet-spa", 4, START)
    story = every_type(world, START + timedelta(hours=17))
    assert {o.event_type for o in story} == set(STORY)
    assert story[0].event_timestamp >= START + timedelta(hours=17)


def test_centers_act_only_during_their_business_hours() -> None:
    world = world_for("chain-20", 3, START)
    centers = {c.id: c for c in world.centers}
    occurrences = list(plan("chain-20", 3, START, DAY))
    assert len({o.center_id for o in occurrences}) == 20
    for occurrence in occurrences:
        center = centers[occurrence.center_id or ""]
        # an action's occurrences follow it by milliseconds: one at closing time is fine
        moment = occurrence.event_timestamp
        assert center.is_open(moment) or center.is_open(moment - timedelta(seconds=10))


def test_busier_levels_do_more() -> None:
    counts = {name: sum(1 for _ in plan(name, 8, START, DAY)) for name in LEVELS}
    assert counts["quiet-spa"] < counts["busy-salon"] < counts["chain-20"]
    quiet = LEVELS["quiet-spa"]
    center = world_for(quiet, 8, START).centers[0]
    open_hours = (center.closes.hour - center.opens.hour) * quiet.centers
    assert 0.5 * open_hours * quiet.actions_per_hour < counts["quiet-spa"]
    assert counts["quiet-spa"] < 3 * open_hours * quiet.actions_per_hour


def test_a_plan_is_the_same_for_the_same_seed() -> None:
    first = [o.body(o.event_id) for o in plan("busy-salon", 2, START, DAY / 4)]
    again = [o.body(o.event_id) for o in plan("busy-salon", 2, START, DAY / 4)]
    assert first == again and first


def test_next_action_counts_only_open_time() -> None:
    center = world_for("quiet-spa", 1, START).centers[0]
    opening = center.opening_after(START)
    closing = center.closing_after(opening)
    open_day = (closing - opening).total_seconds()
    assert next_action(center, opening, 60) == opening + timedelta(seconds=60)
    tomorrow = center.opening_after(closing)
    assert next_action(center, opening, open_day + 60) == tomorrow + timedelta(seconds=60)


def test_play_continues_an_activity_from_a_later_start() -> None:
    activity = Activity(world_for("busy-salon", 5, START), seed=5)
    first = list(play(activity, "busy-salon", 5, DAY))
    later = START + timedelta(days=3)
    more = list(play(activity, "busy-salon", 5, DAY, start=later))
    assert first and more
    assert more[0].event_timestamp >= later
    assert first[-1].event_timestamp < more[0].event_timestamp <= later + timedelta(days=1, hours=1)


async def test_run_paces_a_day_into_a_minute() -> None:
    slept: list[float] = []
    emitted: list[Occurrence] = []
    progress: list[Progress] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def emit(occurrence: Occurrence) -> None:
        emitted.append(occurrence)

    count = await run(
        "busy-salon",
        speed=1440,
        emit=emit,
        duration=60,
        seed=6,
        start=START,
        sleep=sleep,
        on_progress=progress.append,
    )
    assert count == len(emitted) == len(list(plan("busy-salon", 6, START, DAY)))
    assert sum(slept) == pytest.approx(60, abs=1)
    assert all(s > 0 for s in slept)
    assert progress[-1].occurrences == count
    assert progress[-1].simulated == emitted[-1].event_timestamp


async def test_run_refuses_a_speed_that_goes_nowhere() -> None:
    async def emit(occurrence: Occurrence) -> None:
        raise AssertionError("nothing is emitted")

    with pytest.raises(ValueError, match="speed must be positive"):
        await run("quiet-spa", speed=0, emit=emit, duration=1, start=START)


def test_unknown_levels_are_named_in_the_error() -> None:
    with pytest.raises(ValueError, match="quiet-spa, busy-salon, chain-20"):
        list(plan("rave", 1, START, DAY))


def test_two_weeks_of_a_busy_salon_produce_every_catalog_type() -> None:
    start = datetime(2024, 6, 3, tzinfo=UTC)
    produced = {o.event_type for o in plan("busy-salon", 7, start, 14 * 86_400)}
    assert produced == {t.name for t in EVENT_TYPES}
