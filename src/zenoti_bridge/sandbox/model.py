"""Data shared by the sandbox's parts: occurrences, and the clock the delivery engine runs on."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson


def format_timestamp(moment: datetime) -> str:
    """Zenoti's envelope timestamp: UTC, 7 fractional digits, ``Z`` (``...41.1180243Z``)."""
    moment = moment.astimezone(UTC)
    # Python keeps microseconds; .NET prints ticks (100 ns): the seventh digit is a real digit
    # in Zenoti's output, here derived from the microseconds so the string stays stable.
    return (
        moment.strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{moment.microsecond:06d}"
        + (str(moment.microsecond % 7))
        + "Z"
    )


def object_id(moment: datetime, counter: int | None = None) -> str:
    """A 24-hex MongoDB ObjectId whose first 4 bytes are ``moment`` in seconds."""
    seconds = int(moment.timestamp()) & 0xFFFFFFFF
    rest = os.urandom(5).hex() if counter is None else f"{counter & 0xFFFFFFFFFF:010x}"
    tail_value = int.from_bytes(os.urandom(3)) if counter is None else counter
    tail = f"{tail_value & 0xFFFFFF:06x}"
    return f"{seconds:08x}{rest}{tail}"


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One event that happened in the sandbox's world, before any delivery.

    ``event_type`` is the catalog's canonical spelling (``Guest.Membership.Freeze``);
    ``center_id`` is the (lowercase) id of the center where it happened, which decides which
    center-subscribed webhooks receive it; ``data`` is the payload's ``data`` object exactly as
    Zenoti shapes it (field names, typos, nesting, id case).
    """

    event_type: str
    event_id: str
    event_timestamp: datetime
    center_id: str | None
    data: dict[str, Any]
    event_resource: str | None = None
    event_schema: str = "v1"
    extra: dict[str, Any] = field(default_factory=dict)

    def envelope(self, delivery_id: str) -> dict[str, Any]:
        """The JSON object Zenoti posts, with ``delivery_id`` as the webhook call's ``id``."""
        return {
            "id": delivery_id,
            "event_id": self.event_id,
            "event_schema": self.event_schema,
            "event_resource": self.event_resource,
            "event_type": self.event_type,
            "event_timestamp": format_timestamp(self.event_timestamp),
            "data": self.data,
        }

    def body(self, delivery_id: str) -> bytes:
        """The raw request body for one delivery."""
        return orjson.dumps(self.envelope(delivery_id))


class SandboxClock(Protocol):
    """Time for the delivery engine: the real one, or a fake that tests advance by hand.

    Every wait in the engine (the 10 s request timeout, the backoff between attempts) goes
    through :meth:`sleep`, so a fake clock can play the whole delivery policy in milliseconds.
    """

    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...
