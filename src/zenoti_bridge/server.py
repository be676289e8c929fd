"""Running the ASGI app under uvicorn (uvloop and httptools when installed)."""

from __future__ import annotations

import gc
import importlib.util
import logging
from collections.abc import Callable
from typing import Any

import uvicorn

from .app import BridgeApp
from .config import Settings
from .storage import open_store
from .worker import workers_for


def _available(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def uvicorn_config(app: Any, *, host: str, port: int, log_level: str) -> uvicorn.Config:
    """The server stack every role runs on (the intake benchmark's baseline uses it too)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop" if _available("uvloop") else "asyncio",
        http="httptools" if _available("httptools") else "h11",
        lifespan="on",
        access_log=False,
        log_level=log_level,
        backlog=4096,
        timeout_keep_alive=75,  # longer than typical load balancers, so they close first
        server_header=False,
    )


def run(
    settings: Settings, *, host: str, port: int, log_level: str = "info", workers: bool = True
) -> None:
    """Serve until SIGINT/SIGTERM; in-flight requests finish, queued writes are committed."""

    def build() -> BridgeApp:
        store = open_store(settings.database)
        pool = workers_for(store, settings) if workers else None
        return BridgeApp(settings, store, workers=pool)

    serve_app(build, host=host, port=port, log_level=log_level)


def serve_app(build: Callable[[], Any], *, host: str, port: int, log_level: str) -> None:
    """Log as the bridge does, build the app, freeze what it made, serve it until a signal.

    ``run`` serves the bridge this way; the intake benchmark's no-store reference too.
    """
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = build()
    freeze_startup_objects()
    uvicorn.Server(uvicorn_config(app, host=host, port=port, log_level=log_level)).run()


def freeze_startup_objects() -> None:
    """Keep the objects that live as long as the process out of every garbage collection.

    After the imports and the app are built, about 120,000 objects exist for good (modules,
    classes, the routes, pydantic and SQLAlchemy metadata). A full collection walks all of
    them (about 45 ms on the reference machine), and under load one comes every few seconds:
    the slowest 1 % of answers was these pauses. Frozen, they are never walked again; what the
    requests allocate is still collected as usual.
    """
    gc.collect()
    gc.freeze()
