from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zenoti_bridge.retry import Dead, Permanent, Retry, RetryPolicy

POLICY = RetryPolicy(delays=(30, 60, 600), max_attempts=5, window=3600, jitter=0.2)


def test_delays_follow_the_list_and_the_last_repeats() -> None:
    flat = RetryPolicy(delays=(30, 60, 600), max_attempts=9, window=1e9, jitter=0)
    rng = random.Random(1)
    assert [flat.delay(n, rng) for n in range(1, 6)] == [30, 60, 600, 600, 600]


@given(attempts=st.integers(1, 50), seed=st.integers(0, 2**32))
def test_jitter_stays_within_its_bounds(attempts: int, seed: int) -> None:
    delay = POLICY.delay(attempts, random.Random(seed))
    base = POLICY.delays[min(attempts, 3) - 1]
    assert base * 0.8 <= delay <= base * 1.2


def test_permanent_errors_are_dead_at_once() -> None:
    decision = POLICY.decide(attempts=1, age=0, error=Permanent("bad body"), rng=random.Random())
    assert isinstance(decision, Dead) and "bad body" in decision.reason


def test_retryable_errors_retry_until_attempts_run_out() -> None:
    rng = random.Random(3)
    assert isinstance(POLICY.decide(attempts=4, age=0, error=TimeoutError(), rng=rng), Retry)
    decision = POLICY.decide(attempts=5, age=0, error=TimeoutError("slow"), rng=rng)
    assert isinstance(decision, Dead) and "after 5 attempts" in decision.reason


def test_the_time_window_bounds_retries() -> None:
    decision = POLICY.decide(attempts=2, age=3590, error=OSError(), rng=random.Random(0))
    assert isinstance(decision, Dead) and "window" in decision.reason


@pytest.mark.parametrize(
    "kwargs", [{"delays": ()}, {"delays": (-1,)}, {"max_attempts": 0}, {"jitter": 1.5}]
)
def test_nonsense_policies_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
