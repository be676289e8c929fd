"""SQLite store: WAL, synchronous=FULL, group commit, nothing on the event loop waits for a disk.

One connection writes, and one thread uses it: the writer thread runs the group-commit loop. The
event loop only queues events, each with its statement parameters already built, and operations,
and wakes the thread; the thread takes every event that arrived while it was busy, joins their
parameters and writes them as ONE statement in autocommit mode (a multi-row
``INSERT ... ON CONFLICT DO NOTHING``): SQLite begins, inserts, runs a temporary trigger that
inserts each new event's jobs from its row, and commits (syncing the WAL), all inside a single
``sqlite3_step`` during which the thread does not hold the GIL. The thread then posts the
outcomes to the event loop and goes straight on to the next batch, so the GIL changes hands once
per batch instead of once per statement and twice per hand-off between loop and thread: the
loop answers one batch while the next one commits. New rows get consecutive ids (one statement,
one writer), so when every event of a batch is new, its ids follow from ``lastrowid``; a batch
with duplicates reads which ids it created and records the duplicate deliveries in a second
transaction. Operations (quarantine, the probe, workers' batches) run whole in the same thread,
in their own transactions, taking turns with the events.

The writer never checkpoints on its own (``wal_autocheckpoint=0``). A checkpointer thread on a
second connection runs passive checkpoints, short and frequent (every 50 ms by default) because
the commits that coincide with a checkpoint are the slow ones. A passive checkpoint cannot rewind
a WAL that is written to without pause, so once the WAL's frames fill 7/8 of ``wal_limit_bytes``
the checkpointer catches up and the writer thread, between two batches, runs a ``RESTART``
checkpoint, which has only the last few frames left to copy: the next commit writes the WAL from
its start again, over blocks the file already has, and the file stays under the limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from ..errors import StorageUnavailable
from ..threads import named_thread
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
    """UTC text in the format SQLAlchemy reads back and SQLite's date functions understand.

    The intake writes two for every event, so the text up to the second is kept for the last
    seconds seen: with it, half the time of ``isoformat`` (1.5 µs), which prints every field.
    """
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    stamp = value.timestamp()
    if not 0 <= stamp < _EXACT_SECONDS:
        return value.isoformat(" ", "microseconds")[:26]
    second = int(stamp)
    prefix = _SECONDS.get(second)
    if prefix is None:
        if len(_SECONDS) >= 1024:
            _SECONDS.clear()
        prefix = _SECONDS[second] = value.isoformat(" ", "seconds")[:19] + "."
    return prefix + str(1_000_000 + value.microsecond)[1:]


_SECONDS: dict[int, str] = {}  # whole seconds since the epoch -> "YYYY-MM-DD HH:MM:SS."
# Below 2**32 seconds (the year 2106) a float timestamp holds the microseconds exactly enough
# that int() never rounds up into the next second.
_EXACT_SECONDS = 2**32


Op = Callable[[sqlite3.Connection], Any]
Row = tuple[Any, ...]  # one event's parameters of the batch statement
Queued = tuple[IncomingEvent, Row, asyncio.Future[Any]]  # an event waiting for the writer
_T = TypeVar("_T")
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
    busy_waits: int = 0


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
        self.max_batch = max(1, min(max_batch, _MAX_ROWS))
        self.stats = WriterStats()
        self._conn: sqlite3.Connection | None = None
        self._consumers: tuple[str, ...] = ()  # what the connection's job trigger inserts
        self._loop: asyncio.AbstractEventLoop | None = None
        # filled by the event loop, emptied by the writer thread (deque operations are atomic)
        self._events: deque[Queued] = deque()
        self._ops: deque[tuple[Op, asyncio.Future[Any]]] = deque()
        self._unsettled = 0  # futures handed to the writer and not settled yet (event loop only)
        self._closing = False
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._restart_wanted = threading.Event()
        self._writer: threading.Thread | None = None
        self._checkpointer: threading.Thread | None = None

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
        # named for the OS too, so that `top -H` shows which of them uses a core
        self._writer = named_thread(self._write_loop, "zb-writer")
        self._checkpointer = named_thread(self._checkpoint_loop, "zb-checkpointer")
        self._writer.start()
        self._checkpointer.start()

    async def stop(self) -> None:
        """Finish every accepted write, then close."""
        if self._writer is None:
            return
        self._closing = True
        while self._unsettled:  # noqa: ASYNC110 - settled by callbacks from the writer thread
            await asyncio.sleep(0.005)
        self._stopping.set()
        self._wake.set()
        await asyncio.to_thread(self._writer.join)
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.join)
        self._writer = self._checkpointer = None

    # -- operations (event loop) -------------------------------------------------------------

    async def record_event(self, event: IncomingEvent) -> Recorded:
        future = self._new_future()
        self._events.append((event, _event_row(event), future))
        self._nudge()
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
        self._nudge()
        return await future

    def _new_future(self) -> asyncio.Future[Any]:
        if self._writer is None or self._loop is None or self._closing:
            raise StorageUnavailable("the SQLite store is not running")
        self._unsettled += 1
        return self._loop.create_future()

    def _nudge(self) -> None:
        if not self._wake.is_set():  # while the writer is busy this is already set: no lock
            self._wake.set()

    def _settle(self, futures: list[asyncio.Future[Any]], outcomes: Outcomes) -> None:
        self._unsettled -= len(futures)
        _settle(futures, outcomes)

    def _post(self, futures: list[asyncio.Future[Any]], outcomes: Outcomes) -> None:
        """Hand outcomes to the event loop (from the writer thread)."""
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting any more
            self._loop.call_soon_threadsafe(self._settle, futures, outcomes)

    # -- the writer thread -------------------------------------------------------------------
    #
    # Each turn takes whatever is queued: a WAL restart when the checkpointer asked for one,
    # else an operation or a batch of events (they alternate when both are waiting), else it
    # sleeps until the event loop queues something. A batch is every event that arrived while
    # the previous turn ran, up to max_batch: that is the group commit.

    def _write_loop(self) -> None:
        ops_turn = False
        while True:
            self._wake.clear()
            if self._restart_wanted.is_set():
                self._restart_wanted.clear()
                self._restart_wal()
            elif self._ops and (ops_turn or not self._events):
                ops_turn = False
                op, future = self._ops.popleft()
                self._post([future], [self._run_op(op)])
            elif self._events:
                ops_turn = True
                size = min(len(self._events), self.max_batch)
                batch = [self._events.popleft() for _ in range(size)]
                outcomes = self._write_events(batch)
                self._post([future for _, _, future in batch], outcomes)
            elif self._stopping.is_set():
                break
            else:
                self._wake.wait()
        self._reset_connection()

    def _run_op(self, op: Op) -> tuple[Any, BaseException | None]:
        try:
            return self._transaction(op), None
        except sqlite3.Error as exc:  # database errors reach callers as StorageUnavailable
            return None, _unavailable(exc)
        except Exception as exc:  # anything else as it is (a bug)
            return None, exc

    def _write_events(self, queued: list[Queued]) -> Outcomes:
        outcomes: Outcomes = []
        for consumers, run in _runs_by_consumers(queued):
            try:
                outcomes += self._insert(consumers, run)
            except sqlite3.OperationalError as exc:  # I/O error, disk full, locked for too long
                self.stats.failed_batches += 1
                self._reset_connection()
                outcomes += [(None, _unavailable(exc))] * len(run)
            except Exception:  # one bad event must not fail its neighbours
                self.stats.fallbacks += 1
                outcomes += self._each_alone(run)
        self.stats.batches += 1
        self.stats.writes += len(queued)
        self.stats.largest_batch = max(self.stats.largest_batch, len(queued))
        return outcomes

    def _insert(self, consumers: tuple[str, ...], queued: list[Queued]) -> Outcomes:
        """One statement: the events, their jobs (the trigger) and the commit, all or nothing.

        Every event of ``queued`` has ``consumers`` or none. It raises only while nothing is
        written. Once the statement has committed, errors become outcomes: the batch must not be
        written again event by event.
        """
        deadline = self._deadline()  # one wait for the whole batch, however many steps wait
        conn = self._connection(deadline)
        self._use_consumers(conn, consumers, deadline)
        sql = _insert_sql(len(queued))
        params = list(itertools.chain.from_iterable([row for _, row, _ in queued]))
        cursor = self._patiently(lambda: conn.execute(sql, params), deadline)
        created, last = cursor.rowcount, int(cursor.lastrowid or 0)
        if created == len(queued):  # all new: their ids are consecutive, in order
            first = last - created + 1
            return [(Recorded(Outcome.ACCEPTED, first + n), None) for n in range(created)]
        events = [event for event, _, _ in queued]
        try:
            rows = conn.execute(_CREATED, (last - created + 1, last)).fetchall() if created else []
        except sqlite3.Error as exc:  # stored or known: Zenoti's retry is answered duplicate
            return [(None, _unavailable(exc))] * len(events)
        ids = {(source, event_id): pk for pk, source, event_id in rows}
        new = [ids.pop((event.source, event.event_id), None) for event in events]  # twins: 1st
        known = [event for event, pk in zip(events, new, strict=True) if pk is None]
        try:
            seen = iter(self._transaction(lambda c: [_record_duplicate(c, e) for e in known]))
        except Exception as exc:  # the new events are committed: only the duplicates fail
            failed = _unavailable(exc)
            return [
                (None, failed) if pk is None else (Recorded(Outcome.ACCEPTED, pk), None)
                for pk in new
            ]
        return [(next(seen) if pk is None else Recorded(Outcome.ACCEPTED, pk), None) for pk in new]

    def _each_alone(self, queued: list[Queued]) -> Outcomes:
        outcomes: Outcomes = []
        for one in queued:
            try:
                outcomes += self._insert(one[0].consumers, [one])
            except Exception as exc:
                outcomes.append((None, _unavailable(exc)))
        return outcomes

    def _use_consumers(
        self, conn: sqlite3.Connection, consumers: tuple[str, ...], deadline: float
    ) -> None:
        """Give the connection a job trigger for these consumers (unrouted events need none).

        The consumers' names are literals in the trigger; reading them from a temporary table
        for every event cost SQLite 2.5 % more instructions per batch (callgrind).
        """
        if not consumers or consumers == self._consumers:
            return
        self._patiently(lambda: conn.execute("DROP TRIGGER IF EXISTS temp.zb_event_jobs"), deadline)
        self._patiently(lambda: conn.execute(_jobs_trigger(consumers)), deadline)
        self._consumers = consumers

    def _transaction(self, op: Op) -> Any:
        deadline = self._deadline()
        conn = self._connection(deadline)
        self._patiently(lambda: conn.execute("BEGIN IMMEDIATE"), deadline)
        try:
            value = op(conn)
            conn.execute("COMMIT")
        except BaseException:
            self._rollback()
            self._reset_connection()
            raise
        return value

    def _deadline(self) -> float:
        return time.monotonic() + self.busy_timeout_ms / 1000

    def _patiently(self, attempt: Callable[[], _T], deadline: float) -> _T:
        """``attempt()``, again while another connection holds a lock it needs (SQLITE_BUSY).

        The connection's own busy handler would sleep 1, 2, 5, 10, 15, 20 ms and more between
        tries; a batch of events waiting behind a checkpoint's brief lock needs far finer steps.
        A statement that failed with SQLITE_BUSY changed nothing, so trying it again is safe.
        The caller's ``deadline`` (busy_timeout from its start) bounds all of its steps together.
        """
        pause = 0.0001
        while True:
            try:
                return attempt()
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                    raise
                if time.monotonic() > deadline:
                    raise
                self.stats.busy_waits += 1
                time.sleep(pause)
                pause = min(pause * 2, 0.005)

    def _restart_wal(self) -> None:
        try:
            conn = self._connection(self._deadline())
            # the RESTART is tried once: with a reader in the way, it is asked for again later
            busy, _, _ = conn.execute("PRAGMA main.wal_checkpoint(RESTART)").fetchone()
            if not busy:
                self.stats.wal_restarts += 1
        except sqlite3.Error as exc:
            log.warning("WAL restart failed: %s", exc)
            self._reset_connection()

    # -- the connection (writer thread only) -------------------------------------------------

    def _enable_wal(self) -> None:
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout_ms / 1000)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
        finally:
            conn.close()

    def _connection(self, deadline: float) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(
                self.path,
                isolation_level=None,
                check_same_thread=False,
                timeout=0,  # waits for other connections' locks are _patiently's
            )
            try:
                # the first statement reads the file: while another connection opens the WAL
                # (the checkpointer, at start) it may meet a lock held for a moment
                self._patiently(lambda: conn.execute("PRAGMA journal_mode=WAL"), deadline)
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute("PRAGMA wal_autocheckpoint=0")
                conn.execute("PRAGMA cache_size=-65536")  # 64 MiB: index pages stay in memory
                conn.execute(f"PRAGMA journal_size_limit={int(self.wal_limit_bytes)}")
                conn.execute("PRAGMA temp_store=MEMORY")
            except sqlite3.Error:
                conn.close()
                raise
            self._conn = conn
            self._consumers = ()
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
        conn: sqlite3.Connection | None = None
        frame_bytes = 0
        while not self._stopping.wait(self.checkpoint_interval):
            try:
                if conn is None:
                    conn = sqlite3.connect(self.path, isolation_level=None, timeout=0.1)
                    conn.execute("PRAGMA synchronous=FULL")
                    (page_size,) = conn.execute("PRAGMA main.page_size").fetchone()
                    frame_bytes = page_size + 24
                _, frames, _ = conn.execute("PRAGMA main.wal_checkpoint(PASSIVE)").fetchone()
                if frames < 0:  # not in WAL mode (yet): look again on a fresh connection
                    conn.close()
                    conn = None
                    continue
                self.stats.passive_checkpoints += 1
                if frames * frame_bytes >= self.wal_limit_bytes * _RESTART_AT:
                    self._catch_up(conn)
                    self._restart_wanted.set()
                    self._wake.set()
            except sqlite3.Error as exc:
                log.debug("passive checkpoint failed: %s", exc)
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(self.checkpoint_interval)
        if conn is not None:
            conn.close()

    def _catch_up(self, conn: sqlite3.Connection) -> None:
        """Copy nearly every frame before the writer's RESTART, which holds up every commit.

        Otherwise a RESTART right before the next pass would have up to one interval of commits
        to copy and sync while every batch waits.
        """
        for _ in range(4):
            _, frames, done = conn.execute("PRAGMA main.wal_checkpoint(PASSIVE)").fetchone()
            if frames - done <= _RESTART_FRAMES_LEFT:
                return


def _settle(futures: list[asyncio.Future[Any]], outcomes: Outcomes) -> None:
    for future, (value, error) in zip(futures, outcomes, strict=True):
        if future.done():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)


def _unavailable(exc: BaseException) -> StorageUnavailable:
    if isinstance(exc, StorageUnavailable):
        return exc
    error = StorageUnavailable(f"SQLite write failed: {exc}")
    error.__cause__ = exc
    return error


# -- the batch statement -------------------------------------------------------------------

_EVENT_COLUMNS = (
    "source, event_id, delivery_id, event_type, type_name, family, resource, entity_id, "
    "ordering_key, routed, status, event_schema, event_timestamp, event_ts, received_at, "
    "last_seen_at, delivery_count, verb, signature, headers, query, body"
)
_EVENT_ROW = "(" + ", ".join(["?"] * 16 + ["1"] + ["?"] * 5) + ")"
_RESTART_FRAMES_LEFT = 64  # the WAL frames a RESTART may still have to copy
# The WAL is rewound once its frames fill 7/8 of wal_limit_bytes, so that it is rewound before
# the file passes the limit (journal_size_limit would then cut it back, and it would grow again).
_RESTART_AT = 7 / 8
_MAX_ROWS = 32766 // 21  # bound parameters per statement: SQLite allows 32,766


def _jobs_trigger(consumers: tuple[str, ...]) -> str:
    """The writing connection's own (TEMP) trigger: one job per consumer, in their order.

    Other connections, and PostgreSQL, insert jobs themselves. A temporary trigger may name
    main's tables only unqualified.

    A row trigger makes SQLite copy every row of the multi-row INSERT into a temporary table
    first: the jobs as a second statement (``INSERT ... SELECT`` over the batch's id range, in
    one transaction) cost SQLite 30 % fewer instructions per batch of 16 (callgrind). But then
    the writer needs the GIL between its statements, and the commit waits while the event loop
    answers a batch: interleaved with this trigger on 2026-11-27, 4,829 events/s against 6,018
    (four rounds of ``bench/intake.py``'s load). One statement it stays.
    """
    rows = ", ".join(
        f"(NEW.id, {_literal(name)}, '{JobStatus.QUEUED}', NEW.ordering_key, 0, NEW.received_at, "
        "NEW.received_at, NEW.received_at)"
        for name in consumers
    )
    return f"""
CREATE TEMP TRIGGER zb_event_jobs AFTER INSERT ON main.events
WHEN NEW.status = '{EventStatus.PENDING}'
BEGIN
    INSERT INTO jobs (event_pk, consumer, status, ordering_key, attempts, run_at, created_at,
        updated_at)
    VALUES {rows};
END
"""


def _literal(text: str) -> str:
    """``text`` as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


_CREATED = "SELECT id, source, event_id FROM events WHERE id BETWEEN ? AND ?"


@functools.cache
def _insert_sql(rows: int) -> str:
    return (
        f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES "
        + ", ".join([_EVENT_ROW] * rows)
        + " ON CONFLICT (source, event_id) DO NOTHING"
    )


def _event_row(event: IncomingEvent) -> Row:
    """The statement's parameters for one event, built by the event loop as the event arrives.

    The writer thread only joins the rows of a batch: the less Python it runs per batch, the
    sooner it commits the next one.
    """
    received = sqlite_time(event.received_at)
    return (
        event.source,
        event.event_id,
        event.delivery_id,
        event.event_type,
        event.type_name,
        event.family,
        event.resource,
        event.entity_id,
        event.ordering_key,
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


def _runs_by_consumers(queued: list[Queued]) -> list[tuple[tuple[str, ...], list[Queued]]]:
    """The batch split where the consumers change (in practice never: one set per intake).

    The job trigger inserts one job per consumer of the connection's current set, so one
    statement holds events of one set; unrouted events (no consumers, no jobs) go with any.
    """
    runs: list[tuple[tuple[str, ...], list[Queued]]] = []
    current: tuple[str, ...] = ()
    pending: list[Queued] = []
    for one in queued:
        consumers = one[0].consumers
        if consumers and consumers != current:
            if current:
                runs.append((current, pending))
                pending = []
            current = consumers
        pending.append(one)
    runs.append((current, pending))
    return runs


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
