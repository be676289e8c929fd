"""After a run: was every acknowledged event stored, exactly once, with its job?

The stored rows are the truth (``Reader.event_id_counts``: event id, rows, jobs). Counting 2xx
answers alone proves nothing, so the checks are:

1. no event id is stored twice, and every stored event has exactly one job (the ``mirror``);
2. every stored event id is one the benchmark generated;
3. when the load generator ties answers to requests (the built-in one), every event id answered
   ``accepted`` is stored; with wrk, which cannot, the store holds at least as many events as
   there were 2xx answers (warm-up included) and at most as many as lines handed to wrk;
4. the server's own count of ``accepted`` answers (``/metrics``) equals the events stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

from load_result import LoadResult
from zenoti_bridge.storage.queries import Reader

EXACT = "exact: every event id answered accepted is looked up in the store"
BOUNDS = "bounds: 2xx answers <= events stored <= lines handed to wrk"


@dataclass(slots=True)
class Verification:
    """The outcome of the checks for one target."""

    method: str
    stored: int = 0
    acknowledged: int = 0
    sent_at_most: int = 0
    stored_twice: int = 0
    wrong_jobs: int = 0
    unknown: int = 0
    missing: int | None = None
    server_accepted: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def server_outcomes(base_url: str, source: str) -> dict[str, int]:
    """The intake's answers by outcome for ``source``, from its Prometheus counters."""
    text = httpx.get(base_url + "/metrics", timeout=10).text
    outcomes: dict[str, int] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "zb_intake_requests":
            continue
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels.get("source") == source:
                outcomes[sample.labels["outcome"]] = int(sample.value)
    return outcomes


def _stored(database_url: str, source: str) -> dict[str, tuple[int, int]]:
    with Reader(database_url) as reader:
        return {eid: (rows, jobs) for eid, rows, jobs in reader.event_id_counts(source)}


def verify(
    database_url: str,
    source: str,
    generated: frozenset[str],
    runs: Iterable[LoadResult],
    outcomes: dict[str, int] | None,
) -> Verification:
    """Check the store against every run (warm-up and measurement) made on it."""
    runs = list(runs)
    exact = all(run.acknowledged is not None for run in runs)
    result = Verification(method=EXACT if exact else BOUNDS)
    stored = _stored(database_url, source)
    result.stored = len(stored)
    result.stored_twice = sum(1 for rows, _ in stored.values() if rows != 1)
    result.wrong_jobs = sum(1 for _, jobs in stored.values() if jobs != 1)
    result.unknown = sum(1 for event_id in stored if event_id not in generated)
    result.acknowledged = sum(run.ok_answers for run in runs)
    result.sent_at_most = sum(run.handed_out for run in runs)
    _check_rows(result)
    if result.acknowledged == 0:  # a server that failed at once stores nothing: no pass for that
        result.problems.append("no request was acknowledged, so nothing was verified")
    if exact:
        _check_exact(result, stored, runs)
    else:
        _check_bounds(result)
    if outcomes is not None:
        result.server_accepted = outcomes.get("accepted", 0)
        if result.server_accepted != result.stored:
            result.problems.append(
                f"the server answered accepted {result.server_accepted:,} times "
                f"but {result.stored:,} events are stored"
            )
    return result


def _check_rows(result: Verification) -> None:
    if result.stored_twice:
        result.problems.append(f"{result.stored_twice:,} event ids are stored more than once")
    if result.wrong_jobs:
        result.problems.append(f"{result.wrong_jobs:,} events do not have exactly one job")
    if result.unknown:
        result.problems.append(f"{result.unknown:,} stored event ids were never sent")


def _check_exact(
    result: Verification, stored: dict[str, tuple[int, int]], runs: list[LoadResult]
) -> None:
    acknowledged = [eid for run in runs for eid in run.acknowledged or ()]
    result.missing = sum(1 for event_id in acknowledged if event_id not in stored)
    if result.missing:
        result.problems.append(f"{result.missing:,} acknowledged events are not stored")
    if len(set(acknowledged)) != len(acknowledged):
        result.problems.append("some event ids were answered accepted more than once")


def _check_bounds(result: Verification) -> None:
    if result.stored < result.acknowledged:
        result.problems.append(
            f"{result.stored:,} events stored but {result.acknowledged:,} 2xx answers: "
            "acknowledged events are missing"
        )
    if result.stored > result.sent_at_most:
        result.problems.append(
            f"{result.stored:,} events stored but at most {result.sent_at_most:,} sent"
        )
