"""The sandbox's REST API and web pages, in-process, delivering to a real loopback endpoint."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.integration.http_endpoint import Endpoint, eventually
from zenoti_bridge.config import SandboxConfig
from zenoti_bridge.envelope import parse_envelope
from zenoti_bridge.sandbox.app import build_app
from zenoti_bridge.sandbox.automations import SandboxState
from zenoti_bridge.sandbox.service import Sandbox
from zenoti_bridge.signature import DEFAULT_HEADER, Verdict, verify

SECRET = "sandbox-app-secret"


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[Sandbox]:
    config = SandboxConfig(
        seed=3,
        mail={"outbox": str(tmp_path / "outbox")},
        delivery={"deactivate_after": 3},
    )
    running = Sandbox(
        config, level="quiet-spa", state=SandboxState(":memory:"), public_url="http://sb.test"
    )
    await running.start()
    yield running
    await running.stop()


@pytest.fixture
async def client(sandbox: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app(sandbox))
    async with httpx.AsyncClient(transport=transport, base_url="http://sb.test") as opened:
        yield opened


def hook_body(endpoint: Endpoint, path: str = "/ok", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "CRM guests",
        "event_type": "Guest",
        "event_name": "Created",
        "url": endpoint.url(path),
        "secret": SECRET,
    }
    return body | fields


async def test_webhooks_are_created_listed_edited_and_deleted(
    client: httpx.AsyncClient, endpoint: Endpoint
) -> None:
    created = await client.post("/api/webhooks", json=hook_body(endpoint, description="d"))
    assert created.status_code == 201, created.text
    hook = created.json()
    assert hook["active"] is True and hook["consecutive_failures"] == 0
    assert hook["catalog_type"] == "Guest.Created" and hook["subscription"] == "organization"
    assert hook["failure_log_url"] == f"http://sb.test/webhooks/{hook['id']}/failures"

    patched = await client.patch(f"/api/webhooks/{hook['id']}", json={"http_verb": "patch"})
    assert patched.status_code == 200 and patched.json()["http_verb"] == "PATCH"
    assert patched.json()["name"] == "CRM guests"

    replaced = await client.put(
        f"/api/webhooks/{hook['id']}",
        json=hook_body(endpoint, event_type="Guest Membership", event_name="Freeze"),
    )
    assert replaced.json()["catalog_type"] == "Guest.Membership.Freeze"

    listed = await client.get("/api/webhooks", params={"active": "true"})
    assert [w["id"] for w in listed.json()] == [hook["id"]]
    assert (await client.get("/api/webhooks", params={"active": "false"})).json() == []

    assert (await client.delete(f"/api/webhooks/{hook['id']}")).status_code == 204
    missing = await client.get(f"/api/webhooks/{hook['id']}")
    assert missing.status_code == 404 and "detail" in missing.json()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("event_type", "Guests", "unknown event type 'Guests'; choose one of 'Invoice'"),
        ("event_name", "Exploded", "unknown event name for 'Guest' 'Exploded'"),
        ("http_verb", "GET", "unknown HTTP verb 'GET'"),
        ("url", "ftp://example.com/x", "must be an absolute http:// or https:// address"),
        ("name", "  ", "name is required"),
    ],
)
async def test_a_bad_webhook_is_refused_with_the_field_and_the_choices(
    client: httpx.AsyncClient, endpoint: Endpoint, field: str, value: str, message: str
) -> None:
    answer = await client.post("/api/webhooks", json=hook_body(endpoint, **{field: value}))
    assert answer.status_code == 422
    assert message in answer.json()["detail"]
    assert (await client.get("/api/webhooks")).json() == []


async def test_a_triggered_event_reaches_the_webhook_signed_and_shaped_like_zenoti(
    client: httpx.AsyncClient, endpoint: Endpoint
) -> None:
    await client.post("/api/webhooks", json=hook_body(endpoint))
    other = hook_body(endpoint, "/members", event_type="Guest Membership", event_name="Created")
    await client.post("/api/webhooks", json=other)

    fired = await client.post("/api/events", json={"event_type": "guest.created", "count": 2})
    assert fired.status_code == 201, fired.text
    events = fired.json()
    assert [e["event_type"] for e in events] == ["Guest.Created", "Guest.Created"]
    assert all(len(e["deliveries"]) == 1 for e in events)
    await eventually(lambda: len(endpoint.requests("/ok")) == 2)

    received = endpoint.requests("/ok")
    for request, event in zip(received, events, strict=True):
        assert request.method == "POST"
        assert verify(request.body, request.headers[DEFAULT_HEADER], [SECRET.encode()]) is (
            Verdict.VALID
        )
        envelope = parse_envelope(request.body)
        assert envelope.event_id == event["event_id"]
        assert orjson.loads(request.body)["id"] == event["deliveries"][0]["id"]
    assert endpoint.requests("/members") == []


async def test_triggering_an_unknown_type_or_too_many_is_a_clear_422(
    client: httpx.AsyncClient,
) -> None:
    unknown = await client.post("/api/events", json={"event_type": "Guest.Exploded"})
    assert unknown.status_code == 422
    assert "unknown Zenoti event type 'Guest.Exploded'" in unknown.json()["detail"]
    too_many = await client.post("/api/events", json={"event_type": "Guest.Created", "count": 0})
    assert too_many.status_code == 422
    center = await client.post(
        "/api/events", json={"event_type": "Guest.Created", "center_id": "nowhere"}
    )
    assert center.status_code == 422 and "unknown center 'nowhere'" in center.json()["detail"]


async def test_deactivation_then_reactivation_over_the_api(
    client: httpx.AsyncClient, endpoint: Endpoint, sandbox: Sandbox
) -> None:
    endpoint.answer("/down", 503, "maintenance")
    hook = (await client.post("/api/webhooks", json=hook_body(endpoint, "/down"))).json()
    await client.post("/api/events", json={"event_type": "Guest.Created", "count": 3})
    await eventually(lambda: not sandbox.state.get_webhook(hook["id"]).active)

    inactive = (await client.get("/api/webhooks", params={"active": "false"})).json()
    assert [w["id"] for w in inactive] == [hook["id"]]
    failures = (await client.get(f"/api/webhooks/{hook['id']}/failures")).json()
    assert len(failures) == 3 and {f["status"] for f in failures} == {503}
    assert failures[0]["response"] == "maintenance"
    await eventually(lambda: len(sandbox.state.emails()) == 1)
    [mail] = (await client.get("/api/emails")).json()
    assert "the webhook CRM guests has been temporarily deactivated" in mail["body"]
    assert hook["failure_log_url"] in mail["body"]

    # events while inactive are never sent, not even after reactivation
    await client.post("/api/events", json={"event_type": "Guest.Created"})
    endpoint.answer("/down", 200)
    active = (await client.post(f"/api/webhooks/{hook['id']}/reactivate")).json()
    assert active["active"] is True and active["consecutive_failures"] == 0
    await client.post("/api/events", json={"event_type": "Guest.Created"})
    await eventually(lambda: len(endpoint.requests("/down")) == 4)
    await asyncio.sleep(0.2)
    assert len(endpoint.requests("/down")) == 4
    deliveries = (await client.get(f"/api/webhooks/{hook['id']}/deliveries")).json()
    assert [d["outcome"] for d in deliveries] == ["success", "failure", "failure", "failure"]


async def test_the_test_button_sends_an_empty_unsigned_post(
    client: httpx.AsyncClient, endpoint: Endpoint
) -> None:
    hook = (await client.post("/api/webhooks", json=hook_body(endpoint, http_verb="PUT"))).json()
    attempt = (await client.post(f"/api/webhooks/{hook['id']}/test")).json()
    assert attempt["outcome"] == "success" and attempt["kind"] == "test"
    [request] = endpoint.requests("/ok")
    assert request.method == "POST" and request.body == b""
    assert DEFAULT_HEADER not in request.headers


async def test_a_scenario_plays_and_stops(client: httpx.AsyncClient, endpoint: Endpoint) -> None:
    org = hook_body(endpoint, "/groups", event_type="Appointment Group", event_name="Created")
    await client.post("/api/webhooks", json=org)
    bad = await client.post("/api/scenario", json={"level": "huge", "speed": 10})
    assert bad.status_code == 422 and "unknown activity level 'huge'" in bad.json()["detail"]

    started = await client.post("/api/scenario", json={"level": "quiet-spa", "speed": 500_000})
    assert started.status_code == 201 and started.json()["running"] is True
    await eventually(lambda: len(endpoint.requests("/groups")) >= 2)
    state = (await client.get("/api/scenario")).json()
    assert state["level"] == "quiet-spa" and state["emitted"] >= 2
    stopped = (await client.delete("/api/scenario")).json()
    assert stopped == {"running": False}


async def test_openapi_and_world(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    spec = (await client.get("/api/openapi.json")).json()
    assert "/webhooks/{webhook_id}/reactivate" in spec["paths"]
    world = (await client.get("/api/world")).json()
    assert world["seed"] == 3 and len(world["centers"]) == len(sandbox.world.centers)
    families = (await client.get("/api/event-types")).json()
    assert {"event_type": "Guest Pass", "event_names": {"Redeemed": "Guestpass.Redeemed"}} in (
        families
    )


# -- pages ---------------------------------------------------------------------------------------


async def test_pages_create_a_webhook_and_show_the_tabs(
    client: httpx.AsyncClient, endpoint: Endpoint
) -> None:
    form = await client.get("/webhooks/new")
    assert form.status_code == 200 and 'name="event_name"' in form.text

    refused = await client.post("/webhooks/new", data=hook_body(endpoint, url="not a url"))
    assert refused.status_code == 422
    assert "must be an absolute http:// or https:// address" in refused.text
    assert 'value="CRM guests"' in refused.text  # what the user typed is kept

    saved = await client.post("/webhooks/new", data=hook_body(endpoint))
    assert saved.status_code == 303
    page = await client.get(saved.headers["location"])
    assert page.status_code == 200 and "Webhook &#39;CRM guests&#39; created." in page.text

    active = await client.get("/webhooks")
    assert "Active (1)" in active.text and "CRM guests" in active.text
    inactive = await client.get("/webhooks", params={"tab": "inactive"})
    assert "Inactive (0)" in inactive.text and "No inactive webhooks" in inactive.text
    assert (await client.get("/webhooks/999")).status_code == 404


async def test_pages_trigger_reactivate_and_show_logs_and_emails(
    client: httpx.AsyncClient, endpoint: Endpoint, sandbox: Sandbox
) -> None:
    endpoint.answer("/down", 500, "boom")
    await client.post("/webhooks/new", data=hook_body(endpoint, "/down"))
    [hook] = sandbox.state.list_webhooks()
    fired = await client.post("/trigger", data={"event_type": "Guest.Created", "count": "3"})
    assert fired.status_code == 200 and "Fired 3 events." in fired.text
    await eventually(lambda: not sandbox.state.get_webhook(hook.id).active)

    inactive = await client.get("/webhooks", params={"tab": "inactive"})
    assert "Inactive (1)" in inactive.text and f"/webhooks/{hook.id}/failures" in inactive.text
    failures = await client.get(f"/webhooks/{hook.id}/failures")
    assert "3 failed attempts" in failures.text and "boom" in failures.text
    await eventually(lambda: len(sandbox.state.emails()) == 1)
    emails = await client.get("/emails")
    assert "has been temporarily deactivated" in emails.text

    back = await client.post(f"/webhooks/{hook.id}/reactivate")
    assert back.status_code == 303 and sandbox.state.get_webhook(hook.id).active
    bad = await client.post("/trigger", data={"event_type": "Nope", "count": "1"})
    assert bad.status_code == 422 and "unknown Zenoti event type" in bad.text
    world = await client.get("/world")
    assert sandbox.world.organization.name in world.text
