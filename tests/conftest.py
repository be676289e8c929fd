"""Shared fixtures: real PostgreSQL (a fresh schema per test), SQLite files, payload samples.

PostgreSQL comes from ZB_TEST_POSTGRES_URL. When it is unreachable its tests are skipped with a
loud notice, except under CI=true, where they fail.
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from zenoti_bridge.app import BridgeApp
from zenoti_bridge.config import Settings
from zenoti_bridge.storage import Store, open_store
from zenoti_bridge.storage import migrate as migrations
from zenoti_bridge.storage.queries import Reader

PAYLOADS = Path(__file__).parent / "fixtures" / "zenoti" / "payloads"
POSTGRES_URL = os.environ.get("ZB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SECRET = "test-secret-one"
OTHER_SECRET = "test-secret-two"

_pg_state: dict[str, Any] = {}


def postgres_available() -> bool:
    if "ok" not in _pg_state:
        try:
            psycopg.connect(POSTGRES_URL, connect_timeout=3).close()
            _pg_state["ok"] = True
        except psycopg.Error as exc:
            _pg_state["ok"] = False
            _pg_state["why"] = str(exc).strip()
    return bool(_pg_state["ok"])


def require_postgres() -> None:
    if postgres_available():
        return
    message = f"PostgreSQL at {POSTGRES_URL} is unreachable: {_pg_state.get('why')}"
    if IN_CI:
        pytest.fail(message + " (CI=true: PostgreSQL tests must run)")
    warnings.warn(message + ": SKIPPING PostgreSQL tests", stacklevel=2)
    pytest.skip("!!! " + message)


def _with_search_path(url: str, schema: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}"


@contextmanager
def fresh_schema(prefix: str = "zb_test") -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a new schema, dropped afterwards."""
    require_postgres()
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield _with_search_path(POSTGRES_URL, schema)
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    with fresh_schema() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'bridge.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each backend in turn, migrated to the current schema."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'bridge.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    migrations.upgrade(url)
    return url


SettingsFactory = Callable[..., Settings]


@pytest.fixture
def make_settings() -> SettingsFactory:
    """Settings with one source ``acme``; keyword arguments override the source's keys."""

    def build(database_url: str, **source: Any) -> Settings:
        acme: dict[str, Any] = {"webhook_secrets": [SECRET, OTHER_SECRET], "signature": "enforce"}
        acme.update(source)
        return Settings(
            database={"url": database_url, "checkpoint_interval": 0.05},
            sources={"acme": acme},
        )

    return build


@pytest.fixture
async def store(database_url: str, make_settings: SettingsFactory) -> AsyncIterator[Store]:
    started = open_store(make_settings(database_url).database)
    await started.start()
    yield started
    await started.stop()


@pytest.fixture
def reader(database_url: str) -> Iterator[Reader]:
    with Reader(database_url) as opened:
        yield opened


ClientFactory = Callable[..., httpx.AsyncClient]


@pytest.fixture
async def make_client(
    database_url: str, make_settings: SettingsFactory
) -> AsyncIterator[Callable[..., Any]]:
    """Start an app on the backend under test; returns an httpx client bound to it."""
    opened: list[tuple[Store, httpx.AsyncClient]] = []

    async def build(**source: Any) -> httpx.AsyncClient:
        settings = make_settings(database_url, **source)
        app_store = open_store(settings.database)
        await app_store.start()
        app = BridgeApp(settings, app_store, manage_store=False)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bridge.test"
        )
        opened.append((app_store, client))
        return client

    yield build
    for app_store, client in opened:
        await client.aclose()
        await app_store.stop()


def payload(name: str) -> bytes:
    return (PAYLOADS / f"{name}.json").read_bytes()


def payload_names() -> list[str]:
    return sorted(p.stem for p in PAYLOADS.glob("*.json"))
