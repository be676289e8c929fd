from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from zenoti_bridge.metrics import Histogram, Metrics
from zenoti_bridge.signature import Verdict
from zenoti_bridge.storage import Outcome


def _samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(metrics.registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_counts_are_reported_per_source_and_outcome() -> None:
    metrics = Metrics()
    metrics.count("acme", Outcome.ACCEPTED)
    metrics.count("acme", "accepted")  # an enum member and its text are one series
    metrics.count("acme", "unauthorized")
    metrics.verdict("acme", Verdict.VALID)
    samples = _samples(metrics)
    key = (("outcome", "accepted"), ("source", "acme"))
    assert samples[("zb_intake_requests_total", key)] == 2
    assert samples[("zb_intake_requests_total", (("outcome", "unauthorized"), ("source", "acme")))]
    assert samples[("zb_intake_signatures_total", (("source", "acme"), ("verdict", "valid")))] == 1


def test_the_store_histogram_is_cumulative_with_inclusive_bounds() -> None:
    metrics = Metrics()
    for value in (0.0005, 0.001, 0.0015, 0.3, 9.0):
        metrics.store_seconds.observe(value)
    samples = _samples(metrics)

    def bucket(le: str) -> float:
        return samples[("zb_intake_store_seconds_bucket", (("le", le),))]

    assert bucket("0.001") == 2  # 0.001 itself counts at le="0.001"
    assert bucket("0.002") == 3
    assert bucket("0.25") == 3
    assert bucket("0.5") == 4
    assert bucket("5.0") == 4
    assert bucket("+Inf") == 5
    assert samples[("zb_intake_store_seconds_count", ())] == 5
    assert abs(samples[("zb_intake_store_seconds_sum", ())] - 9.303) < 1e-9


def test_an_empty_histogram_reports_zero_everywhere() -> None:
    assert Histogram((0.1, 1.0)).cumulative() == [("0.1", 0), ("1.0", 0), ("+Inf", 0)]
