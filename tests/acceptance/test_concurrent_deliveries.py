"""The same event over 50 real TCP connections at once, to a running ``serve``: stored once.

The integration suite sends the 50 deliveries through an in-process transport; here each one
has a keep-alive connection of its own to the server's socket, opened before any is sent, so
the 50 arrive as Zenoti's duplicate webhooks (several per center, retries) would.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import httpx
import orjson

from tests.conftest import payload
from zenoti_bridge.signature import DEFAULT_HEADER, sign
from zenoti_bridge.storage.queries import Reader

from .serve_process import ServeProcesses, free_port, write_config

SECRET = "concurrent-deliveries-secret"
CONNECTIONS = 50
EVENT_ID = "6" * 24


def delivery(n: int) -> bytes:
    """The same event (one event_id), each delivery with an id of its own."""
    document = orjson.loads(payload("Invoice.Closed"))
    document["event_id"] = EVENT_ID
    document["id"] = f"{n:024x}"
    return orjson.dumps(document)


async def send_all(url: str, health: str) -> tuple[Counter[str], set[int]]:
    clients = [httpx.AsyncClient(timeout=30) for _ in range(CONNECTIONS)]
    try:
        for client in clients:  # each client now holds one open connection to the server
            assert (await client.get(health)).status_code == 200
        bodies = [delivery(n) for n in range(CONNECTIONS)]
        start = asyncio.Event()

        async def post(client: httpx.AsyncClient, body: bytes) -> httpx.Response:
            await start.wait()
            headers = {"content-type": "application/json", DEFAULT_HEADER: sign(SECRET, body)}
            return await client.post(url, content=body, headers=headers)

        sending = [asyncio.create_task(post(c, b)) for c, b in zip(clients, bodies, strict=True)]
        await asyncio.sleep(0)  # every task waits at the start line
        start.set()
        answers = await asyncio.gather(*sending)
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))
    statuses = Counter(answer.json().get("status", str(answer.status_code)) for answer in answers)
    return statuses, {answer.status_code for answer in answers}


def test_the_same_event_over_50_connections_is_stored_once(
    database_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "bridge.toml", database_url, port=free_port(), secret=SECRET)
    with ServeProcesses(tmp_path) as servers:
        server = servers.start(config)
        server.wait_ready()
        statuses, codes = asyncio.run(
            send_all(server.webhook_url("acme"), server.base_url + "/healthz")
        )
        assert codes == {200}
        assert statuses == Counter({"accepted": 1, "duplicate": CONNECTIONS - 1})

        with Reader(database_url) as reader:
            assert [(rows, jobs) for _, rows, jobs in reader.event_id_counts()] == [(1, 1)]
            stored = reader.get_event(EVENT_ID)
            assert stored.delivery_count == CONNECTIONS
            kept = {d["delivery_id"] for d in stored.deliveries} | {stored.delivery_id}
            assert kept == {f"{n:024x}" for n in range(CONNECTIONS)}, "every delivery recorded"
