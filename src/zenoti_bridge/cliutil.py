"""What every command-line module shares: consoles, the --config option, friendly errors."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from .errors import ZenotiBridgeError

P = ParamSpec("P")
R = TypeVar("R")

console = Console()
err = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="Configuration file [default: $ZB_CONFIG or ./zenoti-bridge.toml]"
    ),
]


def friendly(command: Callable[P, R]) -> Callable[P, R]:
    """Bad input (a ZenotiBridgeError: configuration, a missing event, a database that is not
    there or not ready when the command starts) ends the command with one line on stderr and exit
    code 2; a database that fails while the command runs, with one line and exit code 1."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except ZenotiBridgeError as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except Exception as exc:
            if not _database_error(exc):
                raise  # a bug: the traceback is the report
            lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            reason = escape(lines[0] if lines else type(exc).__name__)
            err.print(f"[red]error:[/red] the database failed: {reason}", highlight=False)
            raise typer.Exit(1) from None

    return wrapper


def _database_error(exc: Exception) -> bool:
    """A SQLAlchemy error: the database went away or refused mid-command (not bad input)."""
    errors = sys.modules.get("sqlalchemy.exc")  # loaded only by commands that use a database
    return errors is not None and isinstance(exc, errors.SQLAlchemyError)
