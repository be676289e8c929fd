"""Leases, heartbeats and the rescuer, on both backends (for consumers that work outside the
database transaction): a worker that dies loses its jobs to the queue, never its effects twice."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import psycopg

from tests.integration.test_store_contract import incoming
from tests.integration.test_worker import guest_event
from zenoti_bridge.storage import Store
from zenoti_bridge.storage.jobs import claim_leased, finish_leased, heartbeat, rescue_expired
from zenoti_bridge.storage.postgres import psycopg_conninfo
from zenoti_bridge.storage.queries import Reader
from zenoti_bridge.storage.sqlconn import SqlConn
from zenoti_bridge.worker import Workers

T = TypeVar("T")
LEASE = timedelta(seconds=30)
NOW = datetime(2026, 11, 26, 13, 0, tzinfo=UTC)


@contextmanager
def transaction(url: str) -> Iterator[SqlConn]:
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield SqlConn(conn, "sqlite")
            conn.execute("COMMIT")
        finally:
            conn.close()
    else:
        with psycopg.connect(psycopg_conninfo(url)) as pg, pg.transaction():
            yield SqlConn(pg, "postgresql")


def run(url: str, work: Callable[[SqlConn], T]) -> T:
    with transaction(url) as sql:
        return work(sql)


async def test_a_lease_is_held_extended_and_finished_only_by_its_holder(
    store: Store, database_url: str, reader: Reader
) -> None:
    for n in range(3):
        await store.record_event(incoming(n))
    jobs = run(database_url, lambda sql: claim_leased(sql, "mirror", "w1", 10, NOW, LEASE))
    assert len(jobs) == 3
    assert run(database_url, lambda sql: claim_leased(sql, "mirror", "w2", 10, NOW, LEASE)) == []
    ids = [j.job_id for j in jobs]
    later = NOW + timedelta(seconds=20)
    assert run(database_url, lambda sql: heartbeat(sql, "w1", ids, later, LEASE)) == 3
    assert run(database_url, lambda sql: heartbeat(sql, "w2", ids, later, LEASE)) == 0
    # the heartbeat moved the leases: nothing has expired 40 s after the claim
    assert run(database_url, lambda sql: rescue_expired(sql, NOW + timedelta(seconds=40))) == 0
    assert not run(database_url, lambda sql: finish_leased(sql, "w2", ids[0], "succeeded", later))
    assert run(database_url, lambda sql: finish_leased(sql, "w1", ids[0], "succeeded", later))
    counts = reader.job_counts()
    assert counts == {("mirror", "succeeded"): 1, ("mirror", "running"): 2}


async def test_the_rescuer_requeues_the_jobs_of_a_dead_worker(
    store: Store, database_url: str, reader: Reader
) -> None:
    for n in range(4):
        await store.record_event(incoming(n))
    jobs = run(database_url, lambda sql: claim_leased(sql, "mirror", "dead", 2, NOW, LEASE))
    assert len(jobs) == 2
    expired = NOW + LEASE + timedelta(seconds=1)
    assert run(database_url, lambda sql: rescue_expired(sql, expired)) == 2
    assert reader.job_counts() == {("mirror", "queued"): 4}
    (job,) = reader.get_event(f"{0:024x}").jobs
    assert "lease expired" in (job["last_error"] or "")
    # the dead worker comes back too late: its finish is refused, the effect is not recorded
    assert not run(
        database_url, lambda sql: finish_leased(sql, "dead", jobs[0].job_id, "succeeded", expired)
    )


async def test_workers_run_the_rescuer(store: Store, database_url: str, reader: Reader) -> None:
    await store.record_event(guest_event(1, 1, 1)[0])
    run(database_url, lambda sql: claim_leased(sql, "mirror", "gone", 5, NOW, LEASE))
    workers = Workers(store, database_url=database_url, clock=lambda: NOW + 2 * LEASE)
    try:
        assert await workers.rescue_once() == 1
        assert await workers.run_until_idle() == 1
    finally:
        await workers.stop()
    assert reader.job_counts() == {("mirror", "succeeded"): 1}
