"""One contract for every store backend: what intake relies on."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import SettingsFactory
from zenoti_bridge.errors import StorageUnavailable
from zenoti_bridge.storage import IncomingEvent, Outcome, QuarantineItem, Store, open_store
from zenoti_bridge.storage import migrate as migrations
from zenoti_bridge.storage.queries import Reader
from zenoti_bridge.storage.sqlite import SQLiteStore

RECEIVED = datetime(2026, 11, 26, 12, 0, 0, 123456, tzinfo=UTC)


def incoming(n: int = 1, **changes: object) -> IncomingEvent:
    event = IncomingEvent(
        source="acme",
        event_id=f"{n:024x}",
        delivery_id=f"{n + 10**6:024x}",
        event_type="Guest.Created",
        type_name="Guest.Created",
        family="Guest",
        resource="guest",
        entity_id=f"guest-{n}",
        ordering_key=f"guest:guest-{n}",
        routed=True,
        event_schema="v1",
        event_timestamp="2024-06-03T15:12:41.1180243Z",
        event_ts=datetime(2024, 6, 3, 15, 12, 41, 118024, tzinfo=UTC),
        received_at=RECEIVED,
        verb="POST",
        signature="valid",
        headers=b'[["content-type","application/json"]]',
        query="",
        body=b'{"raw": "\\u00e9 bytes"}',
        consumers=("mirror",),
    )
    return replace(event, **changes)  # type: ignore[arg-type]


async def test_a_new_event_is_stored_with_one_job_per_consumer(
    store: Store, reader: Reader
) -> None:
    recorded = await store.record_event(incoming(consumers=("mirror", "http:crm")))
    assert recorded.outcome is Outcome.ACCEPTED
    stored = reader.get_event(f"{1:024x}")
    assert stored.pk == recorded.event_pk
    assert sorted(j["consumer"] for j in stored.jobs) == ["http:crm", "mirror"]
    assert {j["status"] for j in stored.jobs} == {"queued"}
    assert {j["ordering_key"] for j in stored.jobs} == {"guest:guest-1"}
    assert stored.event_ts == datetime(2024, 6, 3, 15, 12, 41, 118024, tzinfo=UTC)
    assert stored.received_at == RECEIVED
    assert stored.body == b'{"raw": "\\u00e9 bytes"}'
    assert stored.status == "pending"


async def test_a_known_event_records_the_delivery_not_a_second_event(
    store: Store, reader: Reader
) -> None:
    first = await store.record_event(incoming())
    later = datetime(2026, 11, 26, 13, 0, tzinfo=UTC)
    second = await store.record_event(incoming(delivery_id="d2", received_at=later, verb="PUT"))
    assert second.outcome is Outcome.DUPLICATE
    assert second.event_pk == first.event_pk
    stored = reader.get_event(f"{1:024x}")
    assert stored.delivery_count == 2
    assert stored.last_seen_at == later
    assert stored.delivery_id != "d2", "the first delivery stays on the event"
    assert [(d["delivery_id"], d["verb"]) for d in stored.deliveries] == [("d2", "PUT")]
    assert reader.count_jobs() == 1


async def test_the_same_event_id_in_two_sources_is_two_events(store: Store, reader: Reader) -> None:
    await store.record_event(incoming())
    other = await store.record_event(incoming(source="globex"))
    assert other.outcome is Outcome.ACCEPTED
    assert reader.count_events() == 2
    with pytest.raises(Exception, match="several sources"):
        reader.get_event(f"{1:024x}")
    assert reader.get_event(f"{1:024x}", source="globex").source == "globex"


async def test_a_batch_of_new_known_and_twin_events_answers_each_one_right(
    store: Store, reader: Reader
) -> None:
    # sent together, these are written as one batch where the store batches
    known = await store.record_event(incoming(1))
    batch = [
        incoming(1, delivery_id="again"),
        incoming(2),
        incoming(3),
        incoming(2, delivery_id="twin"),
        incoming(4),
    ]
    results = await asyncio.gather(*(store.record_event(event) for event in batch))
    again, first, third, second, fourth = results
    assert again.outcome is Outcome.DUPLICATE and again.event_pk == known.event_pk
    assert {first.outcome, second.outcome} == {Outcome.ACCEPTED, Outcome.DUPLICATE}  # twins
    assert first.event_pk == second.event_pk
    assert third.outcome is Outcome.ACCEPTED and fourth.outcome is Outcome.ACCEPTED
    for n, result in ((2, first), (3, third), (4, fourth)):
        stored = reader.get_event(f"{n:024x}")
        assert stored.pk == result.event_pk
        assert [(j["consumer"], j["ordering_key"]) for j in stored.jobs] == [
            ("mirror", f"guest:guest-{n}")
        ]
    assert reader.get_event(f"{1:024x}").delivery_count == 2
    assert reader.get_event(f"{2:024x}").delivery_count == 2
    assert reader.count_jobs() == 4


async def test_events_with_different_consumers_in_one_batch_get_their_own_jobs(
    store: Store, reader: Reader
) -> None:
    sets = [("mirror",), ("mirror", "http:crm"), (), ("http:crm",), ("mirror",)]
    await asyncio.gather(
        *(
            store.record_event(incoming(n, consumers=consumers, routed=bool(consumers)))
            for n, consumers in enumerate(sets, 1)
        )
    )
    for n, consumers in enumerate(sets, 1):
        stored = reader.get_event(f"{n:024x}")
        assert sorted(j["consumer"] for j in stored.jobs) == sorted(consumers), n
        assert all(j["ordering_key"] == f"guest:guest-{n}" for j in stored.jobs)


async def test_a_consumer_name_with_a_quote_gets_its_job(store: Store, reader: Reader) -> None:
    # SQLite's writer spells the consumers into its job trigger as SQL literals
    await store.record_event(incoming(consumers=("http:o'brien", "mirror")))
    stored = reader.get_event(f"{1:024x}")
    assert [j["consumer"] for j in stored.jobs] == ["http:o'brien", "mirror"]


async def test_unrouted_events_get_no_jobs(store: Store, reader: Reader) -> None:
    await store.record_event(incoming(routed=False, consumers=()))
    stored = reader.get_event(f"{1:024x}")
    assert stored.status == "unrouted" and stored.jobs == []


async def test_event_and_jobs_are_one_transaction(store: Store, reader: Reader) -> None:
    # the second job violates uq_jobs_event_consumer: the event row must go with it
    with pytest.raises(StorageUnavailable):
        await store.record_event(incoming(consumers=("mirror", "mirror")))
    assert reader.count_events() == 0
    assert reader.count_jobs() == 0
    # and the store is still usable afterwards
    assert (await store.record_event(incoming(2))).outcome is Outcome.ACCEPTED


async def test_concurrent_deliveries_of_one_event_store_it_once(
    store: Store, reader: Reader
) -> None:
    results = await asyncio.gather(
        *(store.record_event(incoming(delivery_id=str(n))) for n in range(50))
    )
    assert sorted(r.outcome for r in results) == [Outcome.ACCEPTED] + [Outcome.DUPLICATE] * 49
    assert len({r.event_pk for r in results}) == 1
    assert reader.get_event(f"{1:024x}").delivery_count == 50


async def test_many_concurrent_events_are_all_stored(store: Store, reader: Reader) -> None:
    results = await asyncio.gather(*(store.record_event(incoming(n)) for n in range(500)))
    assert all(r.outcome is Outcome.ACCEPTED for r in results)
    counts = list(reader.event_id_counts())
    assert len(counts) == 500 and all(rows == 1 and jobs == 1 for _, rows, jobs in counts)


async def test_quarantine_keeps_the_raw_body(store: Store, reader: Reader) -> None:
    item = QuarantineItem(
        source="acme",
        received_at=RECEIVED,
        verb="PATCH",
        signature="valid",
        reason="not_json",
        detail="unexpected character",
        headers=b"[]",
        query="a=1",
        body=b"\x00\xffbinary",
        event_id=None,
    )
    first = await store.quarantine(item)
    second = await store.quarantine(item)
    assert second > first
    held = reader.list_quarantine()
    assert [h["id"] for h in held] == [second, first]
    assert held[0]["body"] == b"\x00\xffbinary" and held[0]["reason"] == "not_json"


async def test_probe_succeeds_on_a_healthy_store(store: Store) -> None:
    await store.probe()


async def test_sqlite_waits_in_the_writer_thread_while_another_process_writes(
    tmp_path: Path, make_settings: SettingsFactory
) -> None:
    url = f"sqlite:///{tmp_path / 'bridge.db'}"
    migrations.upgrade(url)
    store = open_store(make_settings(url).database)
    await store.start()
    other = sqlite3.connect(tmp_path / "bridge.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # like `zenoti-bridge events replay` in another process
    try:
        pending = asyncio.ensure_future(store.record_event(incoming(1)))
        await asyncio.sleep(0.2)
        assert not pending.done(), "the event waits for the lock; the event loop does not"
        other.execute("COMMIT")
        assert (await asyncio.wait_for(pending, 5)).outcome is Outcome.ACCEPTED
        assert isinstance(store, SQLiteStore) and store.stats.busy_waits > 0
        assert (await store.record_event(incoming(2))).outcome is Outcome.ACCEPTED
    finally:
        other.close()
        await store.stop()
