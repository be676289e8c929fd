"""End to end: the sandbox delivers every event type to a running bridge, whose mirror then holds
what the sandbox's world did.

Two real processes: ``zenoti-bridge sandbox run`` and ``zenoti-bridge serve`` (SQLite). One
webhook per catalog type, signed with the bridge source's secret, verbs alternating POST, PUT and
PATCH; every type is triggered in one consistent story, then a burst of a played scenario. The
sandbox's delivery log must show every delivery succeeded on its first attempt, the bridge must
hold each event exactly once, and its mirror must match the sandbox's ``/api/expected`` column by
column.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from tests.acceptance.serve_process import ServeProcesses, free_port, write_config
from tests.integration.test_sandbox_mirror import differences
from zenoti_bridge.catalog import EVENT_TYPES
from zenoti_bridge.sandbox.scenario import STORY
from zenoti_bridge.storage.queries import Reader
from zenoti_bridge.storage.schema import MIRROR_COLUMNS

SECRET = "end-to-end-secret"
VERBS = ("POST", "PUT", "PATCH")
PATIENCE = 60.0


def typed(expected: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, dict[str, Any]]]:
    """``/api/expected`` with its ISO times back as datetimes (UTC aware, wall-clock naive)."""
    for resource, rows in expected.items():
        for row in rows.values():
            for column, value in row.items():
                if MIRROR_COLUMNS[resource].get(column) in ("U", "L") and value is not None:
                    row[column] = datetime.fromisoformat(value)
    return expected


def wait_for(check: Any, what: str) -> Any:
    deadline = time.monotonic() + PATIENCE
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.2)


def test_every_event_type_goes_from_the_sandbox_through_the_bridge_into_the_mirror(
    sandbox_url: str, tmp_path: Path
) -> None:
    database = tmp_path / "bridge.db"
    config = write_config(
        tmp_path / "bridge.toml", f"sqlite:///{database}", port=free_port(), secret=SECRET
    )
    with ServeProcesses(tmp_path) as servers, httpx.Client(base_url=sandbox_url) as sandbox:
        bridge = servers.start(config)
        bridge.wait_ready()
        target = bridge.webhook_url("acme")

        families = sandbox.get("/api/event-types").json()
        for n, kind in enumerate(EVENT_TYPES):
            family = kind.family
            label = next(
                name
                for group in families
                if group["event_type"] == family
                for name, catalog_type in group["event_names"].items()
                if catalog_type == kind.name
            )
            answer = sandbox.post(
                "/api/webhooks",
                json={
                    "name": f"bridge {kind.name}",
                    "event_type": family,
                    "event_name": label,
                    "http_verb": VERBS[n % 3],
                    "url": target,
                    "secret": SECRET,
                },
            )
            assert answer.status_code == 201, answer.text

        fired: list[dict[str, Any]] = []
        for event_type in STORY:
            answer = sandbox.post("/api/events", json={"event_type": event_type})
            assert answer.status_code == 201, answer.text
            fired += answer.json()
        assert {f["event_type"] for f in fired} == {t.name for t in EVENT_TYPES}

        # then the business runs by itself for a moment: a scenario at high speed
        assert sandbox.post(
            "/api/scenario", json={"level": "quiet-spa", "speed": 20_000}
        ).is_success
        wait_for(lambda: sandbox.get("/api/scenario").json()["emitted"] >= 150, "the scenario")
        sandbox.delete("/api/scenario")

        hooks = sandbox.get("/api/webhooks").json()
        assert all(h["active"] for h in hooks)

        def attempts() -> list[dict[str, Any]]:
            return [
                a
                for h in hooks
                for a in sandbox.get(f"/api/webhooks/{h['id']}/deliveries?limit=100000").json()
            ]

        with Reader(f"sqlite:///{database}") as reader:

            def settled() -> bool:
                sent = {a["event_id"] for a in attempts()}
                stored = int(reader.stats()["events"]["total"])
                return (
                    bool(sent)
                    and stored == len(sent)
                    and reader.job_counts() == {("mirror", "succeeded"): stored}
                )

            wait_for(settled, "the bridge to store and mirror every delivered event")
            log = attempts()
            assert {a["outcome"] for a in log} == {"success"}
            assert {a["number"] for a in log} == {1}
            assert {a["http_verb"] for a in log} == set(VERBS)
            assert set(reader.stats()["events"]["by_type"]) >= {t.name for t in EVENT_TYPES}

            expected = typed(sandbox.get("/api/expected").json())
            assert set(expected) == set(MIRROR_COLUMNS)
            found = differences(reader, expected)
            assert not found, found[:10]
