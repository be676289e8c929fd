"""Named job operations (the outbox), written once for both backends over :class:`SqlConn`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .sqlconn import SqlConn


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    job_id: int
    event_pk: int
    source: str
    ordering_key: str | None
    body: bytes
    attempts: int
    created_at: datetime


def claim_in_transaction(
    sql: SqlConn, consumer: str, limit: int, now: datetime
) -> list[ClaimedJob]:
    """Take up to ``limit`` due jobs for the rest of the caller's transaction.

    PostgreSQL: the rows are locked, and ``SKIP LOCKED`` leaves them to other workers; lock the
    entities the jobs will touch with :func:`lock_entities` before reading them. SQLite: the
    single writer already runs one transaction at a time.
    """
    lock = " FOR UPDATE OF j SKIP LOCKED" if sql.dialect == "postgresql" else ""
    rows = sql.rows(
        "SELECT j.id, j.event_pk, e.source, j.ordering_key, e.body, j.attempts, j.created_at "
        "FROM jobs j "
        "JOIN events e ON e.id = j.event_pk "
        "WHERE j.consumer = :consumer AND j.status = 'queued' AND j.run_at <= :now "
        f"ORDER BY j.id LIMIT :limit{lock}",
        {"consumer": consumer, "now": now, "limit": limit},
    )
    jobs = [
        ClaimedJob(int(r[0]), int(r[1]), r[2], r[3], bytes(r[4]), int(r[5]), _utc(r[6]))
        for r in rows
    ]
    return jobs


def lock_entities(sql: SqlConn, keys: set[str]) -> None:
    """Hold ``keys`` (entities) until the transaction ends, so no two workers touch one entity.

    PostgreSQL: transaction-scoped advisory locks, taken in sorted order so that two workers
    wanting overlapping sets cannot deadlock. SQLite: nothing to do (one writer).
    """
    if sql.dialect == "postgresql" and keys:
        sql.rows(
            "SELECT pg_advisory_xact_lock(h) FROM "
            "(SELECT DISTINCT hashtextextended(k, 0) AS h FROM unnest(CAST(:keys AS text[])) AS k "
            "ORDER BY h) AS ordered",
            {"keys": sorted(keys)},
        )


def try_lock_entities(sql: SqlConn, keys: set[str]) -> set[str]:
    """Take, without waiting, whichever of ``keys`` no other transaction holds; returns those.

    PostgreSQL: transaction-scoped advisory locks (never waited for, so never a deadlock).
    SQLite: every key (the single writer is alone).
    """
    if sql.dialect != "postgresql" or not keys:
        return set(keys)
    rows = sql.rows(
        "SELECT k FROM unnest(CAST(:keys AS text[])) AS k "
        "WHERE pg_try_advisory_xact_lock(hashtextextended(k, 0))",
        {"keys": sorted(keys)},
    )
    return {str(r[0]) for r in rows}


def finish(
    sql: SqlConn,
    succeeded: Sequence[int],
    dead: Mapping[int, str],
    now: datetime,
    retry: Mapping[int, tuple[datetime, str]] | None = None,
) -> None:
    """Record the outcome of claimed jobs; events whose jobs all succeeded become processed."""
    sql.run_many(
        "UPDATE jobs SET status = 'queued', attempts = attempts + 1, run_at = :run_at, "
        "updated_at = :now, last_error = :error, locked_by = NULL, lease_until = NULL "
        "WHERE id = :id",
        [
            {"id": job_id, "run_at": run_at, "error": error[:2000], "now": now}
            for job_id, (run_at, error) in (retry or {}).items()
        ],
    )
    done = list(succeeded)
    if done:
        placeholders, params = sql.in_list("j", done)
        sql.run(
            "UPDATE jobs SET status = 'succeeded', attempts = attempts + 1, updated_at = :now, "
            f"locked_by = NULL, lease_until = NULL WHERE id{placeholders}",
            {"now": now, **params},
        )
    sql.run_many(
        "UPDATE jobs SET status = 'dead', attempts = attempts + 1, updated_at = :now, "
        "last_error = :error, locked_by = NULL, lease_until = NULL WHERE id = :id",
        [{"id": job_id, "error": error[:2000], "now": now} for job_id, error in dead.items()],
    )
    touched = done + list(dead)
    if touched:
        placeholders, params = sql.in_list("j", touched)
        sql.run(
            "UPDATE events SET status = 'processed' WHERE id IN "
            f"(SELECT event_pk FROM jobs WHERE id{placeholders}) "
            "AND NOT EXISTS (SELECT 1 FROM jobs AS other WHERE other.event_pk = events.id "
            "AND other.status <> 'succeeded')",
            params,
        )


def _utc(value: Any) -> datetime:
    if isinstance(value, str):  # SQLite keeps times as text
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


# -- leases: for consumers whose work happens outside the database transaction ---------------
# The mirror claims, applies and finishes in one transaction and needs none of this. A consumer
# that calls out (an HTTP destination, a Python handler) claims jobs with a lease, keeps it alive
# with heartbeats while it works, and finishes only the jobs it still holds; the rescuer puts the
# jobs of a worker that died (its lease expired) back in the queue.


def claim_leased(
    sql: SqlConn, consumer: str, worker: str, limit: int, now: datetime, lease: timedelta
) -> list[ClaimedJob]:
    """Mark up to ``limit`` due jobs ``running`` for ``worker`` until ``now + lease``."""
    jobs = claim_in_transaction(sql, consumer, limit, now)
    if jobs:
        placeholders, params = sql.in_list("j", [j.job_id for j in jobs])
        sql.run(
            "UPDATE jobs SET status = 'running', locked_by = :worker, lease_until = :until, "
            f"updated_at = :now WHERE id{placeholders}",
            {"worker": worker, "until": now + lease, "now": now, **params},
        )
    return jobs


def heartbeat(
    sql: SqlConn, worker: str, job_ids: Sequence[int], now: datetime, lease: timedelta
) -> int:
    """Extend the leases ``worker`` still holds; returns how many it still holds."""
    if not job_ids:
        return 0
    placeholders, params = sql.in_list("j", list(job_ids))
    return sql.run(
        "UPDATE jobs SET lease_until = :until, updated_at = :now WHERE status = 'running' "
        f"AND locked_by = :worker AND id{placeholders}",
        {"until": now + lease, "now": now, "worker": worker, **params},
    )


def finish_leased(
    sql: SqlConn,
    worker: str,
    job_id: int,
    status: str,
    now: datetime,
    error: str | None = None,
    run_at: datetime | None = None,
) -> bool:
    """Record one leased job's outcome, only if ``worker`` still holds it (False: it lost it)."""
    changed = sql.run(
        "UPDATE jobs SET status = :status, attempts = attempts + 1, updated_at = :now, "
        "last_error = :error, run_at = COALESCE(:run_at, run_at), locked_by = NULL, "
        "lease_until = NULL WHERE id = :id AND status = 'running' AND locked_by = :worker",
        {
            "status": status,
            "now": now,
            "error": error,
            "run_at": run_at,
            "id": job_id,
            "worker": worker,
        },
    )
    return changed == 1


def rescue_expired(sql: SqlConn, now: datetime) -> int:
    """Return to the queue every running job whose lease expired; returns how many."""
    return sql.run(
        "UPDATE jobs SET status = 'queued', locked_by = NULL, lease_until = NULL, "
        "last_error = 'lease expired: the worker stopped answering', updated_at = :now "
        "WHERE status = 'running' AND lease_until < :now",
        {"now": now},
    )
