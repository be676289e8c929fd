"""The event the intake hands to the store, field by field (it is built positionally)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import SECRET, payload, payload_names
from zenoti_bridge import catalog
from zenoti_bridge.config import Settings
from zenoti_bridge.envelope import parse_timestamp
from zenoti_bridge.intake import Intake
from zenoti_bridge.signature import sign
from zenoti_bridge.storage import IncomingEvent, Outcome, Recorded

NOW = datetime(2026, 11, 27, 9, 0, 1, 250000, tzinfo=UTC)


class RecordingStore:
    """Keeps what it is given and answers ``accepted``."""

    backend = "recording"

    def __init__(self) -> None:
        self.events: list[IncomingEvent] = []

    async def record_event(self, event: IncomingEvent) -> Recorded:
        self.events.append(event)
        return Recorded(Outcome.ACCEPTED, len(self.events))


def expected(name: str, body: bytes, headers: bytes) -> IncomingEvent:
    """The event built the slow, named way from the sample itself."""
    document: dict[str, Any] = orjson.loads(body)
    kind = catalog.lookup(document["event_type"])
    return IncomingEvent(
        source="acme",
        event_id=document["event_id"],
        delivery_id=document["id"],
        event_type=document["event_type"],
        type_name=kind.name,
        family=kind.family,
        resource=kind.resource,
        entity_id=kind.entity_id(document["data"]),
        ordering_key=kind.ordering_key(document["data"]),
        routed=kind.routed,
        event_schema=document.get("event_schema"),
        event_timestamp=document["event_timestamp"],
        event_ts=parse_timestamp(document["event_timestamp"]),
        received_at=NOW,
        verb="PUT",
        signature="valid",
        headers=headers,
        query="a=1",
        body=body,
        consumers=("mirror",) if kind.routed else (),
    )


@pytest.mark.parametrize("name", payload_names())
async def test_every_field_of_the_stored_event_comes_from_its_own_source(name: str) -> None:
    settings = Settings(
        database={"url": "sqlite:///unused.db"},
        sources={"acme": {"webhook_secrets": [SECRET], "signature": "enforce"}},
    )
    store = RecordingStore()
    app = Intake(settings, store, clock=lambda: NOW)  # type: ignore[arg-type]
    body = payload(name)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://bridge.test"
    ) as client:
        answer = await client.put(
            "/webhooks/zenoti/acme?a=1",
            content=body,
            headers={"zenoti-webhook-signature": sign(SECRET, body)},
        )
    assert answer.status_code == 200, answer.text
    (event,) = store.events
    stored_headers = event.headers
    assert b"zenoti-webhook-signature" in stored_headers
    want = expected(name, body, stored_headers)
    for field in dataclasses.fields(IncomingEvent):
        assert getattr(event, field.name) == getattr(want, field.name), field.name
