"""Migrations build exactly the schema the code declares, on both backends, and go back down."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from zenoti_bridge.storage import migrate as migrations
from zenoti_bridge.storage.schema import metadata


def test_head_matches_the_declared_schema(database_url: str) -> None:
    assert migrations.current(database_url) == migrations.head()
    engine = migrations.make_engine(database_url)
    try:
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_upgrade_is_idempotent_and_downgrade_removes_everything(database_url: str) -> None:
    migrations.upgrade(database_url)  # a second run changes nothing
    assert migrations.current(database_url) == migrations.head()
    migrations.downgrade(database_url, "base")
    engine = migrations.make_engine(database_url)
    try:
        tables = set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()
    assert tables == set()
    migrations.upgrade(database_url)
    assert migrations.current(database_url) == migrations.head()


def _page_size(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        (size,) = conn.execute("PRAGMA page_size").fetchone()
    return int(size)


def test_a_new_sqlite_database_gets_8_kib_pages(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    migrations.upgrade(f"sqlite:///{path}")
    assert _page_size(path) == migrations.SQLITE_PAGE_SIZE == 8192


def test_an_existing_sqlite_database_keeps_its_page_size(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA page_size=4096")
        conn.execute("CREATE TABLE before_us (id INTEGER PRIMARY KEY)")
        conn.commit()
    migrations.upgrade(f"sqlite:///{path}")
    assert _page_size(path) == 4096
    assert migrations.current(f"sqlite:///{path}") == migrations.head()
