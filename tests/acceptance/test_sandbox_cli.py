"""``zenoti-bridge sandbox ...`` commands against a real running sandbox process."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
from typer.testing import CliRunner

from tests.acceptance.serve_process import free_port
from zenoti_bridge.catalog import EVENT_TYPES
from zenoti_bridge.cli import app

runner = CliRunner()


def sandbox(url: str, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["sandbox", *args, "--sandbox", url])
    return result.exit_code, result.output


def test_webhooks_are_managed_and_events_fired_from_the_command_line(sandbox_url: str) -> None:
    target = f"http://127.0.0.1:{free_port()}/nobody-listens"
    code, out = sandbox(
        sandbox_url,
        "webhooks",
        "create",
        "--url",
        target,
        "--event-type",
        "guest membership",
        "--event-name",
        "freeze",
        "--name",
        "Freezes",
        "--verb",
        "PUT",
        "--secret",
        "s",
    )
    assert code == 0, out

    code, out = sandbox(sandbox_url, "webhooks", "list", "--json")
    [hook] = orjson.loads(out)
    assert hook["name"] == "Freezes" and hook["catalog_type"] == "Guest.Membership.Freeze"
    assert hook["http_verb"] == "PUT" and hook["event_name"] == "Freeze"

    code, out = sandbox(sandbox_url, "webhooks", "edit", str(hook["id"]), "--name", "Frozen")
    assert code == 0, out
    code, out = sandbox(sandbox_url, "webhooks", "list", "--json")
    assert orjson.loads(out)[0]["name"] == "Frozen"

    # nothing listens at the target: the test request fails, with a non-zero exit
    code, out = sandbox(sandbox_url, "webhooks", "test", str(hook["id"]))
    assert code == 1 and "failure" in out

    code, out = sandbox(sandbox_url, "trigger", "Guest.Membership.Freeze", "--json")
    assert code == 0, out
    fired = orjson.loads(out)
    assert fired[-1]["event_type"] == "Guest.Membership.Freeze"
    assert [d["webhook_id"] for d in fired[-1]["deliveries"]] == [hook["id"]]

    deadline = time.monotonic() + 10
    while True:
        code, out = sandbox(sandbox_url, "webhooks", "failures", str(hook["id"]), "--json")
        failures = [f for f in orjson.loads(out) if f["kind"] == "event"]
        if failures or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert failures[0]["event_type"] == "Guest.Membership.Freeze"
    assert "connection" in failures[0]["error"]

    code, out = sandbox(sandbox_url, "webhooks", "reactivate", str(hook["id"]))
    assert code == 0 and "is active" in out
    code, out = sandbox(sandbox_url, "webhooks", "delete", str(hook["id"]))
    assert code == 0
    code, out = sandbox(sandbox_url, "webhooks", "list", "--json")
    assert orjson.loads(out) == []


def test_all_creates_one_webhook_per_event_type(sandbox_url: str) -> None:
    code, out = sandbox(sandbox_url, "webhooks", "create", "--all", "--url", "http://127.0.0.1:9/x")
    assert code == 0, out
    code, out = sandbox(sandbox_url, "webhooks", "list", "--json")
    hooks = orjson.loads(out)
    assert sorted(h["catalog_type"] for h in hooks) == sorted(t.name for t in EVENT_TYPES)


def test_bad_input_is_one_line_and_exit_2(sandbox_url: str, tmp_path: Path) -> None:
    code, out = sandbox(sandbox_url, "trigger", "Guest.Exploded")
    assert code == 2 and "unknown Zenoti event type 'Guest.Exploded'" in out
    code, out = sandbox(
        sandbox_url,
        "webhooks",
        "create",
        "--url",
        "x",
        "--event-type",
        "Guest",
        "--event-name",
        "Created",
    )
    assert code == 2 and "must be an absolute http:// or https:// address" in out
    code, out = sandbox(sandbox_url, "webhooks", "create", "--url", "http://h/x")
    assert code == 2 and "give --event-type and --event-name, or --all" in out
    code, out = sandbox(sandbox_url, "webhooks", "reactivate", "404")
    assert code == 2 and "404" in out
    code, out = sandbox(f"http://127.0.0.1:{free_port()}", "webhooks", "list")
    assert code == 2 and "no sandbox answers at" in out
    bad = tmp_path / "bad.toml"
    bad.write_text('[sandbox]\nport = "eighty"\n')
    result = runner.invoke(app, ["sandbox", "run", "--config", str(bad)])
    assert result.exit_code == 2 and "sandbox.port" in result.output
