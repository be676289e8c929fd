"""Workers on both backends: poison events are isolated, retried by policy, then dead; many
workers on PostgreSQL never work on one entity at once and end with the same mirror."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from tests.conftest import SettingsFactory, payload
from tests.integration.test_store_contract import incoming
from tests.unit.test_entities import apply_all
from zenoti_bridge import entities, mirror
from zenoti_bridge.storage import Store, open_store
from zenoti_bridge.storage.queries import Reader
from zenoti_bridge.storage.sqlconn import SqlConn
from zenoti_bridge.worker import Workers


def guest_event(n: int, guest: int, minute: int, event_type: str = "Guest.Updated") -> Any:
    document = orjson.loads(payload("Guest.Created"))
    document.update(
        event_id=f"{n:024x}",
        id=f"{n + 10**9:024x}",
        event_type=event_type,
        event_timestamp=f"2024-06-03T15:{minute // 60:02d}:{minute % 60:02d}.{n % 10**7:07d}Z",
    )
    document["data"]["id"] = f"00000000-0000-0000-0000-{guest:012d}"
    document["data"]["personal_info"]["first_name"] = f"Name{n}"
    body = orjson.dumps(document)
    return incoming(
        n,
        body=body,
        event_type=event_type,
        type_name=event_type,
        entity_id=document["data"]["id"],
        ordering_key=f"guest:{document['data']['id']}",
    ), document


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 13, 0, tzinfo=UTC)  # after the events arrived

    def __call__(self) -> datetime:
        return self.now


async def test_a_poisoned_event_is_retried_alone_then_dead(
    store: Store, database_url: str, reader: Reader, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(5):
        await store.record_event(guest_event(n, n, n)[0])
    poisoned = f"{2:024x}"
    real = entities.changes_for

    def explode(event_type: str, data: Any) -> Any:
        if data.get("personal_info", {}).get("first_name") == "Name2":
            raise KeyError("a bug that only this event triggers")
        return real(event_type, data)

    monkeypatch.setattr(mirror, "changes_for", explode)
    clock = Clock()
    workers = Workers(store, database_url=database_url, clock=clock)
    try:
        assert await workers.run_until_idle() == 4, "the four good events are applied"
        job = reader.get_event(poisoned).jobs[0]
        assert (job["status"], job["attempts"]) == ("queued", 1)
        assert "a bug that only this event triggers" in job["last_error"]
        for _ in range(10):  # the policy's delays pass; attempts run out
            clock.now += timedelta(hours=1)
            await workers.run_until_idle()
        job = reader.get_event(poisoned).jobs[0]
        assert job["status"] == "dead" and "gave up after" in job["last_error"]
    finally:
        await workers.stop()
    assert len(reader.entities("guest")) == 4
    assert reader.get_event(poisoned).status == "pending", "an event with a dead job is not done"


async def test_an_unparseable_stored_body_goes_dead_at_once(
    store: Store, database_url: str, reader: Reader
) -> None:
    await store.record_event(replace(guest_event(1, 1, 1)[0], body=b"not json"))
    workers = Workers(store, database_url=database_url)
    try:
        assert await workers.run_until_idle() == 1
    finally:
        await workers.stop()
    (job,) = reader.get_event(f"{1:024x}").jobs
    assert job["status"] == "dead" and "not_json" in job["last_error"]


def invoice_event(n: int, invoice_id: str, item_type: object) -> Any:
    """An Invoice.Closed whose first item has ``item_type`` as its type (INTEGER: 32 bits in
    PostgreSQL)."""
    document = orjson.loads(payload("Invoice.Closed"))
    document["event_id"] = f"{n:024x}"
    document["data"]["invoice"]["id"] = invoice_id
    document["data"]["invoice"]["invoice_items"][0]["type"] = item_type
    return incoming(
        n,
        body=orjson.dumps(document),
        event_type="Invoice.Closed",
        type_name="Invoice.Closed",
        resource="invoice",
        entity_id=invoice_id,
        ordering_key=f"invoice:{invoice_id}",
    )


async def test_values_a_database_refuses_never_stall_the_queue(
    store: Store, database_url: str, reader: Reader
) -> None:
    """A NUL character (PostgreSQL's text refuses it) and an integer too large for a 32-bit
    column arrive in authentic payloads. The NUL is stored as U+FFFD; on PostgreSQL the oversized
    value fails its own job, which the policy retries, while every other job is applied: a value
    is the event's problem, never a reason to retry the whole batch. (SQLite's integers have 64
    bits: there the invoice is applied.)"""
    nul, _ = guest_event(1, 1, 1)
    document = orjson.loads(nul.body)
    document["data"]["personal_info"]["first_name"] = "Ann\u0000e"
    await store.record_event(replace(nul, body=orjson.dumps(document)))
    await store.record_event(invoice_event(2, "d330a549-4d14-4f1a-8cc3-46363c234038", 2**40))
    for n in range(3, 6):
        await store.record_event(guest_event(n, n, n)[0])
    long_id, document = guest_event(6, 6, 6)
    # random hex, which no compression shortens: past what a PostgreSQL index entry can hold
    document["data"]["id"] = f"{random.Random(6).getrandbits(24000):06000x}"
    await store.record_event(replace(long_id, body=orjson.dumps(document)))
    # a boolean where a number belongs (True is an int in Python)
    await store.record_event(invoice_event(7, "11111111-2222-3333-4444-555555555555", True))
    workers = Workers(store, database_url=database_url, clock=Clock())
    try:
        handled = await asyncio.wait_for(workers.run_until_idle(), timeout=30)
    finally:
        await workers.stop()
    postgres = database_url.startswith("postgresql")
    # on PostgreSQL the oversized integer and the oversized id wait for their retries
    assert handled == (5 if postgres else 7)
    names = {g["id"]: g["first_name"] for g in reader.entities("guest")}
    assert names[f"00000000-0000-0000-0000-{1:012d}"] == "Ann\ufffde"
    assert len(names) == (4 if postgres else 5)
    invoices = [i["id"] for i in reader.entities("invoice")]
    assert "11111111-2222-3333-4444-555555555555" in invoices, (
        "a boolean type is no number: left out"
    )
    (job,) = reader.get_event(f"{6:024x}").jobs
    assert job["status"] == ("queued" if postgres else "succeeded"), job
    (job,) = reader.get_event(f"{2:024x}").jobs
    expected = ("queued", 1) if postgres else ("succeeded", 1)
    assert (job["status"], job["attempts"]) == expected, job
    if postgres:
        assert "DataError" in job["last_error"] or "out of range" in job["last_error"]
    assert workers.stats.failures == 0, "no batch was failed as if the database were down"


async def test_concurrent_workers_on_postgres_end_with_the_sequential_mirror(
    postgres_url: str, make_settings: SettingsFactory
) -> None:
    from zenoti_bridge.storage import migrate as migrations

    migrations.upgrade(postgres_url)
    store = open_store(make_settings(postgres_url).database)
    await store.start()
    rng = random.Random(11)
    events = [guest_event(n, rng.randrange(15), rng.randrange(600)) for n in range(1500)]
    rng.shuffle(events)
    await asyncio.gather(*(store.record_event(e) for e, _ in events))
    pools = [
        Workers(store, database_url=postgres_url, concurrency=3, batch_size=25) for _ in range(2)
    ]
    try:
        await asyncio.gather(*(p.start() for p in pools))
        with Reader(postgres_url) as reader:
            for _ in range(600):
                if reader.job_counts().get(("mirror", "succeeded")) == 1500:
                    break
                await asyncio.sleep(0.05)
            assert reader.job_counts() == {("mirror", "succeeded"): 1500}
            expected = apply_all(
                [
                    (d["event_type"], d["data"], (d["event_timestamp"], d["event_id"]))
                    for _, d in events
                ]
            )
            for (resource, guest_id), want in expected.items():
                row = reader.entity(resource, guest_id)
                assert row["first_name"] == want["row"]["first_name"], guest_id
    finally:
        await asyncio.gather(*(p.stop() for p in pools))
        await store.stop()
    assert sum(p.stats.jobs for p in pools) == 1500, "every job ran exactly once"


def second_waits_for_first(
    postgres_url: str,
    first_work: Callable[[SqlConn], None],
    second_work: Callable[[SqlConn], None],
    why: str,
) -> None:
    """``first_work`` in a PostgreSQL transaction kept open while ``second_work`` starts in
    another: the second is still waiting half a second later, and ends once the first commits."""
    import threading

    import psycopg

    from zenoti_bridge.storage.postgres import psycopg_conninfo

    first = psycopg.connect(psycopg_conninfo(postgres_url))
    second = psycopg.connect(psycopg_conninfo(postgres_url))
    finished = threading.Event()

    def run_second() -> None:
        with second.transaction():
            second_work(SqlConn(second, "postgresql"))
        finished.set()

    try:
        with first.transaction():
            first_work(SqlConn(first, "postgresql"))
            other = threading.Thread(target=run_second)
            other.start()
            assert not finished.wait(0.5), why
        other.join(10)
        assert finished.is_set()
    finally:
        first.close()
        second.close()


async def test_a_merge_and_an_update_of_the_merged_guest_never_run_at_once(
    postgres_url: str, make_settings: SettingsFactory
) -> None:
    """Guest.Merged (ordering key of the survivor) also writes the guest merged away; a worker
    applying an update of that guest must wait for it instead of overwriting its tombstone."""

    from zenoti_bridge.storage import migrate as migrations
    from zenoti_bridge.worker import run_mirror_batch

    migrations.upgrade(postgres_url)
    survivor, merged_away = (f"00000000-0000-0000-0000-00000000000{n}" for n in (1, 2))
    merged = orjson.loads(payload("Guest.Merged"))
    merged.update(event_id="a" * 24, event_timestamp="2024-06-21T08:00:00.0000000Z")
    merged["data"].update(id=survivor, merged_guest_id=merged_away)
    updated = orjson.loads(payload("Guest.Updated"))
    updated.update(event_id="b" * 24, event_timestamp="2024-06-20T08:00:00.0000000Z")  # older
    updated["data"]["id"] = merged_away
    store = open_store(make_settings(postgres_url).database)
    await store.start()
    for n, (document, guest) in enumerate(((merged, survivor), (updated, merged_away))):
        await store.record_event(
            incoming(
                n,
                event_id=document["event_id"],
                body=orjson.dumps(document),
                event_type=document["event_type"],
                type_name=document["event_type"],
                entity_id=guest,
                ordering_key=f"guest:{guest}",
            )
        )
    await store.stop()

    now = datetime.now(UTC)

    def apply_the_merge(sql: SqlConn) -> None:
        assert run_mirror_batch(sql, 1, now) == (1, 0)

    def apply_the_update(sql: SqlConn) -> None:
        run_mirror_batch(sql, 1, now)

    second_waits_for_first(
        postgres_url,
        apply_the_merge,
        apply_the_update,
        "the update waits while the merge is applied",
    )
    with Reader(postgres_url) as reader:
        row = reader.entity("guest", merged_away)
        assert (row["deleted"], row["merged_into"], row["last_event_id"]) == (
            True,
            survivor,
            "a" * 24,
        )
        assert reader.job_counts() == {("mirror", "succeeded"): 2}


async def test_a_worker_skips_jobs_whose_entity_another_worker_holds_and_takes_them_later(
    postgres_url: str, make_settings: SettingsFactory
) -> None:
    """Instead of waiting for another worker's whole batch, a worker applies the jobs it can
    lock now; the contended one stays queued and a later batch applies it."""
    import psycopg

    from zenoti_bridge.storage import migrate as migrations
    from zenoti_bridge.storage.postgres import psycopg_conninfo
    from zenoti_bridge.storage.sqlconn import SqlConn
    from zenoti_bridge.worker import run_mirror_batch

    migrations.upgrade(postgres_url)
    store = open_store(make_settings(postgres_url).database)
    await store.start()
    # job 1 and job 2 update guest 1; job 3 updates guest 3
    for n, guest in ((1, 1), (2, 1), (3, 3)):
        await store.record_event(guest_event(n, guest, n)[0])
    await store.stop()

    now = datetime.now(UTC)
    first = psycopg.connect(psycopg_conninfo(postgres_url))
    second = psycopg.connect(psycopg_conninfo(postgres_url), autocommit=True)
    second.execute("SET lock_timeout = '3s'")  # a worker that waited would fail, not hang
    try:
        with first.transaction():
            assert run_mirror_batch(SqlConn(first, "postgresql"), 1, now) == (1, 0)
            # guest 1 is held by the first worker: the second applies job 3 without waiting
            with second.transaction():
                assert run_mirror_batch(SqlConn(second, "postgresql"), 10, now) == (1, 0)
        with second.transaction():
            assert run_mirror_batch(SqlConn(second, "postgresql"), 10, now) == (1, 0)
    finally:
        first.close()
        second.close()
    with Reader(postgres_url) as reader:
        assert reader.job_counts() == {("mirror", "succeeded"): 3}
        assert reader.entity("guest", f"00000000-0000-0000-0000-{1:012d}")["first_name"] == "Name2"
        assert reader.entity("guest", f"00000000-0000-0000-0000-{3:012d}")["first_name"] == "Name3"


async def test_worker_processes_wake_on_new_jobs_instead_of_waiting_for_their_next_poll(
    postgres_url: str, make_settings: SettingsFactory
) -> None:
    """An intake process announces new jobs (NOTIFY); an idle worker process, whose next poll
    is 30 s away, applies the event at once."""
    from tests.integration.http_endpoint import eventually
    from zenoti_bridge.storage import migrate as migrations

    migrations.upgrade(postgres_url)
    worker_store = open_store(make_settings(postgres_url).database)
    intake_store = open_store(make_settings(postgres_url).database)
    await worker_store.start()
    await intake_store.start()
    workers = Workers(worker_store, database_url=postgres_url, idle_wait=30.0)
    await workers.start()
    try:
        assert workers._listener is not None
        await asyncio.to_thread(workers._listener.listening.wait, 10)
        await asyncio.sleep(0.2)  # the lanes found nothing and went idle for 30 s
        await intake_store.record_event(guest_event(1, 1, 1)[0])
        await eventually(lambda: workers.stats.jobs == 1)  # within 5 s, not the 30 s poll
        assert workers._listener.heard >= 1
    finally:
        await workers.stop()
        await intake_store.stop()
        await worker_store.stop()


def test_a_group_status_waits_for_a_worker_writing_one_of_its_appointments(
    postgres_url: str,
) -> None:
    """AppointmentGroup.Status re-projects its appointments and writes their rows whole. While
    another worker applies an appointment's own event (it holds only that appointment), the
    group's worker must wait for it and read what it wrote, not write back what it read before."""

    import psycopg

    from zenoti_bridge.mirror import MirrorEvent, apply_events, decode_events, lock_keys
    from zenoti_bridge.storage import migrate as migrations
    from zenoti_bridge.storage.jobs import lock_entities
    from zenoti_bridge.storage.postgres import psycopg_conninfo
    from zenoti_bridge.storage.sqlconn import SqlConn

    migrations.upgrade(postgres_url)
    created = MirrorEvent(1, "acme", payload("AppointmentGroup.Created"))
    started = orjson.loads(payload("Appointment.Started"))
    del started["data"]["appointment_group_id"]  # its own event: only the appointment is held
    status = MirrorEvent(3, "acme", payload("AppointmentGroup.Status"))
    appointment = "da0aea0e-aa72-470b-9d63-d2a5d1764460"

    def apply(event: MirrorEvent) -> Callable[[SqlConn], None]:
        def run(sql: SqlConn) -> None:  # as a worker does: hold the entities, then apply
            lock_entities(sql, lock_keys(decode_events([event])[0]))
            apply_events(sql, [event])

        return run

    progress = MirrorEvent(2, "acme", orjson.dumps(started))
    assert lock_keys(decode_events([progress])[0]) == {f"appointment:{appointment}"}
    apply(created)(
        SqlConn(psycopg.connect(psycopg_conninfo(postgres_url), autocommit=True), "postgresql")
    )
    second_waits_for_first(
        postgres_url, apply(progress), apply(status), "the group's worker waits for the appointment"
    )
    with Reader(postgres_url) as reader:
        row = reader.entity("appointment", appointment)
        assert row["progress"] == "started", "the appointment's own event was not written over"
