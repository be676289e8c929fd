"""Events carry their ordering key, so the jobs of a new event can be derived from its row.

On SQLite the intake writes a batch of events as one statement, and a temporary trigger of the
writing connection inserts each new event's jobs from the event's own row; the ordering key is
the one thing a job needs that the row did not hold.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 23:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("ordering_key", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_column("ordering_key")
