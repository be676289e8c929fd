"""Workers: turn queued jobs into effects, here the mirror consumer.

A worker claims a batch of due jobs, applies their events to the mirror, and marks the jobs
done, all in one transaction: a worker killed at any moment leaves either the whole batch done or
none of it, so no effect is applied twice and nothing is lost. On SQLite the batch runs in the
store's writer thread; on PostgreSQL each worker has its own connection in a thread, and
``SKIP LOCKED`` plus per-entity advisory locks let any number of worker processes share the
queue without two of them touching one entity at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sqlite3
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import psycopg

from .clock import Clock, system_clock
from .config import Settings
from .errors import StorageUnavailable
from .mirror import Decoded, MirrorEvent, apply_decoded, decode_events, lock_keys
from .retry import Retry, RetryPolicy
from .storage import SQLiteStore, Store
from .storage.jobs import (
    ClaimedJob,
    claim_in_transaction,
    finish,
    lock_entities,
    rescue_expired,
    try_lock_entities,
)
from .storage.notify import JobListener
from .storage.postgres import psycopg_conninfo
from .storage.sqlconn import SqlConn
from .threads import name_this_thread

log = logging.getLogger(__name__)
MIRROR = "mirror"
T = TypeVar("T")
MIRROR_POLICY = RetryPolicy(delays=(1.0, 5.0, 30.0, 120.0, 600.0), max_attempts=8)


@dataclass(slots=True)
class WorkerStats:
    batches: int = 0
    jobs: int = 0
    dead: int = 0
    failures: int = 0


DATABASE_ERRORS = (sqlite3.Error, psycopg.Error)


def _outage(exc: Exception) -> bool:
    """True when the database itself failed (the connection, the server, the disk, a lock held
    too long): the whole batch waits and is tried again. Anything else it refuses (a number past
    its column's range, text it cannot hold, a key too long for an index, a value of the wrong
    type) is the event's problem, like a bug only that event triggers: it fails its own job."""
    if isinstance(exc, psycopg.errors.ProgramLimitExceeded):  # an OperationalError, yet a value's
        return False
    return isinstance(
        exc, (sqlite3.OperationalError, psycopg.OperationalError, psycopg.InterfaceError)
    )


def run_mirror_batch(
    sql: SqlConn,
    limit: int,
    now: datetime,
    policy: RetryPolicy = MIRROR_POLICY,
    rng: random.Random | None = None,
) -> tuple[int, int]:
    """Claim, apply and finish one batch in the caller's transaction: (jobs done, jobs dead).

    A failing database aborts the whole batch (the caller's transaction rolls back and the jobs
    stay queued). Any other error, a value the database refuses included, is a bug or a poisoned
    event: the batch is then applied job by job, each under a savepoint, and only the failing
    jobs are retried by the policy or go dead, so one bad event never blocks the queue.
    """
    jobs = claim_in_transaction(sql, MIRROR, limit, now)
    if not jobs:
        return 0, 0
    events = {j.job_id: MirrorEvent(j.job_id, j.source, j.body) for j in jobs}
    retry: dict[int, tuple[datetime, str]] = {}
    dead: dict[int, str] = {}
    savepoint = False
    try:
        per_job = {j.job_id: decode_events([events[j.job_id]]) for j in jobs}
        # locks before the savepoint: rolling back to it must not release them
        jobs = _uncontended(sql, jobs, per_job)
        if not jobs:
            return 0, 0
        decoded = [change for j in jobs for change in per_job[j.job_id][0]]
        dead = {k: v for j in jobs for k, v in per_job[j.job_id][1].items()}
        sql.run("SAVEPOINT mirror_batch")
        savepoint = True
        apply_decoded(sql, decoded, now)
        sql.run("RELEASE SAVEPOINT mirror_batch")
    except Exception as exc:
        if _outage(exc) or (isinstance(exc, DATABASE_ERRORS) and not savepoint):
            raise  # outside the savepoint a refused statement leaves nothing to roll back to
        if savepoint:
            sql.run("ROLLBACK TO SAVEPOINT mirror_batch")
        lock_entities(sql, {_ordering_key(j) for j in jobs})
        dead = {}
        for job in jobs:
            try:
                one, one_dead = decode_events([events[job.job_id]])
                lock_entities(sql, lock_keys(one))
            except DATABASE_ERRORS:
                raise
            except Exception:
                one, one_dead = None, {}
            sql.run("SAVEPOINT mirror_job")
            try:
                if one is None:  # decoding itself failed: let apply raise it again, on record
                    one, one_dead = decode_events([events[job.job_id]])
                apply_decoded(sql, one, now)
                dead.update(one_dead)
                sql.run("RELEASE SAVEPOINT mirror_job")
            except Exception as exc:
                if _outage(exc):
                    raise
                sql.run("ROLLBACK TO SAVEPOINT mirror_job")
                log.exception("mirror job %d failed", job.job_id)
                age = (now - job.created_at).total_seconds()
                decision = policy.decide(
                    attempts=job.attempts + 1, age=age, error=exc, rng=rng or random.Random()
                )
                message = f"{type(exc).__name__}: {exc}"
                if isinstance(decision, Retry):
                    retry[job.job_id] = (now + timedelta(seconds=decision.delay), message)
                else:
                    dead[job.job_id] = decision.reason
    done = [j.job_id for j in jobs if j.job_id not in dead and j.job_id not in retry]
    finish(sql, done, dead, now, retry)
    return len(done), len(dead)


def _ordering_key(job: ClaimedJob) -> str:
    return job.ordering_key or f"job:{job.job_id}"


def _uncontended(
    sql: SqlConn, jobs: list[ClaimedJob], per_job: dict[int, tuple[Decoded, dict[int, str]]]
) -> list[ClaimedJob]:
    """The jobs whose every entity this transaction could lock without waiting.

    Another worker applying a batch that touches one of a job's entities holds its lock; that
    job is left queued (the claim's row lock ends with this transaction) and a later batch takes
    it, instead of this worker waiting for the other's whole batch. The mirror's merge does not
    depend on order, so skipping ahead is safe; two workers never touch one entity at once.
    """
    if sql.dialect != "postgresql":
        return jobs  # the single writer is alone
    wanted = {j.job_id: {_ordering_key(j)} | lock_keys(per_job[j.job_id][0]) for j in jobs}
    sql.run("SAVEPOINT mirror_probe")
    held = try_lock_entities(sql, set().union(*wanted.values()))
    free = [j for j in jobs if wanted[j.job_id] <= held]
    if free:
        sql.run("RELEASE SAVEPOINT mirror_probe")
        return free
    # every job waits for another worker: let go of what was taken (rolling back the savepoint
    # releases its locks), then wait for the oldest job's entities alone, holding nothing else,
    # so that waiting can never close a cycle with another waiting worker
    sql.run("ROLLBACK TO SAVEPOINT mirror_probe")
    oldest = jobs[0]
    lock_entities(sql, wanted[oldest.job_id])
    return [oldest]


class _PostgresLane:
    """One worker's own connection, used from one thread of its own."""

    def __init__(self, url: str, batch_size: int, policy: RetryPolicy = MIRROR_POLICY) -> None:
        self.url = url
        self.batch_size = batch_size
        self.policy = policy
        # named for the OS too (zb-worker_0), so that `top -H` tells the lanes from the event loop
        self.executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="zb-worker", initializer=name_this_thread
        )
        self.conn: psycopg.Connection[Any] | None = None

    async def run(self, now: datetime) -> tuple[int, int]:
        return await self.call(lambda sql: run_mirror_batch(sql, self.batch_size, now, self.policy))

    async def call(self, work: Callable[[SqlConn], T]) -> T:
        """Run ``work`` in one transaction on this lane's connection, in its thread."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, self._call, work)

    def _call(self, work: Callable[[SqlConn], T]) -> T:
        if self.conn is None or self.conn.closed:
            self.conn = psycopg.connect(psycopg_conninfo(self.url), connect_timeout=5)
        try:
            with self.conn.transaction():
                return work(SqlConn(self.conn, "postgresql"))
        except psycopg.OperationalError:
            self.conn.close()
            raise

    async def close(self) -> None:
        def close_connection() -> None:
            if self.conn is not None:
                self.conn.close()

        await asyncio.get_running_loop().run_in_executor(self.executor, close_connection)
        self.executor.shutdown(wait=True)


def workers_for(store: Store, settings: Settings, **overrides: Any) -> Workers:
    """Workers configured by ``[workers]`` and ``[consumers.mirror]``."""
    options: dict[str, Any] = {
        "database_url": settings.database.url,
        "concurrency": settings.workers.concurrency,
        "batch_size": settings.workers.batch_size,
        "rescue_interval": settings.workers.rescue_interval,
        "idle_wait": settings.workers.idle_wait,
        "policy": settings.retry_policy(MIRROR),
    }
    options.update(overrides)
    return Workers(store, **options)


class Workers:
    """In-process workers for one store; ``wake()`` after an accept cuts the idle wait short."""

    def __init__(
        self,
        store: Store,
        *,
        database_url: str,
        concurrency: int = 2,
        batch_size: int = 200,
        idle_wait: float = 0.1,
        rescue_interval: float = 10.0,
        policy: RetryPolicy = MIRROR_POLICY,
        clock: Clock = system_clock,
    ) -> None:
        self.store = store
        self.database_url = database_url
        self.concurrency = 1 if isinstance(store, SQLiteStore) else concurrency
        self.batch_size = batch_size
        self.idle_wait = idle_wait
        self.clock = clock
        self.stats = WorkerStats()
        self._idle_lanes: deque[asyncio.Event] = deque()  # lanes waiting for work, oldest first
        self._wake_pending = False  # a wake-up came while no lane was waiting
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._lanes: list[_PostgresLane] = []
        self._rescue_lane: _PostgresLane | None = None
        self._listener: JobListener | None = None
        self.rescue_interval = rescue_interval
        self.policy = policy

    def wake(self) -> None:
        """New jobs exist: wake one waiting lane (not all of them: the others would only find
        the queue empty, and many tiny batches cost more than a few bigger ones)."""
        while self._idle_lanes:
            waiting = self._idle_lanes.popleft()
            if not waiting.is_set():
                waiting.set()
                return
        self._wake_pending = True  # every lane is busy: the next one to finish looks again

    async def _wait_for_work(self, patience: float) -> None:
        if self._wake_pending:
            self._wake_pending = False
            return
        waiting = asyncio.Event()
        self._idle_lanes.append(waiting)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiting.wait(), timeout=patience)
        finally:
            with contextlib.suppress(ValueError):
                self._idle_lanes.remove(waiting)

    async def start(self) -> None:
        self._stopping.clear()
        if not isinstance(self.store, SQLiteStore):
            # other processes' intake announces new jobs: wake at once instead of at the next poll
            loop = asyncio.get_running_loop()

            def on_jobs() -> None:
                with contextlib.suppress(RuntimeError):  # the loop is closing
                    loop.call_soon_threadsafe(self.wake)

            self._listener = JobListener(psycopg_conninfo(self.database_url), on_jobs)
            self._listener.start()
        self._tasks = [
            asyncio.create_task(self._loop(n), name=f"zb-worker-{n}")
            for n in range(self.concurrency)
        ]
        self._tasks.append(asyncio.create_task(self._rescuer(), name="zb-rescuer"))

    async def rescue_once(self) -> int:
        """Return jobs whose lease expired (their worker died) to the queue."""
        now = self.clock()
        if isinstance(self.store, SQLiteStore):
            result = await self.store.in_writer(
                lambda conn: rescue_expired(SqlConn(conn, "sqlite"), now)
            )
            return int(result)
        if self._rescue_lane is None:
            self._rescue_lane = _PostgresLane(self.database_url, 1)
        return await self._rescue_lane.call(lambda sql: rescue_expired(sql, now))

    async def _rescuer(self) -> None:
        while not self._stopping.is_set():
            try:
                rescued = await self.rescue_once()
                if rescued:
                    log.warning("rescuer: %d job(s) whose worker stopped are queued again", rescued)
            except (StorageUnavailable, psycopg.Error, sqlite3.Error) as exc:
                log.warning("rescuer: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self.rescue_interval)

    async def stop(self) -> None:
        """Let every batch in flight finish, then close the workers' connections."""
        self._stopping.set()
        for waiting in self._idle_lanes:
            waiting.set()
        if self._listener is not None:
            await asyncio.to_thread(self._listener.stop)
            self._listener = None
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for lane in [*self._lanes, *([self._rescue_lane] if self._rescue_lane else [])]:
            await lane.close()
        self._lanes = []
        self._rescue_lane = None

    async def run_until_idle(self) -> int:
        """Process batches until none is due; returns the jobs handled (for tests and tools)."""
        total = 0
        while (handled := await self.run_once()) > 0:
            total += handled
        return total

    async def run_once(self, lane: int = 0) -> int:
        """One batch; returns how many jobs it finished (succeeded or dead)."""
        now = self.clock()
        if isinstance(self.store, SQLiteStore):
            result = await self.store.in_writer(
                lambda conn: run_mirror_batch(
                    SqlConn(conn, "sqlite"), self.batch_size, now, self.policy
                )
            )
            done, dead = int(result[0]), int(result[1])
        else:
            while len(self._lanes) <= lane:
                self._lanes.append(_PostgresLane(self.database_url, self.batch_size, self.policy))
            done, dead = await self._lanes[lane].run(now)
        if done or dead:
            self.stats.batches += 1
            self.stats.jobs += done
            self.stats.dead += dead
        return done + dead

    async def _loop(self, lane: int) -> None:
        backoff = self.idle_wait
        while not self._stopping.is_set():
            try:
                handled = await self.run_once(lane)
                backoff = self.idle_wait
            except (StorageUnavailable, psycopg.Error, sqlite3.Error) as exc:
                self.stats.failures += 1
                log.warning("worker %d: batch failed, will retry: %s", lane, exc)
                handled, backoff = 0, min(backoff * 2, 5.0)
            if handled == 0 and not self._stopping.is_set():
                await self._wait_for_work(backoff)
