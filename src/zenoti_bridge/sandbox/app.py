"""The sandbox's HTTP face: a REST API under ``/api`` (OpenAPI at ``/api/openapi.json``) and web
pages (webhooks with Active and Inactive tabs, delivery and failure logs, sent emails, triggers).

Pages post plain HTML forms and redirect back with a short message, so they work without any
script; everything a page does, the API does too.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict
from dataclasses import fields as dataclass_fields
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode

import orjson
from fastapi import FastAPI, HTTPException, Response
from fastapi.responses import JSONResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse
from starlette.routing import Mount, Route

from ..catalog import EVENT_TYPES, FAMILIES
from ..errors import NotFound
from .automations import ORGANIZATION, Attempt, InvalidWebhook, Webhook, WebhookSpec
from .automations import event_names as family_event_names
from .model import format_timestamp
from .scenario import LEVELS
from .service import Fired, Sandbox

TEMPLATES = Path(__file__).parent / "templates"
PageHandler = Callable[[Request], Awaitable[Response]]


# -- REST API ------------------------------------------------------------------------------------


class WebhookIn(BaseModel):
    """A webhook as Zenoti's form holds it."""

    name: str
    description: str = ""
    subscription: str = Field(
        default=ORGANIZATION, description='"organization", or the id of one center'
    )
    event_type: str = Field(description='the form\'s "Event Type", e.g. "Guest Membership"')
    event_name: str = Field(description='the form\'s "Event Name", e.g. "Created"')
    action: Literal["Webhook"] = "Webhook"
    http_verb: str = "POST"
    url: str
    secret: str = Field(default="", description="signs each delivery; empty sends unsigned")

    def spec(self) -> WebhookSpec:
        return WebhookSpec(**self.model_dump())


class WebhookPatch(BaseModel):
    """Some of a webhook's fields; the others keep their values."""

    name: str | None = None
    description: str | None = None
    subscription: str | None = None
    event_type: str | None = None
    event_name: str | None = None
    http_verb: str | None = None
    url: str | None = None
    secret: str | None = None


class TriggerIn(BaseModel):
    """Fire one event type, ``count`` times, optionally in one center."""

    event_type: str
    count: int = Field(default=1, ge=1, le=1000)
    center_id: str | None = None


class ScenarioIn(BaseModel):
    """Play an activity level; ``speed`` 1440 plays a day in a minute."""

    level: str = "busy-salon"
    speed: float = Field(default=1440.0, gt=0, le=1_000_000)


def webhook_json(webhook: Webhook, sandbox: Sandbox) -> dict[str, Any]:
    """A webhook as the API shows it, with its failure-log link and catalog type."""
    data = asdict(webhook)
    data["catalog_type"] = webhook.catalog_type
    data["failure_log_url"] = sandbox.failure_log_url(webhook)
    return data


def fired_json(fired: Fired) -> dict[str, Any]:
    """What one fired occurrence became."""
    occurrence = fired.occurrence
    return {
        "event_type": occurrence.event_type,
        "event_id": occurrence.event_id,
        "event_timestamp": format_timestamp(occurrence.event_timestamp),
        "center_id": occurrence.center_id,
        "deliveries": [{"id": d.id, "webhook_id": d.webhook_id} for d in fired.deliveries],
    }


def scenario_json(sandbox: Sandbox) -> dict[str, Any]:
    """The scenario being played, or ``{"running": false}``."""
    run = sandbox.scenario
    if run is None or not run.running:
        return {"running": False}
    return {
        "running": True,
        "level": run.level.name,
        "speed": run.speed,
        "started": run.started,
        "simulated_time": run.sim_time,
        "emitted": run.emitted,
    }


def _invalid(exc: Exception) -> HTTPException:
    return HTTPException(status_code=422, detail=str(exc))


def build_api(sandbox: Sandbox) -> FastAPI:
    """The REST API (mounted at ``/api``)."""
    api = FastAPI(
        title="Zenoti sandbox",
        description="A local Zenoti: webhook automations, deliveries with Zenoti's policy, and "
        "events on demand.",
        version="1",
        docs_url="/docs",
        redoc_url=None,
    )

    @api.exception_handler(NotFound)
    async def not_found(_request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @api.exception_handler(InvalidWebhook)
    async def invalid(_request: Request, exc: InvalidWebhook) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @api.get("/webhooks", tags=["webhooks"])
    async def list_webhooks(active: bool | None = None) -> list[dict[str, Any]]:
        return [webhook_json(w, sandbox) for w in sandbox.state.list_webhooks(active)]

    @api.post("/webhooks", status_code=201, tags=["webhooks"])
    async def create_webhook(body: WebhookIn) -> dict[str, Any]:
        return webhook_json(sandbox.state.create_webhook(body.spec()), sandbox)

    @api.get("/webhooks/{webhook_id}", tags=["webhooks"])
    async def get_webhook(webhook_id: int) -> dict[str, Any]:
        return webhook_json(sandbox.state.get_webhook(webhook_id), sandbox)

    @api.put("/webhooks/{webhook_id}", tags=["webhooks"])
    async def replace_webhook(webhook_id: int, body: WebhookIn) -> dict[str, Any]:
        return webhook_json(sandbox.state.update_webhook(webhook_id, body.spec()), sandbox)

    @api.patch("/webhooks/{webhook_id}", tags=["webhooks"])
    async def edit_webhook(webhook_id: int, body: WebhookPatch) -> dict[str, Any]:
        current = asdict(sandbox.state.get_webhook(webhook_id).spec)
        current.update(body.model_dump(exclude_none=True))
        updated = sandbox.state.update_webhook(webhook_id, WebhookSpec(**current))
        return webhook_json(updated, sandbox)

    @api.delete("/webhooks/{webhook_id}", status_code=204, tags=["webhooks"])
    async def delete_webhook(webhook_id: int) -> Response:
        sandbox.state.delete_webhook(webhook_id)
        return Response(status_code=204)

    @api.post("/webhooks/{webhook_id}/reactivate", tags=["webhooks"])
    async def reactivate(webhook_id: int) -> dict[str, Any]:
        return webhook_json(sandbox.engine.reactivate(webhook_id), sandbox)

    @api.post("/webhooks/{webhook_id}/test", tags=["webhooks"])
    async def test(webhook_id: int) -> dict[str, Any]:
        return asdict(await sandbox.engine.test(webhook_id))

    @api.get("/webhooks/{webhook_id}/deliveries", tags=["logs"])
    async def deliveries(webhook_id: int, limit: int = 100) -> list[dict[str, Any]]:
        sandbox.state.get_webhook(webhook_id)
        return [asdict(a) for a in latest_attempts(sandbox, webhook_id, limit)]

    @api.get("/webhooks/{webhook_id}/failures", tags=["logs"])
    async def failures(webhook_id: int, limit: int = 100) -> list[dict[str, Any]]:
        sandbox.state.get_webhook(webhook_id)
        return [asdict(a) for a in sandbox.state.failures(webhook_id, limit)]

    @api.get("/emails", tags=["logs"])
    async def emails(limit: int = 100) -> list[dict[str, Any]]:
        return [asdict(e) for e in sandbox.state.emails(limit=limit)]

    @api.get("/event-types", tags=["events"])
    async def event_types() -> list[dict[str, Any]]:
        return [
            {"event_type": family, "event_names": family_event_names(family)} for family in FAMILIES
        ]

    @api.post("/events", status_code=201, tags=["events"])
    async def fire(body: TriggerIn) -> list[dict[str, Any]]:
        try:
            fired = await sandbox.trigger(
                body.event_type, count=body.count, center_id=body.center_id
            )
        except ValueError as exc:
            raise _invalid(exc) from None
        return [fired_json(f) for f in fired]

    @api.get("/scenario", tags=["events"])
    async def scenario() -> dict[str, Any]:
        return scenario_json(sandbox)

    @api.post("/scenario", status_code=201, tags=["events"])
    async def play(body: ScenarioIn) -> dict[str, Any]:
        try:
            await sandbox.start_scenario(body.level, body.speed)
        except ValueError as exc:
            raise _invalid(exc) from None
        return scenario_json(sandbox)

    @api.delete("/scenario", tags=["events"])
    async def stop() -> dict[str, Any]:
        await sandbox.stop_scenario()
        return scenario_json(sandbox)

    @api.get("/world", tags=["world"])
    async def world() -> dict[str, Any]:
        return world_json(sandbox)

    @api.get("/expected", tags=["world"])
    async def expected() -> Response:
        """What a mirror of every event sent so far should hold, resource by resource:
        ``{resource: {id: {"deleted": bool, column: value}}}`` (times in ISO 8601; UTC columns
        with an offset, wall-clock columns without)."""
        return Response(orjson.dumps(sandbox.activity.expected()), media_type="application/json")

    return api


def latest_attempts(sandbox: Sandbox, webhook_id: int, limit: int) -> list[Attempt]:
    """A webhook's latest attempts, newest first."""
    return sandbox.state.attempts(webhook_id, limit=limit, newest_first=True)


def world_json(sandbox: Sandbox) -> dict[str, Any]:
    """The organization and its centers."""
    world = sandbox.world
    return {
        "seed": world.seed,
        "level": sandbox.level.name,
        "organization": {"id": world.organization.id, "name": world.organization.name},
        "centers": [
            {
                "id": c.id,
                "code": c.code,
                "name": c.name,
                "timezone": c.time_zone,
                "currency": c.currency,
                "guests": sum(1 for g in world.guests if g.center_id == c.id),
                "employees": sum(1 for e in world.employees if e.center_id == c.id),
            }
            for c in world.centers
        ],
    }


# -- pages ---------------------------------------------------------------------------------------


class Pages:
    """The web pages, rendered with Jinja2 from ``templates/``."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(["html"]),
            undefined=StrictUndefined,
        )
        self.env.globals.update(when=_when, subscription_label=self._subscription_label)

    def _subscription_label(self, subscription: str) -> str:
        if subscription == ORGANIZATION:
            return f"Organization: {self.sandbox.world.organization.name}"
        for center in self.sandbox.world.centers:
            if center.id == subscription:
                return f"Center: {center.name}"
        return f"Center {subscription}"

    def render(self, request: Request, template: str, status: int = 200, **values: Any) -> Response:
        values.setdefault("flash", request.query_params.get("msg"))
        values.setdefault("flash_kind", request.query_params.get("kind"))
        body = self.env.get_template(template).render(**values)
        return HTMLResponse(body, status_code=status)

    def routes(self) -> list[Route]:
        """Every page and form target."""
        return [
            Route("/", self.home),
            Route("/webhooks", self.webhooks),
            Route("/webhooks/new", self.new_webhook, methods=["GET", "POST"]),
            Route("/webhooks/{webhook_id:int}", self.webhook),
            Route("/webhooks/{webhook_id:int}/edit", self.edit_webhook, methods=["GET", "POST"]),
            Route("/webhooks/{webhook_id:int}/failures", self.failures),
            Route("/webhooks/{webhook_id:int}/reactivate", self.reactivate, methods=["POST"]),
            Route("/webhooks/{webhook_id:int}/test", self.test, methods=["POST"]),
            Route("/webhooks/{webhook_id:int}/delete", self.delete, methods=["POST"]),
            Route("/emails", self.emails),
            Route("/trigger", self.trigger, methods=["GET", "POST"]),
            Route("/scenario", self.play, methods=["POST"]),
            Route("/scenario/stop", self.stop, methods=["POST"]),
            Route("/world", self.world),
        ]

    async def home(self, _request: Request) -> Response:
        return RedirectResponse("/webhooks", status_code=303)

    async def webhooks(self, request: Request) -> Response:
        tab = "inactive" if request.query_params.get("tab") == "inactive" else "active"
        every = self.sandbox.state.list_webhooks()
        active = [w for w in every if w.active]
        inactive = [w for w in every if not w.active]
        return self.render(
            request,
            "webhooks.html",
            section="webhooks",
            tab=tab,
            webhooks=active if tab == "active" else inactive,
            counts={"active": len(active), "inactive": len(inactive)},
        )

    def _form_page(
        self, request: Request, form: dict[str, str], webhook: Webhook | None, error: str | None
    ) -> Response:
        blank = asdict(WebhookSpec(name="", event_type=FAMILIES[0], event_name="", url=""))
        return self.render(
            request,
            "webhook_form.html",
            status=422 if error else 200,
            section="webhooks",
            webhook=webhook,
            form=blank | form,
            flash=error,
            flash_kind="error" if error else None,
            organization_name=self.sandbox.world.organization.name,
            centers=self.sandbox.world.centers,
            families=FAMILIES,
            event_names={family: list(family_event_names(family)) for family in FAMILIES},
        )

    async def _submitted(self, request: Request) -> dict[str, str]:
        form = await request.form()
        fields = [f.name for f in dataclass_fields(WebhookSpec)]
        # a field the form did not send keeps the form's default (e.g. action "Webhook")
        return {key: str(form[key]) for key in fields if key in form}

    async def new_webhook(self, request: Request) -> Response:
        if request.method == "GET":
            return self._form_page(request, {}, None, None)
        form = await self._submitted(request)
        try:
            webhook = self.sandbox.state.create_webhook(WebhookSpec(**form))
        except InvalidWebhook as exc:
            return self._form_page(request, form, None, str(exc))
        return _back(f"/webhooks/{webhook.id}", f"Webhook {webhook.name!r} created.")

    async def edit_webhook(self, request: Request) -> Response:
        webhook = self._webhook(request)
        if request.method == "GET":
            return self._form_page(request, asdict(webhook.spec), webhook, None)
        form = await self._submitted(request)
        try:
            updated = self.sandbox.state.update_webhook(webhook.id, WebhookSpec(**form))
        except InvalidWebhook as exc:
            return self._form_page(request, form, webhook, str(exc))
        return _back(f"/webhooks/{updated.id}", "Saved.")

    def _webhook(self, request: Request) -> Webhook:
        webhook_id = int(request.path_params["webhook_id"])
        try:
            return self.sandbox.state.get_webhook(webhook_id)
        except NotFound:
            raise HTTPException(404, f"no webhook {webhook_id}") from None

    async def webhook(self, request: Request) -> Response:
        webhook = self._webhook(request)
        return self.render(
            request,
            "webhook.html",
            section="webhooks",
            webhook=webhook,
            deliveries=[_row(a) for a in latest_attempts(self.sandbox, webhook.id, 200)],
        )

    async def failures(self, request: Request) -> Response:
        webhook = self._webhook(request)
        return self.render(
            request,
            "failures.html",
            section="webhooks",
            webhook=webhook,
            timeout=f"{self.sandbox.engine.policy.timeout:g}",
            deliveries=[_row(a) for a in self.sandbox.state.failures(webhook.id, 1000)],
        )

    async def reactivate(self, request: Request) -> Response:
        webhook = self.sandbox.engine.reactivate(self._webhook(request).id)
        return _back(f"/webhooks/{webhook.id}", f"Webhook {webhook.name!r} is active again.")

    async def test(self, request: Request) -> Response:
        webhook = self._webhook(request)
        attempt = await self.sandbox.engine.test(webhook.id)
        result = attempt.status if attempt.status is not None else attempt.error
        ok = attempt.outcome == "success"
        return _back(f"/webhooks/{webhook.id}", f"Test POST sent: {result}.", ok=ok)

    async def delete(self, request: Request) -> Response:
        webhook = self._webhook(request)
        self.sandbox.state.delete_webhook(webhook.id)
        return _back("/webhooks", f"Webhook {webhook.name!r} deleted.")

    async def emails(self, request: Request) -> Response:
        emails = self.sandbox.state.emails(limit=200)
        return self.render(request, "emails.html", section="emails", emails=emails)

    async def trigger(self, request: Request) -> Response:
        fired: list[dict[str, Any]] = []
        chosen = EVENT_TYPES[0].name
        error: str | None = None
        if request.method == "POST":
            form = await request.form()
            chosen = str(form.get("event_type") or "")
            try:
                count = int(str(form.get("count") or "1"))
                result = await self.sandbox.trigger(chosen, count=count)
            except ValueError as exc:
                error = str(exc)
            else:
                fired = [fired_json(f) for f in result]
        return self.render(
            request,
            "trigger.html",
            status=422 if error else 200,
            section="trigger",
            flash=error or (f"Fired {len(fired)} events." if fired else None),
            flash_kind="error" if error else None,
            event_types=[t.name for t in EVENT_TYPES],
            chosen=chosen,
            fired=fired,
            levels=list(LEVELS),
            scenario=scenario_json(self.sandbox),
        )

    async def play(self, request: Request) -> Response:
        form = await request.form()
        try:
            speed = float(str(form.get("speed") or "1440"))
            await self.sandbox.start_scenario(str(form.get("level") or ""), speed)
        except ValueError as exc:
            return _back("/trigger", str(exc), ok=False)
        return _back("/trigger", "Scenario playing.")

    async def stop(self, _request: Request) -> Response:
        await self.sandbox.stop_scenario()
        return _back("/trigger", "Scenario stopped.")

    async def world(self, request: Request) -> Response:
        data = world_json(self.sandbox)
        hours = {c.id: f"{c.opens:%H:%M} to {c.closes:%H:%M}" for c in self.sandbox.world.centers}
        for center in data["centers"]:
            center["hours"] = hours[center["id"]]
        return self.render(
            request,
            "world.html",
            section="world",
            organization_name=data["organization"]["name"],
            seed=data["seed"],
            centers=data["centers"],
        )


def _row(attempt: Attempt) -> dict[str, Any]:
    row = asdict(attempt)
    row["time"] = attempt.at
    row["success"] = attempt.outcome == "success"
    row["attempt"] = attempt.number
    row["response_excerpt"] = attempt.response
    return row


def _when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def _back(path: str, message: str, *, ok: bool = True) -> Response:
    query = {"msg": message} | ({} if ok else {"kind": "error"})
    return RedirectResponse(f"{path}?{urlencode(query)}", status_code=303)


def build_app(sandbox: Sandbox) -> Starlette:
    """The whole sandbox web app; starting it starts the delivery engine."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await sandbox.start()
        try:
            yield
        finally:
            await sandbox.stop()

    pages = Pages(sandbox)
    return Starlette(
        routes=[Mount("/api", app=build_api(sandbox)), *pages.routes()],
        lifespan=lifespan,
    )
