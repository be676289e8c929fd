"""SQLite store: WAL, synchronous=FULL, group commit, nothing on the event loop waits for a disk.

One connection writes. Events are written in group commits: the statements of a batch (one
``BEGIN IMMEDIATE`` and a few multi-row inserts, whatever the batch size) run on the event loop,
and the ``COMMIT``, which syncs the WAL, runs in the writer thread; the requests of the batch are
answered when it returns. Whatever arrives during that fsync forms the next batch. Running the
statements on the loop instead of in the writer thread spares one hand-off of the GIL per
statement, which under load cost more than the statements themselves; the loop never waits for a
lock (``busy_timeout=0``: when another process holds the write lock, the batch moves to the writer
thread, which waits).

The writer never checkpoints on its own (``wal_autocheckpoint=0``). A checkpointer thread on a
second connection runs passive checkpoints; a passive checkpoint cannot rewind a WAL that is
written to without pause, so once the WAL file passes ``wal_limit_bytes`` the writer thread, between
two batches, runs one ``RESTART`` checkpoint, which is quick because the checkpointer has already
copied nearly every frame: the next commit writes the WAL from its start again, over blocks the
file already has (``journal_size_limit`` keeps the file itself at the limit). Checkpoints are
short and frequent (every 50 ms by default) because the commits that coincide with a checkpoint
are the slow ones: at 200 ms the intake's p99 was 64 to 127 ms, at 50 ms 12 to 39 ms; with
``TRUNCATE`` instead of ``RESTART`` every pass over the limit also cost a stall of 100 ms or more.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
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
Outcomes = list[tuple[Any, BaseException | None]]


@dataclass(slots=True)
class WriterStats:
    batches: int = 0
    writes: int = 0
    largest_batch: int = 0
    failed_batches: int = 0
    fallbacks: int = 0
    wal_restarts: int = 0
    passive_checkpoints: int = 0


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class SQLiteStore:
    """The embedded store: one file, one writing connection, group commit in a writer thread."""

    backend = "sqlite"

    def __init__(
        self,
        path: Path | str,
        *,
        wal_limit_bytes: int = 256 * 1024 * 1024,
        checkpoint_interval: float = 0.05,
        busy_timeout_ms: int = 5000,
        max_batch: int = 1000,
    ) -> None:
        self.path = Path(path)
        self.wal_limit_bytes = wal_limit_bytes
        self.checkpoint_interval = checkpoint_interval
        self.busy_timeout_ms = busy_timeout_ms
        self.max_batch = max_batch
        self.stats = WriterStats()
        self._conn: sqlite3.Connection | None = None
        self._writer: ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[tuple[IncomingEvent, asyncio.Future[Any]]] = []
        self._ops: deque[tuple[Op, asyncio.Future[Any]]] = deque()
        self._busy = False  # the connection is in use by a cycle (loop or writer thread)
        self._scheduled = False
        self._ops_turn = False
        self._closing = False
        self._checkpointer: threading.Thread | None = None
        self._stopping = threading.Event()
        self._restart_wanted = threading.Event()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # WAL before the checkpointer connects: on a database still in rollback-journal mode a
        # passive checkpoint does nothing, and it would go on doing nothing
        with contextlib.suppress(sqlite3.Error):
            await asyncio.to_thread(self._enable_wal)
        self._loop = asyncio.get_running_loop()
        self._closing = False
        self._stopping.clear()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zb-sqlite-writer")
        self._checkpointer = threading.Thread(
            target=self._checkpoint_loop, name="zb-sqlite-checkpointer", daemon=True
        )
        self._checkpointer.start()

    async def stop(self) -> None:
        """Finish every accepted write, then close."""
        if self._writer is None:
            return
        self._closing = True
        while self._busy or self._scheduled or self._pending or self._ops:  # noqa: ASYNC110 - drained by callbacks, not by one waiter
            await asyncio.sleep(0.005)
        await asyncio.get_running_loop().run_in_executor(self._writer, self._reset_connection)
        self._writer.shutdown(wait=True)
        self._stopping.set()
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.join)
        self._writer = self._checkpointer = None

    # -- operations --------------------------------------------------------------------------

    async def record_event(self, event: IncomingEvent) -> Recorded:
        future = self._new_future()
        self._pending.append((event, future))
        self._kick()
        result: Recorded = await future
        return result

    async def quarantine(self, item: QuarantineItem) -> int:
        result: int = await self.in_writer(lambda conn: _quarantine(conn, item))
        return result

    async def probe(self) -> None:
        now = sqlite_time(datetime.now(UTC))
        await self.in_writer(lambda conn: conn.execute(_PROBE, (now,)))

    async def in_writer(self, op: Op) -> Any:
        """Run ``op`` in the writer thread in a transaction of its own."""
        future = self._new_future()
        self._ops.append((op, future))
        self._kick()
        return await future

    def _new_future(self) -> asyncio.Future[Any]:
        if self._writer is None or self._loop is None or self._closing:
            raise StorageUnavailable("the SQLite store is not running")
        return self._loop.create_future()

    # -- the cycle: one user of the connection at a time -------------------------------------
    #
    # Events are written in group commits. On the event loop: BEGIN IMMEDIATE and the multi-row
    # inserts of every event that arrived since the last commit (statements only; nothing waits
    # for the disk, and the loop never hands the GIL back and forth with another thread for
    # them). In the writer thread: COMMIT, which with synchronous=FULL syncs the WAL. Requests
    # arriving meanwhile wait for the next cycle, so each commit takes whatever arrived during
    # the previous fsync. Other operations (quarantine, the probe, workers' batches) and WAL
    # restarts run whole in the writer thread, taking turns with the events.

    def _kick(self) -> None:
        if self._busy or self._scheduled or self._loop is None:
            return
        if self._pending or self._ops or self._restart_wanted.is_set():
            self._scheduled = True
            self._loop.call_soon(self._cycle)

    def _cycle(self) -> None:
        self._scheduled = False
        if self._busy:
            return
        if self._restart_wanted.is_set():
            self._restart_wanted.clear()
            self._in_writer(self._restart_wal, lambda _outcome: None)
        elif self._ops and (self._ops_turn or not self._pending):
            self._ops_turn = False
            op, future = self._ops.popleft()
            self._in_writer(
                lambda: self._transaction(op), lambda o: _settle([future], [_storage(o)])
            )
        elif self._pending:
            self._ops_turn = True
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            self._write_events(batch)

    def _in_writer(
        self, work: Callable[[], Any], done: Callable[[tuple[Any, BaseException | None]], None]
    ) -> None:
        assert self._writer is not None and self._loop is not None
        self._busy = True
        loop = self._loop

        def finished(result: Future[Any]) -> None:
            loop.call_soon_threadsafe(self._finished, result, done)

        self._writer.submit(work).add_done_callback(finished)

    def _finished(
        self, result: Future[Any], done: Callable[[tuple[Any, BaseException | None]], None]
    ) -> None:
        self._busy = False
        error = result.exception()
        done((None, error) if error is not None else (result.result(), None))
        self._kick()

    def _write_events(self, batch: list[tuple[IncomingEvent, asyncio.Future[Any]]]) -> None:
        futures = [future for _, future in batch]
        events = [event for event, _ in batch]
        try:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if _is_busy(exc):  # another process holds the write lock: wait in the writer thread
                self.stats.fallbacks += 1
                self._in_writer(
                    lambda: self._each_alone(events), lambda o: _settle_each(futures, o)
                )
                return
            self._fail(futures, exc)
            return
        except sqlite3.Error as exc:
            self._fail(futures, exc)
            return
        try:
            recorded = _record_events(conn, events)
        except sqlite3.OperationalError as exc:  # I/O error, disk full: nothing of this batch
            self._rollback()
            self._fail(futures, exc)
            return
        except Exception:  # one bad event must not fail its neighbours
            self._rollback()
            self.stats.fallbacks += 1
            self._in_writer(lambda: self._each_alone(events), lambda o: _settle_each(futures, o))
            return

        def committed(outcome: tuple[Any, BaseException | None]) -> None:
            if outcome[1] is None:
                self.stats.batches += 1
                self.stats.writes += len(batch)
                self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
                _settle(futures, [(r, None) for r in recorded])
            else:
                self.stats.failed_batches += 1
                _settle(futures, [(None, _unavailable(outcome[1]))] * len(futures))

        self._in_writer(self._commit, committed)

    def _fail(self, futures: list[asyncio.Future[Any]], exc: BaseException) -> None:
        self.stats.failed_batches += 1
        self._reset_connection()
        _settle(futures, [(None, _unavailable(exc))] * len(futures))
        self._kick()

    # -- in the writer thread ----------------------------------------------------------------

    def _commit(self) -> None:
        conn = self._connection()
        try:
            conn.execute("COMMIT")
        except BaseException:
            self._rollback()
            self._reset_connection()
            raise

    def _transaction(self, op: Op) -> Any:
        conn = self._connection()
        self._begin_waiting(conn)
        try:
            value = op(conn)
            conn.execute("COMMIT")
        except BaseException:
            self._rollback()
            self._reset_connection()
            raise
        return value

    def _each_alone(self, events: list[IncomingEvent]) -> Outcomes:
        outcomes: Outcomes = []
        for event in events:
            try:
                outcomes.append(
                    (self._transaction(functools.partial(_record_one, event=event)), None)
                )
            except Exception as exc:
                outcomes.append((None, _unavailable(exc)))
        return outcomes

    def _begin_waiting(self, conn: sqlite3.Connection) -> None:
        deadline = time.monotonic() + self.busy_timeout_ms / 1000
        pause = 0.001
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 0.05)

    def _restart_wal(self) -> None:
        try:
            busy, _, _ = self._connection().execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
            if not busy:
                self.stats.wal_restarts += 1
        except sqlite3.Error as exc:
            log.warning("WAL restart failed: %s", exc)
            self._reset_connection()

    # -- the connection (used by one side at a time) -----------------------------------------

    def _enable_wal(self) -> None:
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout_ms / 1000)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
        finally:
            conn.close()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=0
            )
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute("PRAGMA busy_timeout=0")  # the event loop never waits for a lock
                conn.execute("PRAGMA wal_autocheckpoint=0")
                conn.execute("PRAGMA cache_size=-65536")  # 64 MiB: index pages stay in memory
                conn.execute(f"PRAGMA journal_size_limit={int(self.wal_limit_bytes)}")
            except sqlite3.Error:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _rollback(self) -> None:
        if self._conn is not None and self._conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")

    def _reset_connection(self) -> None:
        # after an I/O error SQLite may keep a broken handle: start over on the next batch
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
            self._conn = None

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
                    self._restart_wanted.set()
                    if self._loop is not None:
                        with contextlib.suppress(RuntimeError):
                            self._loop.call_soon_threadsafe(self._kick)
            except sqlite3.Error as exc:
                log.debug("passive checkpoint failed: %s", exc)
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(self.checkpoint_interval)
        if conn is not None:
            conn.close()


def _settle(futures: list[asyncio.Future[Any]], outcomes: Outcomes) -> None:
    for future, (value, error) in zip(futures, outcomes, strict=True):
        if future.done():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)


def _storage(outcome: tuple[Any, BaseException | None]) -> tuple[Any, BaseException | None]:
    """Database errors reach callers as StorageUnavailable; anything else as it is (a bug)."""
    value, error = outcome
    if isinstance(error, sqlite3.Error):
        return None, _unavailable(error)
    return value, error


def _settle_each(
    futures: list[asyncio.Future[Any]], outcome: tuple[Any, BaseException | None]
) -> None:
    value, error = outcome
    if error is not None:
        _settle(futures, [(None, _unavailable(error))] * len(futures))
    else:
        _settle(futures, value)


def _unavailable(exc: BaseException) -> StorageUnavailable:
    if isinstance(exc, StorageUnavailable):
        return exc
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
    received_at = [sqlite_time(event.received_at) for event in events]  # events' and jobs' rows
    for start in range(0, len(events), _ROWS_PER_STATEMENT):
        chunk = events[start : start + _ROWS_PER_STATEMENT]
        params: list[Any] = []
        for event, received in zip(chunk, received_at[start:], strict=False):
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
    for event, received in zip(events, received_at, strict=True):
        key = (event.source, event.event_id)
        if key in created and key not in claimed:
            claimed.add(key)
            pk = created[key]
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


def _record_one(conn: sqlite3.Connection, event: IncomingEvent) -> Recorded:
    return _record_events(conn, [event])[0]


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
