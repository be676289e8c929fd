"""Parsing Zenoti's webhook envelope: just enough to store an event and find its dedupe key.

Pure code. Zenoti's timestamps carry 7 fractional digits (.NET ticks), some times carry no
offset at all, and ``0001-01-01T00:00:00`` means "no value". ``event_resource`` is null on newer
events, so routing uses ``event_type`` alone.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from .errors import EnvelopeError

_TIMESTAMP = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(Z|[+-]\d{2}:?\d{2})?$"
)
_OBJECT_ID = re.compile(r"^[0-9a-fA-F]{24}$")
_CONTROL = re.compile(r"[\x00-\x1f]")
MAX_ID_LENGTH = 128


def parse_timestamp(text: str) -> datetime:
    """A timezone-aware UTC datetime from Zenoti's ISO text; no offset means UTC.

    Fractions beyond microseconds (Zenoti sends 100 ns ticks) are truncated; keep the original
    text when the exact value matters.
    """
    if len(text) == 28 and text[10] == "T" and text[-1] == "Z" and text[19] == ".":
        # Zenoti's usual shape (7 fractional digits and Z): the C parser, without the 7th digit
        # (an explicit +00:00 gives datetime.UTC itself, and costs far less than .replace())
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(text[:26] + "+00:00")
    match = _TIMESTAMP.match(text.strip())
    if match is None:
        raise ValueError(f"not an ISO 8601 timestamp: {text!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        value = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micros, tzinfo=UTC
        )
    except ValueError as exc:
        raise ValueError(f"not a valid timestamp: {text!r} ({exc})") from None
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        offset_minutes = int(digits[:2]) * 60 + int(digits[2:])
        try:
            value -= sign * timedelta(minutes=offset_minutes)
        except OverflowError:
            raise ValueError(f"timestamp out of range: {text!r}") from None
    return value


def timestamp_key(text: str) -> str:
    """A sortable UTC text to 100 ns (``2024-06-03T15:12:41.118024300``) for ordering events.

    Unlike :func:`parse_timestamp` it keeps the digits past the microsecond, so two events in the
    same microsecond still order by their ticks.
    """
    value = parse_timestamp(text)
    match = _TIMESTAMP.match(text.strip())
    fraction = (match.group(7) if match else None) or ""
    extra = int(fraction[6:9].ljust(3, "0"))
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond:06d}{extra:03d}"


def parse_net_datetime(value: Any) -> datetime | None:
    """A Zenoti date-time field, or None for null, blank and .NET's ``0001-01-01`` "no value"."""
    if not isinstance(value, str) or not value.strip() or value.startswith("0001-01-01"):
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        return None


def is_object_id(value: Any) -> bool:
    """True for a 24-hex MongoDB ObjectId, the shape of Zenoti's ``id`` and ``event_id``."""
    return isinstance(value, str) and _OBJECT_ID.match(value) is not None


def object_id_time(value: str) -> datetime | None:
    """The creation time embedded in an ObjectId's first four bytes, or None if not one."""
    if not is_object_id(value):
        return None
    return datetime.fromtimestamp(int(value[:8], 16), tz=UTC)


@dataclass(slots=True)  # not frozen: built once per request on the hot path, never changed
class Envelope:
    """The parts of a delivery the bridge needs before it answers."""

    delivery_id: str | None
    event_id: str
    event_schema: str | None
    event_resource: str | None
    event_type: str
    event_timestamp: str
    timestamp: datetime
    data: Any


def _text_field(body: dict[str, Any], key: str, *, required: bool) -> str | None:
    value = body.get(key)
    if (
        type(value) is str
        and 0 < len(value) <= MAX_ID_LENGTH
        and value.isascii()
        and value.isprintable()
        and not value.isspace()
    ):
        return value  # the usual case, decided without the checks below
    if value is None:
        if required:
            raise EnvelopeError(f"missing_{key}", f"the envelope has no {key!r}")
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        if required:
            raise EnvelopeError(f"invalid_{key}", f"{key!r} must be a non-empty string")
        return None
    if len(value) > MAX_ID_LENGTH or _CONTROL.search(value):
        if not required:  # informational (the delivery id): left out; the raw body keeps it
            return None
        raise EnvelopeError(f"invalid_{key}", f"{key!r} is too long or holds control characters")
    return value


def optional_text(value: Any) -> str | None:
    """An informational text field: kept when it is a short line of text, else left out.

    Left out rather than refused: the raw body keeps it whatever it holds, and a control
    character (NUL above all: PostgreSQL's text columns refuse it) must not make an authentic
    delivery fail.
    """
    if type(value) is not str or len(value) > MAX_ID_LENGTH:
        return None
    if value.isprintable() or not _CONTROL.search(value):  # the first test decides most
        return value
    return None


def parse_envelope(body: bytes) -> Envelope:
    """Parse a non-empty delivery body; raises :class:`EnvelopeError` with a reason code."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError("not_json", str(exc)) from None
    if type(document) is not dict:
        raise EnvelopeError("not_an_object", f"the body is a JSON {type(document).__name__}")
    event_id = _text_field(document, "event_id", required=True)
    event_type = _text_field(document, "event_type", required=True)
    timestamp_text = document.get("event_timestamp")
    if not isinstance(timestamp_text, str):
        raise EnvelopeError("missing_event_timestamp", "the envelope has no 'event_timestamp'")
    try:
        timestamp = parse_timestamp(timestamp_text)
    except ValueError as exc:
        raise EnvelopeError("invalid_event_timestamp", str(exc)) from None
    resource = document.get("event_resource")
    schema = document.get("event_schema")
    assert event_id is not None and event_type is not None
    return Envelope(  # positional: cheaper on the hot path
        _text_field(document, "id", required=False),  # delivery_id
        event_id,
        optional_text(schema),  # event_schema
        resource if isinstance(resource, str) else None,  # event_resource
        event_type,
        timestamp_text,  # event_timestamp
        timestamp,
        document.get("data"),
    )
