"""The webhook intake, answer by answer, on SQLite and PostgreSQL (DESIGN.md's table)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import OTHER_SECRET, SECRET, payload, payload_names
from zenoti_bridge.signature import sign
from zenoti_bridge.storage.queries import EventFilter, Reader

URL = "/webhooks/zenoti/acme"
Make = Callable[..., Any]


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"zenoti-webhook-signature": sign(secret, body), "content-type": "application/json"}


def with_ids(body: bytes, event_id: str, delivery_id: str | None = None) -> bytes:
    document = orjson.loads(body)
    document["event_id"] = event_id
    document["id"] = delivery_id or event_id[::-1]
    return orjson.dumps(document)


def event_body(n: int, event_type: str = "Guest.Created") -> bytes:
    return with_ids(payload(event_type), f"{n:024x}")


@pytest.mark.parametrize("verb", ["POST", "PUT", "PATCH"])
async def test_every_sample_is_accepted_and_a_redelivery_is_a_duplicate(
    make_client: Make, reader: Reader, verb: str
) -> None:
    client: httpx.AsyncClient = await make_client()
    for name in payload_names():
        body = payload(name)
        answer = await client.request(verb, URL, content=body, headers=signed(body))
        assert answer.status_code == 200, (name, answer.text)
        event_id = orjson.loads(body)["event_id"]
        assert answer.json() == {"status": "accepted", "event_id": event_id}

        again = with_ids(body, event_id, delivery_id="ffffffffffffffffffffffff")
        repeat = await client.request(verb, URL, content=again, headers=signed(again))
        assert repeat.json() == {"status": "duplicate", "event_id": event_id}, name

    assert reader.count_events() == 38
    assert reader.count_jobs("mirror") == 38
    stored = reader.get_event("665ddd69aa5bf36518677db7")
    assert stored.delivery_count == 2
    assert stored.verb == verb
    assert stored.body == payload("Guest.Created"), "raw bytes are kept verbatim"
    assert [d["delivery_id"] for d in stored.deliveries] == ["ffffffffffffffffffffffff"]
    assert stored.signature == "valid"
    assert stored.event_timestamp == "2024-06-03T15:12:41.1180243Z"
    assert stored.resource == "guest" and stored.entity_id == "b37523a5-3b4a-4ee2-8463-513755ac0ecd"


async def test_headers_are_stored_verbatim_without_credentials(
    make_client: Make, reader: Reader
) -> None:
    client = await make_client()
    body = event_body(1)
    headers = {
        **signed(body),
        "authorization": "Bearer hunter2",
        "x-trace": "abc",
        "cookie": "s=1",
        "x-auth-token": "hunter3",  # a proxy's or a sender's own credential headers
        "X-Api-Key": "hunter4",
        "x-client-secret": "hunter5",
    }
    await client.post(URL, content=body, headers=headers)
    stored = reader.get_event(f"{1:024x}")
    names = [name for name, _ in stored.headers]
    assert "x-trace" in names and "zenoti-webhook-signature" in names
    assert "authorization" not in names and "cookie" not in names
    assert not any(f"hunter{n}" in orjson.dumps(stored.headers).decode() for n in (2, 3, 4, 5))


VERBS = pytest.mark.parametrize("verb", ["POST", "PUT", "PATCH"])


@VERBS
async def test_empty_body_is_a_ping_and_stores_nothing(
    make_client: Make, reader: Reader, verb: str
) -> None:
    client = await make_client()
    answer = await client.request(verb, URL, content=b"")
    assert (answer.status_code, answer.json()) == (200, {"status": "ping"})
    assert reader.count_events() == 0 and reader.list_quarantine() == []


@pytest.mark.parametrize(
    "headers",
    [{}, {"zenoti-webhook-signature": sign("wrong", b"x")}, {"zenoti-webhook-signature": "junk"}],
)
@VERBS
async def test_enforced_signature_refuses_bad_or_missing_with_401(
    make_client: Make, reader: Reader, headers: dict[str, str], verb: str
) -> None:
    client = await make_client()
    answer = await client.request(verb, URL, content=event_body(2), headers=headers)
    assert answer.status_code == 401
    assert reader.count_events() == 0 and reader.list_quarantine() == []
    metrics = (await client.get("/metrics")).text
    assert 'zb_intake_requests_total{outcome="unauthorized",source="acme"} 1.0' in metrics


async def test_the_previous_secret_still_signs_during_rotation(make_client: Make) -> None:
    client = await make_client()
    body = event_body(3)
    answer = await client.post(URL, content=body, headers=signed(body, OTHER_SECRET))
    assert answer.json()["status"] == "accepted"


async def test_log_mode_stores_and_flags_bad_signatures(make_client: Make, reader: Reader) -> None:
    client = await make_client(signature="log")
    body = event_body(4)
    answer = await client.post(URL, content=body, headers={"zenoti-webhook-signature": "junk"})
    assert answer.json()["status"] == "accepted"
    unsigned = event_body(5)
    assert (await client.post(URL, content=unsigned)).json()["status"] == "accepted"
    assert reader.get_event(f"{4:024x}").signature == "invalid"
    assert reader.get_event(f"{5:024x}").signature == "missing"


async def test_signature_off_stores_unchecked(make_client: Make, reader: Reader) -> None:
    client = await make_client(signature="off", webhook_secrets=[])
    assert (await client.post(URL, content=event_body(6))).json()["status"] == "accepted"
    assert reader.get_event(f"{6:024x}").signature == "unchecked"


@VERBS
async def test_url_token_is_required_when_configured_and_redacted(
    make_client: Make, reader: Reader, verb: str
) -> None:
    client = await make_client(signature="off", webhook_secrets=[], url_token="t0ken")
    body = event_body(7)
    assert (await client.request(verb, URL + "?token=nope", content=body)).status_code == 401
    assert (await client.request(verb, URL, content=body)).status_code == 401
    answer = await client.request(verb, URL + "?token=t0ken&x=1", content=body)
    assert answer.json()["status"] == "accepted"
    stored = reader.get_event(f"{7:024x}")
    assert "t0ken" not in stored.query and "x=1" in stored.query


async def test_unknown_source_is_404(make_client: Make) -> None:
    client = await make_client()
    body = event_body(8)
    answer = await client.post("/webhooks/zenoti/nobody", content=body, headers=signed(body))
    assert answer.status_code == 404
    assert "nobody" in answer.json()["message"]


@pytest.mark.parametrize("verb", ["GET", "DELETE", "HEAD", "OPTIONS"])
async def test_other_verbs_are_405(make_client: Make, verb: str) -> None:
    client = await make_client()
    answer = await client.request(verb, URL)
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST, PUT, PATCH"


@VERBS
async def test_a_body_over_the_limit_is_413_by_its_declared_length(
    make_client: Make, reader: Reader, verb: str
) -> None:
    client = await make_client(max_body_bytes=2048)
    body = b"{" + b" " * 4096 + b"}"
    answer = await client.request(verb, URL, content=body, headers=signed(body))
    assert answer.status_code == 413
    assert reader.count_events() == 0 and reader.list_quarantine() == []


async def test_a_streamed_body_over_the_limit_is_cut_off_without_reading_it_all(
    make_client: Make,
) -> None:
    client = await make_client(max_body_bytes=2048)
    sent = 0

    async def chunks() -> Any:
        nonlocal sent
        for _ in range(10_000):  # would be 10 MB if it were all read
            sent += 1
            yield b" " * 1024

    answer = await client.post(URL, content=chunks())
    assert answer.status_code == 413
    assert sent < 10, "reading stopped right after the limit"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<xml/>", "not_json"),
        (b'[{"event_id": "x"}]', "not_an_object"),
        (b'{"data": {}}', "missing_event_id"),
        (
            b'{"event_id": "665ddd69aa5bf36518677db7", "event_type": "Guest.Created", '
            b'"event_timestamp": "not-a-time"}',
            "invalid_event_timestamp",
        ),
    ],
)
@VERBS
async def test_authentic_but_unusable_bodies_are_quarantined_with_202(
    make_client: Make, reader: Reader, body: bytes, reason: str, verb: str
) -> None:
    client = await make_client()
    answer = await client.request(verb, URL, content=body, headers=signed(body))
    assert answer.status_code == 202
    assert answer.json()["status"] == "quarantined"
    (held,) = reader.list_quarantine()
    assert held["id"] == answer.json()["id"]
    assert held["reason"] == reason
    assert held["body"] == body
    assert reader.count_events() == 0


async def test_unknown_event_types_are_stored_unrouted_without_jobs(
    make_client: Make, reader: Reader
) -> None:
    client = await make_client()
    body = orjson.dumps(
        {
            "id": "1" * 24,
            "event_id": "2" * 24,
            "event_type": "Gift.Card.Sold",
            "event_timestamp": "2024-06-03T15:12:41.1180243Z",
            "data": {"id": "g"},
        }
    )
    answer = await client.post(URL, content=body, headers=signed(body))
    assert answer.json()["status"] == "accepted"
    stored = reader.get_event("2" * 24)
    assert stored.status == "unrouted" and not stored.routed and stored.jobs == []
    assert reader.count_events(EventFilter(status="unrouted")) == 1


async def test_the_same_event_from_50_connections_is_stored_once(
    make_client: Make, reader: Reader
) -> None:
    client = await make_client()
    answers = await asyncio.gather(
        *(
            client.post(URL, content=body, headers=signed(body))
            for body in (
                with_ids(payload("Invoice.Closed"), "a" * 24, f"{n:024x}") for n in range(50)
            )
        )
    )
    statuses = sorted(a.json()["status"] for a in answers)
    assert statuses == ["accepted"] + ["duplicate"] * 49
    assert reader.count_events() == 1
    assert reader.get_event("a" * 24).delivery_count == 50
    assert reader.count_jobs() == 1


async def test_health_and_readiness(make_client: Make) -> None:
    client = await make_client()
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


async def test_nul_characters_never_make_the_store_refuse_a_delivery(
    make_client: Make, reader: Reader
) -> None:
    """PostgreSQL's text columns cannot hold NUL (U+0000), which JSON may carry as \\u0000.

    Were such a character to reach a text column, every retry of an authentic delivery would be
    answered 503 until Zenoti deactivated the webhook. Instead: fields that are ids or names are
    checked (quarantined when required, left out when not), and the raw body keeps everything.
    """
    client = await make_client()
    guest = orjson.loads(payload("Guest.Created"))
    cases = {
        "schema and entity id": {
            **guest,
            "event_id": "e" * 24,
            "event_schema": "v1\u0000",
            "data": {**guest["data"], "id": "b37523a5\u0000"},
        },
        "event id": {**guest, "event_id": "a\u0000b"},
        "event type": {**guest, "event_id": "f" * 24, "event_type": "Guest.\u0000Created"},
        "not an envelope, with a NUL id to guess": {"event_id": "c\u0000d", "data": {}},
    }
    answers = {}
    for name, document in cases.items():
        body = orjson.dumps(document)
        assert b"\\u0000" in body
        answer = await client.post(URL + "?x=%00", content=body, headers=signed(body))
        answers[name] = (answer.status_code, answer.json()["status"])
    assert answers == {
        "schema and entity id": (200, "accepted"),
        "event id": (202, "quarantined"),
        "event type": (202, "quarantined"),
        "not an envelope, with a NUL id to guess": (202, "quarantined"),
    }
    stored = reader.get_event("e" * 24)
    assert stored.event_schema is None and stored.entity_id is None
    assert b"\\u0000" in stored.body, "the raw body is kept as it came"
    held = reader.list_quarantine()
    guessed = sorted(item["event_id"] or "-" for item in held)
    assert guessed == ["-", "-", "f" * 24], "an id with a NUL is not kept for matching"
