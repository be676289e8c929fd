"""The admin API: events, replay, dead letters, the mirror and stats, as JSON with OpenAPI.

Every route needs ``Authorization: Bearer <token>`` with a token from ``admin.tokens``; with no
token configured the API answers 403 to everyone rather than being open. Reads run in the thread
pool (SQLAlchemy Core, beside the SQLite writer thanks to WAL).
"""

from __future__ import annotations

import hmac
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, TypeVar, cast

import orjson
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from .. import __version__
from ..catalog import lookup
from ..config import Settings
from ..errors import NotFound
from ..storage.queries import EventFilter, Reader
from ..storage.replay import Operator

bearer = HTTPBearer(auto_error=False)
T = TypeVar("T")


class ReplayRequest(BaseModel):
    source: str | None = None
    event_type: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    dry_run: bool = True


class ReplayAnswer(BaseModel):
    matched: int
    replayed: int
    dry_run: bool


class Page(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None = Field(None, description="Pass as ?cursor= for the next page")


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
        if not any(hmac.compare_digest(given, token) for token in tokens):
            raise HTTPException(
                401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"}
            )

    api = FastAPI(
        title="zenoti-bridge admin API",
        version=__version__,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        dependencies=[Depends(authorized)],
    )

    @api.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

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
        before = None
        if cursor is not None:
            if not cursor.isdigit():
                raise HTTPException(422, "cursor must be the next_cursor of a previous page")
            before = int(cursor)
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
        source: str | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100
    ) -> list[dict[str, Any]]:
        return _jsonable([asdict(d) for d in operator.dead_letters(source, limit)])

    @api.get("/entities/{resource}", summary="Mirrored entities of one resource")
    def entities(
        resource: str,
        source: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        return _jsonable([_entity(resource, r) for r in reader.entities(resource, source, limit)])

    @api.get("/entities/{resource}/{entity_id}", summary="One mirrored entity")
    def entity(resource: str, entity_id: str, source: str | None = None) -> dict[str, Any]:
        return _jsonable(_entity(resource, reader.entity(resource, entity_id, source)))

    @api.get("/stats", summary="Counts by status and type, queue depth, lag")
    def stats() -> dict[str, Any]:
        return _jsonable(reader.stats())

    return api


def _entity(resource: str, row: dict[str, Any]) -> dict[str, Any]:
    return {"resource": resource, **row}
