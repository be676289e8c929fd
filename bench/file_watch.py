"""Watching a file's size from a background thread: the SQLite WAL must stay bounded."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import TracebackType


class SizeWatch:
    """Polls ``path`` every ``interval`` seconds while open: the largest size seen, and how
    often the file shrank (for a WAL: a ``TRUNCATE`` checkpoint).

    Usage::

        with SizeWatch(Path("bench.db-wal")) as wal:
            run_load()
        print(wal.max_bytes)
    """

    def __init__(self, path: Path, interval: float = 0.02) -> None:
        self.path = path
        self.interval = interval
        self.max_bytes = 0
        self.last_bytes = 0
        self.shrinks = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="size-watch", daemon=True)

    def _poll(self) -> None:
        while True:
            self._sample()
            if self._stop.wait(self.interval):
                break
        self._sample()

    def _sample(self) -> None:
        try:
            size = os.stat(self.path).st_size
        except FileNotFoundError:
            size = 0
        self.samples += 1
        if size < self.last_bytes:
            self.shrinks += 1
        self.last_bytes = size
        self.max_bytes = max(self.max_bytes, size)

    def __enter__(self) -> SizeWatch:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
