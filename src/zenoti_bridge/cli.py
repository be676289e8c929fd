"""The ``zenoti-bridge`` command line."""

from __future__ import annotations

import shlex
import shutil
import sys
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table

from . import __version__
from .cliutil import ConfigOption, console, err, friendly
from .config import Settings, config_path, load_settings
from .errors import ConfigError
from .sandbox.cli import sandbox_app

app = typer.Typer(
    help="zenoti-bridge: take every Zenoti webhook durably, exactly once.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
sources_app = typer.Typer(help="Zenoti organizations that send webhooks.", no_args_is_help=True)
events_app = typer.Typer(help="Stored events.", no_args_is_help=True)
dead_app = typer.Typer(help="Jobs that failed for good.", no_args_is_help=True)
app.add_typer(sources_app, name="sources")
app.add_typer(events_app, name="events")
app.add_typer(dead_app, name="dead-letters")
app.add_typer(sandbox_app, name="sandbox")


def _settings(config: Path | None, *, require_file: bool | None = None) -> Settings:
    return load_settings(config, require_file=require_file)


def _migrate_or_check(settings: Settings, migrate: bool) -> None:
    from .storage import migrate as migrations

    url = settings.database.url
    if migrate:
        with err.status(f"applying migrations to {migrations.redact(url)}"):
            migrations.upgrade(url)
        return
    _require_schema(url)


def _database(settings: Settings) -> str:
    """The database URL, once it is known to hold the current schema (for reading commands).

    Checked first, so that an unmigrated database or an unreachable server is one line naming
    the fix, not a traceback from the first query, and a SQLite file is never created by a
    command that only reads.
    """
    if settings.database.is_sqlite and not settings.database.sqlite_path.exists():
        raise ConfigError(
            f"no database at {settings.database.sqlite_path}; start `zenoti-bridge serve` "
            "(it creates and migrates it) or run `zenoti-bridge migrate`"
        )
    _require_schema(settings.database.url)
    return settings.database.url


def _require_schema(url: str) -> None:
    """ConfigError naming the fix unless the database is at this version's schema."""
    from .storage import migrate as migrations

    current, head = migrations.current(url), migrations.head()  # current(): StorageUnavailable
    if current == head:
        return
    where = migrations.redact(url)
    if current is None:
        raise ConfigError(
            f"the database {where} holds no zenoti-bridge tables; run `zenoti-bridge migrate`"
        )
    if not migrations.known(current):
        raise ConfigError(
            f"the database {where} is at schema {current}, which this version ({head}) does not "
            "know: a newer zenoti-bridge migrated it; run that version"
        )
    raise ConfigError(
        f"the database {where} is at schema {current}, this version needs {head}; "
        "run `zenoti-bridge migrate`"
    )


def _banner(settings: Settings, host: str, port: int, role: str) -> None:
    from .setup_guide import base_url, webhook_url

    base = base_url(settings, host=host, port=port)
    backend = settings.database.url.split("://")[0]
    err.print(f"zenoti-bridge {__version__} ({role}) on {base}, store {backend}")
    if not settings.sources:
        err.print("[yellow]no sources configured: every webhook gets 404; add [sources.NAME][/]")
    for name, source in settings.sources.items():
        url = webhook_url(base, name, source)
        err.print(f"  source {name}: POST {url}  (signature {source.signature})", soft_wrap=True)
        if source.signature == "off" and not source.url_token:
            err.print(f"  [yellow]warning: source {name} accepts unauthenticated events[/]")


def _serve(
    config: Path | None,
    host: str | None,
    port: int | None,
    no_migrate: bool,
    role: str,
    log_level: str,
) -> None:
    from . import server

    settings = _settings(config)
    _migrate_or_check(settings, not no_migrate)
    bind_host = host or settings.server.host
    bind_port = settings.server.port if port is None else port
    _banner(settings, bind_host, bind_port, role)
    server.run(
        settings, host=bind_host, port=bind_port, log_level=log_level, workers=role == "serve"
    )


HostOption = Annotated[str | None, typer.Option(help="Address to listen on [default: server.host]")]
PortOption = Annotated[int | None, typer.Option(help="Port to listen on [default: server.port]")]
NoMigrate = Annotated[bool, typer.Option("--no-migrate", help="Do not apply pending migrations")]
LogLevel = Annotated[str, typer.Option(help="debug, info, warning or error")]


@app.command()
@friendly
def serve(
    config: ConfigOption = None,
    host: HostOption = None,
    port: PortOption = None,
    no_migrate: NoMigrate = False,
    log_level: LogLevel = "info",
) -> None:
    """Run every role in one process: webhook intake, workers (the mirror), health, metrics."""
    _serve(config, host, port, no_migrate, "serve", log_level)


@app.command()
@friendly
def intake(
    config: ConfigOption = None,
    host: HostOption = None,
    port: PortOption = None,
    no_migrate: NoMigrate = False,
    log_level: LogLevel = "info",
) -> None:
    """Run only the webhook intake (for scale-out behind a load balancer on PostgreSQL)."""
    _serve(config, host, port, no_migrate, "intake", log_level)


@app.command()
@friendly
def worker(
    config: ConfigOption = None,
    concurrency: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="Parallel batches [default: workers.concurrency]"),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(min=1, max=5000, help="Jobs per batch [default: workers.batch_size]"),
    ] = None,
    no_migrate: NoMigrate = False,
    log_level: LogLevel = "info",
) -> None:
    """Run only workers: apply queued events to the mirror (scale-out on PostgreSQL)."""
    import asyncio
    import logging
    import signal

    from .storage import open_store
    from .worker import workers_for

    settings = _settings(config)
    _migrate_or_check(settings, not no_migrate)
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    async def run() -> None:
        store = open_store(settings.database)
        await store.start()
        overrides = {"concurrency": concurrency, "batch_size": batch_size}
        pool = workers_for(store, settings, **{k: v for k, v in overrides.items() if v})
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await pool.start()
        err.print(
            f"zenoti-bridge {__version__} (worker) x{pool.concurrency} on {settings.database.url.split('://')[0]}"
        )
        await stop.wait()
        await pool.stop()
        await store.stop()
        err.print(f"worker stopped after {pool.stats.jobs} jobs ({pool.stats.dead} dead)")

    asyncio.run(run())


@app.command()
@friendly
def migrate(config: ConfigOption = None) -> None:
    """Apply pending database migrations."""
    from .storage import migrate as migrations

    settings = _settings(config)
    before = migrations.current(settings.database.url)
    _migrate_or_check(settings, True)
    after = migrations.current(settings.database.url)
    console.print(
        f"database {migrations.redact(settings.database.url)}: {before or 'empty'} -> {after}"
    )


@app.command()
@friendly
def init(
    config: ConfigOption = None,
    port: Annotated[int, typer.Option(help="Port for the starter config")] = 8080,
    force: Annotated[bool, typer.Option(help="Overwrite an existing file")] = False,
) -> None:
    """Write a starter configuration with a `demo` source and a fresh secret."""
    from .starter import write_starter

    path = config_path(config)
    if path.exists() and not force:
        err.print(f"{path} exists; leaving it as it is (use --force to overwrite)")
        return
    write_starter(path, port=port)
    settings = load_settings(path)
    from .setup_guide import base_url, webhook_url

    url = webhook_url(base_url(settings), "demo", settings.sources["demo"])
    me = _self_command()
    sample = shlex.quote(str(_SAMPLE)) if _SAMPLE.exists() else "FILE"
    # the commands find this file by themselves only where it is the one they would read
    option = "" if path == config_path(None) else f" --config {shlex.quote(str(path))}"
    # soft_wrap: commands and URLs are printed whole, to be copied, however narrow the terminal
    console.print(f"wrote {path} with source 'demo' and a generated webhook secret")
    console.print(f"webhook URL: {url}", soft_wrap=True)
    console.print("send a signed sample once the server runs:")
    console.print(f"  {me} send {sample} --source demo{option}", highlight=False, soft_wrap=True)
    console.print("or sign it yourself for curl:")
    console.print(
        f"  curl -X POST {url} -H 'content-type: application/json' "
        f'-H "zenoti-webhook-signature: $({me} sign {sample} --source demo{option})" '
        f"--data-binary @{sample}",
        highlight=False,
        soft_wrap=True,
    )


# one of Zenoti's samples, in a checkout of this repository
_SAMPLE = Path("tests/fixtures/zenoti/payloads/Guest.Created.json")


def _self_command() -> str:
    """How to run this program again from here: ``zenoti-bridge`` when that is on the PATH."""
    script = Path(sys.argv[0])
    found = shutil.which("zenoti-bridge")
    if script.name != "zenoti-bridge":  # python -m zenoti_bridge, or a test runner
        return "zenoti-bridge" if found else f"{shlex.quote(sys.executable)} -m zenoti_bridge"
    if found and Path(found).resolve() == script.resolve():
        return "zenoti-bridge"
    try:
        return shlex.quote(str(script.resolve().relative_to(Path.cwd().resolve())))
    except ValueError:
        return shlex.quote(str(script.resolve()))


@app.command()
@friendly
def sign(
    file: Annotated[Path, typer.Argument(help="The body to sign, exactly as it will be sent")],
    source: Annotated[str, typer.Option(help="Source whose first webhook secret signs")] = "demo",
    config: ConfigOption = None,
) -> None:
    """Print the zenoti-webhook-signature header value Zenoti would send for FILE."""
    from .signature import sign as make_signature

    settings = _settings(config, require_file=True)
    secret = _first_secret(settings, source)
    print(make_signature(secret, _read(file)))


@app.command()
@friendly
def send(
    file: Annotated[
        Path, typer.Argument(help="A JSON body, e.g. tests/fixtures/zenoti/payloads/*.json")
    ],
    source: Annotated[str, typer.Option(help="Source to send to")] = "demo",
    url: Annotated[str | None, typer.Option(help="Base URL [default: from the config]")] = None,
    verb: Annotated[str, typer.Option(help="POST, PUT or PATCH")] = "POST",
    config: ConfigOption = None,
) -> None:
    """Sign FILE with the source's secret and deliver it the way Zenoti does."""
    import httpx

    from .setup_guide import base_url, webhook_url
    from .signature import sign as make_signature

    settings = _settings(config, require_file=True)
    if source not in settings.sources:
        raise ConfigError(f"no source {source!r} in the configuration")
    body = _read(file)
    headers = {"content-type": "application/json"}
    if settings.sources[source].webhook_secrets:
        headers["zenoti-webhook-signature"] = make_signature(_first_secret(settings, source), body)
    target = webhook_url(base_url(settings, url), source, settings.sources[source])
    try:
        response = httpx.request(verb.upper(), target, content=body, headers=headers, timeout=10)
    except httpx.HTTPError as exc:
        raise ConfigError(
            f"cannot reach {target}: {exc}; is `zenoti-bridge serve` running?"
        ) from None
    console.print(f"{response.status_code} {response.text}", highlight=False)
    if response.status_code >= 300:
        raise typer.Exit(1)


def _first_secret(settings: Settings, source: str) -> str:
    if source not in settings.sources:
        raise ConfigError(f"no source {source!r} in the configuration")
    secrets = settings.sources[source].webhook_secrets
    if not secrets:
        raise ConfigError(
            f"source {source!r} has no webhook secret; set sources.{source}.webhook_secrets"
        )
    return secrets[0]


def _read(file: Path) -> bytes:
    try:
        return file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{file}: {exc.strerror}") from None


@app.command("setup-guide")
@friendly
def setup_guide(
    source: Annotated[str, typer.Argument(help="The source to connect")],
    base_url: Annotated[str | None, typer.Option(help="Public base URL Zenoti will call")] = None,
    config: ConfigOption = None,
) -> None:
    """The steps in Zenoti's admin for connecting SOURCE, with the exact URL to paste."""
    from .setup_guide import render

    settings = _settings(config)
    if source not in settings.sources:
        known = ", ".join(settings.sources) or "none"
        raise ConfigError(f"no source {source!r} in the configuration (known: {known})")
    # soft_wrap: the URLs are printed whole, to be pasted into Zenoti, however narrow the output
    console.print(render(settings, source, base_url), highlight=False, markup=False, soft_wrap=True)


@sources_app.command("list")
@friendly
def sources_list(config: ConfigOption = None) -> None:
    """Configured sources with their webhook URL and what they have sent."""
    from .setup_guide import base_url, webhook_url
    from .storage.queries import Reader

    settings = _settings(config)
    table = Table(
        "source",
        "signature",
        "secrets",
        "url token",
        "events",
        "deliveries",
        "last received",
        "webhook URL",
    )
    with Reader(_database(settings)) as reader:
        summaries = {s.source: s for s in reader.source_summaries(list(settings.sources))}
    for name, summary in summaries.items():
        source = settings.sources.get(name)
        table.add_row(
            name if source else f"{name} (not configured)",
            source.signature if source else "-",
            str(len(source.webhook_secrets)) if source else "-",
            ("yes" if source.url_token else "no") if source else "-",
            str(summary.events),
            str(summary.deliveries),
            _when(summary.last_received_at),
            webhook_url(base_url(settings), name, source) if source else "-",
        )
    console.print(table)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


@events_app.command("list")
@friendly
def events_list(
    source: Annotated[str | None, typer.Option(help="Only this source")] = None,
    event_type: Annotated[str | None, typer.Option("--type", help="Only this event type")] = None,
    status: Annotated[str | None, typer.Option(help="Only this status (pending, unrouted)")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000, help="How many, newest first")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table")] = False,
    config: ConfigOption = None,
) -> None:
    """Stored events, newest first."""
    from .catalog import lookup
    from .storage.queries import EventFilter, Reader

    settings = _settings(config)
    type_name = lookup(event_type).name if event_type else None
    with Reader(_database(settings)) as reader:
        rows = reader.list_events(
            EventFilter(source=source, type_name=type_name, status=status), limit=limit
        )
    if as_json:
        for row in rows:
            sys.stdout.write(orjson.dumps(row.summary()).decode() + "\n")
        return
    table = Table(
        "received",
        "source",
        "event type",
        "event_id",
        "status",
        "deliveries",
        "signature",
        "entity",
    )
    for row in rows:
        table.add_row(
            _when(row.received_at),
            row.source,
            row.type_name,
            row.event_id,
            row.status,
            str(row.delivery_count),
            row.signature,
            f"{row.resource}:{row.entity_id}" if row.resource else "-",
        )
    console.print(table)
    if not rows:
        err.print("no events match")


@events_app.command("show")
@friendly
def events_show(
    event_id: Annotated[str, typer.Argument(help="Zenoti's event_id")],
    source: Annotated[str | None, typer.Option(help="Needed when two sources share the id")] = None,
    config: ConfigOption = None,
) -> None:
    """One event: envelope, deliveries, jobs and the raw body."""
    from .storage.queries import Reader

    settings = _settings(config)
    with Reader(_database(settings)) as reader:
        event = reader.get_event(event_id, source)
    summary = event.summary()
    table = Table(show_header=False)
    for key, value in summary.items():
        table.add_row(key, str(value))
    console.print(table)
    if event.deliveries:
        deliveries = Table(
            "later delivery", "received", "verb", "signature", title="duplicate deliveries"
        )
        for d in event.deliveries:
            deliveries.add_row(
                str(d["delivery_id"]), _when(d["received_at"]), d["verb"], d["signature"]
            )
        console.print(deliveries)
    jobs = Table("job", "consumer", "status", "attempts", "ordering key", title="jobs")
    for job in event.jobs:
        jobs.add_row(
            str(job["id"]),
            job["consumer"],
            job["status"],
            str(job["attempts"]),
            str(job["ordering_key"]),
        )
    console.print(jobs)
    console.print("headers:", highlight=False)
    for name, value in event.headers:
        console.print(f"  {name}: {value}", highlight=False, markup=False)
    try:
        body = orjson.dumps(orjson.loads(event.body), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        body = event.body.decode("utf-8", "replace")
    console.print(body, highlight=False, markup=False)


def _time_option(value: str | None, name: str) -> datetime | None:
    from .envelope import parse_timestamp

    if value is None:
        return None
    try:
        return parse_timestamp(value if "T" in value else value + "T00:00:00")
    except ValueError:
        raise ConfigError(
            f"{name}: {value!r} is not a date or time (e.g. 2026-11-26T08:00:00Z)"
        ) from None


@events_app.command("replay")
@friendly
def events_replay(
    event_id: Annotated[
        str | None, typer.Argument(help="One event; omit to use the filters")
    ] = None,
    source: Annotated[str | None, typer.Option(help="Only this source")] = None,
    event_type: Annotated[str | None, typer.Option("--type", help="Only this event type")] = None,
    status: Annotated[str | None, typer.Option(help="Only events in this status")] = None,
    since: Annotated[str | None, typer.Option(help="Received at or after (ISO time)")] = None,
    until: Annotated[str | None, typer.Option(help="Received before (ISO time)")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would be replayed")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Replay a filter without asking")] = False,
    config: ConfigOption = None,
) -> None:
    """Queue events' jobs again (one event, or every event matching the filters)."""
    from rich.progress import Progress

    from .catalog import lookup
    from .storage.queries import EventFilter
    from .storage.replay import Operator

    settings = _settings(config)
    with Operator(_database(settings)) as operator:
        if event_id is not None:
            queued = operator.replay_event(event_id, source)
            console.print(f"event {event_id}: {queued} job(s) queued again")
            return
        where = EventFilter(
            source=source,
            type_name=lookup(event_type).name if event_type else None,
            status=status,
            since=_time_option(since, "--since"),
            until=_time_option(until, "--until"),
        )
        total = operator.count_replay(where)
        if dry_run or total == 0:
            console.print(
                f"{total} event(s) match; nothing replayed" + (" (dry run)" if dry_run else "")
            )
            return
        if not yes and not typer.confirm(f"replay {total} event(s)?"):
            raise typer.Exit(1)
        done = 0
        try:
            with Progress(console=err) as progress:
                task = progress.add_task("replaying", total=total)

                def report(count: int) -> bool:
                    progress.update(task, completed=count)
                    return True

                done = operator.replay(where, progress=report)
        except KeyboardInterrupt:
            err.print("cancelled: chunks already replayed stay queued")
            raise typer.Exit(130) from None
        console.print(f"{done} event(s) queued again")


@dead_app.command("list")
@friendly
def dead_list(
    source: Annotated[str | None, typer.Option(help="Only this source")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 100,
    config: ConfigOption = None,
) -> None:
    """Jobs that failed for good, newest first."""
    from .storage.replay import Operator

    with Operator(_database(_settings(config))) as operator:
        letters = operator.dead_letters(source, limit)
    table = Table(
        "job", "failed", "source", "event type", "event_id", "consumer", "attempts", "last error"
    )
    for d in letters:
        table.add_row(
            str(d.job_id),
            _when(d.failed_at),
            d.source,
            d.event_type,
            d.event_id,
            d.consumer,
            str(d.attempts),
            (d.last_error or "")[:80],
        )
    console.print(table)
    if not letters:
        err.print("no dead letters")


@dead_app.command("show")
@friendly
def dead_show(
    job_id: Annotated[int, typer.Argument(help="The dead job's id")], config: ConfigOption = None
) -> None:
    """One dead letter with its full error."""
    from .storage.replay import Operator

    with Operator(_database(_settings(config))) as operator:
        letter = operator.dead_letter(job_id)
    table = Table(show_header=False)
    for key, value in asdict(letter).items():
        table.add_row(key, str(value))
    console.print(table)


@dead_app.command("replay")
@friendly
def dead_replay(
    job_id: Annotated[int | None, typer.Argument(help="One dead job; omit with --all")] = None,
    all_jobs: Annotated[bool, typer.Option("--all", help="Every dead job")] = False,
    config: ConfigOption = None,
) -> None:
    """Put dead jobs back in the queue."""
    from .storage.replay import Operator

    if (job_id is None) == (not all_jobs):
        raise ConfigError("name one job id, or use --all (not both)")
    with Operator(_database(_settings(config))) as operator:
        if job_id is not None:
            operator.dead_letter(job_id)  # NotFound with a clear message
        queued = operator.requeue_dead(None if job_id is None else [job_id])
    console.print(f"{queued} job(s) queued again")


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit")] = False,
) -> None:
    if version:
        console.print(__version__)
        raise typer.Exit()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
