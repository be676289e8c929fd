"""The store goes away and comes back: intake answers 503 with Retry-After, then recovers alone.

SQLite: the database and WAL files are made immutable (``chattr +i``, which stops root too), so
every write fails with an I/O error, then made writable again. PostgreSQL: the bridge talks to the
server through a TCP proxy on loopback that the test cuts (connections dropped, new ones refused)
and restores, as a network partition would; and a PostgreSQL server of the test's own
(``tests/private_postgres.py``) is shut down and started again, as an operator or a crash would.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from tests.conftest import IN_CI, SettingsFactory
from tests.integration.test_intake import event_body, signed
from tests.integration.test_store_contract import incoming
from tests.private_postgres import NotAvailable, PrivatePostgres, private_postgres
from zenoti_bridge.app import BridgeApp
from zenoti_bridge.storage import migrate as migrations
from zenoti_bridge.storage import open_store
from zenoti_bridge.storage.queries import Reader
from zenoti_bridge.storage.sqlite import SQLiteStore

URL = "/webhooks/zenoti/acme"
RECOVERY_DEADLINE = 30.0


async def post_until_accepted(client: httpx.AsyncClient, body: bytes) -> float:
    """Seconds until the store takes the event again; fails past the deadline."""
    started = time.monotonic()
    while time.monotonic() - started < RECOVERY_DEADLINE:
        answer = await client.post(URL, content=body, headers=signed(body))
        if answer.status_code == 200:
            assert answer.json()["status"] == "accepted"
            return time.monotonic() - started
        assert answer.status_code == 503
        await asyncio.sleep(0.1)
    pytest.fail(f"the store did not recover within {RECOVERY_DEADLINE} s")


def assert_unavailable(answer: httpx.Response) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == "5"
    assert answer.json()["error"] == "store_unavailable"


def chattr(flag: str, *paths: Path) -> None:
    existing = [str(p) for p in paths if p.exists()]
    result = subprocess.run(["chattr", flag, *existing], capture_output=True, text=True)
    if result.returncode != 0:
        message = f"chattr {flag} is not possible here: {result.stderr.strip()}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


@pytest.mark.skipif(shutil.which("chattr") is None, reason="needs chattr (e2fsprogs)")
async def test_sqlite_unwritable_answers_503_then_recovers(
    tmp_path: Path, make_settings: SettingsFactory
) -> None:
    url = f"sqlite:///{tmp_path / 'bridge.db'}"
    migrations.upgrade(url)
    settings = make_settings(url)
    store = open_store(settings.database)
    await store.start()
    files = [tmp_path / "bridge.db", tmp_path / "bridge.db-wal"]
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=BridgeApp(settings, store, manage_store=False)),
        base_url="http://bridge.test",
    )
    try:
        first = event_body(1)
        assert (await client.post(URL, content=first, headers=signed(first))).status_code == 200
        chattr("+i", *files)
        try:
            lost = event_body(2)
            assert_unavailable(await client.post(URL, content=lost, headers=signed(lost)))
            quarantined = b"not json"
            assert_unavailable(
                await client.post(URL, content=quarantined, headers=signed(quarantined))
            )
            ready = await client.get("/readyz")
            assert ready.status_code == 503 and ready.json()["status"] == "unavailable"
        finally:
            chattr("-i", *files)
        await post_until_accepted(client, lost)
        assert (await client.get("/readyz")).status_code == 200
    finally:
        await client.aclose()
        await store.stop()
    with Reader(url) as reader:
        assert sorted(e for e, _, _ in reader.event_id_counts()) == [f"{1:024x}", f"{2:024x}"]


class TcpProxy:
    """A loopback TCP relay that can be cut and restored on the same port."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = _free_port()
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.StreamWriter] = set()
        self._relays: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._pipes):
            writer.transport.abort()
        self._pipes.clear()
        for task in list(self._relays):
            task.cancel()
        await asyncio.gather(*self._relays, return_exceptions=True)
        self._relays.clear()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._relays.add(task)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._pipes.update((writer, up_writer))

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.transport.abort()

        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        self._relays.discard(task)
        self._pipes.discard(writer)
        self._pipes.discard(up_writer)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def proxied_postgres_url(postgres_url: str) -> AsyncIterator[tuple[str, TcpProxy]]:
    """The test database seen through the proxy (sync clients must use the direct URL: the
    proxy runs on the test's event loop, which they would block)."""
    parts = urlsplit(postgres_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.start()
    netloc = (
        f"{parts.username}@127.0.0.1:{proxy.port}" if parts.username else f"127.0.0.1:{proxy.port}"
    )
    yield urlunsplit(parts._replace(netloc=netloc)), proxy
    await proxy.cut()


async def survives_a_postgres_outage(
    url: str,
    make_settings: SettingsFactory,
    down: Callable[[], Awaitable[object]],
    up: Callable[[], Awaitable[object]],
) -> None:
    """Event 1 is stored; PostgreSQL goes ``down``: event 2 gets 503 with Retry-After and
    /readyz 503; it comes ``up``: event 2 is taken without a restart, and event 1 is there."""
    base = make_settings(url)
    settings = base.model_copy(
        update={"database": base.database.model_copy(update={"pool_timeout": 1.0})}
    )
    store = open_store(settings.database)
    await store.start()
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=BridgeApp(settings, store, manage_store=False)),
        base_url="http://bridge.test",
    )
    try:
        first = event_body(1)
        assert (await client.post(URL, content=first, headers=signed(first))).status_code == 200
        await down()
        lost = event_body(2)
        assert_unavailable(await client.post(URL, content=lost, headers=signed(lost)))
        assert (await client.get("/readyz")).status_code == 503
        await up()
        recovered_after = await post_until_accepted(client, lost)
        assert recovered_after < RECOVERY_DEADLINE
        assert (await client.get("/readyz")).status_code == 200
        again = await client.post(URL, content=first, headers=signed(first))
        assert again.json()["status"] == "duplicate", "what was stored before is there"
    finally:
        await client.aclose()
        await store.stop()


async def test_postgres_stopped_answers_503_then_recovers(
    proxied_postgres_url: tuple[str, TcpProxy], postgres_url: str, make_settings: SettingsFactory
) -> None:
    url, proxy = proxied_postgres_url
    migrations.upgrade(postgres_url)
    await survives_a_postgres_outage(url, make_settings, proxy.cut, proxy.start)
    with Reader(postgres_url) as reader:
        assert sorted(e for e, _, _ in reader.event_id_counts()) == [f"{1:024x}", f"{2:024x}"]


async def test_the_sqlite_wal_stays_near_its_limit_under_continuous_writes(tmp_path: Path) -> None:
    """A passive checkpoint cannot rewind a WAL written without pause: past the limit the writer
    restarts it, so the file stays about the limit however much is written."""

    path = tmp_path / "bridge.db"
    migrations.upgrade(f"sqlite:///{path}")
    limit = 512 * 1024
    store = SQLiteStore(path, wal_limit_bytes=limit, checkpoint_interval=0.01)
    await store.start()
    body = b'{"raw": "' + b"x" * 3000 + b'"}'
    largest = 0
    try:
        for start in range(0, 3000, 50):  # 50 concurrent requests at a time, 3000 in all
            await asyncio.gather(
                *(store.record_event(incoming(n, body=body)) for n in range(start, start + 50))
            )
            wal = path.with_name("bridge.db-wal")
            largest = max(largest, wal.stat().st_size if wal.exists() else 0)
    finally:
        await store.stop()
    written = 3000 * len(body)
    assert written > 15 * limit
    assert store.stats.wal_restarts >= 1
    # at this tiny limit the writer can add a few limits' worth while the checkpointer notices
    # (every 10 ms) and catches up; without restarts the WAL would hold everything written
    assert largest < 8 * limit, f"the WAL reached {largest:,} bytes (limit {limit:,})"
    with Reader(f"sqlite:///{path}") as reader:
        assert reader.stats()["events"]["total"] == 3000


async def test_a_lock_held_when_the_writer_first_connects_is_waited_for(tmp_path: Path) -> None:
    """Another connection holding the file for a moment (the checkpointer opening the WAL at
    start, a backup) delays the first write; it must not answer it 503 at once."""
    import sqlite3

    path = tmp_path / "bridge.db"
    migrations.upgrade(f"sqlite:///{path}")
    store = SQLiteStore(path, checkpoint_interval=3600)  # no checkpoint in the way
    await store.start()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("PRAGMA locking_mode=EXCLUSIVE")
    blocker.execute("BEGIN EXCLUSIVE")
    blocker.execute("SELECT count(*) FROM events").fetchone()

    def release() -> None:
        blocker.execute("COMMIT")
        blocker.close()

    asyncio.get_running_loop().call_later(0.3, release)
    try:
        started = time.monotonic()
        recorded = await store.record_event(incoming(1))
        assert recorded.outcome == "accepted"
        assert time.monotonic() - started >= 0.25, "the write waited for the lock"
    finally:
        await store.stop()


@pytest.fixture
def own_postgres() -> Iterator[PrivatePostgres]:
    try:
        with private_postgres() as server:
            yield server
    except NotAvailable as exc:
        if IN_CI:
            pytest.fail(f"a private PostgreSQL server cannot run here: {exc}")
        pytest.skip(f"!!! a private PostgreSQL server cannot run here: {exc}")


async def test_a_postgres_server_shut_down_answers_503_then_recovers_when_it_is_back(
    own_postgres: PrivatePostgres, make_settings: SettingsFactory
) -> None:
    """The server itself stopped (every session ended, nothing listening), not a cut cable."""
    migrations.upgrade(own_postgres.url)
    await survives_a_postgres_outage(
        own_postgres.url,
        make_settings,
        lambda: asyncio.to_thread(own_postgres.stop),
        lambda: asyncio.to_thread(own_postgres.start),
    )
    with Reader(own_postgres.url) as reader:
        assert sorted(e for e, _, _ in reader.event_id_counts()) == [f"{1:024x}", f"{2:024x}"]
