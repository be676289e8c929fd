"""Applying the Alembic migrations, for SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from ..errors import StorageUnavailable

MIGRATIONS = Path(__file__).with_name("migrations")
_LOCK_KEY = 0x5A42_4D49  # "ZBMI": one migrator at a time across intake processes
# The page size of new SQLite databases. A stored event is a row of about 2 KB (the raw body and
# headers); with 4 KiB pages each one takes a page to itself, and with 8 KiB pages three share
# one. In the intake benchmark, interleaved over ten rounds, 8 KiB answered more events in eight
# and had the lower p99 in all ten (docs/performance.md). A database keeps the page size it was
# created with.
SQLITE_PAGE_SIZE = 8192


def sqlalchemy_url(url: str) -> str:
    """The SQLAlchemy URL for a config URL (psycopg 3 for PostgreSQL)."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return create_engine(sqlalchemy_url(url), pool_pre_ping=True)


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head() -> str:
    """The newest migration revision shipped with this version."""
    revision = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert revision is not None
    return revision


def known(revision: str) -> bool:
    """Whether this version ships ``revision`` (a database migrated by a newer one is not)."""
    try:
        return ScriptDirectory.from_config(_alembic_config()).get_revision(revision) is not None
    except CommandError:
        return False


def current(url: str) -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except OperationalError as exc:
        raise StorageUnavailable(f"cannot reach {redact(url)}: {exc.orig}") from exc
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database to ``revision``; safe to run from several processes at once."""
    _run(url, lambda config: command.upgrade(config, revision))


def downgrade(url: str, revision: str) -> None:
    """Step the schema back to ``revision`` (``base`` drops every table)."""
    _run(url, lambda config: command.downgrade(config, revision))


def _run(url: str, step: Callable[[Config], None]) -> None:
    engine = make_engine(url)
    config = _alembic_config()
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
            elif connection.dialect.name == "sqlite":  # takes effect while the file is empty
                connection.exec_driver_sql(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
            config.attributes["connection"] = connection
            step(config)
    except OperationalError as exc:  # connection refused, disk full, permissions
        raise StorageUnavailable(f"cannot migrate {redact(url)}: {exc.orig}") from exc
    finally:
        engine.dispose()


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        auth, _, host = rest.rpartition("@")
        user = auth.split(":", 1)[0]
        return f"{scheme}{sep}{user}:***@{host}" if ":" in auth else url
    return url
