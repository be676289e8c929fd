"""Filling a store with queued events before the workers start, through the real intake code.

The events go through :class:`zenoti_bridge.intake.Intake`, the ASGI app ``serve`` and ``intake``
mount, called in this process without HTTP: the signature is checked, the envelope parsed and
the event row and its mirror job written by the store exactly as for a webhook, so the rows are
the ones a running bridge would hold. Nothing consumes them: no worker runs here.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from asyncio_load import run_loop
from mixed_events import MixedEvent
from zenoti_bridge.config import Settings, load_settings
from zenoti_bridge.intake import Intake
from zenoti_bridge.signature import DEFAULT_HEADER, sign
from zenoti_bridge.storage import migrate, open_store


@dataclass(frozen=True, slots=True)
class Preloaded:
    seconds: float
    statuses: dict[int, int]
    outcomes: dict[str, int]


def _scope(path: str, signature: str) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "POST",
        "path": path,
        "query_string": b"",
        "headers": [
            (b"content-type", b"application/json"),
            (DEFAULT_HEADER.encode(), signature.encode()),
        ],
    }


async def _deliver(intake: Intake, path: str, signature: str, body: bytes) -> tuple[int, str]:
    answer: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Any) -> None:
        answer.append(message)

    await intake(_scope(path, signature), receive, send)
    status = int(answer[0]["status"])
    document = orjson.loads(answer[1]["body"])
    return status, str(document.get("status", "")) if isinstance(document, dict) else ""


async def _preload(
    settings: Settings, source: str, events: list[MixedEvent], in_flight: int
) -> Preloaded:
    secret = settings.sources[source].webhook_secrets[0]
    path = f"/webhooks/zenoti/{source}"
    signed = [(sign(secret, e.body), e.body) for e in events]
    store = open_store(settings.database)
    await store.start()
    statuses: Counter[int] = Counter()
    outcomes: Counter[str] = Counter()
    try:
        intake = Intake(settings, store)
        slots = asyncio.Semaphore(in_flight)

        async def one(signature: str, body: bytes) -> None:
            async with slots:
                status, outcome = await _deliver(intake, path, signature, body)
            statuses[status] += 1
            outcomes[outcome] += 1

        started = time.perf_counter()
        await asyncio.gather(*(one(s, b) for s, b in signed))
        seconds = time.perf_counter() - started
    finally:
        await store.stop()
    return Preloaded(seconds, dict(statuses), dict(outcomes))


def preload(config: Path, source: str, events: list[MixedEvent]) -> Preloaded:
    """Migrate the database of ``config``, then store ``events`` as webhooks to ``source``.

    Many deliveries are in flight at once, as under load: SQLite's writer commits them in
    groups; PostgreSQL gets as many as its pool has connections, twice over.
    """
    settings = load_settings(config, require_file=True)
    migrate.upgrade(settings.database.url)
    in_flight = 512 if settings.database.is_sqlite else 2 * settings.database.pool_size
    return run_loop(_preload(settings, source, events, in_flight))
