"""The pipeline benchmark's results: what was measured, the printed report and the JSON file."""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from load_result import Latency
from machine import CpuSplit

RESULTS = Path(__file__).with_name("results")

# the targets in DESIGN.md, for the 2-core reference machine
MIN_RATE = 3000.0  # events/s from stored to mirrored, on SQLite and on PostgreSQL
MAX_P99_MS = 250.0  # receipt-to-mirror latency p99 at 500 events/s offered
DISTURBED = 0.25  # cores used by other processes during a measurement that make it suspect

SQLITE, POSTGRES = "sqlite", "postgresql"
STORES = {SQLITE: "SQLite", POSTGRES: "PostgreSQL"}


@dataclass(frozen=True, slots=True)
class Options:
    """The command line."""

    backend: str
    phase: str
    events: int
    latency_seconds: int
    rate: int
    warmup: int
    pg_processes: tuple[int, ...]
    concurrency: int
    seed: int
    workload: str
    quiet_wait: float
    retries: int
    postgres_url: str
    workdir: Path | None


@dataclass(slots=True)
class Drain:
    """Worker processes released on a store holding ``jobs`` queued events, until none is left."""

    consumer: str  # "mirror" (zenoti-bridge worker) or "no-op" (bench/noop_worker.py)
    processes: int
    concurrency: int
    jobs: int
    preload_seconds: float
    seconds: float = 0.0
    steady_rate: float | None = None  # between 10 % and 90 % of the jobs done
    cpu: CpuSplit | None = None
    job_counts: dict[str, int] = field(default_factory=dict)
    processed_events: int = 0
    attempts: int = 1
    problems: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.jobs / self.seconds if self.seconds > 0 else 0.0


@dataclass(slots=True)
class MirrorCheck:
    """The mirror's rows against the entities the events describe (``mixed_events``)."""

    expected: dict[str, int]
    found: dict[str, int]
    missing: int
    unexpected: int
    stale: int  # rows whose last_event_id is not the newest event about the entity

    @property
    def problems(self) -> list[str]:
        found = []
        if self.missing:
            found.append(f"{self.missing:,} expected mirror rows are missing")
        if self.unexpected:
            found.append(f"{self.unexpected:,} mirror rows no event describes")
        if self.stale:
            found.append(f"{self.stale:,} mirror rows do not carry their newest event")
        return found


@dataclass(slots=True)
class ThroughputResult:
    backend: str
    processes: int
    concurrency: int
    events: int
    baseline: Drain | None = None
    mirror: Drain | None = None
    check: MirrorCheck | None = None
    skipped: str | None = None

    @property
    def label(self) -> str:
        workers = "process" if self.processes == 1 else "processes"
        lanes = "" if self.backend == SQLITE else f" x{self.concurrency}"
        return f"{STORES[self.backend]}, {self.processes} worker {workers}{lanes}"

    @property
    def ratio(self) -> float | None:
        if self.mirror is None or self.baseline is None or not self.baseline.rate:
            return None
        return self.mirror.rate / self.baseline.rate

    @property
    def problems(self) -> list[str]:
        found = []
        for drain in (self.baseline, self.mirror):
            if drain is not None:
                found += [f"{drain.consumer}: {p}" for p in drain.problems]
        if self.check is not None:
            found += [f"mirror: {p}" for p in self.check.problems]
        return found


@dataclass(slots=True)
class LatencyResult:
    backend: str
    layout: str
    rate: float
    seconds: int
    warmup: int
    sent: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    acknowledged: int = 0
    measured: int = 0  # events sent after the warm-up, whose latencies are reported
    stored: Latency | None = None  # jobs.updated_at - events.received_at
    visible: Latency | None = None  # first poll that saw the job succeeded - received_at
    answer: Latency | None = None  # due time -> end of the 2xx answer, at the load generator
    unseen: int = 0  # measured jobs the poller never saw succeeded
    drain_seconds: float | None = None  # after the last answer, until nothing was queued
    most_behind: float = 0.0
    late_sends: int = 0
    connections: int = 0
    polls: int = 0
    cpu: CpuSplit | None = None
    check: MirrorCheck | None = None
    attempts: int = 1
    problems: list[str] = field(default_factory=list)
    skipped: str | None = None

    @property
    def label(self) -> str:
        return f"{STORES[self.backend]}, {self.layout}"

    def all_problems(self) -> list[str]:
        return self.problems + ([] if self.check is None else self.check.problems)


@dataclass(slots=True)
class Run:
    """One invocation of the benchmark."""

    options: Options
    machine: dict[str, str | int]
    busy_before: float | None
    started_at: datetime
    revision: str = ""
    events: str = ""
    throughput: list[ThroughputResult] = field(default_factory=list)
    latency: list[LatencyResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# -- report ---------------------------------------------------------------------------------


def _cores(cpu: CpuSplit | None, *names: str) -> str:
    if cpu is None:
        return "-"
    values = [cpu.groups.get(n) for n in names] + [cpu.other]
    return "/".join("-" if v is None else f"{v:.2f}" for v in values)


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def print_method(run: Run) -> None:
    o, m = run.options, run.machine
    postgres = f", PostgreSQL {m['postgresql']}" if "postgresql" in m else ""
    print(
        f"machine: {m['cores']} cores ({m['cpu']}), {m['system']}, Python {m['python']}, "
        f"SQLite {m['sqlite']}{postgres}"
    )
    if run.revision:
        print(f"code: {run.revision}")
    if run.busy_before is not None:
        print(f"machine busy before the run: {run.busy_before:.2f} cores")
    if run.events:
        print(f"events: {run.events}")
    if o.phase in ("all", "throughput"):
        print(
            f"throughput: {o.events:,} events stored through the intake code with no worker "
            "running; worker processes, started before and frozen meanwhile (SIGSTOP), are "
            "released together (SIGCONT) and timed until no mirror job is queued. Baseline: "
            "the same worker command with a no-op mirror (bench/noop_worker.py), on its own "
            "store loaded the same way, in the same run."
        )
    if o.phase in ("all", "latency"):
        print(
            f"latency: {o.rate:,} events/s offered open loop for {o.warmup} s of warm-up + "
            f"{o.latency_seconds} s measured, signed webhooks over loopback; SQLite runs "
            "`zenoti-bridge serve` (intake and workers in one process), PostgreSQL "
            "`zenoti-bridge intake` + 2 `zenoti-bridge worker` processes. Latency per event: "
            "stored = mirror job's updated_at - event's received_at (both written by the "
            "bridge); visible = first poll (every 20 ms) that saw the job succeeded - "
            "received_at."
        )


def print_throughput(results: list[ThroughputResult]) -> None:
    if not results:
        return
    header = (
        f"{'stored -> mirrored':<34}{'no-op/s':>9}{'mirror/s':>10}{'steady/s':>10}"
        f"{'ratio':>7}{'drain s':>9}   cores: workers/postgres/bench/other"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        if r.skipped is not None or r.mirror is None:
            print(f"{r.label:<34}  skipped: {r.skipped or 'not run'}")
            continue
        base = f"{r.baseline.rate:>9,.0f}" if r.baseline is not None else f"{'-':>9}"
        steady = r.mirror.steady_rate
        ratio = r.ratio
        print(
            f"{r.label:<34}{base}{r.mirror.rate:>10,.0f}"
            f"{'-' if steady is None else f'{steady:,.0f}':>10}"
            f"{'-' if ratio is None else f'{ratio:.2f}':>7}{r.mirror.seconds:>9.2f}"
            f"   {_cores(r.mirror.cpu, 'workers', 'postgres', 'bench')}"
        )
        if r.baseline is not None:
            print(
                f"{'  (no-op baseline drain)':<34}{'':>9}{'':>10}"
                f"{'-' if r.baseline.steady_rate is None else f'{r.baseline.steady_rate:,.0f}':>10}"
                f"{'':>7}{r.baseline.seconds:>9.2f}"
                f"   {_cores(r.baseline.cpu, 'workers', 'postgres', 'bench')}"
            )
    print(
        "mirror/s: events applied per second over the whole drain; steady/s: between 10 % and "
        "90 % of the jobs done;\nratio: mirror/s over no-op/s. Cores: averages over the drain."
    )


def _ms(latency: Latency | None, name: str) -> str:
    return "-" if latency is None else f"{getattr(latency, name):.1f}"


def print_latency(results: list[LatencyResult]) -> None:
    if not results:
        return
    header = (
        f"{'receipt -> mirror':<38}{'events':>7}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}"
        f"{'vis p50':>9}{'vis p99':>9}{'ans p99':>9}   cores: bridge/postgres/bench/other"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        if r.skipped is not None or r.stored is None:
            print(f"{r.label:<38}  skipped: {r.skipped or 'not run'}")
            continue
        print(
            f"{r.label:<38}{r.measured:>7,}{_ms(r.stored, 'p50'):>8}{_ms(r.stored, 'p90'):>8}"
            f"{_ms(r.stored, 'p99'):>8}{_ms(r.stored, 'max'):>8}{_ms(r.visible, 'p50'):>9}"
            f"{_ms(r.visible, 'p99'):>9}{_ms(r.answer, 'p99'):>9}"
            f"   {_cores(r.cpu, 'bridge', 'postgres', 'bench')}"
        )
    print(
        "ms. p50..max: stored (job updated_at - received_at); vis: visible to a reader (polled); "
        "ans: the webhook's answer,\nfrom when it was due. Cores: averages over the load."
    )


def print_targets(run: Run) -> None:
    for backend in (SQLITE, POSTGRES):
        rates = [r for r in run.throughput if r.backend == backend and r.mirror is not None]
        if rates:
            best = max(rates, key=lambda r: r.mirror.rate if r.mirror else 0.0)
            assert best.mirror is not None
            ratio = "" if best.ratio is None else f" ({best.ratio:.2f} of the no-op worker)"
            print(
                f"target stored -> mirrored on {STORES[backend]} >= {MIN_RATE:,.0f} events/s: "
                f"{best.mirror.rate:,.0f}/s{ratio} ({best.label}) "
                f"{_verdict(best.mirror.rate >= MIN_RATE)}"
            )
    for r in run.latency:
        if r.stored is not None:
            visible = "" if r.visible is None else f"; visible p99 {r.visible.p99:.1f} ms"
            print(
                f"target receipt -> mirror p99 <= {MAX_P99_MS:.0f} ms at {r.rate:,.0f}/s on "
                f"{r.label}: {r.stored.p99:.1f} ms {_verdict(r.stored.p99 <= MAX_P99_MS)}"
                f"{visible}"
            )


def print_checks(run: Run) -> None:
    for t in run.throughput:
        if t.mirror is None:
            continue
        problems = t.problems
        check = t.check
        rows = "" if check is None else f"; mirror rows {sum(check.found.values()):,}"
        print(f"verification {t.label}: {'FAILED' if problems else 'passed'}{rows}")
        for problem in problems:
            print(f"  problem: {problem}")
    for r in run.latency:
        if r.stored is None:
            continue
        problems = r.all_problems()
        statuses = ", ".join(f"{s}: {n:,}" for s, n in sorted(r.statuses.items()))
        print(
            f"verification {r.label}: {'FAILED' if problems else 'passed'}; sent {r.sent:,} "
            f"({statuses}), accepted {r.acknowledged:,}, drained {r.drain_seconds or 0:.2f} s "
            f"after the last answer, generator at most {r.most_behind * 1000:.1f} ms behind "
            f"({r.late_sends:,} sends over 10 ms late), "
            f"{r.connections} connections, {r.polls:,} polls"
        )
        for problem in problems:
            print(f"  problem: {problem}")


def report(run: Run) -> None:
    print()
    print_method(run)
    print()
    print_throughput(run.throughput)
    print()
    print_latency(run.latency)
    print()
    print_targets(run)
    print_checks(run)
    for note in run.notes:
        print(f"note: {note}")


# -- results file ---------------------------------------------------------------------------


def write_json(run: Run) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"pipeline-{run.started_at.strftime('%Y%m%dT%H%M%SZ')}.json"
    throughput = []
    for t in run.throughput:
        data = asdict(t)
        data.update(label=t.label, ratio=t.ratio, problems=t.problems)
        for name in ("baseline", "mirror"):
            drain: Drain | None = getattr(t, name)
            if drain is not None:
                data[name]["rate"] = drain.rate
        throughput.append(data)
    latency = []
    for r in run.latency:
        data = asdict(r)
        data.update(label=r.label, problems=r.all_problems())
        latency.append(data)
    document: dict[str, Any] = {
        "benchmark": "pipeline",
        "started_at": run.started_at.isoformat(),
        "command": " ".join(sys.argv),
        "options": {**asdict(run.options), "workdir": str(run.options.workdir or "")},
        "machine": run.machine,
        "revision": run.revision,
        "busy_cores_before": run.busy_before,
        "targets": {"min_rate": MIN_RATE, "max_p99_ms": MAX_P99_MS},
        "events": run.events,
        "throughput": throughput,
        "latency": latency,
        "notes": run.notes,
    }
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
    return path


def failures(run: Run) -> list[str]:
    found = [f"{t.label}: {p}" for t in run.throughput for p in t.problems]
    found += [f"{r.label}: {p}" for r in run.latency for p in r.all_problems()]
    return found


def disturbed(cpu: CpuSplit | None) -> bool:
    return cpu is not None and cpu.other is not None and cpu.other > DISTURBED
