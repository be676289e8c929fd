"""Prometheus metrics for ``GET /metrics``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

INTAKE_OUTCOMES = (
    "accepted",
    "duplicate",
    "ping",
    "quarantined",
    "unauthorized",
    "not_found",
    "method_not_allowed",
    "too_large",
    "unavailable",
)


class Metrics:
    """One registry per app, so tests and several apps in one process do not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.intake = Counter(
            "zb_intake_requests",
            "Webhook requests by source and outcome",
            ["source", "outcome"],
            registry=self.registry,
        )
        self.signatures = Counter(
            "zb_intake_signatures",
            "Signature verdicts by source",
            ["source", "verdict"],
            registry=self.registry,
        )
        self.store_seconds = Histogram(
            "zb_intake_store_seconds",
            "Time from handing an event to the store until it is durable",
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        # labelled children, cached: ``labels()`` takes a lock and builds a key on every call
        self._children: dict[tuple[Counter, str, str], Counter] = {}

    def count(self, source: str, outcome: str) -> None:
        self._child(self.intake, source, outcome).inc()

    def verdict(self, source: str, verdict: str) -> None:
        self._child(self.signatures, source, verdict).inc()

    def _child(self, counter: Counter, source: str, value: str) -> Counter:
        key = (counter, source, value)
        child = self._children.get(key)
        if child is None:
            child = counter.labels(source, value)
            self._children[key] = child
        return child
