"""The command line, in process: every command answers --help, bad input is one line, exit 2."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from tests.conftest import PAYLOADS
from zenoti_bridge.app import BridgeApp
from zenoti_bridge.cli import app
from zenoti_bridge.config import load_settings
from zenoti_bridge.signature import Verdict, sign, verify
from zenoti_bridge.storage import migrate as migrations
from zenoti_bridge.storage import open_store

runner = CliRunner()

COMMANDS = [
    ["serve"],
    ["intake"],
    ["worker"],
    ["migrate"],
    ["init"],
    ["sign"],
    ["send"],
    ["setup-guide"],
    ["sources"],
    ["sources", "list"],
    ["events"],
    ["events", "list"],
    ["events", "show"],
    ["events", "replay"],
    ["dead-letters"],
    ["dead-letters", "list"],
    ["dead-letters", "show"],
    ["dead-letters", "replay"],
    ["sandbox"],
    ["sandbox", "run"],
    ["sandbox", "trigger"],
    ["sandbox", "emails"],
    ["sandbox", "webhooks"],
    ["sandbox", "webhooks", "list"],
    ["sandbox", "webhooks", "create"],
    ["sandbox", "webhooks", "edit"],
    ["sandbox", "webhooks", "delete"],
    ["sandbox", "webhooks", "reactivate"],
    ["sandbox", "webhooks", "test"],
    ["sandbox", "webhooks", "failures"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


@pytest.fixture
def configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["init"])
    assert result.exit_code == 0, result.output
    assert "http://127.0.0.1:8080/webhooks/zenoti/demo" in result.output
    return tmp_path / "zenoti-bridge.toml"


def test_init_writes_a_starter_config_once(configured: Path) -> None:
    before = configured.read_text()
    again = runner.invoke(app, ["init"])
    assert again.exit_code == 0 and "leaving it" in again.output
    assert configured.read_text() == before


def test_sign_prints_the_header_zenoti_would_send(configured: Path) -> None:
    sample = PAYLOADS / "Guest.Created.json"
    result = runner.invoke(app, ["sign", str(sample), "--source", "demo"])
    assert result.exit_code == 0, result.output
    secret = load_settings(configured).sources["demo"].webhook_secrets[0].encode()
    assert verify(sample.read_bytes(), result.output.strip(), [secret]) is Verdict.VALID


def test_migrate_then_list_sources_and_events(configured: Path) -> None:
    migrated = runner.invoke(app, ["migrate"])
    assert migrated.exit_code == 0, migrated.output
    assert "empty -> 0003" in migrated.output
    sources = runner.invoke(app, ["sources", "list"])
    assert sources.exit_code == 0 and "demo" in sources.output
    events = runner.invoke(app, ["events", "list", "--json"])
    assert events.exit_code == 0 and events.output == ""


def test_setup_guide_names_every_family_and_the_exact_url(configured: Path) -> None:
    result = runner.invoke(app, ["setup-guide", "demo", "--base-url", "https://bridge.example.com"])
    assert result.exit_code == 0, result.output
    assert result.output.count("URL: https://bridge.example.com/webhooks/zenoti/demo") == 9
    for family in ("Invoice", "Guest Membership", "Appointment Group", "Employee", "Class"):
        assert f"Event Type '{family}'" in result.output
    assert "inactive tab" in result.output.lower()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["setup-guide", "nobody"], "no source 'nobody'"),
        (["events", "show", "0" * 24], "no event"),
        (["sign", "missing.json"], "missing.json"),
        (["sign", "zenoti-bridge.toml", "--source", "nobody"], "no source 'nobody'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(configured: Path, argv: list[str], message: str) -> None:
    runner.invoke(app, ["migrate"])
    result = runner.invoke(app, argv)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert isinstance(result.exception, SystemExit), "ended by the command, not by an error"


def test_a_bad_config_line_names_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("zenoti-bridge.toml").write_text('[sources.acme]\nsignature = "sometimes"\n')
    result = runner.invoke(app, ["sources", "list"])
    assert result.exit_code == 2
    assert "sources.acme.signature" in result.output
    assert "ZB_SOURCES__ACME__SIGNATURE" in result.output


def test_serve_refuses_an_unmigrated_database_with_no_migrate(configured: Path) -> None:
    result = runner.invoke(app, ["serve", "--no-migrate"])
    assert result.exit_code == 2
    assert "zenoti-bridge migrate" in result.output


def test_events_list_and_show_after_a_delivery(configured: Path) -> None:
    settings = load_settings(configured)
    migrations.upgrade(settings.database.url)

    async def deliver() -> None:
        store = open_store(settings.database)
        await store.start()
        transport = httpx.ASGITransport(app=BridgeApp(settings, store, manage_store=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            body = (PAYLOADS / "Invoice.Closed.json").read_bytes()
            secret = settings.sources["demo"].webhook_secrets[0]
            headers = {"zenoti-webhook-signature": sign(secret, body)}
            answer = await client.post("/webhooks/zenoti/demo", content=body, headers=headers)
            assert answer.status_code == 200
        await store.stop()

    asyncio.run(deliver())
    listed = runner.invoke(app, ["events", "list", "--json"])
    (line,) = listed.output.splitlines()
    assert orjson.loads(line)["type_name"] == "Invoice.Closed"
    shown = runner.invoke(app, ["events", "show", "6668d2835c80f9be67fd4c1e"])
    assert shown.exit_code == 0, shown.output
    assert "Invoice.Closed" in shown.output and "mirror" in shown.output
    assert '"invoice_number": "3317"' in shown.output


def test_replay_and_dead_letters_from_the_command_line(configured: Path) -> None:
    assert runner.invoke(app, ["migrate"]).exit_code == 0
    dry = runner.invoke(app, ["events", "replay", "--source", "demo", "--dry-run"])
    assert dry.exit_code == 0 and "0 event(s) match" in dry.output
    bad_time = runner.invoke(app, ["events", "replay", "--since", "yesterday"])
    assert bad_time.exit_code == 2 and "--since" in bad_time.output
    listed = runner.invoke(app, ["dead-letters", "list"])
    assert listed.exit_code == 0
    both = runner.invoke(app, ["dead-letters", "replay", "3", "--all"])
    assert both.exit_code == 2 and "not both" in both.output
    missing = runner.invoke(app, ["dead-letters", "replay", "3"])
    assert missing.exit_code == 2 and "no dead letter with job id 3" in missing.output


READING = [
    ["sources", "list"],
    ["events", "list"],
    ["events", "show", "0" * 24],
    ["events", "replay", "--dry-run"],
    ["dead-letters", "list"],
    ["dead-letters", "show", "1"],
]


@pytest.mark.parametrize("argv", READING, ids=" ".join)
def test_reading_commands_before_any_migration_say_what_to_run(
    configured: Path, argv: list[str]
) -> None:
    database = load_settings(configured).database.sqlite_path
    assert not database.exists()
    result = runner.invoke(app, argv)
    assert result.exit_code == 2, result.output
    assert "no database at" in result.output and "zenoti-bridge migrate" in result.output
    assert not database.exists(), "a command that only reads created the database"

    database.parent.mkdir(parents=True, exist_ok=True)
    database.touch()  # a file, but no tables
    result = runner.invoke(app, argv)
    assert result.exit_code == 2, result.output
    assert "holds no zenoti-bridge tables; run `zenoti-bridge migrate`" in result.output
    assert isinstance(result.exception, SystemExit), "ended by the command, not by an error"


def test_a_database_that_fails_mid_command_is_one_line(
    configured: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    from zenoti_bridge.storage.queries import Reader

    assert runner.invoke(app, ["migrate"]).exit_code == 0

    def gone(*_: object, **__: object) -> None:
        raise OperationalError("SELECT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(Reader, "list_events", gone)
    result = runner.invoke(app, ["events", "list"])
    assert result.exit_code == 1
    assert result.output.strip() == "error: the database failed: server closed the connection"


def test_a_named_config_file_that_does_not_exist_stops_serve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["serve", "--config", "typo.toml"])
    assert result.exit_code == 2
    assert "typo.toml: no such configuration file" in result.output
    assert not (tmp_path / "var").exists(), "nothing was started or created"


def test_an_environment_list_that_is_not_json_is_one_line(
    configured: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZB_ADMIN__TOKENS", "abc")
    result = runner.invoke(app, ["setup-guide", "demo"])
    assert result.exit_code == 2
    assert "ZB_ADMIN__TOKENS: not valid JSON" in result.output
    assert isinstance(result.exception, SystemExit), "ended by the command, not by an error"


def test_urls_and_commands_are_printed_whole_to_be_copied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repository = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(repository)  # where the sample the commands name exists
    config = tmp_path / "bridge.toml"
    written = runner.invoke(app, ["init", "--config", str(config), "--port", "8123"])
    assert written.exit_code == 0, written.output
    lines = written.output.splitlines()
    sample = "tests/fixtures/zenoti/payloads/Guest.Created.json"
    assert f"  zenoti-bridge send {sample} --source demo --config {config}" in lines or any(
        line.endswith(f" -m zenoti_bridge send {sample} --source demo --config {config}")
        for line in lines
    ), written.output
    (curl,) = [line for line in lines if line.startswith("  curl ")]
    assert curl.startswith("  curl -X POST http://127.0.0.1:8123/webhooks/zenoti/demo -H ")
    assert curl.endswith(f"--data-binary @{sample}"), "one line, nothing cut"

    token = "t" * 90  # a URL far wider than any terminal
    with config.open("a") as out:
        out.write(f'url_token = "{token}"\n')
    guide = runner.invoke(app, ["setup-guide", "demo", "--config", str(config)])
    assert guide.exit_code == 0, guide.output
    url = f"http://127.0.0.1:8123/webhooks/zenoti/demo?token={token}"
    assert guide.output.count(f"URL: {url}\n") == 9
    assert "not reachable from the internet" in guide.output, "the loopback default is flagged"
    public = runner.invoke(
        app, ["setup-guide", "demo", "--config", str(config), "--base-url", "https://b.example"]
    )
    assert "not reachable" not in public.output
    assert "Event Name 'Booking No Show'" in public.output, "as Zenoti's form spells it"


def test_a_database_migrated_by_a_newer_version_is_named_as_such(configured: Path) -> None:
    import sqlite3

    assert runner.invoke(app, ["migrate"]).exit_code == 0
    database = load_settings(configured).database.sqlite_path
    with sqlite3.connect(database) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    for argv in (["events", "list"], ["serve", "--no-migrate"]):
        result = runner.invoke(app, argv)
        assert result.exit_code == 2, result.output
        assert "schema 9999, which this version (0003) does not know" in result.output


def test_init_prints_commands_that_read_the_file_it_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ZB_CONFIG", str(tmp_path / "elsewhere.toml"))
    config = tmp_path / "my bridge.toml"  # a space: the printed commands quote it
    result = runner.invoke(app, ["init", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert f"--source demo --config '{config}'" in result.output
    plain = runner.invoke(app, ["init", "--config", "zenoti-bridge.toml"])
    assert "--config zenoti-bridge.toml" in plain.output, "$ZB_CONFIG names another file"
