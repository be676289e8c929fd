"""A reference for the intake benchmark: the bridge's intake with a store that writes nothing.

It serves the bridge's own ASGI app (``zenoti_bridge.app.BridgeApp``: the routing, the intake's
whole request path with its signature check, envelope parsing and metrics) from a bridge
configuration file, on the same server stack as ``zenoti-bridge intake`` (the options of
``zenoti_bridge.server``). Only the store is replaced: it answers every event ``accepted`` at
once, without building a row, queueing it or writing it anywhere.

Measured beside the no-op app, it shows how much of the no-op's rate the request path alone
leaves: the ratio that no store, however fast, can exceed on this machine and stack. It runs no
workers, so it is an upper bound for ``zenoti-bridge intake`` and ``serve`` alike. It is a
measuring instrument and nothing else: every event it acknowledges is lost.

Run: ``python bench/null_store_app.py --config bridge.toml --port 8182``.
"""

from __future__ import annotations

import argparse
import itertools

from zenoti_bridge.app import BridgeApp
from zenoti_bridge.config import Settings, load_settings
from zenoti_bridge.errors import ConfigError
from zenoti_bridge.server import serve_app
from zenoti_bridge.storage import IncomingEvent, Outcome, QuarantineItem, Recorded


class NullStore:
    """The :class:`zenoti_bridge.storage.Store` interface, answering at once, keeping nothing."""

    backend = "none (benchmark reference: nothing is written)"

    def __init__(self) -> None:
        self._ids = itertools.count(1)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def record_event(self, event: IncomingEvent) -> Recorded:
        return Recorded(Outcome.ACCEPTED, next(self._ids))

    async def quarantine(self, item: QuarantineItem) -> int:
        return next(self._ids)

    async def probe(self) -> None:
        return None


def serve(settings: Settings, host: str, port: int, log_level: str) -> None:
    """The bridge's app on its own server stack, as ``zenoti-bridge intake`` runs it."""
    serve_app(
        lambda: BridgeApp(settings, NullStore(), workers=None),
        host=host,
        port=port,
        log_level=log_level,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--config", required=True, help="a zenoti-bridge TOML file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()
    try:
        settings = load_settings(args.config, require_file=True)
    except ConfigError as exc:
        parser.exit(2, f"{parser.prog}: error: {exc}\n")
    serve(settings, args.host, args.port, args.log_level)


if __name__ == "__main__":
    main()
