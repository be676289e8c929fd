"""Dead letters and replay: named write operations for operators (CLI and admin API).

Replaying puts an event's jobs back in the queue; the consumers' own idempotency (the mirror
merges by version) makes a replay safe to run any number of times.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Select, and_, func, select, update

from ..errors import Ambiguous, NotFound
from .migrate import make_engine
from .queries import EventFilter, apply_filter, as_utc
from .schema import events, jobs


@dataclass(frozen=True, slots=True)
class DeadLetter:
    job_id: int
    consumer: str
    attempts: int
    last_error: str | None
    failed_at: datetime
    source: str
    event_id: str
    event_type: str


def _dead_letters() -> Select[Any]:
    return (
        select(
            jobs.c.id,
            jobs.c.consumer,
            jobs.c.attempts,
            jobs.c.last_error,
            jobs.c.updated_at,
            events.c.source,
            events.c.event_id,
            events.c.type_name,
        )
        .select_from(jobs.join(events, events.c.id == jobs.c.event_pk))
        .where(jobs.c.status == "dead")
    )


class Operator:
    """Dead-letter and replay operations on one database."""

    def __init__(self, url: str) -> None:
        self.engine: Engine = make_engine(url)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Operator:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def dead_letters(
        self, source: str | None = None, limit: int = 100, before: int | None = None
    ) -> list[DeadLetter]:
        """Newest first; ``before`` is the job id of the last one already seen."""
        query = _dead_letters().order_by(jobs.c.id.desc()).limit(limit)
        if source is not None:
            query = query.where(events.c.source == source)
        if before is not None:
            query = query.where(jobs.c.id < before)
        return self._letters(query)

    def dead_letter(self, job_id: int) -> DeadLetter:
        for letter in self._letters(_dead_letters().where(jobs.c.id == job_id)):
            return letter
        raise NotFound(f"no dead letter with job id {job_id}")

    def _letters(self, query: Select[Any]) -> list[DeadLetter]:
        with self.engine.connect() as conn:
            return [
                DeadLetter(r[0], r[1], r[2], r[3], as_utc(r[4]) or datetime.now(UTC), *r[5:])
                for r in conn.execute(query)
            ]

    def requeue_dead(self, job_ids: list[int] | None = None, now: datetime | None = None) -> int:
        """Put dead jobs back in the queue (all of them when ``job_ids`` is None)."""
        where = jobs.c.status == "dead"
        if job_ids is not None:
            where = and_(where, jobs.c.id.in_(job_ids))
        return self._requeue(where, now)

    def replay_event(
        self, event_id: str, source: str | None = None, now: datetime | None = None
    ) -> int:
        """Queue every job of one event again; returns the jobs queued."""
        query = select(events.c.id, events.c.source).where(events.c.event_id == event_id)
        if source is not None:
            query = query.where(events.c.source == source)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        if not rows:
            raise NotFound(
                f"no event {event_id!r}" + (f" from source {source!r}" if source else "")
            )
        if len(rows) > 1:
            raise Ambiguous(f"event {event_id!r}", [r.source for r in rows])
        return self._requeue(jobs.c.event_pk == rows[0].id, now)

    def count_replay(self, where: EventFilter) -> int:
        """How many events a replay with this filter would queue again."""
        query = apply_filter(select(func.count()).select_from(events), where).where(events.c.routed)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def replay(
        self,
        where: EventFilter,
        *,
        chunk: int = 1000,
        progress: Callable[[int], bool] | None = None,
        now: datetime | None = None,
    ) -> int:
        """Queue the jobs of every matching event again, a chunk per transaction.

        ``progress(events_done)`` is called after each chunk; returning False cancels what is
        left (chunks already committed stay queued).
        """
        last = 0
        done = 0
        while True:
            query = apply_filter(select(events.c.id), where).where(events.c.routed)
            query = query.where(events.c.id > last).order_by(events.c.id).limit(chunk)
            with self.engine.connect() as conn:
                pks = [r[0] for r in conn.execute(query)]
            if not pks:
                return done
            self._requeue(jobs.c.event_pk.in_(pks), now)
            done += len(pks)
            last = pks[-1]
            if progress is not None and not progress(done):
                return done

    def _requeue(self, where: Any, now: datetime | None) -> int:
        now = now or datetime.now(UTC)
        with self.engine.begin() as conn:
            result = conn.execute(
                update(jobs)
                .where(where)
                .values(
                    status="queued",
                    attempts=0,
                    run_at=now,
                    updated_at=now,
                    last_error=None,
                    locked_by=None,
                    lease_until=None,
                )
            )
            touched = select(jobs.c.event_pk).where(where).scalar_subquery()
            conn.execute(update(events).where(events.c.id.in_(touched)).values(status="pending"))
        return int(result.rowcount)
