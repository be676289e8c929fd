"""Plain data that crosses the storage boundary."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"


class EventStatus(StrEnum):
    """Where an event stands. Intake writes ``pending`` (it has jobs) or ``unrouted``."""

    PENDING = "pending"
    UNROUTED = "unrouted"


class JobStatus(StrEnum):
    QUEUED = "queued"


@dataclass(slots=True)  # not frozen: built once per request on the hot path, never changed
class IncomingEvent:
    """One authentic delivery of a parsed envelope, ready to store."""

    source: str
    event_id: str
    delivery_id: str | None
    event_type: str
    type_name: str
    family: str | None
    resource: str | None
    entity_id: str | None
    ordering_key: str | None
    routed: bool
    event_schema: str | None
    event_timestamp: str
    event_ts: datetime
    received_at: datetime
    verb: str
    signature: str
    headers: bytes
    query: str
    body: bytes
    consumers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class QuarantineItem:
    """An authentic delivery whose body is not a usable envelope."""

    source: str
    received_at: datetime
    verb: str
    signature: str
    reason: str
    detail: str
    headers: bytes
    query: str
    body: bytes
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class Recorded:
    outcome: Outcome
    event_pk: int


@dataclass(slots=True)
class StoredEvent:
    """An event as read back, with its deliveries and jobs."""

    pk: int
    source: str
    event_id: str
    delivery_id: str | None
    event_type: str
    type_name: str
    family: str | None
    resource: str | None
    entity_id: str | None
    routed: bool
    status: str
    event_schema: str | None
    event_timestamp: str
    event_ts: datetime
    received_at: datetime
    last_seen_at: datetime
    delivery_count: int
    verb: str
    signature: str
    headers: list[list[str]]
    query: str
    body: bytes
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)
