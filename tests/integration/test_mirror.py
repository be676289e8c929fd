"""Stored events become the mirror: every sample, on both backends, applied exactly once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import orjson
from sqlalchemy import text

from tests.conftest import SettingsFactory, payload, payload_names
from tests.integration.test_intake import URL, signed, with_ids
from zenoti_bridge.storage import Store
from zenoti_bridge.storage.queries import Reader
from zenoti_bridge.worker import Workers

Make = Callable[..., Any]


async def deliver_all_samples(client: httpx.AsyncClient) -> None:
    for name in payload_names():
        body = payload(name)
        answer = await client.post(URL, content=body, headers=signed(body))
        assert answer.json()["status"] == "accepted", name


async def test_every_sample_reaches_the_mirror_once(
    store: Store, database_url: str, make_settings: SettingsFactory, reader: Reader
) -> None:
    from zenoti_bridge.app import BridgeApp

    app = BridgeApp(make_settings(database_url), store, manage_store=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://bridge.test"
    ) as client:
        await deliver_all_samples(client)
    workers = Workers(store, database_url=database_url, batch_size=7)
    try:
        assert await workers.run_until_idle() == 38
        assert await workers.run_until_idle() == 0, "nothing is applied twice"
    finally:
        await workers.stop()
    assert reader.job_counts() == {("mirror", "succeeded"): 38}
    assert reader.count_events() == 38
    assert {e.status for e in reader.list_events(limit=100)} == {"processed"}

    invoice = reader.entity("invoice", "D330A549-4D14-4F1A-8CC3-46363C234038")
    assert invoice["sum_total"] == 164.47 and invoice["invoice_number"] == "3317"
    assert invoice["last_event_id"] == "6668d2835c80f9be67fd4c1e"
    assert invoice["data"]["receipt_number"] == "HPR1188"

    guest = reader.entity("guest", "b37523a5-3b4a-4ee2-8463-513755ac0ecd")
    assert guest["deleted"] is False, "Guest.Merged (06-21) is newer than Guest.Deleted (06-20)"
    merged_away = reader.entity("guest", "9823beb1-e6ba-4ad7-8de4-5321ad915a36")
    assert merged_away["deleted"] is True
    assert merged_away["merged_into"] == "b37523a5-3b4a-4ee2-8463-513755ac0ecd"

    membership = reader.entity("membership", "0e46c215-b5fa-4b0c-9b18-bd763f20134c")
    assert membership["guest_id"] == "b37523a5-3b4a-4ee2-8463-513755ac0ecd"
    assert membership["state"] == "active", "Reinstate (10-14) follows Cancelled (10-11)"

    for resource in (
        "employee",
        "class_session",
        "class_booking",
        "package",
        "feedback",
        "guestpass_redemption",
        "appointment_group",
        "appointment",
    ):
        assert reader.entities(resource), resource


async def test_a_sql_user_finds_a_days_appointments_without_json(
    store: Store, database_url: str, make_settings: SettingsFactory, reader: Reader
) -> None:
    from zenoti_bridge.app import BridgeApp

    app = BridgeApp(make_settings(database_url), store, manage_store=False)
    created = orjson.loads(payload("AppointmentGroup.Created"))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://bridge.test"
    ) as client:
        body = with_ids(orjson.dumps(created), "b" * 24)
        await client.post(URL, content=body, headers=signed(body))
    workers = Workers(store, database_url=database_url)
    await workers.run_until_idle()
    await workers.stop()
    with reader.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id, service_name, start_local FROM mirror_appointment "
                "WHERE center_id = :center AND start_local >= :day AND start_local < :next "
                "AND NOT deleted AND NOT removed"
            ),
            {
                "center": "5d96cf7f-265b-4da9-8f0c-26ef4243ed52",
                "day": datetime(2024, 6, 11),
                "next": datetime(2024, 6, 12),
            },
        ).all()
    assert [(r.id, r.service_name) for r in rows] == [
        ("da0aea0e-aa72-470b-9d63-d2a5d1764460", "Hydrating Facial 60")
    ]


def event(name: str, day: int, **data: Any) -> bytes:
    """The sample ``name`` on 2024-07-``day`` (its event id too), with ``data`` changed."""
    document = orjson.loads(payload(name))
    document["data"].update(data)
    document["event_timestamp"] = f"2024-07-{day:02d}T12:00:00.0000000Z"
    return with_ids(orjson.dumps(document), f"{day:024x}")


async def apply_in_turn(
    store: Store, database_url: str, make_settings: SettingsFactory, *batches: list[bytes]
) -> None:
    """Deliver each batch and drain the queue before the next: one mirror transaction each."""
    from zenoti_bridge.app import BridgeApp

    app = BridgeApp(make_settings(database_url), store, manage_store=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://bridge.test"
    ) as client:
        for batch in batches:
            for body in batch:
                answer = await client.post(URL, content=body, headers=signed(body))
                assert answer.json()["status"] == "accepted"
            workers = Workers(store, database_url=database_url)
            try:
                assert await workers.run_until_idle() == len(batch)
            finally:
                await workers.stop()


async def test_a_group_status_reaches_an_appointment_known_only_from_its_progress(
    store: Store, database_url: str, make_settings: SettingsFactory, reader: Reader
) -> None:
    await apply_in_turn(
        store,
        database_url,
        make_settings,
        [event("Appointment.Started", 1)],
        [event("AppointmentGroup.Status", 2)],
    )
    row = reader.entity("appointment", "da0aea0e-aa72-470b-9d63-d2a5d1764460")
    assert row["appointment_group_id"] == "00d9f4ad-53a2-42b6-b3f5-f28807f0cbd4"
    assert row["center_id"] == "5d96cf7f-265b-4da9-8f0c-26ef4243ed52"
    assert row["start_utc"].replace(tzinfo=None) == datetime(2024, 6, 11, 17)
    assert (row["status"], row["status_name"], row["progress"]) == (2, "checkin", "started")


async def test_a_waitlisted_booking_stays_waitlisted_once_cancelled(
    store: Store, database_url: str, make_settings: SettingsFactory, reader: Reader
) -> None:
    await apply_in_turn(
        store,
        database_url,
        make_settings,
        [event("Class.Booking.Cancelled", 2)],
        [event("Class.Booking.Created", 1, waitlist=True)],
        [event("Class.Booking.NoShow", 3, registration_id=640211)],
    )
    row = reader.entity("class_booking", "640211")
    assert (row["status"], row["waitlist"]) == ("no_show", True)


async def test_an_opted_in_guest_gets_a_name_then_the_older_snapshot_fills_the_rest(
    store: Store, database_url: str, make_settings: SettingsFactory, reader: Reader
) -> None:
    created = orjson.loads(payload("Guest.Created"))["data"]
    created["personal_info"]["mobile_phone"] = {"country_code": 1, "number": "5550000001"}
    await apply_in_turn(
        store,
        database_url,
        make_settings,
        [event("Guest.OptedIn", 2)],
        [event("Guest.Created", 1, personal_info=created["personal_info"])],
    )
    row = reader.entity("guest", "b37523a5-3b4a-4ee2-8463-513755ac0ecd")
    assert (row["first_name"], row["email"]) == ("Avery", "avery.lindqvist@example.test")
    assert row["mobile_phone"] == "+1 5550104477", "the newer opt-in's"
    assert (row["center_id"], row["code"]) == ("5d96cf7f-265b-4da9-8f0c-26ef4243ed52", "HP20931")
