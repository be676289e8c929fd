from __future__ import annotations

from pathlib import Path

import pytest

from zenoti_bridge.config import load_settings
from zenoti_bridge.errors import ConfigError
from zenoti_bridge.starter import write_starter


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "zenoti-bridge.toml"
    path.write_text(text)
    return path


def test_defaults_without_a_file_use_embedded_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./zenoti-bridge.toml, none named
    monkeypatch.delenv("ZB_CONFIG", raising=False)
    settings = load_settings()
    assert settings.database.url == "sqlite:///var/zenoti-bridge.db"
    assert settings.server.port == 8080
    assert settings.sources == {}


def test_environment_overrides_file_key_by_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path,
        '[server]\nhost = "0.0.0.0"\nport = 1\n[sources.acme]\nwebhook_secrets = ["s"]\n',
    )
    monkeypatch.setenv("ZB_SERVER__PORT", "9999")
    monkeypatch.setenv("ZB_SOURCES__ACME__SIGNATURE", "log")
    settings = load_settings(path)
    assert settings.server.port == 9999
    assert settings.server.host == "0.0.0.0"  # noqa: S104 - a config value, not a bind
    assert settings.sources["acme"].signature == "log"
    assert settings.sources["acme"].webhook_secrets == ["s"]


def test_config_path_comes_from_zb_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "[server]\nport = 7000\n")
    monkeypatch.setenv("ZB_CONFIG", str(path))
    assert load_settings().server.port == 7000


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[server]\nprot = 1\n", "server.prot: unknown key"),
        ('[sources.acme]\nsignature = "strict"\nwebhook_secrets=["s"]\n', "sources.acme.signature"),
        (
            "[sources.acme]\n",
            "source 'acme' has no webhook secret; set sources.acme.webhook_secrets",
        ),
        ('[sources."Bad Name"]\nsignature = "off"\n', "cannot be used in a URL"),
        ('[database]\nurl = "mysql://x"\n', "database.url: must start with sqlite:///"),
        ("[server]\nport = 70000\n", "server.port"),
        ("[server\nport = 1\n", "not valid TOML"),
        ('[sources.acme]\nwebhook_secrets = [" "]\n', "holds an empty secret"),
    ],
)
def test_bad_config_names_the_key_and_what_to_do(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text))
    assert message in str(caught.value)
    assert str(tmp_path) in str(caught.value), "the message names the file"


def test_env_override_errors_name_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ZB_CONFIG", raising=False)
    monkeypatch.setenv("ZB_SERVER__PORT", "eighty")
    with pytest.raises(ConfigError, match="ZB_SERVER__PORT"):
        load_settings()


@pytest.mark.parametrize(
    ("variable", "example"),
    [
        ("ZB_ADMIN__TOKENS", """'["first", "second"]'"""),
        ("ZB_SOURCES__ACME__WEBHOOK_SECRETS", """'["first", "second"]'"""),
        ("ZB_CONSUMERS", """'{"key": "value"}'"""),
    ],
)
def test_a_list_or_table_that_is_not_json_names_the_variable_and_the_format(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, example: str
) -> None:
    monkeypatch.setenv(variable, "abc")
    monkeypatch.setenv("ZB_SOURCES__ACME__SIGNATURE", "log")  # a plain value beside it: not blamed
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, '[sources.acme]\nwebhook_secrets = ["s"]\n'))
    message = str(caught.value)
    assert message.startswith(f"environment: {variable}: not valid JSON"), message
    assert message.endswith(f"e.g. {variable}={example}")


def test_a_named_file_that_does_not_exist_stops_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "typo.toml"
    with pytest.raises(ConfigError, match=r"typo\.toml: no such configuration file") as caught:
        load_settings(missing)
    assert f"zenoti-bridge init --config {missing}" in str(caught.value)
    monkeypatch.setenv("ZB_CONFIG", str(missing))
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_settings()
    assert load_settings(missing, require_file=False).sources == {}


def test_the_readme_example_of_a_bad_key_is_the_real_message(tmp_path: Path) -> None:
    path = write(tmp_path, "[sources.acme]\n")
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    shown = str(caught.value).replace(str(path), "zenoti-bridge.toml")
    assert " ".join(shown.split()) in " ".join(readme.split()).replace("`", "")


def test_signature_off_needs_no_secret(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, '[sources.open]\nsignature = "off"\n'))
    assert settings.sources["open"].signature == "off"


def test_starter_config_is_valid_private_and_has_a_demo_source(tmp_path: Path) -> None:
    path = tmp_path / "zenoti-bridge.toml"
    secret = write_starter(path)
    settings = load_settings(path)
    assert settings.sources["demo"].webhook_secrets == [secret]
    assert len(secret) >= 32
    assert settings.admin.tokens and settings.admin.tokens[0] != secret
    assert path.stat().st_mode & 0o077 == 0


def test_workers_and_the_mirror_retry_policy_come_from_the_file(tmp_path: Path) -> None:
    settings = load_settings(
        write(
            tmp_path,
            "[workers]\nconcurrency = 4\n[consumers.mirror.retry]\n"
            "delays = [2, 4]\nmax_attempts = 3\nwindow_seconds = 60\njitter = 0\n",
        )
    )
    assert settings.workers.concurrency == 4
    policy = settings.retry_policy("mirror")
    assert (policy.delays, policy.max_attempts, policy.window, policy.jitter) == ((2, 4), 3, 60, 0)
    assert settings.retry_policy("unknown").max_attempts == 8, "defaults for other consumers"


def test_a_bad_retry_policy_names_its_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"consumers\.mirror\.retry\.delays"):
        load_settings(write(tmp_path, "[consumers.mirror.retry]\ndelays = []\n"))
