"""PostgreSQL store: psycopg 3 with a connection pool, ``synchronous_commit=on`` for intake.

Each delivery is one short transaction. A new event is one statement (the event row and its jobs
in a single CTE); a known one bumps the delivery count and records the delivery. PostgreSQL's own
group commit shares fsyncs between concurrent transactions. Many intake processes can write to one
database: the unique index on ``(source, event_id)`` decides which delivery stores the event.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ..errors import StorageUnavailable
from .migrate import redact
from .notify import JobAnnouncer
from .records import EventStatus, IncomingEvent, JobStatus, Outcome, QuarantineItem, Recorded

log = logging.getLogger(__name__)

_RECORD_NEW = """
WITH new_event AS (
    INSERT INTO events (source, event_id, delivery_id, event_type, type_name, family, resource,
        entity_id, ordering_key, routed, status, event_schema, event_timestamp, event_ts,
        received_at, last_seen_at, delivery_count, verb, signature, headers, query, body)
    VALUES (%(source)s, %(event_id)s, %(delivery_id)s, %(event_type)s, %(type_name)s, %(family)s,
        %(resource)s, %(entity_id)s, %(ordering_key)s, %(routed)s, %(status)s, %(event_schema)s,
        %(event_timestamp)s, %(event_ts)s, %(received_at)s, %(received_at)s, 1, %(verb)s,
        %(signature)s, %(headers)s, %(query)s, %(body)s)
    ON CONFLICT (source, event_id) DO NOTHING
    RETURNING id
), new_jobs AS (
    INSERT INTO jobs (event_pk, consumer, status, ordering_key, attempts, run_at, created_at,
        updated_at)
    SELECT new_event.id, consumer, %(job_status)s, %(ordering_key)s, 0, %(received_at)s,
        %(received_at)s, %(received_at)s
    FROM new_event, unnest(%(consumers)s::text[]) AS consumer
)
SELECT id FROM new_event
"""
_RECORD_DUPLICATE = """
WITH seen AS (
    UPDATE events SET delivery_count = delivery_count + 1,
        last_seen_at = GREATEST(last_seen_at, %(received_at)s)
    WHERE source = %(source)s AND event_id = %(event_id)s
    RETURNING id
)
INSERT INTO deliveries (event_pk, delivery_id, received_at, verb, signature, headers)
SELECT seen.id, %(delivery_id)s, %(received_at)s, %(verb)s, %(signature)s, %(headers)s FROM seen
RETURNING event_pk
"""
_QUARANTINE = """
INSERT INTO quarantine (source, received_at, verb, signature, reason, detail, event_id, headers,
    query, body, status)
VALUES (%(source)s, %(received_at)s, %(verb)s, %(signature)s, %(reason)s, %(detail)s,
    %(event_id)s, %(headers)s, %(query)s, %(body)s, 'held')
RETURNING id
"""
_PROBE = """
INSERT INTO store_probe (id, checked_at) VALUES (1, now())
ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at
"""


def psycopg_conninfo(url: str) -> str:
    """A libpq URL psycopg accepts (``postgres://`` and SQLAlchemy's ``+psycopg`` tolerated)."""
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url.removeprefix(prefix)
    return url


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    # an intake acknowledgement must survive a crash of the server: never trade that away
    await conn.execute("SET synchronous_commit = on")


class PostgresStore:
    """The scale-out store: many intake and worker processes share one database."""

    backend = "postgresql"

    def __init__(self, url: str, *, pool_size: int = 16, pool_timeout: float = 5.0) -> None:
        self.url = url
        self.pool_size = pool_size
        self.pool_timeout = pool_timeout
        self._pool: AsyncConnectionPool | None = None
        self._announcer: JobAnnouncer | None = None

    async def start(self) -> None:
        self._pool = AsyncConnectionPool(
            psycopg_conninfo(self.url),
            min_size=min(4, self.pool_size),
            max_size=self.pool_size,
            timeout=self.pool_timeout,
            configure=_configure,
            kwargs={"autocommit": True},  # each write below is one statement, atomic by itself
            open=False,
            name="zenoti-bridge",
        )
        # do not wait: a database that is down now must not keep intake from answering 503
        await self._pool.open(wait=False)
        self._announcer = JobAnnouncer(psycopg_conninfo(self.url))
        self._announcer.start()

    async def stop(self) -> None:
        if self._announcer is not None:
            await self._announcer.stop()
            self._announcer = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def _require_pool(self) -> AsyncConnectionPool:
        if self._pool is None:
            raise StorageUnavailable("the PostgreSQL store is not started")
        return self._pool

    async def record_event(self, event: IncomingEvent) -> Recorded:
        params = {
            "source": event.source,
            "event_id": event.event_id,
            "delivery_id": event.delivery_id,
            "event_type": event.event_type,
            "type_name": event.type_name,
            "family": event.family,
            "resource": event.resource,
            "entity_id": event.entity_id,
            "routed": event.routed,
            "status": EventStatus.PENDING if event.consumers else EventStatus.UNROUTED,
            "event_schema": event.event_schema,
            "event_timestamp": event.event_timestamp,
            "event_ts": event.event_ts,
            "received_at": event.received_at,
            "verb": event.verb,
            "signature": event.signature,
            "headers": event.headers.decode(),
            "query": event.query,
            "body": event.body,
            "job_status": JobStatus.QUEUED.value,
            "ordering_key": event.ordering_key,
            "consumers": list(event.consumers),
        }
        try:
            async with self._require_pool().connection() as conn:
                # one round trip for a new event (event and jobs in one statement); a concurrent
                # delivery may commit between the two statements, so try the pair again
                for _ in range(3):
                    row = await (await conn.execute(_RECORD_NEW, params)).fetchone()
                    if row is not None:
                        if self._announcer is not None:
                            self._announcer.announce()  # idle worker processes wake at once
                        return Recorded(Outcome.ACCEPTED, int(row[0]))
                    row = await (await conn.execute(_RECORD_DUPLICATE, params)).fetchone()
                    if row is not None:
                        return Recorded(Outcome.DUPLICATE, int(row[0]))
        except (psycopg.Error, PoolTimeout) as exc:
            # whatever failed, nothing was committed: answering 503 makes Zenoti send it again
            raise StorageUnavailable(f"PostgreSQL write failed: {exc}") from exc
        raise StorageUnavailable(f"event {event.event_id} neither inserted nor found")

    async def quarantine(self, item: QuarantineItem) -> int:
        params = {
            "source": item.source,
            "received_at": item.received_at,
            "verb": item.verb,
            "signature": item.signature,
            "reason": item.reason,
            "detail": item.detail,
            "event_id": item.event_id,
            "headers": item.headers.decode(),
            "query": item.query,
            "body": item.body,
        }
        try:
            async with self._require_pool().connection() as conn:
                row = await (await conn.execute(_QUARANTINE, params)).fetchone()
        except (psycopg.Error, PoolTimeout) as exc:
            raise StorageUnavailable(f"PostgreSQL write failed: {exc}") from exc
        assert row is not None
        return int(row[0])

    async def probe(self) -> None:
        try:
            async with self._require_pool().connection() as conn:
                await conn.execute(_PROBE)
        except (psycopg.Error, PoolTimeout) as exc:
            raise StorageUnavailable(f"PostgreSQL at {redact(self.url)}: {exc}") from exc
