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
        self._children: dict[tuple[str, str], Counter] = {}
        self._verdicts: dict[tuple[str, str], Counter] = {}

    def count(self, source: str, outcome: str) -> None:
        child = self._children.get((source, outcome))
        if child is None:
            child = self.intake.labels(source=source, outcome=outcome)
            self._children[(source, outcome)] = child
        child.inc()

    def verdict(self, source: str, verdict: str) -> None:
        child = self._verdicts.get((source, verdict))
        if child is None:
            child = self.signatures.labels(source=source, verdict=verdict)
            self._verdicts[(source, verdict)] = child
        child.inc()
