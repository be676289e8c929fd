"""Benchmark: webhook intake throughput and latency, against a no-op app measured in the same run.

    .venv/bin/python bench/intake.py [--duration 10] [--backend all|sqlite|postgresql]
                                     [--role serve|intake] [--tool auto|wrk|asyncio]

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
writer, WAL limit 256 MiB; its workers apply the events to the mirror meanwhile, or, with
``--role intake``, ``zenoti-bridge intake`` alone); (c) the same on PostgreSQL, in a fresh schema
of ``--postgres-url`` dropped afterwards; (d) a reference: the bridge's app with a store that
writes nothing (``null_store_app.py``), whose ratio to (b) is the most any store could reach on
the same request path (``--skip-no-store`` leaves it out). Every server logs at warning level.

Load. wrk (``-t1 -c32``) with ``intake.lua`` when wrk is installed, which turns each line into a
ready request before its clock starts and sends each line once; otherwise (or with
``--tool asyncio``) a built-in generator on raw asyncio streams. The load generator shares the
machine's cores with the server, hence the baseline and the ratio (a)/(b).

Reported per target: 2xx answers per second, latency p50/p90/p99/max, non-2xx answers, socket
errors, the cores used by the server, the load generator, the kernel and other processes; for
SQLite the largest WAL file seen (sampled every 20 ms). Then the store is verified
(``verification.py``: every acknowledged event stored exactly once with one job). The exit
status is 1 when a verification fails or a run ran out of events, 2 on bad input. Results also
go to ``bench/results/intake-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import math
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import postgres_scratch
from asyncio_load import run_asyncio
from file_watch import SizeWatch
from intake_results import (
    LABELS,
    NO_STORE,
    NOOP,
    POSTGRES,
    SQLITE,
    Options,
    Run,
    SqliteFiles,
    TargetResult,
    failures,
    print_method,
    report,
    write_json,
)
from load_result import LoadFailed, LoadResult
from machine import CpuWindow, busy_cores, describe
from servers import (
    HOST,
    Server,
    ServerFailed,
    free_port,
    running,
    start_intake,
    start_noop,
    start_null_store,
    write_config,
)
from signed_events import EventFile, write_event_file
from verification import server_outcomes, verify
from wrk_load import run_wrk, wrk_path

SOURCE = "bench"
WEBHOOK_PATH = f"/webhooks/zenoti/{SOURCE}"
SAFETY = 1.5  # lines per expected request: a run must never run out of new events
BUSY_WARNING = 0.2  # cores busy before the run (nothing of ours running) that make results suspect


class BenchError(Exception):
    """Bad input or a missing tool: exit status 2 (so are a server or wrk that fail to run)."""


@dataclass(frozen=True, slots=True)
class Workload:
    """The signed events every target gets: the same files, a fresh store per target."""

    secret: str
    warmup: EventFile
    measure: EventFile
    generated: frozenset[str]


# -- command line ---------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        description="Intake throughput and latency against a no-op ASGI app, same run.",
        epilog="The method is described at the top of bench/intake.py and in docs/performance.md.",
    )
    parser.add_argument("--duration", type=int, default=10, help="measured seconds (>= 10)")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up seconds per target")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections")
    parser.add_argument(
        "--backend",
        choices=("all", SQLITE, POSTGRES),
        default="all",
        help="intake targets measured beside the no-op baseline",
    )
    parser.add_argument(
        "--role",
        choices=("serve", "intake"),
        default="serve",
        help="serve: every role in one process (workers apply events to the "
        "mirror meanwhile); intake: the intake alone",
    )
    parser.add_argument(
        "--tool",
        choices=("auto", "wrk", "asyncio"),
        default="auto",
        help="load generator (auto: wrk when installed)",
    )
    parser.add_argument(
        "--max-rate",
        type=int,
        default=60000,
        help="highest rate expected from any target (the no-op baseline is the fastest); "
        "sizes the event files",
    )
    parser.add_argument(
        "--postgres-url",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="database for the PostgreSQL target: a schema is made and dropped",
    )
    parser.add_argument(
        "--skip-no-store",
        action="store_true",
        help="leave out (d), the intake with a store that writes nothing (the highest ratio "
        "any store could reach on this request path)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where the SQLite file and event files go [default: a temp dir]",
    )
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
        role=args.role,
        tool=args.tool,
        max_rate=args.max_rate,
        postgres_url=args.postgres_url,
        workdir=args.workdir,
        no_store=not args.skip_no_store,
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
    settle_disk()
    generated = frozenset(warmup.event_ids) | frozenset(measure.event_ids)
    return Workload(secret=secret, warmup=warmup, measure=measure, generated=generated)


def settle_disk() -> None:
    """Write every dirty page to disk now, before anything is measured.

    The event files (several hundred MB) are written just before the first target runs; left
    to the kernel, their write-back starts when they are 30 s old (vm.dirty_expire_centisecs),
    which is in the middle of the intake's measurement, and the store's fsyncs then queue
    behind it: commits of 50 to 240 ms, a p99 of 40 to 140 ms instead of about 10.
    """
    started = time.monotonic()
    os.sync()
    phase(f"  flushed to disk in {time.monotonic() - started:.1f} s")


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
        HOST,
        server.port,
        WEBHOOK_PATH,
        events,
        connections=options.connections,
        seconds=seconds,
        on_start=on_start,
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


def run_no_store(workdir: Path, workload: Workload, options: Options, tool: str) -> TargetResult:
    """(d): the bridge's app and request path, its store answering at once and keeping nothing.

    Nothing is stored, so there is nothing to verify; the server's own count of accepted
    answers is still read, and reported beside wrk's.
    """
    result = TargetResult(NO_STORE, LABELS[NO_STORE])
    phase(f"{result.label}: starting (a reference: its store writes nothing)")
    unused = f"sqlite:///{workdir / 'no-store-never-opened.db'}"
    config, port = bridge_config(NO_STORE, unused, workdir, workload)
    with running(start_null_store(workdir, config, port)) as server:
        drive(server, workload, options, tool, result)
        result.outcomes = server_outcomes(server.base_url, SOURCE)
    return result


def bridge_config(
    key: str, database_url: str, workdir: Path, workload: Workload
) -> tuple[Path, int]:
    """A bridge configuration for target ``key`` (one source, this run's secret) and its port."""
    config = workdir / f"{key}.toml"
    port = free_port()
    write_config(
        config, database_url=database_url, port=port, source=SOURCE, secret=workload.secret
    )
    return config, port


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def run_intake(
    key: str,
    database_url: str,
    sqlite_db: Path | None,
    workdir: Path,
    workload: Workload,
    options: Options,
    tool: str,
) -> TargetResult:
    result = TargetResult(key, LABELS[key])
    settle_disk()  # nothing the previous target left dirty may be written back during this one
    phase(f"{result.label}: starting zenoti-bridge {options.role} (migrations first)")
    config, port = bridge_config(key, database_url, workdir, workload)
    wal = Path(f"{sqlite_db}-wal") if sqlite_db is not None else None
    watch = SizeWatch(wal) if wal is not None else None
    with running(start_intake(workdir, config, port, options.role)) as server:
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
        database_url,
        SOURCE,
        workload.generated,
        [r for r in (result.warmup, result.measured) if r is not None],
        result.outcomes,
    )
    phase(f"  verification {'passed' if result.verification.ok else 'FAILED'}")
    return result


def run_sqlite(workdir: Path, workload: Workload, options: Options, tool: str) -> TargetResult:
    database = workdir / "sqlite" / "bench.db"
    database.parent.mkdir(parents=True, exist_ok=True)
    return run_intake(SQLITE, f"sqlite:///{database}", database, workdir, workload, options, tool)


def postgres_problem(options: Options) -> str | None:
    """Why the PostgreSQL target cannot run (a BenchError if it was asked for by name)."""
    if options.backend not in ("all", POSTGRES):
        return None
    problem = postgres_scratch.reachable(options.postgres_url)
    if problem is not None and options.backend == POSTGRES:
        raise BenchError(problem)
    return problem


def run_postgres(workdir: Path, workload: Workload, options: Options, tool: str) -> TargetResult:
    problem = postgres_problem(options)
    if problem is not None:
        phase(f"{LABELS[POSTGRES]}: SKIPPED, {problem}")
        return TargetResult(POSTGRES, LABELS[POSTGRES], skipped=problem)
    with postgres_scratch.scratch_schema(options.postgres_url) as url:
        return run_intake(POSTGRES, url, None, workdir, workload, options, tool)


def run_targets(run: Run, workdir: Path, workload: Workload) -> None:
    options, tool = run.options, run.tool
    run.targets.append(run_noop(workdir, workload, options, tool))
    if options.no_store:
        run.targets.append(run_no_store(workdir, workload, options, tool))
    if options.backend in ("all", SQLITE):
        run.targets.append(run_sqlite(workdir, workload, options, tool))
    if options.backend in ("all", POSTGRES):
        run.targets.append(run_postgres(workdir, workload, options, tool))


# -- main -----------------------------------------------------------------------------------


@contextmanager
def workspace(options: Options) -> Iterator[Path]:
    """A fresh directory for the event files, configs, logs and the SQLite file; removed after."""
    if options.workdir is not None:
        options.workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="zb-bench-", dir=options.workdir) as tmp:
        yield Path(tmp)


def execute(options: Options) -> Run:
    run = Run(
        options=options,
        tool=choose_tool(options.tool),
        machine=describe(),
        busy_before=busy_cores(1.0),
        started_at=datetime.now(UTC),
    )
    # fail before minutes of work when PostgreSQL was asked for by name and is not there
    if options.backend != SQLITE and postgres_problem(options) is None:
        run.machine["postgresql"] = postgres_scratch.server_version(options.postgres_url)
    print_method(run)
    if run.busy_before is not None and run.busy_before > BUSY_WARNING:
        note = (
            f"the machine was busy before the run ({run.busy_before:.2f} cores used by other "
            "processes): figures will be low and noisy"
        )
        run.notes.append(note)
        print(f"warning: {note}", flush=True)
    with workspace(options) as workdir:
        workload = make_workload(workdir, options)
        run.events = (
            f"{len(workload.measure):,} + {len(workload.warmup):,} (warm-up) unique signed "
            f"Guest.Created bodies of {workload.measure.body_bytes:,} bytes, every id new"
        )
        run_targets(run, workdir, workload)
    return run


def main(argv: list[str] | None = None) -> int:
    try:
        options = parse_args(argv)
        run = execute(options)
    except (BenchError, ServerFailed, LoadFailed) as exc:
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
