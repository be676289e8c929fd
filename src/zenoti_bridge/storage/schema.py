"""The tables, as SQLAlchemy Core objects shared by the read queries and the migrations' tests.

Times are UTC. On SQLite they are stored as ``YYYY-MM-DD HH:MM:SS.ffffff`` text (SQLAlchemy's
format, which SQLite's date functions read); on PostgreSQL as ``timestamptz``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()
Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER PRIMARY KEY
Time = DateTime(timezone=True)

events = Table(
    "events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("source", Text, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("delivery_id", Text),
    Column("event_type", Text, nullable=False),
    Column("type_name", Text, nullable=False),
    Column("family", Text),
    Column("resource", Text),
    Column("entity_id", Text),
    Column("routed", Boolean, nullable=False),
    Column("status", Text, nullable=False),
    Column("event_schema", Text),
    Column("event_timestamp", Text, nullable=False),
    Column("event_ts", Time, nullable=False),
    Column("received_at", Time, nullable=False),
    Column("last_seen_at", Time, nullable=False),
    Column("delivery_count", Integer, nullable=False, server_default="1"),
    Column("verb", Text, nullable=False),
    Column("signature", Text, nullable=False),
    Column("headers", Text, nullable=False),
    Column("query", Text, nullable=False, server_default=""),
    Column("body", LargeBinary, nullable=False),
    UniqueConstraint("source", "event_id", name="uq_events_source_event_id"),
    Index("ix_events_received_at", "received_at"),
    Index("ix_events_type_received", "type_name", "received_at"),
    Index("ix_events_entity", "resource", "entity_id"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("event_pk", Id, ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
    Column("delivery_id", Text),
    Column("received_at", Time, nullable=False),
    Column("verb", Text, nullable=False),
    Column("signature", Text, nullable=False),
    Column("headers", Text, nullable=False),
    Index("ix_deliveries_event_pk", "event_pk"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("event_pk", Id, ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
    Column("consumer", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("ordering_key", Text),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("run_at", Time, nullable=False),
    Column("created_at", Time, nullable=False),
    Column("updated_at", Time, nullable=False),
    Column("locked_by", Text),
    Column("lease_until", Time),
    Column("last_error", Text),
    UniqueConstraint("event_pk", "consumer", name="uq_jobs_event_consumer"),
    Index("ix_jobs_status_run_at", "status", "run_at"),
    Index("ix_jobs_ordering_key", "ordering_key"),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("source", Text, nullable=False),
    Column("received_at", Time, nullable=False),
    Column("verb", Text, nullable=False),
    Column("signature", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("detail", Text, nullable=False),
    Column("event_id", Text),
    Column("headers", Text, nullable=False),
    Column("query", Text, nullable=False, server_default=""),
    Column("body", LargeBinary, nullable=False),
    Column("status", Text, nullable=False, server_default="held"),
    Index("ix_quarantine_received_at", "received_at"),
)

store_probe = Table(
    "store_probe",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("checked_at", Time, nullable=False),
)
