"""Configuration: a TOML file with ``ZB_`` environment overrides.

The file is ``--config``, else ``$ZB_CONFIG``, else ``./zenoti-bridge.toml``. Environment
variables override it key by key, nested with double underscores: ``ZB_DATABASE__URL``,
``ZB_SERVER__PORT``, ``ZB_SOURCES__ACME__SIGNATURE``. Every problem is reported as a
:class:`~zenoti_bridge.errors.ConfigError` naming the key and what to do.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from .errors import ConfigError
from .retry import RetryPolicy
from .signature import DEFAULT_HEADER

DEFAULT_CONFIG_PATH = Path("zenoti-bridge.toml")
DEFAULT_DATABASE_URL = "sqlite:///var/zenoti-bridge.db"
DEFAULT_MAX_BODY = 4 * 1024 * 1024
MIN_ADMIN_TOKEN = 16  # characters; an empty token would even match a request without one
SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
SignatureMode = Literal["enforce", "log", "off"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseConfig(_Section):
    url: str = DEFAULT_DATABASE_URL
    pool_size: int = Field(default=16, ge=1, le=500)
    pool_timeout: float = Field(default=5.0, gt=0, le=9)
    wal_limit_mb: int = Field(default=256, ge=4)
    checkpoint_interval: float = Field(default=0.05, gt=0)

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        if not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError(
                f"must start with sqlite:/// (a file) or postgresql:// (a server), got {url!r}"
            )
        return url

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite:///")

    @property
    def sqlite_path(self) -> Path:
        return Path(self.url.removeprefix("sqlite:///"))


class ServerConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str | None = None


class AdminConfig(_Section):
    tokens: list[str] = []

    @field_validator("tokens")
    @classmethod
    def _guessable(cls, tokens: list[str]) -> list[str]:
        for token in tokens:
            if len(token.strip()) < MIN_ADMIN_TOKEN:
                raise ValueError(
                    f"holds a token of {len(token.strip())} characters: anyone could guess it; "
                    f"use at least {MIN_ADMIN_TOKEN} random ones (zenoti-bridge init writes 43)"
                )
        return tokens


class RetryConfig(_Section):
    delays: list[float] = [1.0, 5.0, 30.0, 120.0, 600.0]
    max_attempts: int = Field(default=8, ge=1, le=1000)
    window_seconds: float = Field(default=3 * 86_400.0, gt=0)
    jitter: float = Field(default=0.2, ge=0, lt=1)

    @field_validator("delays")
    @classmethod
    def _delays_usable(cls, delays: list[float]) -> list[float]:
        if not delays or any(d < 0 for d in delays):
            raise ValueError("must list at least one delay in seconds, none negative")
        return delays

    def policy(self) -> RetryPolicy:
        return RetryPolicy(
            delays=tuple(self.delays),
            max_attempts=self.max_attempts,
            window=self.window_seconds,
            jitter=self.jitter,
        )


class ConsumerConfig(_Section):
    retry: RetryConfig = RetryConfig()


class WorkersConfig(_Section):
    concurrency: int = Field(default=2, ge=1, le=64)
    batch_size: int = Field(default=200, ge=1, le=5000)
    rescue_interval: float = Field(default=10.0, gt=0)
    idle_wait: float = Field(default=0.1, gt=0, le=60)


class SourceConfig(_Section):
    webhook_secrets: list[str] = []
    signature: SignatureMode = "enforce"
    signature_header: str = DEFAULT_HEADER
    url_token: str | None = None
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY, ge=1024, le=64 * 1024 * 1024)
    api_key: str | None = None
    api_base_url: str = "https://api.zenoti.com"

    @field_validator("webhook_secrets")
    @classmethod
    def _no_blank_secrets(cls, secrets: list[str]) -> list[str]:
        if any(not s.strip() for s in secrets):
            raise ValueError("holds an empty secret; remove it or paste the secret from Zenoti")
        return secrets

    @field_validator("signature_header")
    @classmethod
    def _lower_header(cls, header: str) -> str:
        return header.strip().lower()


def connectable_host(host: str) -> str:
    """The address to reach a server bound to ``host``: loopback for a wildcard bind."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - naming it


class SandboxMailConfig(_Section):
    """Where the sandbox sends its deactivation emails: an outbox folder, or an SMTP server."""

    transport: Literal["outbox", "smtp"] = "outbox"
    outbox: str = "var/sandbox/outbox"
    admin_email: str = "admin@example.com"
    sender: str = "webhooks@zenoti-sandbox.example.com"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_starttls: bool = False
    smtp_user: str | None = None
    smtp_password: str | None = None


class SandboxDeliveryConfig(_Section):
    """Zenoti's delivery policy (zenoti/README.md §3); change it only to explore."""

    timeout: float = Field(default=10.0, gt=0, le=300)
    retries: int = Field(default=5, ge=0, le=50)
    backoff_initial: float = Field(default=30.0, gt=0)
    backoff_factor: float = Field(default=2.0, ge=1)
    backoff_max: float = Field(default=600.0, gt=0)
    jitter: float = Field(default=0.0, ge=0, le=1)
    deactivate_after: int = Field(default=20, ge=1, le=10_000)
    count: Literal["attempts", "events"] = "attempts"

    @model_validator(mode="after")
    def _ordered_bounds(self) -> SandboxDeliveryConfig:
        if self.backoff_max < self.backoff_initial:
            raise ValueError("backoff_max is below backoff_initial; make it at least that")
        return self


class SandboxConfig(_Section):
    """The local Zenoti (``zenoti-bridge sandbox``)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8090, ge=0, le=65535)
    public_url: str | None = None
    state: str = "var/sandbox.db"
    seed: int = 7
    mail: SandboxMailConfig = SandboxMailConfig()
    delivery: SandboxDeliveryConfig = SandboxDeliveryConfig()

    @property
    def local_url(self) -> str:
        """Where the sandbox answers on this machine (pages at ``/``, the API at ``/api``)."""
        return f"http://{connectable_host(self.host)}:{self.port}"


class Settings(BaseSettings):
    """Everything zenoti-bridge reads at start."""

    model_config = SettingsConfigDict(
        env_prefix="ZB_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    database: DatabaseConfig = DatabaseConfig()
    server: ServerConfig = ServerConfig()
    admin: AdminConfig = AdminConfig()
    workers: WorkersConfig = WorkersConfig()
    consumers: dict[str, ConsumerConfig] = {"mirror": ConsumerConfig()}
    sources: dict[str, SourceConfig] = {}
    sandbox: SandboxConfig = SandboxConfig()

    def retry_policy(self, consumer: str) -> RetryPolicy:
        """The retry policy of one consumer (its section, or the defaults)."""
        return self.consumers.get(consumer, ConsumerConfig()).retry.policy()

    @model_validator(mode="after")
    def _sources_are_usable(self) -> Settings:
        for name, source in self.sources.items():
            if not SOURCE_NAME.match(name):
                raise ValueError(
                    f"sources.{name}: the name {name!r} cannot be used in a URL; use lowercase "
                    "letters, digits, '-' and '_' (at most 63 characters)"
                )
            if source.signature != "off" and not source.webhook_secrets:
                raise ValueError(
                    f"sources.{name}: source {name!r} has no webhook secret; "
                    f"set sources.{name}.webhook_secrets "
                    'or use signature = "off"'
                )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # the environment overrides the file, which arrives as init arguments
        return (env_settings, init_settings)


def config_path(explicit: str | Path | None = None) -> Path:
    """The configuration file to read: the argument, ``$ZB_CONFIG``, or the default."""
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("ZB_CONFIG") or DEFAULT_CONFIG_PATH)


def _describe(error: dict[str, Any]) -> str:
    location = ".".join(str(part) for part in error["loc"])
    kind = error["type"]
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind == "extra_forbidden":
        return f"{location}: unknown key; check its spelling against docs/configuration.md"
    if kind == "missing":
        return f"{location}: required; set it in the file or as an environment variable"
    if not location:  # a check across keys: its message starts with the key it is about
        return message
    env = "ZB_" + "__".join(str(part).upper() for part in error["loc"])
    return f"{location}: {message} (set in the file, or override with {env})"


def _structured(parts: list[str]) -> str | None:
    """``list`` or ``table`` when the setting at ``parts`` (a variable's name split at ``__``,
    without ``ZB_``) holds one, which the environment must give as JSON; else None."""
    annotation: Any = Settings
    for part in parts:
        annotation = _unoptional(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(part.lower())
            if field is None:
                return None
            annotation = field.annotation
        elif get_origin(annotation) is dict:
            annotation = get_args(annotation)[1]  # the part is a key: a source's name, say
        else:
            return None  # below a plain value: not a setting
    annotation = _unoptional(annotation)
    if get_origin(annotation) in (list, tuple, set, frozenset):
        return "list"
    if get_origin(annotation) is dict or (
        isinstance(annotation, type) and issubclass(annotation, BaseModel)
    ):
        return "table"
    return None


def _unoptional(annotation: Any) -> Any:
    arguments = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) in (Union, UnionType) and len(arguments) == 1:
        return arguments[0]
    return annotation


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _environment_problem(exc: SettingsError) -> str:
    """Which ``ZB_`` variable could not be read, and how to write it.

    pydantic-settings reads a list or a table from the environment as JSON and names only the
    top-level key when that fails (``admin`` for ``ZB_ADMIN__TOKENS=abc``): the culprits are
    the variables under it that hold a list or a table and are not JSON.
    """
    match = re.search(r'field "([^"]+)"', str(exc))
    prefix = "ZB_" + (match.group(1).upper() if match else "")
    under = sorted(
        name
        for name in os.environ
        if name.upper() == prefix or name.upper().startswith(prefix + "__")
    )
    culprits = [
        (name, kind)
        for name in under
        if (kind := _structured(name[3:].split("__"))) and not _is_json(os.environ[name])
    ]
    if not culprits:  # not told apart: name them all
        culprits = [(name, "list") for name in under] or [(prefix + "__*", "list")]
    example = {"list": '\'["first", "second"]\'', "table": '\'{"key": "value"}\''}
    name, kind = culprits[0]
    which = ", ".join(n for n, _ in culprits)
    return (
        f"environment: {which}: not valid JSON ({exc.__cause__ or exc}); "
        f"a {kind} is written as JSON, e.g. {name}={example[kind]}"
    )


def load_settings(path: str | Path | None = None, *, require_file: bool | None = None) -> Settings:
    """Read the file and the environment; raise ConfigError on any problem.

    Without a file at the default path the defaults and the environment apply (a deployment
    may configure everything with ``ZB_`` variables). A file named on purpose, as ``path`` or
    ``$ZB_CONFIG``, must exist: a typo would otherwise start a bridge with no sources, which
    answers every webhook 404. ``require_file`` overrides either way.
    """
    file = config_path(path)
    if require_file is None:
        require_file = bool(path) or bool(os.environ.get("ZB_CONFIG"))
    data: dict[str, Any] = {}
    if file.exists():
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: not valid TOML: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"{file}: cannot be read: {exc.strerror}") from None
    elif require_file:
        raise ConfigError(
            f"{file}: no such configuration file; check the path, or write a starter one with "
            f"`zenoti-bridge init --config {file}`"
        )
    try:
        return Settings(**data)
    except ValidationError as exc:
        problems = "; ".join(_describe(dict(e)) for e in exc.errors())
        raise ConfigError(f"{file}: {problems}") from None
    except SettingsError as exc:  # a ZB_ variable that is not valid JSON where JSON is needed
        raise ConfigError(_environment_problem(exc)) from None
