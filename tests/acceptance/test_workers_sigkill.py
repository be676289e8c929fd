"""``kill -9`` of the workers at random moments loses no event and applies none twice.

The issue's "done when": SIGKILL tests on SQLite and PostgreSQL: a worker killed at random moments
during 20,000 events; after restart everything is processed and nothing applied twice.

How: with no worker running, an ``intake`` process stores 20,000 distinct events of every kind
(about 600 entities, timestamps in any order, some equal) delivered with 2,000 duplicates in
shuffled order. Then the workers run: ``zenoti-bridge worker`` on PostgreSQL, and on SQLite
``serve``, which runs them in its own process. Three times, the running worker gets SIGKILL once
it has finished a seeded random 1,000 to 5,000 jobs plus a seeded random 0 to 250 ms (about two
batches, so the kill falls anywhere in a batch: claiming, applying or committing), and a fresh
one starts on the same configuration. When every job has succeeded the last worker is SIGKILLed
too, so the checks read only what is durable:

- every mirror job succeeded with ``attempts == 1``. A batch's mirror writes and its jobs' "done"
  are one transaction and ``attempts`` grows only in that commit, so 1 means the effect was
  committed exactly once: a killed batch left nothing and was done again by the next worker;
- no job is dead and every event is processed;
- the mirror equals the pure reference (``apply_all``) over the distinct events, column by column.

The seed is ``ZB_TEST_SEED`` (printed with the results).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from pathlib import Path

import pytest

from zenoti_bridge.storage import migrate as migrations
from zenoti_bridge.storage.queries import EventFilter, Reader

from .serve_process import ServeProcess, ServeProcesses, free_port, running, write_config
from .traffic import (
    SECRET,
    SOURCE,
    deliver,
    job_outcomes,
    make_deliveries,
    make_events,
    membership_history_rows,
    mirror_mismatches,
    succeeded_jobs,
    wait_for_succeeded,
)

EVENTS = 20_000
DUPLICATES = 2_000
KILLS = 3
JOBS_BEFORE_KILL = (1_000, 5_000)  # jobs a worker finishes before its SIGKILL, seeded
KILL_DELAY = (0.0, 0.25)  # seconds after that, seeded: where in a batch the kill falls
SEED = int(os.environ.get("ZB_TEST_SEED", "20240611"))
PHASE_TIMEOUT = 90.0  # a hang guard, not a performance expectation

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def bridge_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database on each backend, migrated once before any process starts."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'bridge.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    migrations.upgrade(url)
    return url


def test_workers_killed_at_random_moments_apply_every_event_exactly_once(
    bridge_database_url: str, tmp_path: Path
) -> None:
    started = time.perf_counter()
    rng = random.Random(SEED)
    events = make_events(EVENTS, rng)
    deliveries = make_deliveries(events, duplicates=DUPLICATES, rng=rng)
    kill_after = [(rng.randint(*JOBS_BEFORE_KILL), rng.uniform(*KILL_DELAY)) for _ in range(KILLS)]
    config = write_config(
        tmp_path / "bridge.toml", bridge_database_url, port=free_port(), secret=SECRET
    )
    sqlite = bridge_database_url.startswith("sqlite")

    def start_worker(processes: ServeProcesses) -> ServeProcess:
        if sqlite:  # the embedded deployment: serve runs the workers in its own process
            return processes.start(config, "serve", port=free_port(), options=["--no-migrate"])
        return processes.start(config, "worker", options=["--no-migrate"])

    with ServeProcesses(tmp_path) as processes, Reader(bridge_database_url) as reader:
        # 1. intake alone stores every event: the queue is full before any worker runs
        port = free_port()
        intake = processes.start(config, "intake", port=port, options=["--no-migrate"])
        intake.wait_ready()
        intake_started = time.perf_counter()
        answers = asyncio.run(deliver([port], deliveries))
        intake_seconds = time.perf_counter() - intake_started
        intake.kill()  # one process at a time on SQLite; what was acknowledged is durable
        assert not answers.failures, answers.failures[:5]
        assert answers.counts == {"accepted": EVENTS, "duplicate": DUPLICATES}
        assert succeeded_jobs(reader) == 0, "no worker has run yet"

        # 2. workers, each SIGKILLed amid its batches after a random share of the work
        work_started = time.perf_counter()
        kills: list[int] = []  # jobs done when each worker was killed
        for quota, delay in kill_after:
            worker = start_worker(processes)
            wait_for_succeeded(
                reader,
                succeeded_jobs(reader) + quota,
                timeout=PHASE_TIMEOUT,
                alive=running(worker),
            )
            time.sleep(delay)  # not a wait for anything: this picks the moment of the kill
            assert worker.kill() == -signal.SIGKILL
            kills.append(succeeded_jobs(reader))
        assert max(kills) < EVENTS, f"every kill must come while work remains: {kills}"

        # 3. after the last restart everything is processed; kill that worker too
        worker = start_worker(processes)
        wait_for_succeeded(reader, EVENTS, timeout=PHASE_TIMEOUT, alive=running(worker))
        work_seconds = time.perf_counter() - work_started
        worker.kill()

        # 4. every job finished exactly once, nothing dead, the mirror as the reference says
        outcomes = job_outcomes(reader)
        assert outcomes == {("mirror", "succeeded", 1): EVENTS}, outcomes
        assert reader.count_events(EventFilter(status="processed")) == EVENTS
        stored = {event_id: (rows, jobs) for event_id, rows, jobs in reader.event_id_counts(SOURCE)}
        assert stored.keys() == {e.event_id for e in events}
        assert set(stored.values()) == {(1, 1)}, "one row and one job per event"
        compared, mismatches = mirror_mismatches(reader, events)
        assert not mismatches, f"{len(mismatches)} differences:\n" + "\n".join(mismatches[:10])
        memberships = sum(e.event_type.startswith("Guest.Membership.") for e in events)
        assert membership_history_rows(reader) == memberships

    backend = bridge_database_url.split(":", 1)[0]
    print(
        f"\n[workers sigkill {backend}] seed {SEED}: {EVENTS} events + {DUPLICATES} duplicates "
        f"stored in {intake_seconds:.1f} s; workers killed with {kills} jobs done; "
        f"all processed in {work_seconds:.1f} s; {compared} entities match the reference; "
        f"total {time.perf_counter() - started:.1f} s"
    )
