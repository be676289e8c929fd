"""The webhook endpoint: ``POST|PUT|PATCH /webhooks/zenoti/{source}``.

A raw ASGI app: it is the hot path, so it verifies, parses just enough to find the dedupe key,
hands the raw bytes to the store and answers. The answers are the table in DESIGN.md:

    accepted 200 · duplicate 200 · ping 200 · quarantined 202 · bad signature or token 401 ·
    unknown source 404 · other verb 405 · body over the limit 413 · store unavailable 503

This module is the one place where errors become HTTP statuses for webhooks.
"""

from __future__ import annotations

import hmac
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson

from . import catalog, signature
from .clock import Clock, system_clock
from .config import Settings, SourceConfig
from .envelope import optional_text, parse_envelope
from .errors import EnvelopeError, StorageUnavailable
from .metrics import Metrics
from .storage import IncomingEvent, Outcome, QuarantineItem, Store

log = logging.getLogger(__name__)

PREFIX = "/webhooks/zenoti/"
VERBS = frozenset({"POST", "PUT", "PATCH"})
SECRET_HEADERS = frozenset(
    {b"authorization", b"proxy-authorization", b"cookie", b"x-api-key", b"x-zenoti-bridge-token"}
)
RETRY_AFTER_SECONDS = 5
DEFAULT_CONSUMERS = ("mirror",)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class _Source:
    name: str
    config: SourceConfig
    secrets: tuple[bytes, ...]
    header: bytes
    token: bytes | None


class _TooLarge(Exception):
    pass


class _Disconnected(Exception):
    pass


def _json(
    status: int, payload: dict[str, Any], extra: Iterable[tuple[bytes, bytes]] = ()
) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    body = orjson.dumps(payload)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *extra,
    ]
    return status, body, headers


# any other header whose name says it carries a credential (x-auth-token, x-api-key, ...)
_CREDENTIAL = re.compile(rb"auth|token|secret|passw|api-?key|cookie|session|credential", re.I)


class _CredentialNames(dict[bytes, bool]):
    """Header name -> whether it carries a credential, decided once per name (a lookup on the
    hot path; names come from senders, so the memory is bounded)."""

    def __missing__(self, name: bytes) -> bool:
        known = name.lower() in SECRET_HEADERS or _CREDENTIAL.search(name) is not None
        if len(self) < 4096:
            self[name] = known
        return known


_is_credential = _CredentialNames()


def _clean_headers(raw: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The request headers verbatim, in order, as JSON pairs, without credentials."""
    return orjson.dumps(
        [
            [name.decode("latin-1"), value.decode("latin-1")]
            for name, value in raw
            if not _is_credential[name]
        ]
    )


class Intake:
    """The ASGI app mounted at ``/webhooks/zenoti/``."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        metrics: Metrics | None = None,
        clock: Clock = system_clock,
        consumers: tuple[str, ...] = DEFAULT_CONSUMERS,
        on_accept: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.on_accept = on_accept
        self.metrics = metrics or Metrics()
        self.clock = clock
        self.consumers = consumers
        self.sources = {
            name: _Source(
                name=name,
                config=source,
                secrets=tuple(s.encode() for s in source.webhook_secrets),
                header=source.signature_header.encode(),
                token=source.url_token.encode() if source.url_token else None,
            )
            for name, source in settings.sources.items()
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        status, body, headers = await self._handle(scope, receive)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _handle(
        self, scope: Scope, receive: Receive
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        name = scope["path"][len(PREFIX) :].rstrip("/")
        source = self.sources.get(name)
        if source is None:
            self.metrics.count("-", "not_found")
            return _json(404, {"error": "unknown_source", "message": f"no source named {name!r}"})
        verb = scope["method"]
        if verb not in VERBS:
            self.metrics.count(name, "method_not_allowed")
            return _json(
                405,
                {
                    "error": "method_not_allowed",
                    "message": f"{verb} is not accepted; use POST, PUT or PATCH",
                },
                [(b"allow", b"POST, PUT, PATCH")],
            )
        raw_headers: list[tuple[bytes, bytes]] = scope["headers"]
        limit = source.config.max_body_bytes
        query = scope.get("query_string", b"")
        if source.token is not None and not self._token_ok(source.token, query):
            self.metrics.count(name, "unauthorized")
            return _json(401, {"error": "unauthorized", "message": "missing or wrong URL token"})
        try:
            body = await _read_body(receive, raw_headers, limit)
        except _TooLarge:
            self.metrics.count(name, "too_large")
            return _json(
                413,
                {"error": "payload_too_large", "message": f"bodies are limited to {limit} bytes"},
                [(b"connection", b"close")],
            )
        except _Disconnected:
            return _json(400, {"error": "disconnected", "message": "the body did not arrive"})
        if not body.strip():
            self.metrics.count(name, "ping")
            return _json(200, {"status": "ping"})

        verdict = self._verdict(source, raw_headers, body)
        if verdict is not signature.Verdict.VALID and source.config.signature == "enforce":
            self.metrics.count(name, "unauthorized")
            return _json(401, {"error": "unauthorized", "message": f"signature {verdict}"})

        received_at = self.clock()
        headers_json = _clean_headers(raw_headers)
        query_text = _redact_query(query, source.token is not None)
        try:
            envelope = parse_envelope(body)
        except EnvelopeError as exc:
            return await self._quarantine(
                source,
                verb,
                verdict,
                exc.reason,
                exc.detail,
                headers_json,
                query_text,
                body,
                received_at,
            )
        kind = catalog.lookup(envelope.event_type)
        entity_id, ordering_key = kind.keys(envelope.data)
        # positional: with 20 fields, keyword arguments cost a microsecond more per request
        event = IncomingEvent(
            name,  # source
            envelope.event_id,
            envelope.delivery_id,
            envelope.event_type,
            kind.name,  # type_name
            kind.family,
            kind.resource,
            entity_id,
            ordering_key,
            kind.routed,
            envelope.event_schema,
            envelope.event_timestamp,
            envelope.timestamp,  # event_ts
            received_at,
            verb,
            verdict,  # signature
            headers_json,  # headers
            query_text,  # query
            body,
            self.consumers if kind.routed else (),  # consumers
        )
        started = time.perf_counter()
        try:
            recorded = await self.store.record_event(event)
        except StorageUnavailable as exc:
            return self._unavailable(name, exc)
        self.metrics.store_seconds.observe(time.perf_counter() - started)
        outcome = recorded.outcome
        self.metrics.count(name, outcome)  # a StrEnum: the same key as its text
        if self.on_accept is not None and outcome is Outcome.ACCEPTED and event.consumers:
            self.on_accept()
        if not kind.routed and outcome is Outcome.ACCEPTED:
            log.warning("source %s: unrouted event type %r stored", name, envelope.event_type)
        return _json(200, {"status": outcome, "event_id": envelope.event_id})

    def _verdict(
        self, source: _Source, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> signature.Verdict:
        if source.config.signature == "off":
            return signature.Verdict.UNCHECKED
        claimed = None
        for key, value in headers:
            if key == source.header:
                claimed = value
                break
        verdict = signature.verify(body, claimed, source.secrets)
        self.metrics.verdict(source.name, verdict)
        return verdict

    @staticmethod
    def _token_ok(expected: bytes, query: bytes) -> bool:
        for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if key == "token":
                return hmac.compare_digest(value.encode("latin-1"), expected)
        return False

    async def _quarantine(
        self,
        source: _Source,
        verb: str,
        verdict: signature.Verdict,
        reason: str,
        detail: str,
        headers_json: bytes,
        query: str,
        body: bytes,
        received_at: Any,
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        item = QuarantineItem(
            source=source.name,
            received_at=received_at,
            verb=verb,
            signature=verdict,
            reason=reason,
            detail=detail[:1000].replace("\x00", "\\x00"),  # PostgreSQL's text refuses NUL
            headers=headers_json,
            query=query,
            body=body,
            event_id=_guess_event_id(body),
        )
        try:
            pk = await self.store.quarantine(item)
        except StorageUnavailable as exc:
            return self._unavailable(source.name, exc)
        self.metrics.count(source.name, "quarantined")
        log.warning("source %s: quarantined delivery %d (%s: %s)", source.name, pk, reason, detail)
        return _json(202, {"status": "quarantined", "id": pk, "reason": reason})

    def _unavailable(
        self, source: str, exc: StorageUnavailable
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        self.metrics.count(source, "unavailable")
        log.error("source %s: store unavailable, answered 503: %s", source, exc)
        return _json(
            503,
            {"error": "store_unavailable", "message": "the event was not stored; retry later"},
            [(b"retry-after", str(RETRY_AFTER_SECONDS).encode())],
        )


async def _read_body(receive: Receive, headers: list[tuple[bytes, bytes]], limit: int) -> bytes:
    """The request body, refusing (before reading) anything over ``limit`` bytes."""
    for key, value in headers:
        if key == b"content-length":
            try:
                if int(value) > limit:
                    raise _TooLarge
            except ValueError:
                pass  # the server rejects malformed lengths; count the bytes instead
            break
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected  # a partial body is never stored; the sender will retry
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _redact_query(query: bytes, has_token: bool) -> str:
    text = query.decode("latin-1")
    if "\x00" in text:  # a raw NUL (not %00) in the URL: kept, but as text PostgreSQL can hold
        text = text.replace("\x00", "%00")
    if not has_token or "token" not in text:
        return text
    pairs = parse_qsl(text, keep_blank_values=True)
    return urlencode([(k, "***" if k == "token" else v) for k, v in pairs])


def _guess_event_id(body: bytes) -> str | None:
    """The event_id of a quarantined body, when there is a usable one, for later matching."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if isinstance(document, dict):
        return optional_text(document.get("event_id")) or None
    return None
