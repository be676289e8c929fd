"""Benchmark: webhook intake throughput and latency, against a no-op app measured in the same run.

    .venv/bin/python bench/intake.py [--duration 10] [--backend all|sqlite|postgresql]

Method. Before anything is measured, every event is generated and signed: the Guest.Created
sample with a unique 24-hex ``event_id`` and ``id`` per line, signed with the source's secret
(``signed_events.py``), one ``signature<TAB>body`` per line, enough lines for
``--max-rate x duration x 1.5`` requests so that no event is ever sent twice. Then, one after
the other, each target is started as a subprocess on a free loopback port and driven with
``--connections`` keep-alive connections (32), closed loop: a warm-up of ``--warmup`` seconds on
its own events, then the measurement of ``--duration`` seconds (10) on the rest.

Targets. (b) the baseline: a no-op ASGI app on the same server stack (uvicorn, uvloop, httptools,
access log off, the options of ``zenoti_bridge.server``) that reads the body and answers 200;
(a) ``zenoti-bridge serve`` on SQLite as shipped (WAL, ``synchronous=FULL``, the group-commit
writer, WAL limit 256 MiB); (c) the same on PostgreSQL, in a fresh schema of ``--postgres-url``
dropped afterwards. Every server logs at warning level.

Load. wrk (``-t1 -c32``) with ``intake.lua`` when wrk is installed, which turns each line into a
ready request before its clock starts and sends each line once; otherwise (or with
``--tool asyncio``) a built-in generator on raw asyncio streams. The load generator shares the
machine's cores with the server, hence the baseline and the ratio (a)/(b).

Reported per target: 2xx answers per second, latency p50/p90/p99/max, non-2xx answers, socket
errors, the cores used by the server, the load generator and anything else; for SQLite the
largest WAL file seen (sampled every 20 ms). Then the store is verified (``verification.py``:
every acknowledged event stored exactly once with one job). The exit status is 1 when a
verification fails or a run ran out of events, 2 on bad input. Results also go to
``bench/results/intake-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import math
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

import postgres_scratch
from asyncio_load import run_asyncio
from file_watch import SizeWatch
from load_result import LoadResult
from machine import CpuShare, CpuWindow, busy_cores, describe
from servers import (
    HOST,
    Server,
    ServerFailed,
    free_port,
    running,
    start_intake,
    start_noop,
    write_config,
)
from signed_events import EventFile, write_event_file
from verification import Verification, server_outcomes, verify
from wrk_load import run_wrk, wrk_path, wrk_version
from zenoti_bridge.config import DatabaseConfig

SOURCE = "bench"
WEBHOOK_PATH = f"/webhooks/zenoti/{SOURCE}"
SAFETY = 1.5  # lines per expected request: a run must never run out of new events
RESULTS = Path(__file__).with_name("results")
BUSY_WARNING = 0.2  # cores used by other processes before the run that make results suspect

# the intake targets in DESIGN.md, for the 2-core reference machine
MIN_SQLITE_RATE = 8000.0
MAX_SQLITE_P99_MS = 15.0
MIN_RATIO = 0.30

NOOP, SQLITE, POSTGRES = "noop", "sqlite", "postgresql"
LABELS = {
    NOOP: "(b) no-op ASGI app",
    SQLITE: "(a) intake, SQLite FULL",
    POSTGRES: "(c) intake, PostgreSQL",
}


class BenchError(Exception):
    """Bad input or a missing tool: one line, exit status 2."""


@dataclass(frozen=True, slots=True)
class Options:
    duration: int
    warmup: int
    connections: int
    backend: str
    tool: str
    max_rate: int
    postgres_url: str
    workdir: Path | None


@dataclass(frozen=True, slots=True)
class Workload:
    """The signed events every target gets: the same files, a fresh store per target."""

    secret: str
    warmup: EventFile
    measure: EventFile
    generated: frozenset[str]


@dataclass(frozen=True, slots=True)
class SqliteFiles:
    """The SQLite files during and right after the measurement (before the server stops)."""

    max_wal_bytes: int
    wal_shrinks: int
    wal_bytes_after: int
    db_bytes_after: int


@dataclass(slots=True)
class TargetResult:
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
    options: Options
    tool: str
    machine: dict[str, str | int]
    busy_before: float | None
    started_at: datetime
    targets: list[TargetResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# -- command line ---------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        description="Intake throughput and latency against a no-op ASGI app, same run.",
        epilog="The method is described at the top of bench/intake.py and in docs/performance.md.",
    )
    parser.add_argument("--duration", type=int, default=10, help="measured seconds (>= 10)")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up seconds per target")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections")
    parser.add_argument("--backend", choices=("all", SQLITE, POSTGRES), default="all")
    parser.add_argument("--tool", choices=("auto", "wrk", "asyncio"), default="auto",
                        help="load generator (auto: wrk when installed)")
    parser.add_argument("--max-rate", type=int, default=30000,
                        help="highest rate expected from any target; sizes the event files")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the SQLite file and event files go [default: a temp dir]")
    args = parser.parse_args(argv)
    if args.duration < 10:
        parser.error("--duration must be at least 10 seconds")
    if args.warmup < 1 or args.connections < 1 or args.max_rate < 1:
        parser.error("--warmup, --connections and --max-rate must be positive")
    return Options(
        duration=args.duration,
        warmup=args.warmup,
        connections=args.connections,
        backend=args.backend,
        tool=args.tool,
        max_rate=args.max_rate,
        postgres_url=args.postgres_url,
        workdir=args.workdir,
    )


def choose_tool(requested: str) -> str:
    if requested == "asyncio":
        return "asyncio"
    if wrk_path() is None:
        if requested == "wrk":
            raise BenchError("wrk is not installed (apt-get install wrk) ; or use --tool asyncio")
        return "asyncio"
    return "wrk"


def phase(text: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {text}", flush=True)


# -- workload -------------------------------------------------------------------------------


def make_workload(workdir: Path, options: Options) -> Workload:
    secret = secrets.token_urlsafe(24)
    epoch = int(time.time())
    warm_lines = math.ceil(options.max_rate * options.warmup * SAFETY)
    lines = math.ceil(options.max_rate * options.duration * SAFETY)
    phase(f"signing {warm_lines + lines:,} unique events ({warm_lines:,} for warm-ups)")
    started = time.monotonic()
    warmup = write_event_file(
        workdir / "warmup.tsv", secret=secret, epoch_seconds=epoch, first=0, count=warm_lines
    )
    measure = write_event_file(
        workdir / "measure.tsv", secret=secret, epoch_seconds=epoch, first=warm_lines, count=lines
    )
    phase(f"  done in {time.monotonic() - started:.1f} s; bodies {measure.body_bytes:,} bytes")
    generated = frozenset(warmup.event_ids) | frozenset(measure.event_ids)
    return Workload(secret=secret, warmup=warmup, measure=measure, generated=generated)


# -- driving one server ---------------------------------------------------------------------


def load(
    tool: str,
    server: Server,
    events: EventFile,
    options: Options,
    seconds: int,
    on_start: Callable[[int | None], None] | None = None,
) -> LoadResult:
    if tool == "wrk":
        url = server.base_url + WEBHOOK_PATH
        return run_wrk(
            url, events.path, connections=options.connections, seconds=seconds, on_start=on_start
        )
    return run_asyncio(
        HOST, server.port, WEBHOOK_PATH, events,
        connections=options.connections, seconds=seconds, on_start=on_start,
    )


def drive(
    server: Server, workload: Workload, options: Options, tool: str, into: TargetResult
) -> None:
    """Warm up, then measure, recording CPU use over the measurement only."""
    phase(f"  warm-up {options.warmup} s")
    into.warmup = load(tool, server, workload.warmup, options, options.warmup)
    windows: list[CpuWindow] = []

    def started(generator_pid: int | None) -> None:
        windows.append(CpuWindow(server.process.pid, generator_pid))

    phase(f"  measuring {options.duration} s ({tool}, {options.connections} connections)")
    into.measured = load(tool, server, workload.measure, options, options.duration, started)
    into.cpu = windows[0].close() if windows else None
    phase(f"  {into.measured.rate:,.0f}/s, p99 {into.measured.latency.p99:.1f} ms")


def run_noop(workdir: Path, workload: Workload, options: Options, tool: str) -> TargetResult:
    result = TargetResult(NOOP, LABELS[NOOP])
    phase(f"{result.label}: starting")
    with running(start_noop(workdir, free_port())) as server:
        drive(server, workload, options, tool, result)
    return result


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def run_intake(
    key: str, database_url: str, sqlite_db: Path | None, workdir: Path, workload: Workload,
    options: Options, tool: str,
) -> TargetResult:
    result = TargetResult(key, LABELS[key])
    phase(f"{result.label}: starting zenoti-bridge serve (migrations first)")
    config = workdir / f"{key}.toml"
    port = free_port()
    write_config(
        config, database_url=database_url, port=port, source=SOURCE, secret=workload.secret
    )
    wal = Path(f"{sqlite_db}-wal") if sqlite_db is not None else None
    watch = SizeWatch(wal) if wal is not None else None
    with running(start_intake(workdir, config, port)) as server:
        with watch or nullcontext():
            drive(server, workload, options, tool, result)
        result.outcomes = server_outcomes(server.base_url, SOURCE)
        if watch is not None and wal is not None and sqlite_db is not None:
            result.sqlite_files = SqliteFiles(
                max_wal_bytes=watch.max_bytes,
                wal_shrinks=watch.shrinks,
                wal_bytes_after=_size(wal),
                db_bytes_after=_size(sqlite_db),
            )
    phase("  verifying the store")
    result.verification = verify(
        database_url, SOURCE, workload.generated,
        [r for r in (result.warmup, result.measured) if r is not None], result.outcomes,
    )
    phase(f"  verification {'passed' if result.verification.ok else 'FAILED'}")
    return result


def run_sqlite(workdir: Path, workload: Workload, options: Options, tool: str) -> TargetResult:
    database = workdir / "sqlite" / "bench.db"
    database.parent.mkdir(parents=True, exist_ok=True)
    return run_intake(SQLITE, f"sqlite:///{database}", database, workdir, workload, options, tool)


def run_postgres(workdir: Path, workload: Workload, options: Options, tool: str) -> TargetResult:
    problem = postgres_scratch.reachable(options.postgres_url)
    if problem is not None:
        if options.backend == POSTGRES:
            raise BenchError(problem)
        phase(f"{LABELS[POSTGRES]}: SKIPPED, {problem}")
        return TargetResult(POSTGRES, LABELS[POSTGRES], skipped=problem)
    with postgres_scratch.scratch_schema(options.postgres_url) as url:
        return run_intake(POSTGRES, url, None, workdir, workload, options, tool)


def run_targets(run: Run, workdir: Path, workload: Workload) -> None:
    options, tool = run.options, run.tool
    run.targets.append(run_noop(workdir, workload, options, tool))
    if options.backend in ("all", SQLITE):
        run.targets.append(run_sqlite(workdir, workload, options, tool))
    if options.backend in ("all", POSTGRES):
        run.targets.append(run_postgres(workdir, workload, options, tool))


# -- report ---------------------------------------------------------------------------------


def _cores(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def print_method(run: Run, workload: Workload | None = None) -> None:
    m, o = run.machine, run.options
    tool = wrk_version() + " -t1" if run.tool == "wrk" else "built-in asyncio generator"
    print(f"method: {tool}, {o.connections} keep-alive connections, closed loop; "
          f"{o.warmup} s warm-up then {o.duration} s measured per target")
    print(f"machine: {m['cores']} cores ({m['cpu']}), {m['system']}, Python {m['python']}, "
          f"SQLite {m['sqlite']}")
    if run.busy_before is not None:
        print(f"machine busy before the run: {run.busy_before:.2f} cores")
    if workload is not None:
        print(f"events: {len(workload.measure):,} + {len(workload.warmup):,} (warm-up) unique "
              f"signed Guest.Created bodies of {workload.measure.body_bytes:,} bytes")


def print_table(targets: list[TargetResult]) -> None:
    header = (f"{'target':<26}{'events/s':>10}{'p50 ms':>8}{'p90 ms':>8}{'p99 ms':>8}"
              f"{'max ms':>8}{'non-2xx':>9}{'sock err':>9}   cores: server/load/kernel/other")
    print(header)
    print("-" * len(header))
    for t in targets:
        r = t.measured
        if r is None:
            print(f"{t.label:<26}  skipped: {t.skipped or 'not run'}")
            continue
        cpu = t.cpu or CpuShare(None, None, None, None)
        print(f"{t.label:<26}{r.rate:>10,.0f}{r.latency.p50:>8.2f}{r.latency.p90:>8.2f}"
              f"{r.latency.p99:>8.2f}{r.latency.max:>8.1f}{r.non_2xx:>9,}{r.socket_errors:>9,}"
              f"   {_cores(cpu.server)}/{_cores(cpu.load_generator)}/{_cores(cpu.kernel)}"
              f"/{_cores(cpu.other)}")


def ratio(targets: dict[str, TargetResult], key: str) -> float | None:
    base, target = targets.get(NOOP), targets.get(key)
    if base is None or target is None or base.measured is None or target.measured is None:
        return None
    return target.measured.rate / base.measured.rate if base.measured.rate else None


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def print_targets(by_key: dict[str, TargetResult]) -> None:
    for key in (SQLITE, POSTGRES):
        value = ratio(by_key, key)
        if value is not None:
            print(f"ratio {LABELS[key].split(', ')[1]} / no-op: {value:.2f}")
    sqlite = by_key.get(SQLITE)
    if sqlite is None or sqlite.measured is None:
        return
    r, value = sqlite.measured, ratio(by_key, SQLITE) or 0.0
    rate_ok, p99_ok = r.rate >= MIN_SQLITE_RATE, r.latency.p99 <= MAX_SQLITE_P99_MS
    print("targets (DESIGN.md, 2-core reference machine): "
          f"SQLite {r.rate:,.0f} events/s >= {MIN_SQLITE_RATE:,.0f} {_verdict(rate_ok)}; "
          f"p99 {r.latency.p99:.1f} ms <= {MAX_SQLITE_P99_MS:.0f} ms {_verdict(p99_ok)}; "
          f"ratio {value:.2f} >= {MIN_RATIO:.2f} {_verdict(value >= MIN_RATIO)}")
    files = sqlite.sqlite_files
    if files is not None:
        limit = DatabaseConfig().wal_limit_mb
        print(f"SQLite WAL: largest {files.max_wal_bytes / 2**20:,.1f} MiB during warm-up and "
              f"measurement (database.wal_limit_mb = {limit} MiB), shrank {files.wal_shrinks} "
              f"times; right after: WAL {files.wal_bytes_after / 2**20:,.1f} MiB, "
              f"database file {files.db_bytes_after / 2**20:,.1f} MiB")


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
        print(f"  stored {v.stored:,}; 2xx answers {v.acknowledged:,} (warm-up included); "
              f"lines handed out {v.sent_at_most:,}; stored twice {v.stored_twice}; "
              f"jobs != 1: {v.wrong_jobs}; unknown ids {v.unknown}{extra}")
        for problem in v.problems:
            print(f"  problem: {problem}")


def report(run: Run) -> None:
    by_key = {t.key: t for t in run.targets}
    print()
    print_method(run)
    print()
    print_table(run.targets)
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
        "ratios": {key: ratio(by_key, key) for key in (SQLITE, POSTGRES)},
        "targets": [_target_json(t) for t in run.targets],
        "notes": run.notes,
    }
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
    return path


# -- main -----------------------------------------------------------------------------------


def failures(run: Run) -> list[str]:
    found = []
    for t in run.targets:
        if t.verification is not None and not t.verification.ok:
            found.append(f"{t.label}: verification failed")
        for part in (t.warmup, t.measured):
            if part is not None and part.exhausted:
                found.append(f"{t.label}: ran out of events; raise --max-rate")
    return found


@contextmanager
def workspace(options: Options) -> Iterator[Path]:
    if options.workdir is not None:
        options.workdir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="zb-bench-", dir=options.workdir) as tmp:
            yield Path(tmp)
    else:
        with tempfile.TemporaryDirectory(prefix="zb-bench-") as tmp:
            yield Path(tmp)


def execute(options: Options) -> Run:
    run = Run(options=options, tool=choose_tool(options.tool), machine=describe(),
              busy_before=busy_cores(1.0), started_at=datetime.now(UTC))
    print_method(run)
    if run.busy_before is not None and run.busy_before > BUSY_WARNING:
        note = (f"the machine was busy before the run ({run.busy_before:.2f} cores used by other "
                "processes): figures will be low and noisy")
        run.notes.append(note)
        print(f"warning: {note}", flush=True)
    with workspace(options) as workdir:
        workload = make_workload(workdir, options)
        run_targets(run, workdir, workload)
    return run


def main(argv: list[str] | None = None) -> int:
    try:
        options = parse_args(argv)
        run = execute(options)
    except (BenchError, ServerFailed) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report(run)
    path = write_json(run)
    print(f"results: {path}")
    problems = failures(run)
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
