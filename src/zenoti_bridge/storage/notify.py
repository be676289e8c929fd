"""New jobs, announced on PostgreSQL with ``NOTIFY`` so that idle worker processes wake at once.

Without it a ``worker`` process finds new jobs only when its idle wait ends (``idle_wait``,
100 ms by default): at the low rates most Zenoti organizations send, that wait *is* the
receipt-to-mirror latency. Intake processes announce that jobs arrived; worker processes
``LISTEN`` and wake their lanes. The announcement is a hint, never the source of truth: a lost
notification only means the next poll finds the job.

Announcing costs nothing on the request path: an accepted event sets a flag, and one task per
process sends at most one ``NOTIFY`` per ``interval`` (50 ms) on its own connection, outside
the event's transaction. (A ``NOTIFY`` inside each insert would serialise every committing intake
transaction on PostgreSQL's notification queue lock; a 5 ms interval woke workers so often under
load that their many small batches slowed PostgreSQL down: see docs/performance.md.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

import psycopg

from ..threads import named_thread

CHANNEL = "zenoti_bridge_jobs"

log = logging.getLogger(__name__)


class JobAnnouncer:
    """Sends ``NOTIFY zenoti_bridge_jobs`` soon after :meth:`announce`, at most once per
    ``interval``; run by the intake side of a PostgreSQL store."""

    def __init__(self, conninfo: str, interval: float = 0.05) -> None:
        self.conninfo = conninfo
        self.interval = interval
        self.sent = 0
        self._wanted = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._conn: psycopg.AsyncConnection[Any] | None = None

    def start(self) -> None:
        """Start the sending task on the running loop."""
        self._task = asyncio.create_task(self._run(), name="zb-job-announcer")

    def announce(self) -> None:
        """New jobs were committed: tell the workers (soon, once for many calls)."""
        self._wanted.set()

    async def stop(self) -> None:
        """Stop sending and close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def _run(self) -> None:
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = await psycopg.AsyncConnection.connect(
                        self.conninfo, autocommit=True, connect_timeout=5
                    )
                await self._conn.execute("SELECT pg_notify(%s, '')", (CHANNEL,))
                self.sent += 1
            except psycopg.Error as exc:  # the workers' polling covers a lost announcement
                log.debug("job announcement failed: %s", exc)
                if self._conn is not None:
                    await self._conn.close()
                self._conn = None
                await asyncio.sleep(1.0)
            await asyncio.sleep(self.interval)


class JobListener:
    """``LISTEN zenoti_bridge_jobs`` in a thread of its own; calls ``on_jobs`` (from that thread)
    for every notification. Reconnects by itself after an error."""

    def __init__(self, conninfo: str, on_jobs: Callable[[], None], poll: float = 0.5) -> None:
        self.conninfo = conninfo
        self.on_jobs = on_jobs
        self.poll = poll
        self.heard = 0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.listening = threading.Event()

    def start(self) -> None:
        """Start listening."""
        self._thread = named_thread(self._run, "zb-job-listener")
        self._thread.start()

    def stop(self) -> None:
        """Stop listening (within ``poll`` seconds)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    while not self._stopping.is_set():
                        for _ in conn.notifies(timeout=self.poll):
                            self.heard += 1
                            self.on_jobs()
            except psycopg.Error as exc:
                self.listening.clear()
                log.debug("job listener: %s; listening again shortly", exc)
                self._stopping.wait(1.0)
