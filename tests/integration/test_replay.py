"""Dead letters and replay on both backends: requeue, replay one or a filter, cancel midway."""

from __future__ import annotations

from dataclasses import replace

from tests.integration.test_store_contract import incoming
from tests.integration.test_worker import guest_event
from zenoti_bridge.storage import Store
from zenoti_bridge.storage.queries import EventFilter, Reader
from zenoti_bridge.storage.replay import Operator
from zenoti_bridge.worker import Workers


async def test_a_dead_letter_is_listed_and_can_be_requeued(
    store: Store, database_url: str, reader: Reader
) -> None:
    await store.record_event(replace(incoming(1), body=b"not json"))
    workers = Workers(store, database_url=database_url)
    await workers.run_until_idle()
    with Operator(database_url) as operator:
        (letter,) = operator.dead_letters()
        assert letter.event_id == f"{1:024x}" and "not_json" in (letter.last_error or "")
        assert operator.dead_letter(letter.job_id) == letter
        assert operator.requeue_dead([letter.job_id]) == 1
        assert operator.dead_letters() == []
    (job,) = reader.get_event(f"{1:024x}").jobs
    assert (job["status"], job["attempts"], job["last_error"]) == ("queued", 0, None)
    await workers.run_until_idle()
    await workers.stop()
    with Operator(database_url) as operator:
        assert len(operator.dead_letters()) == 1, "still unparseable: dead again"


async def test_replaying_an_event_applies_it_again_without_changing_the_mirror(
    store: Store, database_url: str, reader: Reader
) -> None:
    event, _ = guest_event(1, 7, 3)
    await store.record_event(event)
    workers = Workers(store, database_url=database_url)
    await workers.run_until_idle()
    before = reader.entities("guest")
    with Operator(database_url) as operator:
        assert operator.replay_event(event.event_id) == 1
    assert reader.get_event(event.event_id).status == "pending"
    assert await workers.run_until_idle() == 1
    await workers.stop()
    after = reader.entities("guest")
    for row in before + after:
        row.pop("updated_at")
    assert after == before
    assert reader.get_event(event.event_id).status == "processed"


async def test_a_filtered_replay_counts_first_and_can_be_cancelled(
    store: Store, database_url: str, reader: Reader
) -> None:
    for n in range(10):
        await store.record_event(
            guest_event(n, n, n, "Guest.Created" if n < 6 else "Guest.Updated")[0]
        )
    workers = Workers(store, database_url=database_url)
    await workers.run_until_idle()
    with Operator(database_url) as operator:
        created = EventFilter(type_name="Guest.Created")
        assert operator.count_replay(created) == 6
        seen: list[int] = []

        def stop_after_first(count: int) -> bool:
            seen.append(count)
            return False

        done = operator.replay(created, chunk=4, progress=stop_after_first)
        assert (done, seen) == (4, [4]), "cancelled after the first chunk"
        assert operator.replay(EventFilter(source="acme"), chunk=3) == 10
    assert reader.job_counts() == {("mirror", "queued"): 10}
    assert await workers.run_until_idle() == 10
    await workers.stop()
