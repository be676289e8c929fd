"""Prometheus metrics for ``GET /metrics``.

The intake counts on every request, so counting is plain integer arithmetic on dictionaries
owned by the event loop; ``prometheus_client``'s own metric objects take a lock and walk several
layers of calls per increment, which at 10,000 requests per second was a measurable part of the
intake's time. A collector turns the counts into metric families when ``/metrics`` is scraped
(on the event loop too, so it reads the dictionaries between two requests, never during one).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from itertools import accumulate

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

STORE_SECONDS_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class Histogram:
    """Observations counted per bucket (upper bounds, ``le``), with their sum."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = tuple(sorted(bounds))
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, int]]:
        """The buckets as Prometheus reports them: ``le`` bound and count at or below it."""
        bounds = [repr(float(bound)) for bound in self.bounds] + ["+Inf"]
        return list(zip(bounds, accumulate(self.counts), strict=True))


class Metrics:
    """One registry per app, so tests and several apps in one process do not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # (source, outcome) -> count and (source, verdict) -> count
        self.requests: dict[tuple[str, str], int] = {}
        self.signatures: dict[tuple[str, str], int] = {}
        self.store_seconds = Histogram(STORE_SECONDS_BUCKETS)
        self.registry.register(_IntakeCollector(self))

    # Outcomes and verdicts may be StrEnum members: they hash and compare as their text.
    def count(self, source: str, outcome: str) -> None:
        key = (source, outcome)
        self.requests[key] = self.requests.get(key, 0) + 1

    def verdict(self, source: str, verdict: str) -> None:
        key = (source, verdict)
        self.signatures[key] = self.signatures.get(key, 0) + 1


class _IntakeCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "zb_intake_requests",
            "Webhook requests by source and outcome",
            labels=["source", "outcome"],
        )
        for (source, outcome), count in sorted(self.metrics.requests.items()):
            requests.add_metric([str(source), str(outcome)], count)
        yield requests
        signatures = CounterMetricFamily(
            "zb_intake_signatures", "Signature verdicts by source", labels=["source", "verdict"]
        )
        for (source, verdict), count in sorted(self.metrics.signatures.items()):
            signatures.add_metric([str(source), str(verdict)], count)
        yield signatures
        histogram = self.metrics.store_seconds
        store = HistogramMetricFamily(
            "zb_intake_store_seconds",
            "Time from handing an event to the store until it is durable",
        )
        store.add_metric([], histogram.cumulative(), histogram.total)
        yield store
