"""Benchmark: events from stored to mirrored, and receipt-to-mirror latency under a steady load.

    .venv/bin/python bench/pipeline.py [--backend all|sqlite|postgresql] [--events 30000]
                                       [--latency-seconds 60] [--rate 500]

Events. Realistic mixed traffic (``mixed_events.py``): the stories of a few thousand guests
built from the samples in ``tests/fixtures/zenoti/payloads`` (guest created and updated,
appointment group created and checked in, appointment started and completed, invoice closed,
membership and package sold, class booked, feedback, opt-in; some employees and class sessions
updated often), every event with a new ``event_id``, some delivered out of order.

Throughput (stored -> mirrored). For each store: ``--events`` events are stored through the
real intake code (``preload.py``: the ``Intake`` ASGI app called in this process) while no
worker runs, so every mirror job is queued. The worker processes (``zenoti-bridge worker``: one
on SQLite, which has a single writer; ``--pg-processes`` on PostgreSQL, each with
``--concurrency`` lanes) are started *before* the load, on the empty store, and frozen with
SIGSTOP while it is filled; SIGCONT releases them together and the clock runs until no mirror
job is queued (polled every 50 ms), so no process start-up is timed. The baseline, measured in
the same run on a second store filled the same way, is the same worker command with a no-op
mirror (``noop_worker.py``): the cost of the queue itself (claim, ordering-key locks, finish,
commit).
Reported: events/s over the whole drain and between 10 % and 90 % done, the ratio to the
baseline, and the cores used. Checked: every job succeeded, none dead, every event processed,
the mirror holds exactly the entities the events describe, each carrying its newest event.

Latency (receipt -> mirror). ``--rate`` events/s (500) offered open loop (``open_loop.py``:
each request sent when due, whatever earlier answers do) for ``--warmup`` + ``--latency-seconds``
seconds (2 + 60) of signed webhooks over loopback: on SQLite to ``zenoti-bridge serve`` (intake
and workers in one process), on PostgreSQL to ``zenoti-bridge intake`` with 2
``zenoti-bridge worker`` processes. Per event after the warm-up: the mirror job's
``updated_at`` minus the event's ``received_at``, both written by the bridge ("stored"), and the
time a poller (every 20 ms) first saw the job succeeded minus ``received_at`` ("visible", at most
one poll late). Checked: every webhook answered accepted, every job succeeded, the mirror right.

The report, the targets met or missed, and everything measured go to stdout and to
``bench/results/pipeline-<timestamp>.json``. Exit status 1 when a check failed, 2 on bad input
(PostgreSQL asked for but unreachable) or when a process failed to run.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import psycopg
from psycopg import sql
from sqlalchemy import Engine

import postgres_scratch
import sandbox_events
import zenoti_bridge
from asyncio_load import latency_summary
from intake import phase
from machine import CpuSplit, GroupCpuWindow, busy_cores, describe
from mixed_events import (
    ExpectedMirror,
    MixedEvent,
    expected_mirror,
    generate,
    type_counts,
    write_signed,
)
from open_loop import run_open_loop
from pipeline_reads import JobTimes, VisibilityWatch, job_times, mirror_rows, queued_jobs
from pipeline_results import (
    POSTGRES,
    SQLITE,
    Drain,
    LatencyResult,
    MirrorCheck,
    Options,
    Run,
    ThroughputResult,
    disturbed,
    failures,
    print_method,
    report,
    write_json,
)
from preload import preload
from servers import (
    HOST,
    ServerFailed,
    WorkerProcess,
    free_port,
    running,
    start_intake,
    start_worker,
    workers_running,
    write_config,
)
from zenoti_bridge.storage import migrate
from zenoti_bridge.storage.migrate import make_engine
from zenoti_bridge.storage.postgres import psycopg_conninfo
from zenoti_bridge.storage.queries import EventFilter, Reader

SOURCE = "bench"
APPLICATION = "zb-pipeline-bench"  # application_name of every PostgreSQL connection we make
WEBHOOK_PATH = f"/webhooks/zenoti/{SOURCE}"
QUEUE_POLL = 0.05  # seconds between two looks at the queue depth while workers drain it
MIN_DRAIN_RATE = 50  # slower than this and the drain is given up (the run stays bounded)
LATENCY_DRAIN_LIMIT = 60.0  # seconds after the load for the last jobs to finish
BUSY_WARNING = 0.2
T = TypeVar("T")


class BenchError(Exception):
    """Bad input or a missing service: exit status 2."""


# -- command line ---------------------------------------------------------------------------


def _processes(text: str) -> tuple[int, ...]:
    try:
        values = tuple(sorted({int(part) for part in text.split(",") if part.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not values or any(not 1 <= v <= 8 for v in values):
        raise argparse.ArgumentTypeError("give process counts from 1 to 8, e.g. 2 or 1,2")
    return values


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        description="Stored-to-mirrored throughput and receipt-to-mirror latency.",
        epilog="The method is described at the top of bench/pipeline.py and in "
        "docs/performance.md.",
    )
    parser.add_argument("--backend", choices=("all", SQLITE, POSTGRES), default="all")
    parser.add_argument(
        "--phase",
        choices=("all", "throughput", "latency"),
        default="all",
        help="what to measure",
    )
    parser.add_argument("--events", type=int, default=30000, help="events per throughput run")
    parser.add_argument(
        "--latency-seconds", type=int, default=60, help="measured seconds of offered load"
    )
    parser.add_argument("--rate", type=int, default=500, help="events/s offered (latency)")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up seconds (latency)")
    parser.add_argument(
        "--pg-processes",
        type=_processes,
        default=(2,),
        help="worker processes on PostgreSQL, one run each (e.g. 1,2) [default: 2]",
    )
    parser.add_argument(
        "--concurrency", type=int, default=2, help="lanes per worker process on PostgreSQL"
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated events")
    parser.add_argument(
        "--workload",
        choices=("stories", "sandbox"),
        default="stories",
        help="stories: guests' visits built from the samples (bench/mixed_events.py); "
        "sandbox: the sandbox's chain-20 scenario, every event type (bench/sandbox_events.py)",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=0,
        help="measure again (on a fresh store) up to this many times when other processes "
        "used more than 0.25 cores meanwhile",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=0.0,
        help="before each measurement, wait up to this many seconds for the machine to be idle",
    )
    parser.add_argument(
        "--postgres-url",
        default="postgresql://postgres@127.0.0.1:5432/test",
        help="database for the PostgreSQL runs: schemas are made there and dropped",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where SQLite files, configs and logs go [default: a temp dir]",
    )
    args = parser.parse_args(argv)
    if args.events < 1000:
        parser.error("--events must be at least 1000")
    if args.latency_seconds < 5 or args.rate < 1 or args.warmup < 0:
        parser.error("--latency-seconds must be at least 5, --rate positive, --warmup >= 0")
    if not 1 <= args.concurrency <= 64:
        parser.error("--concurrency must be between 1 and 64")
    return Options(
        backend=args.backend,
        phase=args.phase,
        events=args.events,
        latency_seconds=args.latency_seconds,
        rate=args.rate,
        warmup=args.warmup,
        pg_processes=args.pg_processes,
        concurrency=args.concurrency,
        seed=args.seed,
        workload=args.workload,
        quiet_wait=args.quiet_wait,
        retries=max(0, args.retries),
        postgres_url=args.postgres_url,
        workdir=args.workdir,
    )


# -- stores ---------------------------------------------------------------------------------


@contextmanager
def fresh_store(backend: str, options: Options, workdir: Path, name: str) -> Iterator[str]:
    """The URL of an empty database: a new SQLite file, or a PostgreSQL schema dropped after."""
    if backend == SQLITE:
        path = workdir / name / "bridge.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        yield f"sqlite:///{path}"
        return
    with postgres_scratch.scratch_schema(options.postgres_url) as url:
        yield f"{url}&application_name={APPLICATION}"  # names our backends (see cpu_groups)


def bridge_config(workdir: Path, name: str, url: str, secret: str, port: int = 0) -> Path:
    config = workdir / f"{name}.toml"
    write_config(config, database_url=url, port=port or free_port(), source=SOURCE, secret=secret)
    return config


def analyze(url: str) -> None:
    """Fresh planner statistics on PostgreSQL, as autovacuum keeps them on a live database."""
    with psycopg.connect(psycopg_conninfo(url), autocommit=True) as conn:
        for table in ("events", "jobs"):
            conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))


def postgres_processes(url: str) -> list[int]:
    """The PostgreSQL backends of this benchmark's connections and the server's own processes
    (WAL writer, checkpointer, autovacuum...); other clients' backends are someone else's."""
    with psycopg.connect(psycopg_conninfo(url), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity "
            "WHERE application_name = %s OR backend_type <> 'client backend'",
            (APPLICATION,),
        ).fetchall()
    return [int(row[0]) for row in rows]


def cpu_groups(url: str, pids: Callable[[], Iterable[int]], name: str) -> GroupCpuWindow:
    groups: dict[str, Callable[[], Iterable[int]]] = {name: pids, "bench": lambda: [os.getpid()]}
    if not url.startswith("sqlite:///"):
        groups["postgres"] = lambda: postgres_processes(url)
    return GroupCpuWindow(groups)


def check_mirror(url: str, expected: ExpectedMirror) -> MirrorCheck:
    engine = make_engine(url)
    try:
        found = mirror_rows(engine)
    finally:
        engine.dispose()
    missing = unexpected = stale = 0
    for resource in set(expected.newest) | set(found):
        want, have = expected.newest.get(resource, {}), found.get(resource, {})
        missing += sum(1 for entity in want if entity not in have)
        unexpected += sum(1 for entity in have if entity not in want)
        stale += sum(1 for e, last in have.items() if e in want and want[e] != last)
    return MirrorCheck(
        expected=expected.counts(),
        found={r: len(rows) for r, rows in sorted(found.items())},
        missing=missing,
        unexpected=unexpected,
        stale=stale,
    )


# -- throughput: stored -> mirrored ---------------------------------------------------------


def _steady_rate(samples: list[tuple[float, int]], total: int) -> float | None:
    """Jobs per second between 10 % and 90 % of ``total`` done, from (time, queued) samples."""

    def crossing(share: float) -> float | None:
        target = total * share
        previous: tuple[float, int] | None = None
        for when, queued in samples:
            done = total - queued
            if done >= target:
                if previous is None:
                    return when
                before_t, before_q = previous
                before_done = total - before_q
                if done == before_done:
                    return when
                return before_t + (when - before_t) * (target - before_done) / (done - before_done)
            previous = (when, queued)
        return None

    low, high = crossing(0.1), crossing(0.9)
    if low is None or high is None or high <= low:
        return None
    return total * 0.8 / (high - low)


def _freeze(workers: list[WorkerProcess], sig: signal.Signals) -> None:
    for worker in workers:
        worker.process.send_signal(sig)


def _freeze_idle(workers: list[WorkerProcess], url: str, tries: int = 50) -> None:
    """SIGSTOP the idle workers, but never inside a transaction that holds SQLite's write lock
    (an idle claim takes about a millisecond every 0.25 s): the preload would wait for it."""
    for _ in range(tries):
        _freeze(workers, signal.SIGSTOP)
        if not url.startswith("sqlite:///"):
            return
        probe = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return
        except sqlite3.OperationalError:
            _freeze(workers, signal.SIGCONT)
            time.sleep(0.01)
        finally:
            probe.close()
    raise ServerFailed("could not find the workers idle to freeze them")


def drain(
    backend: str,
    workdir: Path,
    name: str,
    url: str,
    events: list[MixedEvent],
    options: Options,
    processes: int,
    noop: bool,
    secret: str,
) -> Drain:
    """Start idle workers, freeze them, fill the store, release them and time the drain."""
    consumer = "no-op" if noop else "mirror"
    config = bridge_config(workdir, name, url, secret)
    migrate.upgrade(url)  # before the workers start, so that none of them migrates
    concurrency = 1 if backend == SQLITE else options.concurrency
    workers = [
        start_worker(workdir, config, f"{name}-{n}", concurrency=concurrency, noop=noop)
        for n in range(processes)
    ]
    result = Drain(consumer, processes, concurrency, len(events), preload_seconds=0.0)
    with workers_running(workers):
        time.sleep(0.5)  # idle polls: connections open, statements prepared
        _freeze_idle(workers, url)
        try:
            phase(f"  {consumer}: storing {len(events):,} events (workers frozen)")
            loaded = preload(config, SOURCE, events)
            result.preload_seconds = loaded.seconds
            if loaded.outcomes != {"accepted": len(events)}:
                result.problems.append(f"preload answered {loaded.outcomes}, not all accepted")
            if backend == POSTGRES:
                analyze(url)
        except BaseException:
            _freeze(workers, signal.SIGCONT)
            raise
        engine = make_engine(url)
        try:
            queued = queued_jobs(engine)
            phase(
                f"  {consumer}: {queued:,} jobs queued in {loaded.seconds:.1f} s; releasing "
                f"{processes} worker process{'es' if processes > 1 else ''}"
            )
            wait_quiet(options.quiet_wait)
            window = cpu_groups(url, lambda: [w.process.pid for w in workers], "workers")
            started = time.monotonic()
            _freeze(workers, signal.SIGCONT)
            samples = _watch_queue(engine, workers, started, len(events))
            result.seconds = samples[-1][0]
            result.cpu = window.close()
        finally:
            engine.dispose()
    result.steady_rate = _steady_rate(samples, queued)
    if samples[-1][1] > 0:
        result.problems.append(f"{samples[-1][1]:,} jobs still queued when the drain gave up")
    with Reader(url) as reader:
        result.job_counts = {s: n for (c, s), n in reader.job_counts().items() if c == "mirror"}
        result.processed_events = reader.count_events(EventFilter(status="processed"))
    if result.job_counts != {"succeeded": len(events)}:
        result.problems.append(f"jobs by status {result.job_counts}, not all succeeded")
    if result.processed_events != len(events):
        result.problems.append(
            f"{result.processed_events:,} of {len(events):,} events marked processed"
        )
    phase(
        f"  {consumer}: {result.rate:,.0f} events/s ({result.seconds:.2f} s), steady "
        f"{result.steady_rate or 0:,.0f}/s"
    )
    return result


def _watch_queue(
    engine: Engine, workers: list[WorkerProcess], started: float, total: int
) -> list[tuple[float, int]]:
    """(seconds since release, jobs queued) every QUEUE_POLL until none is left or time is up."""
    limit = max(120.0, total / MIN_DRAIN_RATE)
    samples: list[tuple[float, int]] = []
    while True:
        queued = queued_jobs(engine)
        samples.append((time.monotonic() - started, queued))
        if queued == 0 or samples[-1][0] > limit:
            return samples
        for worker in workers:
            worker.check_alive()
        time.sleep(QUEUE_POLL)


@dataclass(frozen=True, slots=True)
class Workload:
    """Events and the mirror they must produce; every store gets the same events."""

    events: list[MixedEvent]
    expected: ExpectedMirror

    origin: str

    @classmethod
    def make(cls, count: int, seed: int, workload: str) -> Workload:
        phase(f"generating {count:,} events ({workload})")
        if workload == "sandbox":
            events = sandbox_events.generate(count, seed=seed)
            origin = f"the sandbox's {sandbox_events.LEVEL} scenario (bench/sandbox_events.py)"
        else:
            events = generate(count, seed=seed, epoch_seconds=int(time.time()))
            origin = "mixed Zenoti events (bench/mixed_events.py)"
        return cls(events, expected_mirror(events), origin)

    def describe(self) -> str:
        kinds = type_counts(self.events)
        mean = sum(len(e.body) for e in self.events) // len(self.events)
        counts = self.expected.counts()
        return (
            f"{self.origin}, {len(kinds)} types, mean body "
            f"{mean:,} bytes; {len(self.events):,} events touch {sum(counts.values()):,} "
            f"entities ({', '.join(f'{r} {n:,}' for r, n in counts.items())})"
        )


def measured(
    label: str, retries: int, once: Callable[[int], T], cpu: Callable[[T], CpuSplit | None]
) -> T:
    """``once(attempt)``, again (up to ``retries`` times) while other processes disturbed it."""
    attempt = 1
    while True:
        value = once(attempt)
        split = cpu(value)
        if not disturbed(split) or attempt > retries:
            return value
        other = split.other if split is not None and split.other is not None else 0.0
        phase(f"  {label}: other processes used {other:.2f} cores meanwhile; measuring again")
        attempt += 1


def throughput(
    backend: str, processes: int, workdir: Path, options: Options, secret: str, work: Workload
) -> ThroughputResult:
    concurrency = 1 if backend == SQLITE else options.concurrency
    result = ThroughputResult(backend, processes, concurrency, options.events)
    phase(f"throughput {result.label}")
    events, expected = work.events, work.expected

    def baseline(attempt: int) -> Drain:
        name = f"noop-{backend}-{processes}-{attempt}"
        with fresh_store(backend, options, workdir, name) as url:
            found = drain(backend, workdir, name, url, events, options, processes, True, secret)
        found.attempts = attempt
        return found

    def mirror(attempt: int) -> tuple[Drain, MirrorCheck]:
        name = f"mirror-{backend}-{processes}-{attempt}"
        with fresh_store(backend, options, workdir, name) as url:
            found = drain(backend, workdir, name, url, events, options, processes, False, secret)
            phase("  checking the mirror against the events")
            check = check_mirror(url, expected)
        found.attempts = attempt
        return found, check

    result.baseline = measured("no-op", options.retries, baseline, lambda d: d.cpu)
    result.mirror, result.check = measured("mirror", options.retries, mirror, lambda m: m[0].cpu)
    return result


# -- latency: receipt -> mirror -------------------------------------------------------------


def offer(
    result: LatencyResult,
    url: str,
    port: int,
    pids: Callable[[], Iterable[int]],
    events: list[MixedEvent],
    secret: str,
    workdir: Path,
    quiet_wait: float,
) -> None:
    """Offer the load open loop, wait for the queue to drain, then read the latencies."""
    event_file = write_signed(workdir / f"latency-{result.backend}.tsv", events, secret)
    warm = result.warmup * int(result.rate)
    engine = make_engine(url)
    windows: list[GroupCpuWindow] = []
    try:
        wait_quiet(quiet_wait)
        with VisibilityWatch(engine) as watch:
            phase(
                f"  offering {result.rate:,.0f} events/s for {result.warmup} + {result.seconds} s"
            )
            load = run_open_loop(
                HOST,
                port,
                WEBHOOK_PATH,
                event_file,
                rate=result.rate,
                count=len(events),
                on_start=lambda: windows.append(cpu_groups(url, pids, "bridge")),
            )
            result.cpu = windows[0].close() if windows else None
            waited = time.monotonic()
            while queued_jobs(engine) and time.monotonic() - waited < LATENCY_DRAIN_LIMIT:
                time.sleep(0.01)
            result.drain_seconds = time.monotonic() - waited
            time.sleep(3 * watch.interval)  # the watch's last look
        result.polls, seen = watch.polls, watch.seen
        times = job_times(engine)
    finally:
        engine.dispose()
    result.sent = len(load.answers)
    result.statuses = dict(load.statuses)
    result.acknowledged = len(load.acknowledged)
    result.most_behind = load.most_behind
    result.late_sends = load.late
    result.connections = load.connections_opened
    measured_ids = {e.event_id for e in events[warm:]}
    timed = [t for t in times if t.event_id in measured_ids and t.status == "succeeded"]
    result.measured = len(timed)
    result.stored = latency_summary([(t.updated_at - t.received_at).total_seconds() for t in timed])
    visible = [seen[t.job_id] - t.received_at.timestamp() for t in timed if t.job_id in seen]
    result.unseen = len(timed) - len(visible)
    result.visible = latency_summary(visible) if visible else None
    result.answer = latency_summary(
        [a.latency for a in load.answers[warm:] if a.latency is not None and a.status == 200]
    )
    _check_latency_run(result, events, times)


def _check_latency_run(
    result: LatencyResult, events: list[MixedEvent], jobs: list[JobTimes]
) -> None:
    if result.acknowledged != len(events):
        result.problems.append(
            f"{result.acknowledged:,} of {len(events):,} webhooks answered accepted "
            f"(statuses {result.statuses})"
        )
    by_status: dict[str, int] = {}
    for job in jobs:
        by_status[job.status] = by_status.get(job.status, 0) + 1
    if by_status != {"succeeded": len(events)}:
        result.problems.append(f"mirror jobs by status {by_status}, not all succeeded")
    if result.unseen:
        result.problems.append(f"{result.unseen:,} measured jobs never seen done by the poller")


def latency(
    backend: str, workdir: Path, options: Options, secret: str, work: Workload
) -> LatencyResult:
    layout = "serve" if backend == SQLITE else f"intake + 2 workers x{options.concurrency}"
    label = LatencyResult(backend, layout, 0.0, 0, 0).label
    phase(f"latency {label}")

    def once(attempt: int) -> LatencyResult:
        result = LatencyResult(
            backend, layout, float(options.rate), options.latency_seconds, options.warmup
        )
        result.attempts = attempt
        latency_run(result, workdir, options, secret, work, f"latency-{backend}-{attempt}")
        return result

    result = measured("latency", options.retries, once, lambda r: r.cpu)
    stored = result.stored
    if stored is not None:
        phase(
            f"  stored p50 {stored.p50:.1f} ms, p99 {stored.p99:.1f} ms; "
            f"visible p99 {result.visible.p99 if result.visible else float('nan'):.1f} ms"
        )
    return result


def latency_run(
    result: LatencyResult, workdir: Path, options: Options, secret: str, work: Workload, name: str
) -> None:
    """One latency measurement on a fresh store: the bridge started, the load offered."""
    backend = result.backend
    with fresh_store(backend, options, workdir, name) as url:
        port = free_port()
        config = bridge_config(workdir, name, url, secret, port)
        role = "serve" if backend == SQLITE else "intake"
        phase(f"  starting zenoti-bridge {role} (migrations first)")
        with running(start_intake(workdir, config, port, role)) as server:
            if backend == SQLITE:

                def pids() -> list[int]:
                    return [server.process.pid]

                offer(result, url, port, pids, work.events, secret, workdir, options.quiet_wait)
            else:
                workers = [
                    start_worker(
                        workdir, config, f"{name}-worker-{n}", concurrency=options.concurrency
                    )
                    for n in range(2)
                ]
                with workers_running(workers):

                    def all_pids() -> list[int]:
                        return [server.process.pid] + [w.process.pid for w in workers]

                    offer(
                        result,
                        url,
                        port,
                        all_pids,
                        work.events,
                        secret,
                        workdir,
                        options.quiet_wait,
                    )
        result.check = check_mirror(url, work.expected)


# -- main -----------------------------------------------------------------------------------


def source_revision() -> str:
    """The commit of the zenoti_bridge package being measured, and any uncommitted change."""
    tree = Path(zenoti_bridge.__file__).resolve().parents[2]

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(tree), *args], capture_output=True, text=True, check=False
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return f"zenoti_bridge from {tree} (not a git checkout)"
    changed = git("status", "--porcelain", "--", "src").splitlines()
    dirty = f", uncommitted changes in {len(changed)} file(s) of src/" if changed else ""
    return f"zenoti_bridge from {tree}, commit {commit}{dirty}"


def wait_quiet(limit: float) -> None:
    """Wait up to ``limit`` seconds for the machine to be idle (other work skews the figures)."""
    if limit <= 0:
        return
    deadline = time.monotonic() + limit
    while True:
        busy = busy_cores(1.0)
        if busy is None or busy < BUSY_WARNING:
            return
        if time.monotonic() > deadline:
            phase(f"  the machine is still busy ({busy:.2f} cores); measuring anyway")
            return
        phase(f"  waiting for a quiet machine ({busy:.2f} cores busy)")


def backends(options: Options) -> list[str]:
    wanted = [SQLITE, POSTGRES] if options.backend == "all" else [options.backend]
    if POSTGRES in wanted:
        problem = postgres_scratch.reachable(options.postgres_url)
        if problem is not None:
            if options.backend == POSTGRES:
                raise BenchError(problem)
            phase(f"PostgreSQL: SKIPPED, {problem}")
            wanted.remove(POSTGRES)
    return wanted


@contextmanager
def workspace(options: Options) -> Iterator[Path]:
    if options.workdir is not None:
        options.workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="zb-pipeline-", dir=options.workdir) as tmp:
        yield Path(tmp)


def execute(options: Options) -> Run:
    run = Run(
        options=options,
        machine=describe(),
        busy_before=busy_cores(1.0),
        started_at=datetime.now(UTC),
        revision=source_revision(),
    )
    chosen = backends(options)
    if POSTGRES in chosen:
        run.machine["postgresql"] = postgres_scratch.server_version(options.postgres_url)
    print_method(run)
    if run.busy_before is not None and run.busy_before > BUSY_WARNING:
        note = (
            f"the machine was busy before the run ({run.busy_before:.2f} cores used by other "
            "processes): figures will be low and noisy"
        )
        run.notes.append(note)
        print(f"warning: {note}", flush=True)
    secret = secrets.token_urlsafe(24)
    with workspace(options) as workdir:
        if options.phase in ("all", "throughput"):
            work = Workload.make(options.events, options.seed, options.workload)
            run.events = work.describe()
            print(f"events: {run.events}", flush=True)
            for backend in chosen:
                counts = (1,) if backend == SQLITE else options.pg_processes
                for processes in counts:
                    run.throughput.append(
                        throughput(backend, processes, workdir, options, secret, work)
                    )
        if options.phase in ("all", "latency"):
            count = options.rate * (options.warmup + options.latency_seconds)
            work = Workload.make(count, options.seed + 1, options.workload)
            if not run.events:
                run.events = work.describe()
                print(f"events: {run.events}", flush=True)
            for backend in chosen:
                run.latency.append(latency(backend, workdir, options, secret, work))
    for t in run.throughput:
        for drain_run in (t.baseline, t.mirror):
            if drain_run is not None:
                _note_disturbance(run, f"{t.label}, {drain_run.consumer}", drain_run.cpu)
                if drain_run.attempts > 1:
                    run.notes.append(
                        f"{t.label}, {drain_run.consumer}: measured {drain_run.attempts} times "
                        "(the earlier runs were disturbed); the last one is reported"
                    )
    for r in run.latency:
        _note_disturbance(run, r.label, r.cpu)
        if r.attempts > 1:
            run.notes.append(
                f"{r.label}: measured {r.attempts} times (the earlier runs were disturbed); "
                "the last one is reported"
            )
    return run


def _note_disturbance(run: Run, label: str, cpu: CpuSplit | None) -> None:
    if cpu is not None and disturbed(cpu):
        run.notes.append(
            f"{label}: other processes used {cpu.other or 0:.2f} cores meanwhile; "
            "the figures are low, measure again on an idle machine"
        )


def _stop_on_signal(signum: int, _: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    # SIGTERM, and SIGINT even when started in the background (where it is ignored), unwind
    # like Ctrl-C: frozen workers are released and stopped, schemas dropped, files removed
    signal.signal(signal.SIGTERM, _stop_on_signal)
    signal.signal(signal.SIGINT, _stop_on_signal)
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
