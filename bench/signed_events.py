"""Pre-signed, unique events for load generators: one ``signature<TAB>body`` per line.

Every body is the Guest.Created sample from ``tests/fixtures/zenoti/payloads`` exactly as stored
there (indentation kept, line breaks removed: about 1.6 KB), with its own 24-hex ``event_id`` and
``id`` (ObjectId-shaped: four bytes of the run's start time, then a counter), signed with
:func:`zenoti_bridge.signature.sign`. Signing happens here, before any measurement, so the load
generator only copies bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from zenoti_bridge.signature import sign

FIXTURE = Path(__file__).resolve().parents[1] / "tests/fixtures/zenoti/payloads/Guest.Created.json"


@dataclass(frozen=True, slots=True)
class EventFile:
    """A file of signed events and the event ids in it, in file order."""

    path: Path
    event_ids: tuple[str, ...]
    body_bytes: int

    def __len__(self) -> int:
        return len(self.event_ids)


def object_ids(epoch_seconds: int, first: int, count: int) -> Iterator[tuple[str, str]]:
    """``count`` pairs of distinct 24-hex ids (event_id, delivery id), numbered from ``first``."""
    stamp = f"{epoch_seconds & 0xFFFFFFFF:08x}"
    for number in range(first, first + count):
        yield f"{stamp}{2 * number:016x}", f"{stamp}{2 * number + 1:016x}"


@dataclass(frozen=True, slots=True)
class _Template:
    """The sample on one line, split around its two ids."""

    head: bytes
    middle: bytes
    tail: bytes

    def body(self, delivery_id: str, event_id: str) -> bytes:
        parts = (self.head, delivery_id.encode(), self.middle, event_id.encode(), self.tail)
        return b"".join(parts)


def _template() -> _Template:
    text = FIXTURE.read_bytes().replace(b"\r", b"").replace(b"\n", b"")
    document: dict[str, Any] = orjson.loads(text)
    delivery, event = document["id"].encode(), document["event_id"].encode()
    head, _, rest = text.partition(b'"id": "' + delivery + b'"')
    middle, _, tail = rest.partition(b'"event_id": "' + event + b'"')
    if not tail:
        raise ValueError(f'{FIXTURE}: expected "id" before "event_id"')
    return _Template(head + b'"id": "', b'"' + middle + b'"event_id": "', b'"' + tail)


def write_event_file(
    path: Path, *, secret: str, epoch_seconds: int, first: int, count: int
) -> EventFile:
    """Write ``count`` signed events numbered from ``first``; every id is new within the run."""
    template = _template()
    event_ids: list[str] = []
    size = 0
    with path.open("wb") as out:
        for event_id, delivery_id in object_ids(epoch_seconds, first, count):
            body = template.body(delivery_id, event_id)
            out.write(sign(secret, body).encode() + b"\t" + body + b"\n")
            event_ids.append(event_id)
            size = len(body)
    return EventFile(path=path, event_ids=tuple(event_ids), body_bytes=size)


def read_requests(events: EventFile, host: str, path: str) -> Iterator[tuple[str, bytes]]:
    """(event_id, complete HTTP/1.1 request) for every line, for the built-in generator."""
    with events.path.open("rb") as lines:
        for event_id, line in zip(events.event_ids, lines, strict=True):
            signature, _, body = line.rstrip(b"\n").partition(b"\t")
            head = (
                f"POST {path} HTTP/1.1\r\nHost: {host}\r\ncontent-type: application/json\r\n"
                f"zenoti-webhook-signature: {signature.decode()}\r\n"
                f"content-length: {len(body)}\r\n\r\n"
            )
            yield event_id, head.encode() + body
