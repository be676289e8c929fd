"""Retry schedules as data (pure).

A policy is an explicit list of delays, with jitter, bounded by a number of attempts and by a
time window since the job was created. Errors are classified: a :class:`Permanent` error (or any
error the policy names as permanent) goes to the dead letters at once; anything else is retried
until the policy is exhausted.

    policy = RetryPolicy(delays=(30, 60, 300, 600), max_attempts=6, window=86_400, jitter=0.2)
    decision = policy.decide(attempts=2, age=45.0, error=TimeoutError(), rng=random.Random(7))
    # Retry(delay=...) or Dead(reason=...)
"""

from __future__ import annotations

import random
from dataclasses import dataclass


class Permanent(Exception):
    """An error no retry can fix (a malformed event, a destination that refuses it for good)."""


@dataclass(frozen=True, slots=True)
class Retry:
    delay: float


@dataclass(frozen=True, slots=True)
class Dead:
    reason: str


Decision = Retry | Dead


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``delays[i]`` seconds before attempt ``i + 2``; the last delay repeats."""

    delays: tuple[float, ...] = (10.0, 30.0, 120.0, 600.0, 1800.0, 3600.0)
    max_attempts: int = 10
    window: float = 3 * 86_400.0
    jitter: float = 0.2
    permanent: tuple[type[BaseException], ...] = (Permanent,)

    def __post_init__(self) -> None:
        if not self.delays or any(d < 0 for d in self.delays):
            raise ValueError("delays must be a non-empty list of non-negative seconds")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")

    def delay(self, attempts: int, rng: random.Random) -> float:
        """Seconds to wait after ``attempts`` failed attempts, jittered by ±``jitter``."""
        base = self.delays[min(attempts, len(self.delays)) - 1]
        return base * (1 + self.jitter * (2 * rng.random() - 1))

    def decide(
        self, *, attempts: int, age: float, error: BaseException, rng: random.Random
    ) -> Decision:
        """What to do after the ``attempts``-th attempt failed, ``age`` seconds after creation."""
        if isinstance(error, self.permanent):
            return Dead(f"permanent error: {error}")
        if attempts >= self.max_attempts:
            return Dead(f"gave up after {attempts} attempts: {error}")
        delay = self.delay(attempts, rng)
        if age + delay > self.window:
            return Dead(f"gave up after {age:.0f} s (window {self.window:.0f} s): {error}")
        return Retry(delay)
