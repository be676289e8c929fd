"""The intake benchmark's results: what was measured, the printed report and the JSON file."""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from load_result import LoadResult
from machine import CpuShare
from verification import Verification
from wrk_load import wrk_version
from zenoti_bridge.config import DatabaseConfig

RESULTS = Path(__file__).with_name("results")

# the intake targets in DESIGN.md, for the 2-core reference machine
MIN_SQLITE_RATE = 8000.0
MAX_SQLITE_P99_MS = 15.0
MIN_RATIO = 0.30

NOOP, SQLITE, POSTGRES, NO_STORE = "noop", "sqlite", "postgresql", "no_store"
LABELS = {
    NOOP: "(b) no-op ASGI app",
    SQLITE: "(a) intake, SQLite FULL",
    POSTGRES: "(c) intake, PostgreSQL",
    NO_STORE: "(d) intake, no store",
}
STORES = {SQLITE: "SQLite", POSTGRES: "PostgreSQL"}
ROLES = {"serve": "intake and mirror workers, as shipped", "intake": "the intake role alone"}
LEGEND = (
    "events/s: 2xx answers per second. Latency: per request, closed loop (wrk: after its "
    "coordinated-omission\ncorrection). Cores (averages over the measurement): the server "
    "process with all its threads / the load\ngenerator / the kernel outside processes "
    "(loopback TCP softirq, steal) / every other process\n(PostgreSQL's own processes count "
    "there)."
)


@dataclass(frozen=True, slots=True)
class Options:
    """The command line."""

    duration: int
    warmup: int
    connections: int
    backend: str
    role: str
    tool: str
    max_rate: int
    postgres_url: str
    workdir: Path | None
    no_store: bool = True


@dataclass(frozen=True, slots=True)
class SqliteFiles:
    """The SQLite files during and right after the measurement (before the server stops)."""

    max_wal_bytes: int
    wal_shrinks: int
    wal_bytes_after: int
    db_bytes_after: int


@dataclass(slots=True)
class TargetResult:
    """Everything measured on one target; ``skipped`` says why a target was not run."""

    key: str
    label: str
    warmup: LoadResult | None = None
    measured: LoadResult | None = None
    cpu: CpuShare | None = None
    verification: Verification | None = None
    outcomes: dict[str, int] | None = None
    sqlite_files: SqliteFiles | None = None
    skipped: str | None = None


@dataclass(slots=True)
class Run:
    """One invocation of the benchmark."""

    options: Options
    tool: str
    machine: dict[str, str | int]
    busy_before: float | None
    started_at: datetime
    events: str = ""
    targets: list[TargetResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# -- report ---------------------------------------------------------------------------------


def _cores(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def print_method(run: Run) -> None:
    m, o = run.machine, run.options
    tool = wrk_version() + " -t1" if run.tool == "wrk" else "built-in asyncio generator"
    print(
        f"method: {tool}, {o.connections} keep-alive connections, closed loop; "
        f"{o.warmup} s warm-up then {o.duration} s measured per target; "
        f"intake targets run `zenoti-bridge {o.role}` ({ROLES[o.role]})"
    )
    postgres = f", PostgreSQL {m['postgresql']}" if "postgresql" in m else ""
    print(
        f"machine: {m['cores']} cores ({m['cpu']}), {m['system']}, Python {m['python']}, "
        f"SQLite {m['sqlite']}{postgres}"
    )
    if run.busy_before is not None:
        print(f"machine busy before the run: {run.busy_before:.2f} cores")
    if run.events:
        print(f"events: {run.events}")


def print_table(targets: list[TargetResult]) -> None:
    header = (
        f"{'target':<26}{'events/s':>10}{'p50 ms':>8}{'p90 ms':>8}{'p99 ms':>8}"
        f"{'max ms':>8}{'non-2xx':>9}{'sock err':>9}   cores: server/load/kernel/other"
    )
    print(header)
    print("-" * len(header))
    for t in targets:
        r = t.measured
        if r is None:
            print(f"{t.label:<26}  skipped: {t.skipped or 'not run'}")
            continue
        cpu = t.cpu or CpuShare(None, None, None, None)
        print(
            f"{t.label:<26}{r.rate:>10,.0f}{r.latency.p50:>8.2f}{r.latency.p90:>8.2f}"
            f"{r.latency.p99:>8.2f}{r.latency.max:>8.1f}{r.non_2xx:>9,}{r.socket_errors:>9,}"
            f"   {_cores(cpu.server)}/{_cores(cpu.load_generator)}/{_cores(cpu.kernel)}"
            f"/{_cores(cpu.other)}"
        )
    print(LEGEND)


def print_threads(targets: list[TargetResult]) -> None:
    """The server's cores by thread: shows which one is busy and which ones wait."""
    lines = [
        f"  {t.label}: "
        + " · ".join(
            f"{name} {cores:.2f}" for name, cores in t.cpu.server_threads.items() if cores >= 0.005
        )
        for t in targets
        if t.cpu is not None and t.cpu.server_threads
    ]
    if lines:
        print("server cores by thread (main: the event loop; threads under 0.005 left out):")
        print("\n".join(lines))


def ratio(targets: dict[str, TargetResult], key: str, over: str = NOOP) -> float | None:
    """``key``'s rate over ``over``'s (the no-op app, or the intake with no store)."""
    base, target = targets.get(over), targets.get(key)
    if base is None or target is None or base.measured is None or target.measured is None:
        return None
    return target.measured.rate / base.measured.rate if base.measured.rate else None


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def print_targets(by_key: dict[str, TargetResult]) -> None:
    for key in (SQLITE, POSTGRES):
        value = ratio(by_key, key)
        if value is not None:
            print(f"ratio intake on {STORES[key]} / no-op app: {value:.2f}")
    value = ratio(by_key, NO_STORE)
    if value is not None:
        print(
            f"ratio intake with no store / no-op app: {value:.2f} (the request path alone: "
            "no store can make the intake's ratio higher on this machine)"
        )
    for key in (SQLITE, POSTGRES):
        value = ratio(by_key, key, over=NO_STORE)
        if value is not None:
            print(
                f"ratio intake on {STORES[key]} / intake with no store: {value:.2f} "
                "(what the store leaves of the request path's rate)"
            )
    sqlite = by_key.get(SQLITE)
    if sqlite is None or sqlite.measured is None:
        return
    r, value = sqlite.measured, ratio(by_key, SQLITE) or 0.0
    rate_ok, p99_ok = r.rate >= MIN_SQLITE_RATE, r.latency.p99 <= MAX_SQLITE_P99_MS
    print(
        "targets (DESIGN.md, 2-core reference machine): "
        f"SQLite {r.rate:,.0f} events/s >= {MIN_SQLITE_RATE:,.0f} {_verdict(rate_ok)}; "
        f"p99 {r.latency.p99:.1f} ms <= {MAX_SQLITE_P99_MS:.0f} ms {_verdict(p99_ok)}; "
        f"ratio {value:.2f} >= {MIN_RATIO:.2f} {_verdict(value >= MIN_RATIO)}"
    )
    files = sqlite.sqlite_files
    if files is not None:
        limit = DatabaseConfig().wal_limit_mb
        print(
            f"SQLite WAL: largest {files.max_wal_bytes / 2**20:,.1f} MiB during warm-up and "
            f"measurement (database.wal_limit_mb = {limit} MiB), shrank {files.wal_shrinks} "
            f"times; right after: WAL {files.wal_bytes_after / 2**20:,.1f} MiB, "
            f"database file {files.db_bytes_after / 2**20:,.1f} MiB"
        )


def print_answers(targets: list[TargetResult]) -> None:
    for t in targets:
        r = t.measured
        if r is None:
            continue
        statuses = ", ".join(f"{s}: {n:,}" for s, n in sorted(r.statuses.items())) or "-"
        line = f"{t.label}: measured answers by status {statuses}"
        if t.outcomes is not None:
            outcomes = ", ".join(f"{k} {v:,}" for k, v in sorted(t.outcomes.items()))
            line += f"; server outcomes, warm-up included: {outcomes}"
        print(line)


def print_verification(targets: list[TargetResult]) -> None:
    for t in targets:
        v = t.verification
        if v is None:
            continue
        print(f"verification {t.label}: {'PASSED' if v.ok else 'FAILED'} ({v.method})")
        extra = "" if v.missing is None else f"; acknowledged but missing {v.missing}"
        if v.server_accepted is not None:
            extra += f"; server answered accepted {v.server_accepted:,}"
        print(
            f"  stored {v.stored:,}; 2xx answers {v.acknowledged:,} (warm-up included); "
            f"lines handed out {v.sent_at_most:,}; stored twice {v.stored_twice}; "
            f"jobs != 1: {v.wrong_jobs}; unknown ids {v.unknown}{extra}"
        )
        for problem in v.problems:
            print(f"  problem: {problem}")


def report(run: Run) -> None:
    by_key = {t.key: t for t in run.targets}
    print()
    print_method(run)
    print()
    print_table(run.targets)
    print_threads(run.targets)
    print()
    print_targets(by_key)
    print_answers(run.targets)
    print_verification(run.targets)
    for note in run.notes:
        print(f"note: {note}")


# -- results file ---------------------------------------------------------------------------


def _target_json(target: TargetResult) -> dict[str, Any]:
    data = asdict(target)
    for name in ("warmup", "measured"):
        run: LoadResult | None = getattr(target, name)
        if run is None:
            continue
        data[name].pop("acknowledged", None)
        data[name].update(rate=run.rate, ok_answers=run.ok_answers, exhausted=run.exhausted)
    if target.verification is not None:
        data["verification"]["ok"] = target.verification.ok
    return data


def write_json(run: Run) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"intake-{run.started_at.strftime('%Y%m%dT%H%M%SZ')}.json"
    by_key = {t.key: t for t in run.targets}
    document = {
        "benchmark": "intake",
        "started_at": run.started_at.isoformat(),
        "command": " ".join(sys.argv),
        "options": {**asdict(run.options), "workdir": str(run.options.workdir or "")},
        "tool": run.tool,
        "machine": run.machine,
        "busy_cores_before": run.busy_before,
        "ratios": {key: ratio(by_key, key) for key in (SQLITE, POSTGRES, NO_STORE)},
        "ratios_to_no_store": {key: ratio(by_key, key, NO_STORE) for key in (SQLITE, POSTGRES)},
        "targets": [_target_json(t) for t in run.targets],
        "events": run.events,
        "notes": run.notes,
    }
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
    return path


def failures(run: Run) -> list[str]:
    found = []
    for t in run.targets:
        if t.verification is not None and not t.verification.ok:
            found.append(f"{t.label}: verification failed")
        for part in (t.warmup, t.measured):
            if part is not None and part.exhausted:
                found.append(f"{t.label}: ran out of events; raise --max-rate")
    return found
