"""What the pipeline benchmark reads from the store, with SQLAlchemy Core over the shared tables.

Reads only: the queue depth while workers drain it, when each mirror job was first seen done
(:class:`VisibilityWatch`), the stored times each latency comes from, and the mirror's rows for
the final check. On SQLite every read runs beside the writer (WAL); none holds a transaction
open for long.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, func, select

from zenoti_bridge.storage.queries import as_utc
from zenoti_bridge.storage.schema import events, jobs, mirror_tables

MIRROR = "mirror"


def queued_jobs(engine: Engine) -> int:
    """Mirror jobs not finished yet (claimed ones stay ``queued`` until their batch commits)."""
    query = (
        select(func.count())
        .select_from(jobs)
        .where(jobs.c.consumer == MIRROR, jobs.c.status == "queued")
    )
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


class VisibilityWatch:
    """Polls the store every ``interval`` seconds from a thread: the wall time at which each
    mirror job was first seen ``succeeded``, i.e. when its effect was visible to a reader.

    A time is at most one poll (plus the poll's own duration) late, never early. It keeps one
    connection for all its polls, ending the transaction after each. Each poll
    reads the ids of succeeded jobs from the lowest id still queued at the previous poll (less
    a margin, for ids PostgreSQL hands out before the row commits), so it stays small however
    many jobs are done.
    """

    MARGIN = 64

    def __init__(self, engine: Engine, interval: float = 0.02) -> None:
        self.engine = engine
        self.interval = interval
        self.seen: dict[int, float] = {}
        self.polls = 0
        self.failures = 0
        self._floor = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="visibility-watch", daemon=True)

    def __enter__(self) -> VisibilityWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        conn: Connection | None = None
        while not self._stop.wait(self.interval):
            try:
                if conn is None:
                    conn = self.engine.connect()
                self._poll(conn)
            except Exception:  # a busy store must not end the run; the gap shows as lateness
                self.failures += 1
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def _poll(self, conn: Connection) -> None:
        lowest = (
            select(func.min(jobs.c.id))
            .where(jobs.c.consumer == MIRROR, jobs.c.status == "queued")
            .scalar_subquery()
        )
        done = select(jobs.c.id).where(
            jobs.c.consumer == MIRROR, jobs.c.status == "succeeded", jobs.c.id >= self._floor
        )
        floor = conn.execute(select(lowest)).scalar_one_or_none()
        ids = conn.execute(done).scalars().all()
        conn.rollback()  # no snapshot kept between polls (it would hold back SQLite checkpoints)
        now = time.time()
        for job_id in ids:
            self.seen.setdefault(int(job_id), now)
        self.polls += 1
        if floor is None:  # nothing queued: what comes next gets higher ids
            floor = max(self.seen, default=0) + 1
        self._floor = max(0, int(floor) - self.MARGIN)


@dataclass(frozen=True, slots=True)
class JobTimes:
    """One event's mirror job: when the intake received it and when the job was finished."""

    job_id: int
    event_id: str
    status: str
    received_at: datetime
    updated_at: datetime


def job_times(engine: Engine) -> list[JobTimes]:
    """Every mirror job with its event's ``received_at`` and its own ``updated_at``."""
    query = select(
        jobs.c.id, events.c.event_id, jobs.c.status, events.c.received_at, jobs.c.updated_at
    ).select_from(jobs.join(events, events.c.id == jobs.c.event_pk))
    with engine.connect() as conn:
        rows = conn.execute(query.where(jobs.c.consumer == MIRROR)).all()
    found = []
    for job_id, event_id, status, received_at, updated_at in rows:
        received, updated = as_utc(received_at), as_utc(updated_at)
        assert received is not None and updated is not None
        found.append(JobTimes(int(job_id), str(event_id), str(status), received, updated))
    return found


def mirror_rows(engine: Engine) -> dict[str, dict[str, str]]:
    """``{resource: {entity id: last_event_id}}`` for every row of every mirror table."""
    found: dict[str, dict[str, str]] = {}
    with engine.connect() as conn:
        for resource, table in mirror_tables.items():
            rows = conn.execute(select(table.c.id, table.c.last_event_id)).all()
            if rows:
                found[resource] = {str(i): str(e) for i, e in rows}
    return found
