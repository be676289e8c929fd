"""The sandbox's occurrences, posted to the bridge, leave the mirror the sandbox expects.

Every catalog type plus a few hundred occurrences of a busy salon go through the real intake
(signed, on both backends), the workers drain the queue, and every mirrored entity is compared
with the sandbox world's own view of it (``Activity.expected``), column by column; invoice lines
too. Delivered in order, or shuffled with redeliveries as Zenoti's retries and overlapping
webhooks make them arrive: the mirror must end the same.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from itertools import islice
from typing import Any

import httpx
from sqlalchemy import select

from tests.conftest import SettingsFactory
from tests.integration.test_intake import URL, signed
from zenoti_bridge.app import BridgeApp
from zenoti_bridge.sandbox.activity import Activity
from zenoti_bridge.sandbox.model import Occurrence, object_id
from zenoti_bridge.sandbox.scenario import every_type, play, world_for
from zenoti_bridge.storage import Store
from zenoti_bridge.storage.queries import Reader
from zenoti_bridge.storage.schema import MIRROR_COLUMNS, mirror_invoice_items
from zenoti_bridge.worker import Workers

START = datetime(2024, 6, 3, 14, tzinfo=UTC)
SEED = 17


def story() -> tuple[Activity, list[Occurrence]]:
    activity = Activity(world_for("busy-salon", SEED, START), seed=SEED)
    told = every_type(activity, START)
    return activity, told + list(islice(play(activity, "busy-salon", SEED, None), 400))


def comparable(kind: str, value: Any) -> Any:
    """Mirror values as the world states them: UTC columns aware, wall-clock columns naive."""
    if not isinstance(value, datetime):
        return value
    if kind == "U":
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.replace(tzinfo=None)


async def deliver(
    store: Store, database_url: str, settings: SettingsFactory, occurrences: list[Occurrence]
) -> None:
    """Post each occurrence as a new delivery (a repeated one must be a duplicate), then drain."""
    app = BridgeApp(settings(database_url), store, manage_store=False)
    seen: set[str] = set()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://bridge.test"
    ) as client:
        for n, occurrence in enumerate(occurrences):
            body = occurrence.body(object_id(occurrence.event_timestamp, (1 << 30) + n))
            answer = await client.post(URL, content=body, headers=signed(body))
            status = "duplicate" if occurrence.event_id in seen else "accepted"
            assert answer.json() == {"status": status, "event_id": occurrence.event_id}, n
            seen.add(occurrence.event_id)
    workers = Workers(store, database_url=database_url, batch_size=50)
    try:
        assert await workers.run_until_idle() == len(seen)
    finally:
        await workers.stop()


def differences(reader: Reader, expected: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    found = []
    for resource, rows in expected.items():
        mirrored = {r["id"]: r for r in reader.entities(resource, limit=1_000_000)}
        if set(mirrored) != set(rows):
            missing, extra = set(rows) - set(mirrored), set(mirrored) - set(rows)
            found.append(f"{resource}: missing {sorted(missing)[:3]}, extra {sorted(extra)[:3]}")
        for entity_id in rows.keys() & mirrored.keys():
            for column, value in rows[entity_id].items():
                kind = MIRROR_COLUMNS[resource].get(column, "B")  # "deleted" is a boolean
                actual = comparable(kind, mirrored[entity_id][column])
                if actual != comparable(kind, value):
                    found.append(f"{resource} {entity_id} {column}: {actual!r} != {value!r}")
    return found


def invoice_lines(activity: Activity) -> set[tuple[str, str, int, float]]:
    return {
        (invoice.id, item.invoice_item_id, item.kind, item.final / 100)
        for invoice in activity.invoices.values()
        for item in invoice.items
    }


def mirrored_lines(reader: Reader) -> set[tuple[str, str, int, float]]:
    table = mirror_invoice_items
    query = select(table.c.invoice_id, table.c.invoice_item_id, table.c.type, table.c.final_price)
    with reader.engine.connect() as conn:
        return {(r[0], r[1], r[2], r[3]) for r in conn.execute(query)}


async def test_the_mirror_holds_what_the_sandbox_world_did(
    store: Store, database_url: str, make_settings: SettingsFactory, reader: Reader
) -> None:
    activity, occurrences = story()
    await deliver(store, database_url, make_settings, occurrences)
    assert reader.job_counts() == {("mirror", "succeeded"): len(occurrences)}

    expected = activity.expected()
    assert set(expected) == set(MIRROR_COLUMNS), "the story touches every mirror table"
    assert not differences(reader, expected), differences(reader, expected)[:10]
    assert mirrored_lines(reader) == invoice_lines(activity)


async def test_shuffled_and_redelivered_events_leave_the_same_mirror(
    store: Store, database_url: str, make_settings: SettingsFactory, reader: Reader
) -> None:
    activity, occurrences = story()
    rng = random.Random(SEED)
    arrivals = occurrences + rng.sample(occurrences, len(occurrences) // 5)
    rng.shuffle(arrivals)
    assert arrivals[:50] != occurrences[:50]
    await deliver(store, database_url, make_settings, arrivals)

    assert not differences(reader, activity.expected())
    assert mirrored_lines(reader) == invoice_lines(activity)
