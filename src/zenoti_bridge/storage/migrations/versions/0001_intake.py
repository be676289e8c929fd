"""Intake: events, deliveries, jobs (the outbox), quarantine.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("delivery_id", sa.Text),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("type_name", sa.Text, nullable=False),
        sa.Column("family", sa.Text),
        sa.Column("resource", sa.Text),
        sa.Column("entity_id", sa.Text),
        sa.Column("routed", sa.Boolean, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("event_schema", sa.Text),
        sa.Column("event_timestamp", sa.Text, nullable=False),
        sa.Column("event_ts", Time, nullable=False),
        sa.Column("received_at", Time, nullable=False),
        sa.Column("last_seen_at", Time, nullable=False),
        sa.Column("delivery_count", sa.Integer, nullable=False, server_default="1"),
        sa.Column("verb", sa.Text, nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
        sa.Column("headers", sa.Text, nullable=False),
        sa.Column("query", sa.Text, nullable=False, server_default=""),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.UniqueConstraint("source", "event_id", name="uq_events_source_event_id"),
    )
    op.create_index("ix_events_received_at", "events", ["received_at"])
    op.create_index("ix_events_type_received", "events", ["type_name", "received_at"])

    op.create_table(
        "deliveries",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("event_pk", Id, sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
        sa.Column("delivery_id", sa.Text),
        sa.Column("received_at", Time, nullable=False),
        sa.Column("verb", sa.Text, nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
        sa.Column("headers", sa.Text, nullable=False),
    )
    op.create_index("ix_deliveries_event_pk", "deliveries", ["event_pk"])

    op.create_table(
        "jobs",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("event_pk", Id, sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
        sa.Column("consumer", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("ordering_key", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("run_at", Time, nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("updated_at", Time, nullable=False),
        sa.Column("locked_by", sa.Text),
        sa.Column("lease_until", Time),
        sa.Column("last_error", sa.Text),
        sa.UniqueConstraint("event_pk", "consumer", name="uq_jobs_event_consumer"),
    )
    op.create_index("ix_jobs_claim", "jobs", ["consumer", "status", "id"])

    op.create_table(
        "quarantine",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("received_at", Time, nullable=False),
        sa.Column("verb", sa.Text, nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("event_id", sa.Text),
        sa.Column("headers", sa.Text, nullable=False),
        sa.Column("query", sa.Text, nullable=False, server_default=""),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="held"),
    )
    op.create_index("ix_quarantine_received_at", "quarantine", ["received_at"])

    op.create_table(
        "store_probe",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("checked_at", Time, nullable=False),
    )


def downgrade() -> None:
    for table in ("store_probe", "quarantine", "jobs", "deliveries", "events"):
        op.drop_table(table)
