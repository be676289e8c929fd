"""Migrations build exactly the schema the code declares, on both backends, and go back down."""

from __future__ import annotations

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
