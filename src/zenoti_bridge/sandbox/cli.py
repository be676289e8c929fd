"""``zenoti-bridge sandbox``: run the local Zenoti, and drive a running one over its REST API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import httpx
import orjson
import typer
from rich.table import Table

from ..catalog import EVENT_TYPES
from ..cliutil import ConfigOption, console, err, friendly
from ..config import Settings, load_settings
from ..errors import ConfigError, ZenotiBridgeError
from ..setup_guide import event_name

sandbox_app = typer.Typer(
    help="A local Zenoti: a synthetic organization that sends webhooks the way Zenoti does.",
    no_args_is_help=True,
)
webhooks_app = typer.Typer(help="Webhook automations, as in Zenoti's webhooks page.")
sandbox_app.add_typer(webhooks_app, name="webhooks", no_args_is_help=True)

SandboxOption = Annotated[
    str | None,
    typer.Option(
        "--sandbox", help="The running sandbox [default: http://sandbox.host:sandbox.port]"
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")]


class SandboxError(ZenotiBridgeError):
    """The running sandbox refused a request or could not be reached."""


def _settings(config: Path | None) -> Settings:
    return load_settings(config)


def _base(config: Path | None, url: str | None) -> str:
    if url:
        return url.rstrip("/")
    return _settings(config).sandbox.local_url


def _call(base: str, method: str, path: str, body: Any = None, **params: Any) -> Any:
    """One REST call to the running sandbox; errors become one readable line."""
    query = {k: v for k, v in params.items() if v is not None}
    try:
        response = httpx.request(method, f"{base}/api{path}", json=body, params=query, timeout=30.0)
    except httpx.HTTPError as exc:
        raise SandboxError(
            f"no sandbox answers at {base} ({exc}); start one with `zenoti-bridge sandbox run`"
        ) from None
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        if isinstance(detail, list):  # pydantic's list of problems
            detail = "; ".join(
                f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg')}" for d in detail
            )
        raise SandboxError(f"{method} {path}: {response.status_code}: {detail}")
    return None if response.status_code == 204 else response.json()


# -- run -----------------------------------------------------------------------------------------


@sandbox_app.command("run")
@friendly
def run(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Address [default: sandbox.host]")] = None,
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="Port [default: sandbox.port]")
    ] = None,
    level: Annotated[
        str, typer.Option(help="Size and pace of the world: quiet-spa, busy-salon, chain-20")
    ] = "busy-salon",
    play: Annotated[bool, typer.Option("--play", help="Play the level's activity now")] = False,
    speed: Annotated[
        float, typer.Option(help="Simulated seconds per second when playing (1440: a day/min)")
    ] = 1440.0,
    seed: Annotated[int | None, typer.Option(help="World seed [default: sandbox.seed]")] = None,
    state: Annotated[
        Path | None, typer.Option(help="State file (webhooks, logs) [default: sandbox.state]")
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "info",
) -> None:
    """Serve the sandbox: web pages at /, REST API at /api, deliveries to the webhooks."""
    import asyncio
    import logging

    import uvicorn

    from ..server import uvicorn_config
    from .app import build_app
    from .service import Sandbox

    settings = _settings(config)
    updates: dict[str, Any] = {}
    if host is not None:
        updates["host"] = host
    if port is not None:
        updates["port"] = port
    if seed is not None:
        updates["seed"] = seed
    if state is not None:
        updates["state"] = str(state)
    options = settings.sandbox.model_copy(update=updates)
    try:
        sandbox = Sandbox(options, level=level, play_speed=speed if play else None)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the delivery log has every request

    async def main() -> None:
        app = build_app(sandbox)
        server = uvicorn.Server(
            uvicorn_config(app, host=options.host, port=options.port, log_level=log_level)
        )
        err.print(
            f"Zenoti sandbox: {sandbox.world.organization.name}, "
            f"{len(sandbox.world.centers)} centers, seed {options.seed}, level {level}"
        )
        err.print(f"  pages {sandbox.public_url}/   API {sandbox.public_url}/api/docs")
        err.print(f"  state {options.state}; emails via {options.mail.transport}")
        if play:
            err.print(f"  playing {level} at {speed:g}x")
        await server.serve()

    asyncio.run(main())


# -- events --------------------------------------------------------------------------------------


@sandbox_app.command("trigger")
@friendly
def trigger(
    event_type: Annotated[str, typer.Argument(help="A catalog type, e.g. Guest.Created")],
    count: Annotated[int, typer.Option(help="How many times (1 to 1000)")] = 1,
    center: Annotated[str | None, typer.Option(help="A center id [default: any]")] = None,
    config: ConfigOption = None,
    sandbox: SandboxOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make an event happen now (with the story it needs) and deliver it to the webhooks."""
    body = {"event_type": event_type, "count": count, "center_id": center}
    fired = _call(_base(config, sandbox), "POST", "/events", body)
    if as_json:
        console.print_json(orjson.dumps(fired).decode())
        return
    table = Table("type", "event_id", "event_timestamp", "webhooks")
    for item in fired:
        table.add_row(
            item["event_type"],
            item["event_id"],
            item["event_timestamp"],
            str(len(item["deliveries"])),
        )
    console.print(table)


@sandbox_app.command("emails")
@friendly
def emails(config: ConfigOption = None, sandbox: SandboxOption = None) -> None:
    """Emails the sandbox sent (deactivation notices)."""
    for item in _call(_base(config, sandbox), "GET", "/emails"):
        status = f"not sent: {item['error']}" if item["error"] else f"via {item['transport']}"
        console.print(
            f"[bold]{item['subject']}[/] ({item['at']}, to {item['recipient']}, {status})"
        )
        console.print(item["body"], soft_wrap=True)
        console.print()


# -- webhooks ------------------------------------------------------------------------------------


def _webhook_table(items: list[dict[str, Any]]) -> Table:
    table = Table("id", "name", "event", "subscription", "verb", "url", "state", "failures")
    for w in items:
        table.add_row(
            str(w["id"]),
            w["name"],
            w["catalog_type"],
            w["subscription"],
            w["http_verb"],
            w["url"],
            "active" if w["active"] else "INACTIVE",
            str(w["consecutive_failures"]),
        )
    return table


@webhooks_app.command("list")
@friendly
def webhooks_list(
    inactive: Annotated[bool, typer.Option("--inactive", help="Only the inactive tab")] = False,
    active: Annotated[bool, typer.Option("--active", help="Only the active tab")] = False,
    config: ConfigOption = None,
    sandbox: SandboxOption = None,
    as_json: JsonOption = False,
) -> None:
    """List webhooks (both tabs unless one is chosen)."""
    if inactive and active:
        raise ConfigError("choose --active or --inactive, not both")
    which = False if inactive else (True if active else None)
    items = _call(_base(config, sandbox), "GET", "/webhooks", active=which)
    if as_json:
        console.print_json(orjson.dumps(items).decode())
    else:
        console.print(_webhook_table(items))


def _family_of(type_name: str) -> tuple[str, str]:
    for kind in EVENT_TYPES:
        if kind.name == type_name and kind.family:
            return kind.family, event_name(kind.name, kind.family)
    raise ConfigError(f"unknown event type {type_name!r}")


@webhooks_app.command("create")
@friendly
def webhooks_create(
    target: Annotated[str, typer.Option("--url", help="The URL Zenoti should call")],
    name: Annotated[str | None, typer.Option(help="Webhook name [default: from the event]")] = None,
    event_type: Annotated[
        str | None, typer.Option(help='Zenoti\'s "Event Type", e.g. "Guest Membership"')
    ] = None,
    event_name_: Annotated[
        str | None, typer.Option("--event-name", help='Zenoti\'s "Event Name", e.g. "Created"')
    ] = None,
    all_events: Annotated[
        bool, typer.Option("--all", help="One webhook for each of the catalog's event types")
    ] = False,
    verb: Annotated[str, typer.Option(help="POST, PUT or PATCH")] = "POST",
    subscription: Annotated[
        str, typer.Option(help='"organization" or a center id')
    ] = "organization",
    secret: Annotated[str, typer.Option(help="Signing secret; empty sends unsigned")] = "",
    description: Annotated[str, typer.Option(help="Free text")] = "",
    config: ConfigOption = None,
    sandbox: SandboxOption = None,
) -> None:
    """Add a webhook (or, with --all, one per event type) pointing at --url."""
    if all_events == bool(event_type or event_name_):
        raise ConfigError("give --event-type and --event-name, or --all")
    base = _base(config, sandbox)
    if all_events:
        pairs = [_family_of(kind.name) for kind in EVENT_TYPES]
    else:
        pairs = [(event_type or "", event_name_ or "")]
    created = []
    for family, label in pairs:
        body = {
            "name": name or f"{family} {label}",
            "description": description,
            "subscription": subscription,
            "event_type": family,
            "event_name": label,
            "http_verb": verb,
            "url": target,
            "secret": secret,
        }
        if all_events and name:
            body["name"] = f"{name} {family} {label}"
        created.append(_call(base, "POST", "/webhooks", body))
    console.print(_webhook_table(created))


@webhooks_app.command("edit")
@friendly
def webhooks_edit(
    webhook_id: Annotated[int, typer.Argument(help="Webhook id")],
    name: Annotated[str | None, typer.Option()] = None,
    target: Annotated[str | None, typer.Option("--url", help="New URL")] = None,
    verb: Annotated[str | None, typer.Option()] = None,
    subscription: Annotated[str | None, typer.Option()] = None,
    secret: Annotated[str | None, typer.Option()] = None,
    description: Annotated[str | None, typer.Option()] = None,
    config: ConfigOption = None,
    sandbox: SandboxOption = None,
) -> None:
    """Change some fields of a webhook."""
    body = {
        "name": name,
        "url": target,
        "http_verb": verb,
        "subscription": subscription,
        "secret": secret,
        "description": description,
    }
    changes = {k: v for k, v in body.items() if v is not None}
    if not changes:
        raise ConfigError("nothing to change; give at least one of the options")
    console.print(
        _webhook_table([_call(_base(config, sandbox), "PATCH", f"/webhooks/{webhook_id}", changes)])
    )


@webhooks_app.command("delete")
@friendly
def webhooks_delete(
    webhook_id: Annotated[int, typer.Argument(help="Webhook id")],
    config: ConfigOption = None,
    sandbox: SandboxOption = None,
) -> None:
    """Delete a webhook (its delivery log stays)."""
    _call(_base(config, sandbox), "DELETE", f"/webhooks/{webhook_id}")
    console.print(f"webhook {webhook_id} deleted")


@webhooks_app.command("reactivate")
@friendly
def webhooks_reactivate(
    webhook_id: Annotated[int, typer.Argument(help="Webhook id")],
    config: ConfigOption = None,
    sandbox: SandboxOption = None,
) -> None:
    """Reactivate a deactivated webhook (its failure counter starts again at 0)."""
    webhook = _call(_base(config, sandbox), "POST", f"/webhooks/{webhook_id}/reactivate")
    console.print(f"webhook {webhook_id} ({webhook['name']}) is active")


@webhooks_app.command("test")
@friendly
def webhooks_test(
    webhook_id: Annotated[int, typer.Argument(help="Webhook id")],
    config: ConfigOption = None,
    sandbox: SandboxOption = None,
) -> None:
    """Send Zenoti's test request: an empty POST without signature."""
    attempt = _call(_base(config, sandbox), "POST", f"/webhooks/{webhook_id}/test")
    result = attempt["status"] if attempt["status"] is not None else attempt["error"]
    console.print(f"{attempt['outcome']}: {result}")
    if attempt["outcome"] != "success":
        raise typer.Exit(1)


@webhooks_app.command("failures")
@friendly
def webhooks_failures(
    webhook_id: Annotated[int, typer.Argument(help="Webhook id")],
    limit: Annotated[int, typer.Option(help="At most this many, newest first")] = 50,
    config: ConfigOption = None,
    sandbox: SandboxOption = None,
    as_json: JsonOption = False,
) -> None:
    """A webhook's failure log: every failed attempt, newest first."""
    items = _call(_base(config, sandbox), "GET", f"/webhooks/{webhook_id}/failures", limit=limit)
    if as_json:
        console.print_json(orjson.dumps(items).decode())
        return
    table = Table("time", "event", "attempt", "url", "result", "response")
    for a in items:
        table.add_row(
            a["at"],
            a["event_type"] or "test",
            str(a["number"]),
            a["url"],
            str(a["status"] or a["error"]),
            (a["response"] or "")[:60],
        )
    console.print(table)
