"""Mirror: one table per Zenoti resource, invoice items, membership history.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 18:41:34.231239
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mirror_appointment",
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("appointment_group_id", sa.Text(), nullable=True),
        sa.Column("center_id", sa.Text(), nullable=True),
        sa.Column("guest_id", sa.Text(), nullable=True),
        sa.Column("service_id", sa.Text(), nullable=True),
        sa.Column("service_name", sa.Text(), nullable=True),
        sa.Column("therapist_id", sa.Text(), nullable=True),
        sa.Column("room_id", sa.Text(), nullable=True),
        sa.Column("start_utc", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_utc", sa.DateTime(timezone=True), nullable=True),
        sa.Column("start_local", sa.DateTime(), nullable=True),
        sa.Column("end_local", sa.DateTime(), nullable=True),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("status_name", sa.Text(), nullable=True),
        sa.Column("progress", sa.Text(), nullable=True),
        sa.Column("removed", sa.Boolean(), nullable=True),
        sa.Column("last_event_id", sa.Text(), nullable=False),
        sa.Column("last_event_timestamp", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("sections", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("source", "id"),
    )
    with op.batch_alter_table("mirror_appointment", schema=None) as batch_op:
        batch_op.create_index(
            "ix_mirror_appointment_center_start", ["center_id", "start_local"], unique=False
        )
        batch_op.create_index(
            "ix_mirror_appointment_group", ["source", "appointment_group_id"], unique=False
        )

    op.create_table(
        "mirror_appointment_group",
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("center_id", sa.Text(), nullable=True),
        sa.Column("guest_id", sa.Text(), nullable=True),
        sa.Column("invoice_id", sa.Text(), nullable=True),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("status_name", sa.Text(), nullable=True),
        sa.Column("appointment_count", sa.Integer(), nullable=True),
        sa.Column("last_event_id", sa.Text(), nullable=False),
        sa.Column("last_event_timestamp", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("sections", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("source", "id"),
    )
    op.create_table(
        "mirror_class_booking",
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("center_id", sa.Text(), nullable=True),
        sa.Column("guest_id", sa.Text(), nullable=True),
        sa.Column("session_id", sa.Text(), nullable=True),
        sa.Column("class_id", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("waitlist", sa.Boolean(), nullable=True),
        sa.Column("last_event_id", sa.Text(), nullable=False),
        sa.Column("last_event_timestamp", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("sections", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("source", "id"),
    )
    op.create_table(
        "mirror_class_session",
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("center_id", sa.Text(), nullable=True),
        sa.Column("class_name", sa.Text(), nullable=True),
        sa.Column("start_time", sa.DateTime(), nullable=True),
        sa.Column("end_time", sa.DateTime(), nullable=True),
        sa.Column("capacity", sa.Integer(), nullable=True),
        sa.Column("cancelled", sa.Boolean(), nullable=True),
        sa.Column("last_event_id", sa.Text(), nullable=False),
        sa.Column("last_event_timestamp", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("sections", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("source", "id"),
    )
    op.create_table(
        "mirror_employee",
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("center_id", sa.Text(), nullable=True),
        sa.Column("code", sa.Text(), nullable=True),
        sa.Column("first_name", sa.Text(), nullable=True),
        sa.Column("last_name", sa.Text(), nullable=True),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("job_name", sa.Text(), nullable=True),
        sa.Column("start_date", sa.DateTime(), nullable=True),
        sa.Column("end_date", sa.DateTime(), nullable=True),
        sa.Column("last_event_id", sa.Text(), nullable=False),
        sa.Column("last_event_timestamp", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("sections", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("source", "id"),
    )
    op.create_table(
        "mirror_feedback",
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("center_id", sa.Text(), nullable=True),
        sa.Column("guest_id", sa.Text(), nullable=True),
        sa.Column("appointment_group_id", sa.Text(), nullable=True),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("comments", sa.Text(), nullable=True),
        sa.Column("last_event_id", sa.Text(), nullable=False),
        sa.Column("last_event_timestamp", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("sections", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("source", "id"),
    )
    op.create_table(
        "mirror_guest",
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("center_id", sa.Text(), nullable=True),
        sa.Column("code", sa.Text(), nullable=True),
        sa.Column("first_name", sa.Text(), nullable=True),
        sa.Column("last_name", sa.Text(), nullable=True),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("mobile_phone", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("marketing_email", sa.Boolean(), nullable=True),
        sa.Column("marketing_sms", sa.Boolean(), nullable=True),
        sa.Column("merged_into", sa.Text(), nullable=True),
        sa.Column("last_event_id", sa.Text(), nullable=False),
        sa.Column("last_event_timestamp", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("sections", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("source", "id"),
    )
    op.create_table(
        "mirror_guestpass_redemption",
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("guest_id", sa.Text(), nullable=True),
        sa.Column("redeemed_at", sa.DateTime(), nullable=True),
        sa.Column("membership_id", sa.Text(), nullable=True),
        sa.Column("balance", sa.Integer(), nullable=True),
        sa.Column("last_event_id", sa.Text(), nullable=False),
        sa.Column("last_event_timestamp", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("sections", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("source", "id"),
    )
    op.create_table(
        "mirror_invoice",
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("center_id", sa.Text(), nullable=True),
        sa.Column("guest_id", sa.Text(), nullable=True),
        sa.Column("appointment_group_id", sa.Text(), nullable=True),
        sa.Column("group_invoice_id", sa.Text(), nullable=True),
        sa.Column("invoice_number", sa.Text(), nullable=True),
        sa.Column("receipt_number", sa.Text(), nullable=True),
        sa.Column("invoice_date", sa.DateTime(), nullable=True),
        sa.Column("is_closed", sa.Boolean(), nullable=True),
        sa.Column("is_refund", sa.Boolean(), nullable=True),
        sa.Column("currency_id", sa.Integer(), nullable=True),
        sa.Column("net_price", sa.Float(), nullable=True),
        sa.Column("tax", sa.Float(), nullable=True),
        sa.Column("sum_total", sa.Float(), nullable=True),
        sa.Column("last_event_id", sa.Text(), nullable=False),
        sa.Column("last_event_timestamp", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("sections", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("source", "id"),
    )
    op.create_table(
        "mirror_invoice_items",
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("invoice_id", sa.Text(), nullable=False),
        sa.Column("invoice_item_id", sa.Text(), nullable=False),
        sa.Column("item_id", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("type", sa.Integer(), nullable=True),
        sa.Column("code", sa.Text(), nullable=True),
        sa.Column("quantity", sa.Float(), nullable=True),
        sa.Column("final_price", sa.Float(), nullable=True),
        sa.Column("therapist_id", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("source", "invoice_id", "invoice_item_id"),
    )
    op.create_table(
        "mirror_membership",
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("guest_id", sa.Text(), nullable=True),
        sa.Column("center_id", sa.Text(), nullable=True),
        sa.Column("membership_name", sa.Text(), nullable=True),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("status_name", sa.Text(), nullable=True),
        sa.Column("state", sa.Text(), nullable=True),
        sa.Column("frozen", sa.Boolean(), nullable=True),
        sa.Column("cancelled", sa.Boolean(), nullable=True),
        sa.Column("expiry_date", sa.DateTime(), nullable=True),
        sa.Column("last_event_id", sa.Text(), nullable=False),
        sa.Column("last_event_timestamp", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("sections", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("source", "id"),
    )
    op.create_table(
        "mirror_membership_history",
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("membership_id", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("event_timestamp", sa.Text(), nullable=False),
        sa.Column("event", sa.Text(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("state", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("source", "membership_id", "event_id"),
    )
    op.create_table(
        "mirror_package",
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("center_id", sa.Text(), nullable=True),
        sa.Column("package_name", sa.Text(), nullable=True),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("package_state", sa.Integer(), nullable=True),
        sa.Column("start_date", sa.DateTime(), nullable=True),
        sa.Column("end_date", sa.DateTime(), nullable=True),
        sa.Column("last_event_id", sa.Text(), nullable=False),
        sa.Column("last_event_timestamp", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("sections", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("source", "id"),
    )


def downgrade() -> None:
    op.drop_table("mirror_package")
    op.drop_table("mirror_membership_history")
    op.drop_table("mirror_membership")
    op.drop_table("mirror_invoice_items")
    op.drop_table("mirror_invoice")
    op.drop_table("mirror_guestpass_redemption")
    op.drop_table("mirror_guest")
    op.drop_table("mirror_feedback")
    op.drop_table("mirror_employee")
    op.drop_table("mirror_class_session")
    op.drop_table("mirror_class_booking")
    op.drop_table("mirror_appointment_group")
    with op.batch_alter_table("mirror_appointment", schema=None) as batch_op:
        batch_op.drop_index("ix_mirror_appointment_group")
        batch_op.drop_index("ix_mirror_appointment_center_start")

    op.drop_table("mirror_appointment")
