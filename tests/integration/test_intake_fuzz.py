"""Hypothesis throws random bodies, headers, verbs and paths at the intake.

Whatever arrives, the answer is one of the statuses in DESIGN.md's table, never a 500 and never
a crash; the store stays consistent (every stored event_id once).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import SECRET, fresh_schema
from zenoti_bridge.app import BridgeApp
from zenoti_bridge.config import Settings
from zenoti_bridge.signature import sign
from zenoti_bridge.storage import migrate as migrations
from zenoti_bridge.storage import open_store
from zenoti_bridge.storage.queries import Reader

T = TypeVar("T")
ALLOWED = {200, 202, 401, 404, 405, 413}


class LoopThread:
    """An event loop in a thread, so synchronous hypothesis tests can drive an async app."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Each backend, for the whole module: PostgreSQL refuses some text SQLite takes (NUL)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'bridge.db'}"
        return
    with fresh_schema("zb_fuzz") as url:
        yield url


@pytest.fixture(scope="module")
def fuzz_target(database: str) -> Iterator[tuple[LoopThread, httpx.AsyncClient, str]]:
    url = database
    migrations.upgrade(url)
    config = Settings(
        database={"url": url},
        sources={
            "acme": {"webhook_secrets": [SECRET], "max_body_bytes": 4096},
            "open": {"signature": "off", "max_body_bytes": 4096},
            "logged": {"webhook_secrets": [SECRET], "signature": "log", "url_token": "tok"},
        },
    )
    runner = LoopThread()
    store = open_store(config.database)
    runner.run(store.start())
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=BridgeApp(config, store, manage_store=False)),
        base_url="http://bridge.test",
    )
    yield runner, client, url
    runner.run(client.aclose())
    runner.run(store.stop())
    runner.close()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
envelopes = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.text(max_size=30), st.integers(), st.none()),
        "event_id": st.one_of(
            st.from_regex(r"\A[0-9a-f]{24}\Z"),  # usable, so the rest gets as far as the store
            st.text(max_size=140),
            st.integers(),
            st.none(),
            json_values,
        ),
        "event_type": st.one_of(
            st.sampled_from(["Guest.Created", "invoice.closed", "Class.Booking.No Show", "X.Y"]),
            st.text(max_size=40),
            json_values,
        ),
        "event_timestamp": st.one_of(
            st.sampled_from(
                ["2024-06-03T15:12:41.1180243Z", "0001-01-01T00:00:00", "9999-12-31T23:59:59-12:00"]
            ),
            st.text(max_size=40),
            json_values,
        ),
        "event_resource": json_values,
        "event_schema": st.one_of(st.text(max_size=20), json_values),
        # text ids (NUL included) where the catalog looks for them, or anything at all
        "data": st.one_of(
            st.fixed_dictionaries({"id": st.text(max_size=40)}),
            st.fixed_dictionaries({"invoice": st.fixed_dictionaries({"id": st.text(max_size=40)})}),
            json_values,
        ),
    },
)


# envelopes that pass every check, with random text where ids and names are taken from them;
# the characters that stores refuse or that end a line come up often
awkward_text = st.text(
    st.one_of(
        st.sampled_from(["\x00", "\x1f", "\n", " ", "\u2028", "\U0001f600"]), st.characters()
    ),
    max_size=40,
)
usable_envelopes = st.fixed_dictionaries(
    {
        "id": st.from_regex(r"\A[0-9a-f]{24}\Z"),
        "event_id": st.from_regex(r"\A[0-9a-f]{24}\Z"),
        "event_type": st.sampled_from(["Guest.Created", "Invoice.Closed", "Employee.Updated"]),
        "event_timestamp": st.just("2024-06-03T15:12:41.1180243Z"),
        "data": st.fixed_dictionaries(
            {"id": awkward_text, "invoice": st.fixed_dictionaries({"id": awkward_text})}
        ),
    },
    optional={"event_schema": awkward_text, "event_resource": awkward_text},
)


def to_json(value: object) -> bytes:
    # the standard library writes integers of any size, which orjson refuses to
    return json.dumps(value).encode()


bodies = st.one_of(
    st.binary(max_size=6000),
    envelopes.map(to_json),
    usable_envelopes.map(to_json),
    json_values.map(to_json),
)
header_names = st.sampled_from(
    ["zenoti-webhook-signature", "content-type", "content-length-x", "x-any", "authorization"]
)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    verb=st.sampled_from(["POST", "PUT", "PATCH", "GET", "DELETE", "OPTIONS"]),
    path=st.sampled_from(
        ["acme", "open", "logged", "logged?token=tok", "nobody", "acme/", "a%2Fb"]
    ),
    body=bodies,
    headers=st.dictionaries(
        header_names,
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80),
        max_size=3,
    ),
    sign_it=st.booleans(),
)
def test_intake_never_answers_500_whatever_arrives(
    fuzz_target: tuple[LoopThread, httpx.AsyncClient, str],
    verb: str,
    path: str,
    body: bytes,
    headers: dict[str, str],
    sign_it: bool,
) -> None:
    runner, client, _ = fuzz_target
    if sign_it:
        headers = {**headers, "zenoti-webhook-signature": sign(SECRET, body)}
    answer = runner.run(
        client.request(verb, f"/webhooks/zenoti/{path}", content=body, headers=headers)
    )
    assert answer.status_code in ALLOWED, (answer.status_code, answer.text)
    assert answer.headers["content-type"] == "application/json"
    assert "status" in answer.json() or "error" in answer.json()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(envelope=usable_envelopes)
def test_any_text_in_a_usable_envelope_is_stored_or_quarantined(
    fuzz_target: tuple[LoopThread, httpx.AsyncClient, str], envelope: dict[str, Any]
) -> None:
    """Authentic and well formed, whatever text the ids and names hold: never a 503 (on
    PostgreSQL a NUL in a text column would be one, on every retry of the delivery)."""
    runner, client, _ = fuzz_target
    body = to_json(envelope)
    headers = {"zenoti-webhook-signature": sign(SECRET, body)}
    answer = runner.run(client.post("/webhooks/zenoti/acme", content=body, headers=headers))
    assert answer.status_code in (200, 202), (answer.status_code, answer.text)


def test_after_fuzzing_every_stored_event_is_unique(
    fuzz_target: tuple[LoopThread, httpx.AsyncClient, str],
) -> None:
    _, _, url = fuzz_target
    with Reader(url) as reader:
        for source in ("acme", "open", "logged"):  # one event_id may come from several sources
            counts = list(reader.event_id_counts(source))  # read whole: no query left open
            assert all(rows == 1 for _, rows, _ in counts), source
