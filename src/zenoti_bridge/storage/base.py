"""The interface every store implements, for intake and, later, workers.

Usage::

    store = open_store(settings.database)
    await store.start()
    recorded = await store.record_event(incoming)   # Outcome.ACCEPTED or Outcome.DUPLICATE
    await store.stop()

``record_event`` returns only once the event row and its jobs are durable (committed and synced
as the backend promises); a failure raises :class:`StorageUnavailable` and nothing is
acknowledged.
"""

from __future__ import annotations

from typing import Protocol

from .records import IncomingEvent, QuarantineItem, Recorded


class Store(Protocol):
    backend: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def record_event(self, event: IncomingEvent) -> Recorded:
        """Store a new event with its jobs, or record one more delivery of a known one."""
        ...

    async def quarantine(self, item: QuarantineItem) -> int:
        """Keep an authentic but unusable body; returns the quarantine id."""
        ...

    async def probe(self) -> None:
        """Raise StorageUnavailable unless the store takes a durable write now."""
        ...
