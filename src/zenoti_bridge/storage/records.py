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


@dataclass(slots=True)  # not frozen: one per event on the hot path
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

    def summary(self) -> dict[str, Any]:
        """The event without its body, headers, deliveries and jobs, as JSON-ready values."""
        return {
            "event_id": self.event_id,
            "source": self.source,
            "event_type": self.event_type,
            "type_name": self.type_name,
            "family": self.family,
            "status": self.status,
            "routed": self.routed,
            "resource": self.resource,
            "entity_id": self.entity_id,
            "event_timestamp": self.event_timestamp,
            "received_at": self.received_at.isoformat(),
            "last_seen_at": self.last_seen_at.isoformat(),
            "delivery_count": self.delivery_count,
            "signature": self.signature,
            "verb": self.verb,
            "delivery_id": self.delivery_id,
        }
