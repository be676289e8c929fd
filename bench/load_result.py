"""What one run of a load generator measured, whichever generator it was."""

from __future__ import annotations

from dataclasses import dataclass, field


class LoadFailed(RuntimeError):
    """The load generator could not run (not installed, crashed, bad script)."""


@dataclass(frozen=True, slots=True)
class Latency:
    """Request latencies in milliseconds."""

    p50: float
    p90: float
    p99: float
    p999: float
    max: float
    mean: float


@dataclass(slots=True)
class LoadResult:
    """Answers counted by the load generator during one run (a warm-up or a measurement).

    ``handed_out`` is how many lines of the event file the generator took: an upper bound of the
    events sent. ``sentinels`` counts requests sent after the file ran out; a run with any is
    invalid because its rate is averaged over time spent idle. ``acknowledged`` holds the event ids
    answered ``200 {"status":"accepted"}`` when the generator can tie answers to requests (the
    built-in one can, wrk cannot).
    """

    tool: str
    connections: int
    seconds: float
    answers: int
    statuses: dict[int, int]
    non_2xx: int
    socket_errors: int
    latency: Latency
    handed_out: int
    sentinels: int
    acknowledged: list[str] | None = None
    outcomes: dict[str, int] = field(default_factory=dict)
    raw_output: str = ""

    @property
    def ok_answers(self) -> int:
        """Answers with a 2xx status."""
        if self.statuses:
            return sum(n for status, n in self.statuses.items() if 200 <= status < 300)
        return self.answers - self.non_2xx

    @property
    def rate(self) -> float:
        """2xx answers per second."""
        return self.ok_answers / self.seconds if self.seconds > 0 else 0.0

    @property
    def exhausted(self) -> bool:
        return self.sentinels > 0
