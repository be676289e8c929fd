"""Named read operations over either backend, with SQLAlchemy Core.

Reads never go through the SQLite writer thread: WAL lets them run beside it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Engine, RowMapping, Table, func, select, tuple_

from ..errors import Ambiguous, NotFound
from .migrate import make_engine
from .records import StoredEvent
from .schema import deliveries, events, jobs, mirror_tables, quarantine


def as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class EventFilter:
    source: str | None = None
    type_name: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class SourceSummary:
    source: str
    events: int
    deliveries: int
    last_received_at: datetime | None


class Reader:
    """Read access for the CLI, the admin API and tests."""

    def __init__(self, url: str) -> None:
        self.engine: Engine = make_engine(url)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @staticmethod
    def _event(m: RowMapping | Mapping[str, Any]) -> StoredEvent:
        return StoredEvent(
            pk=m["id"],
            source=m["source"],
            event_id=m["event_id"],
            delivery_id=m["delivery_id"],
            event_type=m["event_type"],
            type_name=m["type_name"],
            family=m["family"],
            resource=m["resource"],
            entity_id=m["entity_id"],
            routed=bool(m["routed"]),
            status=m["status"],
            event_schema=m["event_schema"],
            event_timestamp=m["event_timestamp"],
            event_ts=as_utc(m["event_ts"]),  # type: ignore[arg-type]
            received_at=as_utc(m["received_at"]),  # type: ignore[arg-type]
            last_seen_at=as_utc(m["last_seen_at"]),  # type: ignore[arg-type]
            delivery_count=m["delivery_count"],
            verb=m["verb"],
            signature=m["signature"],
            headers=orjson.loads(m["headers"]),
            query=m["query"],
            body=bytes(m.get("body") or b""),
        )

    def get_event(self, event_id: str, source: str | None = None) -> StoredEvent:
        """One event with its deliveries and jobs; NotFound if absent or ambiguous."""
        query = select(events).where(events.c.event_id == event_id)
        if source is not None:
            query = query.where(events.c.source == source)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
            if not rows:
                where = f" from source {source!r}" if source else ""
                raise NotFound(f"no event {event_id!r}{where}")
            if len(rows) > 1:
                raise Ambiguous(f"event {event_id!r}", [r.source for r in rows])
            event = self._event(rows[0]._mapping)
            event.deliveries = [
                {
                    **r._mapping,
                    "received_at": as_utc(r.received_at),
                    "headers": orjson.loads(r.headers),
                }
                for r in conn.execute(
                    select(deliveries)
                    .where(deliveries.c.event_pk == event.pk)
                    .order_by(deliveries.c.id)
                )
            ]
            event.jobs = [
                dict(r._mapping)
                for r in conn.execute(
                    select(jobs).where(jobs.c.event_pk == event.pk).order_by(jobs.c.id)
                )
            ]
        return event

    def list_events(
        self, where: EventFilter = EventFilter(), *, limit: int = 50, before_pk: int | None = None
    ) -> list[StoredEvent]:
        """Newest first, without bodies; page with ``before_pk`` (the last pk seen)."""
        columns = [c for c in events.c if c.name != "body"]
        query = select(*columns).order_by(events.c.id.desc()).limit(limit)
        query = apply_filter(query, where)
        if before_pk is not None:
            query = query.where(events.c.id < before_pk)
        with self.engine.connect() as conn:
            return [self._event(r._mapping) for r in conn.execute(query)]

    def count_events(self, where: EventFilter = EventFilter()) -> int:
        query = apply_filter(select(func.count()).select_from(events), where)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def count_jobs(self, consumer: str | None = None) -> int:
        query = select(func.count()).select_from(jobs)
        if consumer is not None:
            query = query.where(jobs.c.consumer == consumer)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def event_id_counts(self, source: str | None = None) -> Iterator[tuple[str, int, int]]:
        """(event_id, rows with that id, jobs for it) for every stored event: for verification."""
        job_count = (
            select(jobs.c.event_pk, func.count().label("n")).group_by(jobs.c.event_pk).subquery()
        )
        query = (
            select(
                events.c.event_id,
                func.count(events.c.id),
                func.coalesce(func.sum(job_count.c.n), 0),
            )
            .select_from(events.outerjoin(job_count, job_count.c.event_pk == events.c.id))
            .group_by(events.c.event_id)
        )
        if source is not None:
            query = query.where(events.c.source == source)
        with self.engine.connect() as conn:
            for event_id, rows, job_rows in conn.execute(query):
                yield event_id, int(rows), int(job_rows)

    def entity(self, resource: str, entity_id: str, source: str | None = None) -> dict[str, Any]:
        """The mirrored row of one entity, with ``data`` parsed; NotFound if absent."""
        table = _mirror_table(resource)
        query = select(table).where(table.c.id == entity_id.lower())
        if source is not None:
            query = query.where(table.c.source == source)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        if not rows:
            raise NotFound(f"no {resource} {entity_id!r} in the mirror")
        if len(rows) > 1:
            raise Ambiguous(f"{resource} {entity_id!r}", [r.source for r in rows])
        return _entity_row(rows[0]._mapping)

    def entities(
        self,
        resource: str,
        source: str | None = None,
        limit: int = 100,
        after: tuple[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """Ordered by (source, id); ``after`` is the (source, id) of the last row already seen."""
        table = _mirror_table(resource)
        query = select(table).order_by(table.c.source, table.c.id).limit(limit)
        if source is not None:
            query = query.where(table.c.source == source)
        if after is not None:
            query = query.where(tuple_(table.c.source, table.c.id) > tuple_(*after))
        with self.engine.connect() as conn:
            return [_entity_row(r._mapping) for r in conn.execute(query)]

    def job_counts(self) -> dict[tuple[str, str], int]:
        """Jobs by (consumer, status)."""
        query = select(jobs.c.consumer, jobs.c.status, func.count()).group_by(
            jobs.c.consumer, jobs.c.status
        )
        with self.engine.connect() as conn:
            return {(c, s): int(n) for c, s, n in conn.execute(query)}

    def stats(self) -> dict[str, Any]:
        """Counts by event status and type, jobs by consumer and status, queue depth and lag."""
        with self.engine.connect() as conn:
            by_status = {
                s: int(n)
                for s, n in conn.execute(
                    select(events.c.status, func.count()).group_by(events.c.status)
                )
            }
            by_type = {
                t: int(n)
                for t, n in conn.execute(
                    select(events.c.type_name, func.count()).group_by(events.c.type_name)
                )
            }
            oldest = conn.execute(
                select(func.min(jobs.c.created_at)).where(jobs.c.status == "queued")
            ).scalar_one()
            quarantined = int(
                conn.execute(select(func.count()).select_from(quarantine)).scalar_one()
            )
        job_counts = self.job_counts()
        oldest_at = as_utc(_as_datetime(oldest))
        lag = (datetime.now(UTC) - oldest_at).total_seconds() if oldest_at else 0.0
        return {
            "events": {
                "total": sum(by_status.values()),
                "by_status": by_status,
                "by_type": by_type,
            },
            "jobs": [
                {"consumer": c, "status": s, "count": n} for (c, s), n in sorted(job_counts.items())
            ],
            "queue_depth": sum(n for (_, s), n in job_counts.items() if s == "queued"),
            "dead": sum(n for (_, s), n in job_counts.items() if s == "dead"),
            "lag_seconds": round(lag, 3),
            "quarantined": quarantined,
        }

    def list_quarantine(self, source: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        query = select(quarantine).order_by(quarantine.c.id.desc()).limit(limit)
        if source is not None:
            query = query.where(quarantine.c.source == source)
        with self.engine.connect() as conn:
            return [
                {**r._mapping, "body": bytes(r.body), "received_at": as_utc(r.received_at)}
                for r in conn.execute(query)
            ]

    def deliveries_count(self, source: str | None = None) -> int:
        query = select(func.coalesce(func.sum(events.c.delivery_count), 0))
        if source is not None:
            query = query.where(events.c.source == source)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def source_summaries(self, names: Sequence[str]) -> list[SourceSummary]:
        """The configured sources and any other that sent events, with their totals."""
        return [
            SourceSummary(name, seen["events"], seen["deliveries"], seen["last_received_at"])
            for name, seen in self.source_activity(names).items()
            if name in names or seen["events"]
        ]

    def source_activity(self, names: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Per source (configured or seen): what it sent, by event type, and what was held.

        ``events``/``deliveries``/``last_received_at`` per source; ``types``: per type name,
        events and the last receipt; ``quarantined``: bodies held as not an envelope.
        """
        by_type = select(
            events.c.source,
            events.c.type_name,
            func.count(),
            func.coalesce(func.sum(events.c.delivery_count), 0),
            func.max(events.c.received_at),
        ).group_by(events.c.source, events.c.type_name)
        held = select(quarantine.c.source, func.count()).group_by(quarantine.c.source)
        with self.engine.connect() as conn:
            rows = conn.execute(by_type).all()
            quarantined = {r[0]: int(r[1]) for r in conn.execute(held)}
        found: dict[str, dict[str, Any]] = {}
        for name in dict.fromkeys([*names, *(r[0] for r in rows), *quarantined]):
            found[name] = {
                "events": 0,
                "deliveries": 0,
                "last_received_at": None,
                "quarantined": quarantined.get(name, 0),
                "types": {},
            }
        for source, type_name, count, delivered, last in rows:
            entry = found[source]
            entry["types"][type_name] = {
                "events": int(count),
                "last_received_at": as_utc(_as_datetime(last)),
            }
            entry["events"] += int(count)
            entry["deliveries"] += int(delivered)
        for entry in found.values():
            times = [
                t["last_received_at"] for t in entry["types"].values() if t["last_received_at"]
            ]
            entry["last_received_at"] = max(times, default=None)
        return found


def _mirror_table(resource: str) -> Table:
    table = mirror_tables.get(resource)
    if table is None:
        known = ", ".join(mirror_tables)
        raise NotFound(f"no resource {resource!r}; known resources: {known}")
    return table


def _entity_row(mapping: RowMapping) -> dict[str, Any]:
    row = dict(mapping)
    row["data"] = orjson.loads(row["data"])
    row.pop("sections", None)
    row["deleted"] = bool(row["deleted"])
    return row


def _as_datetime(value: Any) -> datetime | None:
    # SQLite's max() over a DateTime column comes back as text
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def apply_filter(query: Any, where: EventFilter) -> Any:
    if where.source is not None:
        query = query.where(events.c.source == where.source)
    if where.type_name is not None:
        query = query.where(events.c.type_name == where.type_name)
    if where.status is not None:
        query = query.where(events.c.status == where.status)
    # in UTC: SQLite keeps times as UTC text, and would compare an offset's wall clock
    if where.since is not None:
        query = query.where(events.c.received_at >= as_utc(where.since))
    if where.until is not None:
        query = query.where(events.c.received_at < as_utc(where.until))
    return query
