"""The admin API on both backends: bearer tokens, events, replay, dead letters, mirror, stats."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import SettingsFactory, payload
from tests.integration.test_intake import URL, signed
from zenoti_bridge.app import BridgeApp
from zenoti_bridge.storage import Store
from zenoti_bridge.worker import Workers

TOKEN = "admin-token-for-tests"
AUTH = {"authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def admin(
    store: Store, database_url: str, make_settings: SettingsFactory
) -> httpx.AsyncClient:
    settings = make_settings(database_url).model_copy(
        update={"admin": make_settings(database_url).admin.model_copy(update={"tokens": [TOKEN]})}
    )
    workers = Workers(store, database_url=database_url)
    app = BridgeApp(settings, store, manage_store=False, workers=workers)
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://bridge.test"
    )
    for name in ("Guest.Created", "Invoice.Closed", "AppointmentGroup.Created"):
        body = payload(name)
        assert (await client.post(URL, content=body, headers=signed(body))).status_code == 200
    await workers.run_until_idle()
    return client


@pytest.mark.parametrize(
    "headers", [{}, {"authorization": "Bearer wrong"}, {"authorization": "Basic x"}]
)
async def test_the_api_needs_a_configured_bearer_token(
    admin: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    answer = await admin.get("/api/v1/events", headers=headers)
    assert answer.status_code == 401


async def test_openapi_describes_the_api(admin: httpx.AsyncClient) -> None:
    spec = (await admin.get("/api/v1/openapi.json", headers=AUTH)).json()
    assert {
        "/events",
        "/events/{event_id}",
        "/replays",
        "/dead-letters",
        "/stats",
        "/entities/{resource}/{entity_id}",
        "/sources",
    } <= set(spec["paths"])


async def test_events_page_with_a_cursor_and_show_one(admin: httpx.AsyncClient) -> None:
    first = (await admin.get("/api/v1/events?limit=2", headers=AUTH)).json()
    assert [e["type_name"] for e in first["items"]] == [
        "AppointmentGroup.Created",
        "Invoice.Closed",
    ]
    rest = (
        await admin.get(f"/api/v1/events?limit=2&cursor={first['next_cursor']}", headers=AUTH)
    ).json()
    assert [e["type_name"] for e in rest["items"]] == ["Guest.Created"] and rest[
        "next_cursor"
    ] is None
    one = (await admin.get("/api/v1/events/665ddd69aa5bf36518677db7", headers=AUTH)).json()
    assert one["status"] == "processed" and one["envelope"]["event_type"] == "Guest.Created"
    assert one["jobs"][0]["status"] == "succeeded"
    missing = await admin.get("/api/v1/events/nope", headers=AUTH)
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]
    bad = await admin.get("/api/v1/events?cursor=abc", headers=AUTH)
    assert bad.status_code == 422


async def test_entities_carry_the_contract_fields(admin: httpx.AsyncClient) -> None:
    guest = (
        await admin.get("/api/v1/entities/guest/B37523A5-3B4A-4EE2-8463-513755AC0ECD", headers=AUTH)
    ).json()
    assert {"resource", "id", "deleted", "last_event_id", "last_event_timestamp", "data"} <= set(
        guest
    )
    assert guest["resource"] == "guest" and guest["first_name"] == "Avery"
    assert guest["data"]["personal_info"]["last_name"] == "Lindqvist"
    listed = (await admin.get("/api/v1/entities/appointment", headers=AUTH)).json()
    assert [a["service_name"] for a in listed] == ["Hydrating Facial 60"]
    unknown = await admin.get("/api/v1/entities/spaceship", headers=AUTH)
    assert unknown.status_code == 404 and "known resources" in unknown.json()["detail"]


async def test_replay_dry_run_then_for_real_and_stats(admin: httpx.AsyncClient) -> None:
    dry = (
        await admin.post("/api/v1/replays", json={"event_type": "guest.created"}, headers=AUTH)
    ).json()
    assert dry == {"matched": 1, "replayed": 0, "dry_run": True}
    real = await admin.post(
        "/api/v1/replays", json={"source": "acme", "dry_run": False}, headers=AUTH
    )
    assert real.json() == {"matched": 3, "replayed": 3, "dry_run": False}
    stats = (await admin.get("/api/v1/stats", headers=AUTH)).json()
    assert stats["queue_depth"] == 3 and stats["events"]["total"] == 3
    one = await admin.post("/api/v1/events/6668d2835c80f9be67fd4c1e/replay", headers=AUTH)
    assert one.json()["jobs_queued"] == 1
    assert (await admin.get("/api/v1/dead-letters", headers=AUTH)).json() == []


@pytest.mark.parametrize(
    ("method", "url", "body", "message"),
    [
        ("GET", "/api/v1/events?tpye=Guest.Created", None, "unknown query parameter(s) tpye"),
        ("GET", "/api/v1/events?event_type=Guest.Created", None, "this route takes: cursor"),
        ("GET", "/api/v1/entities/guest?sorce=acme", None, "unknown query parameter(s) sorce"),
        ("POST", "/api/v1/replays", {"sorce": "nobody"}, "sorce"),
        ("POST", "/api/v1/replays", {"source": "a\u0000b"}, "NUL"),
        ("GET", "/api/v1/events?cursor=%C2%B2", None, "next_cursor"),
        ("GET", "/api/v1/events?cursor=" + "9" * 30, None, "next_cursor"),
        ("GET", "/api/v1/events?source=%00", None, "NUL"),
        ("GET", "/api/v1/events/abc%00", None, "NUL"),
        ("GET", "/api/v1/entities/guest/x%00y", None, "NUL"),
    ],
)
async def test_bad_requests_are_422_with_a_reason_never_a_500_or_a_silent_match_all(
    admin: httpx.AsyncClient, method: str, url: str, body: object, message: str
) -> None:
    answer = await admin.request(method, url, json=body, headers=AUTH)
    assert answer.status_code == 422, answer.text
    assert message in answer.text


async def test_time_filters_with_an_offset_mean_the_same_instant_on_both_stores(
    admin: httpx.AsyncClient,
) -> None:
    from datetime import UTC, datetime, timedelta, timezone

    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    in_utc = hour_ago.isoformat()
    elsewhere = hour_ago.astimezone(timezone(timedelta(hours=5))).isoformat()
    counts = []
    for since in (in_utc, elsewhere):
        page = await admin.get("/api/v1/events", params={"since": since}, headers=AUTH)
        replay = await admin.post("/api/v1/replays", json={"since": since}, headers=AUTH)
        counts.append((len(page.json()["items"]), replay.json()["matched"]))
    assert counts == [(3, 3), (3, 3)]


async def test_an_empty_bearer_token_never_opens_the_api(
    database_url: str, make_settings: SettingsFactory, store: Store, tmp_path: Path
) -> None:
    from zenoti_bridge.config import load_settings
    from zenoti_bridge.errors import ConfigError

    base = make_settings(database_url)
    with pytest.raises(ValueError, match=r"admin\.tokens"):
        base.model_validate({**base.model_dump(), "admin": {"tokens": [""]}})
    with pytest.raises(ConfigError, match="anyone could guess it"):
        (tmp_path / "bridge.toml").write_text('[admin]\ntokens = ["short"]\n')
        load_settings(tmp_path / "bridge.toml")
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=BridgeApp(base, store, manage_store=False)),
        base_url="http://bridge.test",
    )
    answer = await client.get("/api/v1/events", headers={"authorization": "Bearer "})
    assert answer.status_code in (401, 403)


async def test_sources_show_settings_without_secrets_and_what_each_type_sent(
    admin: httpx.AsyncClient,
) -> None:
    from tests.conftest import SECRET

    held = b"<not json/>"
    assert (await admin.post(URL, content=held, headers=signed(held))).status_code == 202
    answer = await admin.get("/api/v1/sources", headers=AUTH)
    assert answer.status_code == 200
    (acme,) = answer.json()
    assert {k: acme[k] for k in ("source", "configured", "signature", "events", "quarantined")} == {
        "source": "acme",
        "configured": True,
        "signature": "enforce",
        "events": 3,
        "quarantined": 1,
    }
    assert set(acme["types"]) == {"Guest.Created", "Invoice.Closed", "AppointmentGroup.Created"}
    assert all(t["events"] == 1 and t["last_received_at"] for t in acme["types"].values())
    assert acme["webhook_path"] == "/webhooks/zenoti/acme" and acme["secrets"] >= 1
    assert SECRET not in answer.text, "secrets are counted, never shown"


async def test_an_event_id_in_two_sources_is_409_naming_them(
    admin: httpx.AsyncClient, store: Store
) -> None:
    from tests.integration.test_store_contract import incoming

    await store.record_event(incoming(1, source="other", event_id="665ddd69aa5bf36518677db7"))
    for method, url in (
        ("GET", "/api/v1/events/665ddd69aa5bf36518677db7"),
        ("POST", "/api/v1/events/665ddd69aa5bf36518677db7/replay"),
    ):
        answer = await admin.request(method, url, headers=AUTH)
        assert answer.status_code == 409, answer.text
        assert answer.json()["sources"] == ["acme", "other"]
        assert "?source=" in answer.json()["detail"]
        named = await admin.request(method, url, params={"source": "acme"}, headers=AUTH)
        assert named.status_code == 200, named.text


async def test_entities_and_dead_letters_page_with_a_cursor_in_a_header(
    admin: httpx.AsyncClient, store: Store, database_url: str
) -> None:
    for n in range(5):  # five more guests
        document = orjson.loads(payload("Guest.Created"))
        document.update(event_id=f"{n + 1:024x}", id=f"{n + 101:024x}")
        document["data"]["id"] = f"00000000-0000-0000-0000-{n:012d}"
        body = orjson.dumps(document)
        assert (await admin.post(URL, content=body, headers=signed(body))).status_code == 200
    workers = Workers(store, database_url=database_url)
    try:
        await workers.run_until_idle()
    finally:
        await workers.stop()
    seen: list[str] = []
    url: str | None = "/api/v1/entities/guest?limit=2"
    while url is not None:
        answer = await admin.get(url, headers=AUTH)
        assert answer.status_code == 200, answer.text
        seen += [guest["id"] for guest in answer.json()]
        cursor = answer.headers.get("x-next-cursor")
        url = f"/api/v1/entities/guest?limit=2&cursor={cursor}" if cursor else None
        if cursor:
            assert answer.headers["link"].endswith('rel="next"')
    assert len(seen) == len(set(seen)) == 6, "every guest once: the sample's and five more"
    everything = (await admin.get("/api/v1/entities/guest?limit=1000", headers=AUTH)).json()
    assert seen == [guest["id"] for guest in everything], "every guest, in order"
    bad = await admin.get("/api/v1/entities/guest?cursor=nothing", headers=AUTH)
    assert bad.status_code == 422
    letters = await admin.get("/api/v1/dead-letters?cursor=%C2%B2", headers=AUTH)
    assert letters.status_code == 422
