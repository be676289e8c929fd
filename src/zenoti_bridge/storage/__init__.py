"""Everything that speaks SQL: schema, migrations, the SQLite and PostgreSQL stores, reads."""

from __future__ import annotations

from ..config import DatabaseConfig
from .base import Store
from .postgres import PostgresStore
from .records import (
    EventStatus,
    IncomingEvent,
    JobStatus,
    Outcome,
    QuarantineItem,
    Recorded,
    StoredEvent,
)
from .sqlite import SQLiteStore

__all__ = [
    "EventStatus",
    "IncomingEvent",
    "JobStatus",
    "Outcome",
    "PostgresStore",
    "QuarantineItem",
    "Recorded",
    "SQLiteStore",
    "Store",
    "StoredEvent",
    "open_store",
]


def open_store(database: DatabaseConfig) -> Store:
    """The store for a database section (not started yet)."""
    if database.is_sqlite:
        return SQLiteStore(
            database.sqlite_path,
            wal_limit_bytes=database.wal_limit_mb * 1024 * 1024,
            checkpoint_interval=database.checkpoint_interval,
        )
    return PostgresStore(
        database.url, pool_size=database.pool_size, pool_timeout=database.pool_timeout
    )
