"""The ASGI application: webhook intake, health and metrics in one process."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from .admin import build_admin_api
from .config import Settings
from .errors import StorageUnavailable
from .intake import PREFIX, Intake, Receive, Scope, Send
from .metrics import Metrics
from .storage import Store
from .worker import Workers

log = logging.getLogger(__name__)


class BridgeApp:
    """Routes ``/webhooks/zenoti/*`` straight to the intake; everything else to Starlette."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        manage_store: bool = True,
        workers: Workers | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.metrics = Metrics()
        self.workers = workers
        self.intake = Intake(
            settings, store, metrics=self.metrics, on_accept=workers.wake if workers else None
        )

        @contextlib.asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            if manage_store:
                await store.start()
            if workers is not None:
                await workers.start()
            try:
                yield
            finally:
                if workers is not None:
                    await workers.stop()  # in-flight batches finish first
                if manage_store:
                    await store.stop()

        self.routes = Starlette(
            routes=[
                Route("/healthz", self.healthz, methods=["GET", "HEAD"]),
                Route("/readyz", self.readyz, methods=["GET", "HEAD"]),
                Route("/metrics", self.prometheus, methods=["GET"]),
                Mount("/api/v1", app=build_admin_api(settings)),
            ],
            lifespan=lifespan,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PREFIX):
            await self.intake(scope, receive, send)
        else:
            await self.routes(scope, receive, send)

    async def healthz(self, _: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, _: Request) -> Response:
        try:
            await self.store.probe()
        except StorageUnavailable as exc:
            return JSONResponse(
                {"status": "unavailable", "store": self.store.backend, "message": str(exc)},
                status_code=503,
                headers={"retry-after": "5"},
            )
        return JSONResponse({"status": "ready", "store": self.store.backend})

    async def prometheus(self, _: Request) -> Response:
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)
