"""The admin API: events, replay, dead letters, the mirror and stats, as JSON with OpenAPI.

Every route needs ``Authorization: Bearer <token>`` with a token from ``admin.tokens``; with no
token configured the API answers 403 to everyone rather than being open. Reads run in the thread
pool (SQLAlchemy Core, beside the SQLite writer thanks to WAL).
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, TypeVar, cast
from urllib.parse import quote

import orjson
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .. import __version__
from ..catalog import lookup
from ..config import Settings
from ..errors import Ambiguous, NotFound
from ..storage.queries import EventFilter, Reader
from ..storage.replay import Operator

bearer = HTTPBearer(auto_error=False)
T = TypeVar("T")


class ReplayRequest(BaseModel):
    # a misspelt field would otherwise be ignored, and a replay meant for a few events match all
    model_config = ConfigDict(extra="forbid")

    source: str | None = None
    event_type: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    dry_run: bool = True

    @field_validator("source", "event_type", "status")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        if value is not None and "\x00" in value:
            raise ValueError("holds a NUL character")
        return value


class ReplayAnswer(BaseModel):
    matched: int
    replayed: int
    dry_run: bool


class Page(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None = Field(None, description="Pass as ?cursor= for the next page")


_CURSOR = re.compile(r"[0-9]{1,18}")  # an event's id, as next_cursor gave it


def known_parameters(request: Request) -> None:
    """Refuse query parameters the route does not declare: a misspelt filter would otherwise be
    ignored, and a listing or a replay meant to be narrow come back whole."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    known = {field.alias for field in dependant.query_params}
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        allowed = ", ".join(sorted(known)) or "none"
        raise HTTPException(
            422, f"unknown query parameter(s) {', '.join(unknown)}; this route takes: {allowed}"
        )


def _event_cursor(cursor: str | None) -> int | None:
    """An id-based cursor (events, dead letters), checked: a bad one is a 422, never a 500."""
    if cursor is None:
        return None
    if not _CURSOR.fullmatch(cursor):
        raise HTTPException(422, "cursor must be the next_cursor of a previous page")
    return int(cursor)


def _next_page(response: Response, cursor: str) -> None:
    """A full page of a list answer: the cursor of the next one, in a header (the body stays a
    list, as it always was)."""
    response.headers["x-next-cursor"] = cursor
    response.headers["link"] = f'<?cursor={quote(cursor, safe="")}>; rel="next"'


def _jsonable(value: T) -> T:
    """Times, bytes and the like as JSON-friendly text, keeping the shape."""
    return cast(T, orjson.loads(orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS)))


def build_admin_api(settings: Settings) -> FastAPI:
    """The FastAPI app mounted at ``/api/v1``."""
    reader = Reader(settings.database.url)
    operator = Operator(settings.database.url)
    tokens = [t.encode() for t in settings.admin.tokens]

    def authorized(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        if not tokens:
            raise HTTPException(403, "the admin API is off: set admin.tokens in the configuration")
        given = credentials.credentials.encode() if credentials else b""
        if not given or not any(hmac.compare_digest(given, token) for token in tokens):
            raise HTTPException(
                401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"}
            )

    api = FastAPI(
        title="zenoti-bridge admin API",
        version=__version__,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        dependencies=[Depends(authorized), Depends(known_parameters)],
    )

    @api.middleware("http")
    async def refuse_nul(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        # PostgreSQL's text cannot hold NUL: such an id or filter matches nothing, and is an error
        if "\x00" in request.url.path or b"%00" in request.scope.get("query_string", b""):
            return JSONResponse({"detail": "NUL characters are not allowed in the URL"}, 422)
        return await call_next(request)

    @api.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @api.exception_handler(Ambiguous)
    async def ambiguous(_: Request, exc: Ambiguous) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "sources": sorted(exc.sources)}, status_code=409)

    @api.get("/events", response_model=Page, summary="Stored events, newest first")
    def list_events(
        source: str | None = None,
        event_type: Annotated[str | None, Query(alias="type")] = None,
        status: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
        cursor: str | None = None,
    ) -> Page:
        before = _event_cursor(cursor)
        where = EventFilter(
            source=source,
            type_name=lookup(event_type).name if event_type else None,
            status=status,
            since=since,
            until=until,
        )
        rows = reader.list_events(where, limit=limit, before_pk=before)
        next_cursor = str(rows[-1].pk) if len(rows) == limit else None
        return Page(items=[r.summary() for r in rows], next_cursor=next_cursor)

    @api.get("/events/{event_id}", summary="One event: envelope, raw body, deliveries, jobs")
    def get_event(event_id: str, source: str | None = None) -> dict[str, Any]:
        event = reader.get_event(event_id, source)
        body_text = event.body.decode("utf-8", "replace")
        try:
            envelope: Any = orjson.loads(event.body)
        except orjson.JSONDecodeError:
            envelope = None
        return _jsonable(
            {
                **event.summary(),
                "headers": event.headers,
                "query": event.query,
                "body": body_text,
                "envelope": envelope,
                "deliveries": event.deliveries,
                "jobs": event.jobs,
            }
        )

    @api.post("/events/{event_id}/replay", summary="Queue one event's jobs again")
    def replay_event(event_id: str, source: str | None = None) -> dict[str, Any]:
        return {"event_id": event_id, "jobs_queued": operator.replay_event(event_id, source)}

    @api.post("/replays", response_model=ReplayAnswer, summary="Replay every matching event")
    def replay(request: ReplayRequest) -> ReplayAnswer:
        where = EventFilter(
            source=request.source,
            type_name=lookup(request.event_type).name if request.event_type else None,
            status=request.status,
            since=request.since,
            until=request.until,
        )
        matched = operator.count_replay(where)
        replayed = 0 if request.dry_run else operator.replay(where)
        return ReplayAnswer(matched=matched, replayed=replayed, dry_run=request.dry_run)

    @api.get("/dead-letters", summary="Jobs that failed for good")
    def dead_letters(
        response: Response,
        source: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        cursor: str | None = None,
    ) -> list[dict[str, Any]]:
        before = _event_cursor(cursor)
        letters = operator.dead_letters(source, limit, before)
        if len(letters) == limit:
            _next_page(response, str(letters[-1].job_id))
        return _jsonable([asdict(d) for d in letters])

    @api.get("/entities/{resource}", summary="Mirrored entities of one resource")
    def entities(
        response: Response,
        resource: str,
        source: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        cursor: str | None = None,
    ) -> list[dict[str, Any]]:
        after = None
        if cursor is not None:
            after_source, slash, after_id = cursor.partition("/")
            if not slash:
                raise HTTPException(422, "cursor must be the X-Next-Cursor of a previous page")
            after = (after_source, after_id)
        rows = reader.entities(resource, source, limit, after)
        if len(rows) == limit:
            _next_page(response, f"{rows[-1]['source']}/{rows[-1]['id']}")
        return _jsonable([_entity(resource, r) for r in rows])

    @api.get("/entities/{resource}/{entity_id}", summary="One mirrored entity")
    def entity(resource: str, entity_id: str, source: str | None = None) -> dict[str, Any]:
        return _jsonable(_entity(resource, reader.entity(resource, entity_id, source)))

    @api.get(
        "/sources",
        summary="Each source: its settings (no secrets), what it sent by event type, what was held",
    )
    def sources() -> list[dict[str, Any]]:
        activity = reader.source_activity(list(settings.sources))
        answer = []
        for name, seen in activity.items():
            config = settings.sources.get(name)
            answer.append(
                {
                    "source": name,
                    "configured": config is not None,
                    "webhook_path": f"/webhooks/zenoti/{name}",
                    "signature": config.signature if config else None,
                    "secrets": len(config.webhook_secrets) if config else 0,
                    "url_token": bool(config and config.url_token),
                    **seen,
                }
            )
        return _jsonable(answer)

    @api.get("/stats", summary="Counts by status and type, queue depth, lag")
    def stats() -> dict[str, Any]:
        return _jsonable(reader.stats())

    return api


def _entity(resource: str, row: dict[str, Any]) -> dict[str, Any]:
    return {"resource": resource, **row}
