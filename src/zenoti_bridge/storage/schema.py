"""The tables, as SQLAlchemy Core objects shared by the read queries and the migrations' tests.

Times are UTC. On SQLite they are stored as ``YYYY-MM-DD HH:MM:SS.ffffff`` text (SQLAlchemy's
format, which SQLite's date functions read); on PostgreSQL as ``timestamptz``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
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
    Column("ordering_key", Text),  # copied to its jobs; on SQLite, by the intake's trigger
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
    Index("ix_jobs_claim", "consumer", "status", "id"),
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


# -- the mirror: one table per Zenoti resource -----------------------------------------------
# Typed columns come from ``entities.project``; ``data`` is the entity's latest Zenoti
# representation and ``sections`` the versioned registers it was merged from (JSON text).
# Column kinds: T text, I integer, F float, B boolean, U UTC time, L local wall time.

MIRROR_COLUMNS: dict[str, dict[str, str]] = {
    "guest": {
        "center_id": "T",
        "code": "T",
        "first_name": "T",
        "last_name": "T",
        "email": "T",
        "mobile_phone": "T",
        "created_at": "U",
        "marketing_email": "B",
        "marketing_sms": "B",
        "merged_into": "T",
    },
    "employee": {
        "center_id": "T",
        "code": "T",
        "first_name": "T",
        "last_name": "T",
        "email": "T",
        "job_name": "T",
        "start_date": "L",
        "end_date": "L",
    },
    "invoice": {
        "center_id": "T",
        "guest_id": "T",
        "appointment_group_id": "T",
        "group_invoice_id": "T",
        "invoice_number": "T",
        "receipt_number": "T",
        "invoice_date": "L",
        "is_closed": "B",
        "is_refund": "B",
        "currency_id": "I",
        "net_price": "F",
        "tax": "F",
        "sum_total": "F",
    },
    "class_session": {
        "center_id": "T",
        "class_name": "T",
        "start_time": "L",
        "end_time": "L",
        "capacity": "I",
        "cancelled": "B",
    },
    "class_booking": {
        "center_id": "T",
        "guest_id": "T",
        "session_id": "T",
        "class_id": "T",
        "status": "T",
        "waitlist": "B",
    },
    "membership": {
        "guest_id": "T",
        "center_id": "T",
        "membership_name": "T",
        "status": "I",
        "status_name": "T",
        "state": "T",
        "frozen": "B",
        "cancelled": "B",
        "expiry_date": "L",
    },
    "package": {
        "center_id": "T",
        "package_name": "T",
        "status": "I",
        "package_state": "I",
        "start_date": "L",
        "end_date": "L",
    },
    "feedback": {
        "center_id": "T",
        "guest_id": "T",
        "appointment_group_id": "T",
        "rating": "I",
        "comments": "T",
    },
    "guestpass_redemption": {
        "guest_id": "T",
        "redeemed_at": "L",
        "membership_id": "T",
        "balance": "I",
    },
    "appointment_group": {
        "center_id": "T",
        "guest_id": "T",
        "invoice_id": "T",
        "status": "I",
        "status_name": "T",
        "appointment_count": "I",
    },
    "appointment": {
        "appointment_group_id": "T",
        "center_id": "T",
        "guest_id": "T",
        "service_id": "T",
        "service_name": "T",
        "therapist_id": "T",
        "room_id": "T",
        "start_utc": "U",
        "end_utc": "U",
        "start_local": "L",
        "end_local": "L",
        "status": "I",
        "status_name": "T",
        "progress": "T",
        "removed": "B",
    },
}
_KINDS: dict[str, Any] = {
    "T": Text,
    "I": Integer,
    "F": Float,
    "B": Boolean,
    "U": DateTime(timezone=True),
    "L": DateTime(timezone=False),
}


def _mirror_table(resource: str, columns: dict[str, str]) -> Table:
    return Table(
        f"mirror_{resource}",
        metadata,
        Column("source", Text, primary_key=True),
        Column("id", Text, primary_key=True),
        Column("deleted", Boolean, nullable=False),
        *(Column(name, _KINDS[kind]) for name, kind in columns.items()),
        Column("last_event_id", Text, nullable=False),
        Column("last_event_timestamp", Text, nullable=False),
        Column("updated_at", Time, nullable=False),
        Column("data", Text, nullable=False),
        Column("sections", Text, nullable=False),
    )


mirror_tables: dict[str, Table] = {
    resource: _mirror_table(resource, columns) for resource, columns in MIRROR_COLUMNS.items()
}
Index(
    "ix_mirror_appointment_group",
    mirror_tables["appointment"].c.source,
    mirror_tables["appointment"].c.appointment_group_id,
)
Index(
    "ix_mirror_appointment_center_start",
    mirror_tables["appointment"].c.center_id,
    mirror_tables["appointment"].c.start_local,
)

mirror_invoice_items = Table(
    "mirror_invoice_items",
    metadata,
    Column("source", Text, primary_key=True),
    Column("invoice_id", Text, primary_key=True),
    Column("invoice_item_id", Text, primary_key=True),
    Column("item_id", Text),
    Column("name", Text),
    Column("type", Integer),
    Column("code", Text),
    Column("quantity", Float),
    Column("final_price", Float),
    Column("therapist_id", Text),
)

mirror_membership_history = Table(
    "mirror_membership_history",
    metadata,
    Column("source", Text, primary_key=True),
    Column("membership_id", Text, primary_key=True),
    Column("event_id", Text, primary_key=True),
    Column("event_timestamp", Text, nullable=False),
    Column("event", Text, nullable=False),
    Column("status", Integer),
    Column("state", Text),
)
