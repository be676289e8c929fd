"""Scale-out on PostgreSQL: two intakes and three workers, one of them killed, exactly once.

The issue's "done when": an acceptance test on PostgreSQL runs 2 intake and 3 worker processes,
sends 20,000 events with duplicates in shuffled order, SIGKILLs a worker mid-run, and checks the
mirror against the expected state and that no effect ran twice.

How: two ``zenoti-bridge intake`` processes listen on two ports with one configuration, and three
``zenoti-bridge worker`` processes share the queue. 32 keep-alive connections, half to each intake,
deliver 20,000 distinct events of every kind (about 600 entities, timestamps in any order, some
equal) and 2,000 re-deliveries of some of them, all shuffled, so copies of one event reach both
intakes at once. While the workers keep up with the load, one of them, chosen by the seed, gets
SIGKILL once a seeded 30 % to 60 % of the events are applied, at a moment when PostgreSQL shows
its connection inside a transaction (amid a batch). It is not restarted; the other two finish.
Then every process is SIGKILLed, so the checks read only what is durable:

- each event got exactly one ``accepted`` answer, and there are as many ``duplicate`` answers as
  re-deliveries; the store holds each event once with one job, and its delivery counts add up to
  every delivery acknowledged;
- every mirror job succeeded with ``attempts == 1``: a batch's mirror writes and its jobs' "done"
  are one transaction, and ``attempts`` grows only in that commit, so no effect ran twice, and
  the batches the killed worker had in flight were rolled back and done by the others;
- the mirror equals the pure reference (``apply_all``) over the distinct events, column by column.

The seed is ``ZB_TEST_SEED`` (printed with the results).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text

from zenoti_bridge.storage import migrate as migrations
from zenoti_bridge.storage.queries import EventFilter, Reader

from .serve_process import ServeProcess, ServeProcesses, free_port, running, write_config
from .traffic import (
    POLL_INTERVAL,
    SECRET,
    SOURCE,
    Answers,
    Delivery,
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
INTAKES = 2
WORKERS = 3
KILL_BETWEEN = (0.30, 0.60)  # share of the events applied when the worker is killed
SEED = int(os.environ.get("ZB_TEST_SEED", "20240612"))
PHASE_TIMEOUT = 90.0  # a hang guard, not a performance expectation

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@dataclass(frozen=True, slots=True)
class Kill:
    """The moment the victim died: its open transactions, jobs applied, deliveries answered."""

    transactions: int
    applied: int
    acknowledged: int


def with_application_name(url: str, name: str) -> str:
    """The URL with a libpq ``application_name``, so pg_stat_activity shows who is connected."""
    return f"{url}{'&' if '?' in url else '?'}application_name={name}"


def open_transactions(reader: Reader, application_name: str) -> int:
    """Connections of ``application_name`` inside a transaction: a worker amid a batch."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE application_name = :name AND xact_start IS NOT NULL"
    )
    with reader.engine.connect() as conn:
        return int(conn.execute(query, {"name": application_name}).scalar_one())


async def deliver_and_kill(
    ports: Sequence[int],
    deliveries: Sequence[Delivery],
    *,
    reader: Reader,
    victim: ServeProcess,
    victim_name: str,
    kill_at: int,
    others: Sequence[ServeProcess],
) -> tuple[Answers, Kill]:
    """Deliver everything; meanwhile SIGKILL ``victim`` amid a batch once ``kill_at`` jobs are
    applied (``victim_name`` is its connections' application_name)."""
    answers = Answers()
    sending = asyncio.create_task(deliver(ports, deliveries, answers=answers))
    deadline = time.monotonic() + PHASE_TIMEOUT
    alive = running(victim, *others)
    while (applied := await asyncio.to_thread(succeeded_jobs, reader)) < kill_at:
        alive()
        assert time.monotonic() < deadline, f"only {applied} of {kill_at} jobs applied"
        await asyncio.sleep(POLL_INTERVAL)
    while (busy := await asyncio.to_thread(open_transactions, reader, victim_name)) == 0:
        alive()
        assert time.monotonic() < deadline, "the victim never started another batch"
        await asyncio.sleep(POLL_INTERVAL / 4)
    acknowledged = answers.acknowledged
    assert victim.kill() == -signal.SIGKILL
    kill = Kill(busy, await asyncio.to_thread(succeeded_jobs, reader), acknowledged)
    async with asyncio.timeout(PHASE_TIMEOUT):
        await sending
    return answers, kill


def test_two_intakes_and_three_workers_one_killed_apply_every_event_exactly_once(
    postgres_url: str, tmp_path: Path
) -> None:
    started = time.perf_counter()
    rng = random.Random(SEED)
    events = make_events(EVENTS, rng)
    deliveries = make_deliveries(events, duplicates=DUPLICATES, rng=rng)
    kill_at = round(EVENTS * rng.uniform(*KILL_BETWEEN))
    victim_number = rng.randrange(WORKERS)
    migrations.upgrade(postgres_url)
    config = write_config(tmp_path / "bridge.toml", postgres_url, port=free_port(), secret=SECRET)
    victim_name = f"zb-victim-{uuid.uuid4().hex[:12]}"
    victim_config = write_config(
        tmp_path / "victim.toml",
        with_application_name(postgres_url, victim_name),
        port=free_port(),
        secret=SECRET,
    )

    with ServeProcesses(tmp_path) as processes, Reader(postgres_url) as reader:
        ports = [free_port() for _ in range(INTAKES)]
        intakes = [
            processes.start(config, "intake", port=port, options=["--no-migrate"]) for port in ports
        ]
        workers = [
            processes.start(
                victim_config if n == victim_number else config, "worker", options=["--no-migrate"]
            )
            for n in range(WORKERS)
        ]
        for intake in intakes:
            intake.wait_ready()
        victim = workers[victim_number]
        survivors = [w for w in workers if w is not victim]

        # 1. the load, with one worker SIGKILLed mid-run
        load_started = time.perf_counter()
        answers, kill = asyncio.run(
            deliver_and_kill(
                ports,
                deliveries,
                reader=reader,
                victim=victim,
                victim_name=victim_name,
                kill_at=kill_at,
                others=[*intakes, *survivors],
            )
        )
        load_seconds = time.perf_counter() - load_started
        assert kill.applied < EVENTS, "the kill must come while work remains"

        # 2. the two other workers finish; then everything is killed
        wait_for_succeeded(
            reader, EVENTS, timeout=PHASE_TIMEOUT, alive=running(*intakes, *survivors)
        )
        run_seconds = time.perf_counter() - load_started
        for process in [*intakes, *survivors]:
            assert process.kill() == -signal.SIGKILL, f"{process.role} must still run"

        # 3. answers: one acceptance per event, one duplicate answer per re-delivery
        assert not answers.failures, answers.failures[:5]
        accepted = {e: s.count("accepted") for e, s in answers.statuses.items()}
        assert accepted.keys() == {e.event_id for e in events}
        assert set(accepted.values()) == {1}, "every event is accepted exactly once"
        assert answers.counts == {"accepted": EVENTS, "duplicate": DUPLICATES}

        # 4. the store: each event once with one job; every acknowledged delivery counted
        stored = {event_id: (rows, jobs) for event_id, rows, jobs in reader.event_id_counts(SOURCE)}
        assert stored.keys() == accepted.keys()
        assert set(stored.values()) == {(1, 1)}, "one row and one job per event"
        assert reader.deliveries_count(SOURCE) == answers.acknowledged == EVENTS + DUPLICATES

        # 5. no effect ran twice, nothing is dead, and the mirror is the reference's
        outcomes = job_outcomes(reader)
        assert outcomes == {("mirror", "succeeded", 1): EVENTS}, outcomes
        assert reader.count_events(EventFilter(status="processed")) == EVENTS
        compared, mismatches = mirror_mismatches(reader, events)
        assert not mismatches, f"{len(mismatches)} differences:\n" + "\n".join(mismatches[:10])
        memberships = sum(e.event_type.startswith("Guest.Membership.") for e in events)
        assert membership_history_rows(reader) == memberships

    print(
        f"\n[scale-out postgresql] seed {SEED}: {INTAKES} intakes, {WORKERS} workers; "
        f"{EVENTS} events + {DUPLICATES} duplicates sent in {load_seconds:.1f} s; "
        f"worker {victim_number + 1} killed in {kill.transactions} open transaction(s) with "
        f"{kill.applied} of {EVENTS} applied and "
        f"{kill.acknowledged} of {len(deliveries)} deliveries acknowledged; "
        f"all applied after {run_seconds:.1f} s; {compared} entities match the reference; "
        f"total {time.perf_counter() - started:.1f} s"
    )
