"""SQLite store: WAL, synchronous=FULL, one writer thread with group commit.

Every write goes through one thread that owns the only writing connection. It takes whatever
arrived while the previous commit was being synced, writes it all in one ``BEGIN IMMEDIATE``
transaction and commits once, so one fsync covers many events; then it wakes the waiting requests
on their event loop. Nothing on the event loop ever waits for the disk.

The writer never checkpoints on its own (``wal_autocheckpoint=0``). A checkpointer thread on a
second connection runs passive checkpoints; a passive checkpoint cannot rewind a WAL that is
written to without pause, so once the WAL file passes ``wal_limit_bytes`` the writer, between two
batches, runs one ``TRUNCATE`` checkpoint, which is quick because the checkpointer has already
copied nearly every frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import StorageUnavailable
from .records import EventStatus, IncomingEvent, JobStatus, Outcome, QuarantineItem, Recorded

log = logging.getLogger(__name__)

_TOUCH_EVENT = """
UPDATE events SET delivery_count = delivery_count + 1, last_seen_at = max(last_seen_at, ?)
WHERE source = ? AND event_id = ?
RETURNING id
"""
_INSERT_DELIVERY = """
INSERT INTO deliveries (event_pk, delivery_id, received_at, verb, signature, headers)
VALUES (?, ?, ?, ?, ?, ?)
"""
_INSERT_QUARANTINE = """
INSERT INTO quarantine (source, received_at, verb, signature, reason, detail, event_id, headers,
    query, body, status)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'held')
RETURNING id
"""
_PROBE = """
INSERT INTO store_probe (id, checked_at) VALUES (1, ?)
ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at
"""


def sqlite_time(value: datetime) -> str:
    """UTC text in the format SQLAlchemy reads back and SQLite's date functions understand."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]


Op = Callable[[sqlite3.Connection], Any]


@dataclass(slots=True)
class _Request:
    op: Op | None  # None: record ``event``, in bulk with the batch's other events
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    event: IncomingEvent | None = None


_STOP = object()


@dataclass(slots=True)
class WriterStats:
    batches: int = 0
    writes: int = 0
    largest_batch: int = 0
    failed_batches: int = 0
    truncations: int = 0
    passive_checkpoints: int = 0


def _resolve(pairs: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, value, error in pairs:
        if future.done():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)


class SQLiteStore:
    """The embedded store: one file, one writer thread, group commit."""

    backend = "sqlite"

    def __init__(
        self,
        path: Path | str,
        *,
        wal_limit_bytes: int = 256 * 1024 * 1024,
        checkpoint_interval: float = 0.2,
        busy_timeout_ms: int = 5000,
        max_batch: int = 1000,
    ) -> None:
        self.path = Path(path)
        self.wal_limit_bytes = wal_limit_bytes
        self.checkpoint_interval = checkpoint_interval
        self.busy_timeout_ms = busy_timeout_ms
        self.max_batch = max_batch
        self.stats = WriterStats()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._conn: sqlite3.Connection | None = None
        self._writer: threading.Thread | None = None
        self._checkpointer: threading.Thread | None = None
        self._stopping = threading.Event()
        self._truncate_wanted = threading.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # WAL before the checkpointer connects: on a database still in rollback-journal mode a
        # passive checkpoint does nothing, and it would go on doing nothing
        with contextlib.suppress(sqlite3.Error):
            await asyncio.to_thread(self._enable_wal)
        self._stopping.clear()
        self._writer = threading.Thread(target=self._write_loop, name="zb-sqlite-writer")
        self._checkpointer = threading.Thread(
            target=self._checkpoint_loop, name="zb-sqlite-checkpointer", daemon=True
        )
        self._writer.start()
        self._checkpointer.start()

    async def stop(self) -> None:
        """Finish every queued write, then close."""
        if self._writer is None:
            return
        self._queue.put(_STOP)
        await asyncio.to_thread(self._writer.join)
        self._stopping.set()
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.join)
        self._writer = self._checkpointer = None

    # -- operations --------------------------------------------------------------------------

    async def record_event(self, event: IncomingEvent) -> Recorded:
        result: Recorded = await self._submit(None, event)
        return result

    async def quarantine(self, item: QuarantineItem) -> int:
        result: int = await self._submit(lambda conn: _quarantine(conn, item))
        return result

    async def probe(self) -> None:
        now = sqlite_time(datetime.now(UTC))
        await self._submit(lambda conn: conn.execute(_PROBE, (now,)))

    async def in_writer(self, op: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``op`` in the writer thread inside its own batch's transaction (group commit)."""
        return await self._submit(op)

    def _submit(self, op: Op | None, event: IncomingEvent | None = None) -> asyncio.Future[Any]:
        if self._writer is None or not self._writer.is_alive():
            raise StorageUnavailable("the SQLite writer is not running")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.put(_Request(op, future, loop, event))
        return future

    # -- the writer thread -------------------------------------------------------------------

    def _enable_wal(self) -> None:
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout_ms / 1000)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
        finally:
            conn.close()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            isolation_level=None,
            check_same_thread=False,
            timeout=self.busy_timeout_ms / 1000,
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute("PRAGMA cache_size=-65536")  # 64 MiB: index pages stay in memory
        conn.execute(f"PRAGMA journal_size_limit={int(self.wal_limit_bytes)}")
        return conn

    def _write_loop(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is _STOP:
                break
            batch: list[_Request] = [first]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
            self._run_batch(batch)
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _run_batch(self, batch: list[_Request]) -> None:
        if self._truncate_wanted.is_set():
            self._truncate_wal()
        try:
            outcomes = self._commit(batch)
        except Exception as exc:  # any failure: no request in this batch is acknowledged
            self.stats.failed_batches += 1
            self._reset_connection()
            if len(batch) == 1:
                outcomes = [(None, _unavailable(exc))]
            else:
                # one bad write must not fail its neighbours: retry each on its own
                outcomes = []
                for request in batch:
                    try:
                        outcomes.extend(self._commit([request]))
                    except Exception as single:
                        self._reset_connection()
                        outcomes.append((None, _unavailable(single)))
        by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
        for request, (value, error) in zip(batch, outcomes, strict=True):
            by_loop.setdefault(request.loop, []).append((request.future, value, error))
        for loop, pairs in by_loop.items():
            # a loop that closed while we wrote has nobody waiting on it
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve, pairs)

    def _commit(self, batch: list[_Request]) -> list[tuple[Any, BaseException | None]]:
        if self._conn is None:
            self._conn = self._connect()
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            events = [r.event for r in batch if r.event is not None]
            recorded = iter(_record_events(conn, events) if events else [])
            values = [next(recorded) if r.op is None else r.op(conn) for r in batch]
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self.stats.batches += 1
        self.stats.writes += len(batch)
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        return [(value, None) for value in values]

    def _reset_connection(self) -> None:
        # after an I/O error SQLite may keep a broken handle: start over on the next batch
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None

    def _truncate_wal(self) -> None:
        self._truncate_wanted.clear()
        if self._conn is None:
            return
        try:
            self._conn.execute("PRAGMA busy_timeout=100")  # never wait long for a slow reader
            busy, _, _ = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                self.stats.truncations += 1
        except sqlite3.Error as exc:
            log.warning("WAL truncation failed: %s", exc)
        finally:
            try:
                self._conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
            except sqlite3.Error:
                self._reset_connection()

    # -- the checkpointer thread -------------------------------------------------------------

    def _checkpoint_loop(self) -> None:
        wal = Path(f"{self.path}-wal")
        conn: sqlite3.Connection | None = None
        while not self._stopping.wait(self.checkpoint_interval):
            try:
                if conn is None:
                    conn = sqlite3.connect(self.path, isolation_level=None, timeout=0.1)
                    conn.execute("PRAGMA synchronous=FULL")
                _, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                if frames < 0:  # not in WAL mode (yet): look again on a fresh connection
                    conn.close()
                    conn = None
                    continue
                self.stats.passive_checkpoints += 1
                if wal.exists() and os.path.getsize(wal) > self.wal_limit_bytes:
                    self._truncate_wanted.set()
            except sqlite3.Error as exc:
                log.debug("passive checkpoint failed: %s", exc)
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(self.checkpoint_interval)
        if conn is not None:
            conn.close()


def _unavailable(exc: BaseException) -> StorageUnavailable:
    error = StorageUnavailable(f"SQLite write failed: {exc}")
    error.__cause__ = exc
    return error


_EVENT_COLUMNS = (
    "source, event_id, delivery_id, event_type, type_name, family, resource, entity_id, routed, "
    "status, event_schema, event_timestamp, event_ts, received_at, last_seen_at, delivery_count, "
    "verb, signature, headers, query, body"
)
_EVENT_ROW = "(" + ", ".join(["?"] * 15 + ["1"] + ["?"] * 5) + ")"
_JOB_ROW = "(?, ?, ?, ?, 0, ?, ?, ?)"
_ROWS_PER_STATEMENT = 1000  # 20 parameters a row, under SQLite's 32766


def _record_events(conn: sqlite3.Connection, events: list[IncomingEvent]) -> list[Recorded]:
    """Store a batch of events with a handful of statements, whatever the batch size.

    Each statement the sqlite3 module runs gives up the GIL and has to win it back from the
    event loop, which can take a whole switch interval; so the batch is written with one
    multi-row INSERT for the events and one for their jobs, instead of a few statements per
    event. Rows with an id above the previous maximum are the ones this batch created.
    """
    (before,) = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()
    for start in range(0, len(events), _ROWS_PER_STATEMENT):
        chunk = events[start : start + _ROWS_PER_STATEMENT]
        params: list[Any] = []
        for event in chunk:
            received = sqlite_time(event.received_at)
            params += (
                event.source,
                event.event_id,
                event.delivery_id,
                event.event_type,
                event.type_name,
                event.family,
                event.resource,
                event.entity_id,
                event.routed,
                EventStatus.PENDING if event.consumers else EventStatus.UNROUTED,
                event.event_schema,
                event.event_timestamp,
                sqlite_time(event.event_ts),
                received,
                received,
                event.verb,
                event.signature,
                event.headers.decode(),
                event.query,
                event.body,
            )
        conn.execute(
            f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES "
            + ", ".join([_EVENT_ROW] * len(chunk))
            + " ON CONFLICT (source, event_id) DO NOTHING",
            params,
        )
    (listing,) = conn.execute(
        "SELECT group_concat(id || char(31) || source || char(31) || event_id, char(30)) "
        "FROM events WHERE id > ?",
        (before,),
    ).fetchone()
    created: dict[tuple[str, str], int] = {}
    for entry in (listing or "").split("\x1e") if listing else []:
        pk, source, event_id = entry.split("\x1f")
        created[(source, event_id)] = int(pk)
    results: list[Recorded] = []
    jobs: list[Any] = []
    job_rows = 0
    claimed: set[tuple[str, str]] = set()
    for event in events:
        key = (event.source, event.event_id)
        if key in created and key not in claimed:
            claimed.add(key)
            pk = created[key]
            received = sqlite_time(event.received_at)
            for consumer in event.consumers:
                jobs += (
                    pk,
                    consumer,
                    JobStatus.QUEUED,
                    event.ordering_key,
                    received,
                    received,
                    received,
                )
                job_rows += 1
            results.append(Recorded(Outcome.ACCEPTED, pk))
        else:
            results.append(_record_duplicate(conn, event))
    for start in range(0, job_rows, _ROWS_PER_STATEMENT):
        count = min(_ROWS_PER_STATEMENT, job_rows - start)
        conn.execute(
            "INSERT INTO jobs (event_pk, consumer, status, ordering_key, attempts, run_at, "
            "created_at, updated_at) VALUES " + ", ".join([_JOB_ROW] * count),
            jobs[start * 7 : (start + count) * 7],
        )
    return results


def _record_duplicate(conn: sqlite3.Connection, event: IncomingEvent) -> Recorded:
    received = sqlite_time(event.received_at)
    (pk,) = conn.execute(_TOUCH_EVENT, (received, event.source, event.event_id)).fetchone()
    conn.execute(
        _INSERT_DELIVERY,
        (pk, event.delivery_id, received, event.verb, event.signature, event.headers.decode()),
    )
    return Recorded(Outcome.DUPLICATE, pk)


def _quarantine(conn: sqlite3.Connection, item: QuarantineItem) -> int:
    (pk,) = conn.execute(
        _INSERT_QUARANTINE,
        (
            item.source,
            sqlite_time(item.received_at),
            item.verb,
            item.signature,
            item.reason,
            item.detail,
            item.event_id,
            item.headers.decode(),
            item.query,
            item.body,
        ),
    ).fetchone()
    return int(pk)
