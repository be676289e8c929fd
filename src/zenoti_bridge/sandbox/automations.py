"""Webhook automations as configured in Zenoti, and the sandbox's persistent state.

A webhook is what Zenoti's form holds (zenoti/README.md §3): name, description, subscription
(the organization or one center), Event Type (the catalog family, "Guest Membership"), Event Name
("Created", "Booking No Show"), action (Webhook), HTTP verb and URL, plus the signing secret.

:class:`SandboxState` keeps the webhooks, every delivery attempt (the delivery log, whose failed
rows are each webhook's failure log) and the emails sent, in one SQLite file::

    state = SandboxState("sandbox.db", clock)
    hook = state.create_webhook(WebhookSpec(
        name="memberships", event_type="Guest Membership", event_name="Created",
        url="http://127.0.0.1:8000/webhooks/zenoti/acme", secret="s3cret",
    ))
    state.matching(occurrence)  # the active webhooks that receive it

Schema (``PRAGMA user_version`` = 1; times are UTC ISO-8601 text):

- ``webhooks``: the form's fields (``event_type`` is the family, ``event_name`` the UI label,
  ``catalog_type`` the event type it stands for, ``Guest.Membership.Created``), ``active``,
  ``consecutive_failures``, ``deactivated_at``, ``created_at``, ``updated_at``.
- ``attempts``: one row per request sent: ``kind`` (``event`` or ``test``), ``webhook_id``,
  ``event_id``, ``event_type``, ``delivery_id`` (the envelope's ``id``, kept across retries),
  ``number`` (1 to 6), ``http_verb``, ``url``, ``outcome`` (``success``/``failure``), ``status``
  (HTTP status or NULL), ``error`` ("HTTP 500", "timeout after 10 s", "connection refused"),
  ``response`` (first 500 characters), ``duration`` (seconds on the sandbox clock).
- ``emails``: ``webhook_id``, ``recipient``, ``subject``, ``body``, ``transport`` (``outbox`` or
  ``smtp``), ``failure_log_url``, ``error`` (NULL when sent).
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..catalog import FAMILIES, lookup, types_in_family
from ..errors import NotFound, ZenotiBridgeError
from ..setup_guide import event_name
from .model import Occurrence, SandboxClock
from .timing import RealClock

ORGANIZATION = "organization"
ACTIONS = ("Webhook",)
HTTP_VERBS = ("POST", "PUT", "PATCH")
RESPONSE_EXCERPT = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS webhooks (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    subscription TEXT NOT NULL,
    event_type TEXT NOT NULL,
    event_name TEXT NOT NULL,
    catalog_type TEXT NOT NULL,
    action TEXT NOT NULL,
    http_verb TEXT NOT NULL,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    active INTEGER NOT NULL,
    consecutive_failures INTEGER NOT NULL,
    deactivated_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS webhooks_by_type ON webhooks (catalog_type, active);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    webhook_id INTEGER NOT NULL,
    event_id TEXT,
    event_type TEXT,
    delivery_id TEXT,
    number INTEGER NOT NULL,
    http_verb TEXT NOT NULL,
    url TEXT NOT NULL,
    outcome TEXT NOT NULL,
    status INTEGER,
    error TEXT,
    response TEXT NOT NULL,
    duration REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS attempts_by_webhook ON attempts (webhook_id, outcome, id);
CREATE INDEX IF NOT EXISTS attempts_by_event ON attempts (event_id);
CREATE TABLE IF NOT EXISTS emails (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    webhook_id INTEGER,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    transport TEXT NOT NULL,
    failure_log_url TEXT,
    error TEXT
);
PRAGMA user_version = 1;
"""


class InvalidWebhook(ZenotiBridgeError):
    """A webhook's fields cannot be saved; the message names the field and the valid values."""


def _label_key(label: str) -> str:
    return re.sub(r"[^0-9a-z]", "", label.lower())


def event_names(family: str) -> dict[str, str]:
    """The "Event Name" choices of one "Event Type" family, each with its catalog type."""
    return {event_name(t.name, family): t.name for t in types_in_family(family)}


@dataclass(frozen=True, slots=True)
class WebhookSpec:
    """What the webhook form holds: everything an administrator can set or change."""

    name: str
    event_type: str
    event_name: str
    url: str
    description: str = ""
    subscription: str = ORGANIZATION
    http_verb: str = "POST"
    secret: str = ""
    action: str = "Webhook"

    def validated(self) -> WebhookSpec:
        """The spec in canonical form (labels, verb and center id case), or InvalidWebhook."""
        family = _choose("event type", self.event_type, FAMILIES)
        name = _choose(f"event name for {family!r}", self.event_name, tuple(event_names(family)))
        return replace(
            self,
            name=_required("name", self.name),
            event_type=family,
            event_name=name,
            url=_checked_url(self.url),
            subscription=_subscription(self.subscription),
            http_verb=_choose("HTTP verb", self.http_verb, HTTP_VERBS),
            action=_choose("action", self.action, ACTIONS),
        )

    @property
    def catalog_type(self) -> str:
        """The event type this webhook receives (``Class.Booking.NoShow``); spec must be valid."""
        return event_names(self.event_type)[self.event_name]


def _required(field: str, value: str) -> str:
    text = value.strip()
    if not text:
        raise InvalidWebhook(f"{field} is required")
    return text


def _choose(field: str, value: str, choices: tuple[str, ...]) -> str:
    wanted = _label_key(value)
    for choice in choices:
        if _label_key(choice) == wanted:
            return choice
    listed = ", ".join(repr(choice) for choice in choices)
    raise InvalidWebhook(f"unknown {field} {value!r}; choose one of {listed}")


def _checked_url(url: str) -> str:
    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise InvalidWebhook(f"URL {url!r} must be an absolute http:// or https:// address")
    return text


def _subscription(value: str) -> str:
    text = _required("subscription", value).lower()
    # center ids are GUIDs, compared lowercase like the occurrences' center_id
    return ORGANIZATION if text == ORGANIZATION else text


@dataclass(frozen=True, slots=True)
class Webhook:
    """One configured webhook with its delivery status."""

    id: int
    name: str
    description: str
    subscription: str
    event_type: str
    event_name: str
    action: str
    http_verb: str
    url: str
    secret: str
    active: bool
    consecutive_failures: int
    deactivated_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @property
    def spec(self) -> WebhookSpec:
        """The form's fields, to edit with :func:`dataclasses.replace`."""
        return WebhookSpec(
            name=self.name,
            event_type=self.event_type,
            event_name=self.event_name,
            url=self.url,
            description=self.description,
            subscription=self.subscription,
            http_verb=self.http_verb,
            secret=self.secret,
            action=self.action,
        )

    @property
    def catalog_type(self) -> str:
        """The event type this webhook receives."""
        return self.spec.catalog_type


class Outcome(StrEnum):
    """How one attempt ended."""

    SUCCESS = "success"
    FAILURE = "failure"


class AttemptKind(StrEnum):
    """An event delivery, or the form's test button."""

    EVENT = "event"
    TEST = "test"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One request sent to a webhook, as the delivery log shows it (``id`` 0 until logged)."""

    at: datetime
    kind: AttemptKind
    webhook_id: int
    event_id: str | None
    event_type: str | None
    delivery_id: str | None
    number: int
    http_verb: str
    url: str
    outcome: Outcome
    status: int | None
    error: str | None
    response: str
    duration: float
    id: int = 0


@dataclass(frozen=True, slots=True)
class SentEmail:
    """One email the sandbox sent (or failed to send: ``error`` says why)."""

    at: datetime
    webhook_id: int | None
    recipient: str
    subject: str
    body: str
    transport: str
    failure_log_url: str | None
    error: str | None = None
    id: int = 0


_WEBHOOK_COLUMNS = (
    "id, name, description, subscription, event_type, event_name, action, http_verb, url, "
    "secret, active, consecutive_failures, deactivated_at, created_at, updated_at"
)
_ATTEMPT_COLUMNS = (
    "at, kind, webhook_id, event_id, event_type, delivery_id, number, http_verb, url, outcome, "
    "status, error, response, duration, id"
)
_EMAIL_COLUMNS = "at, webhook_id, recipient, subject, body, transport, failure_log_url, error, id"


def _time(value: datetime) -> str:
    return value.isoformat()


def _webhook(row: sqlite3.Row) -> Webhook:
    values = dict(row)
    deactivated = values["deactivated_at"]
    return Webhook(
        **{
            **values,
            "active": bool(values["active"]),
            "deactivated_at": None if deactivated is None else datetime.fromisoformat(deactivated),
            "created_at": datetime.fromisoformat(values["created_at"]),
            "updated_at": datetime.fromisoformat(values["updated_at"]),
        }
    )


def _attempt(row: sqlite3.Row) -> Attempt:
    values = dict(row)
    return Attempt(
        **{
            **values,
            "at": datetime.fromisoformat(values["at"]),
            "kind": AttemptKind(values["kind"]),
            "outcome": Outcome(values["outcome"]),
        }
    )


def _email(row: sqlite3.Row) -> SentEmail:
    values = dict(row)
    return SentEmail(**{**values, "at": datetime.fromisoformat(values["at"])})


class SandboxState:
    """The sandbox's SQLite file (or ``":memory:"``): webhooks, delivery log, sent emails.

    Calls are short and synchronous; a lock makes them safe from worker threads too.
    """

    def __init__(self, path: str | Path = ":memory:", clock: SandboxClock | None = None) -> None:
        self._clock = clock or RealClock()
        self._lock = threading.Lock()
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _rows(self, sql: str, *params: Any) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    # -- webhooks ----------------------------------------------------------------------------

    def create_webhook(self, spec: WebhookSpec) -> Webhook:
        """Validate and save a new webhook."""
        spec = spec.validated()
        now = _time(self._clock.now())
        with self._transaction() as conn:
            row = conn.execute(
                "INSERT INTO webhooks (name, description, subscription, event_type, event_name,"
                " catalog_type, action, http_verb, url, secret, active, consecutive_failures,"
                " deactivated_at, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, 0, NULL, ?, ?)"
                f" RETURNING {_WEBHOOK_COLUMNS}",
                (*_spec_values(spec), now, now),
            ).fetchone()
        return _webhook(row)

    def get_webhook(self, webhook_id: int) -> Webhook:
        """One webhook, or :class:`NotFound`."""
        rows = self._rows(f"SELECT {_WEBHOOK_COLUMNS} FROM webhooks WHERE id = ?", webhook_id)
        if not rows:
            raise NotFound(f"webhook {webhook_id} does not exist")
        return _webhook(rows[0])

    def list_webhooks(self, active: bool | None = None) -> list[Webhook]:
        """Every webhook, or only the active (or inactive) ones, oldest first."""
        where = "" if active is None else f"WHERE active = {int(active)}"
        return [
            _webhook(row)
            for row in self._rows(f"SELECT {_WEBHOOK_COLUMNS} FROM webhooks {where} ORDER BY id")
        ]

    def update_webhook(self, webhook_id: int, spec: WebhookSpec) -> Webhook:
        """Replace a webhook's form fields; its status and counters are kept."""
        spec = spec.validated()
        with self._transaction() as conn:
            row = conn.execute(
                "UPDATE webhooks SET name = ?, description = ?, subscription = ?, event_type = ?,"
                " event_name = ?, catalog_type = ?, action = ?, http_verb = ?, url = ?,"
                f" secret = ?, updated_at = ? WHERE id = ? RETURNING {_WEBHOOK_COLUMNS}",
                (*_spec_values(spec), _time(self._clock.now()), webhook_id),
            ).fetchone()
        if row is None:
            raise NotFound(f"webhook {webhook_id} does not exist")
        return _webhook(row)

    def delete_webhook(self, webhook_id: int) -> None:
        """Remove a webhook; its delivery log stays."""
        with self._transaction() as conn:
            deleted = conn.execute("DELETE FROM webhooks WHERE id = ?", (webhook_id,)).rowcount
        if not deleted:
            raise NotFound(f"webhook {webhook_id} does not exist")

    def matching(self, occurrence: Occurrence) -> list[Webhook]:
        """The active webhooks that receive ``occurrence``: same event type, and subscribed to
        the organization or to the occurrence's center."""
        center = (occurrence.center_id or "").lower()
        return [
            _webhook(row)
            for row in self._rows(
                f"SELECT {_WEBHOOK_COLUMNS} FROM webhooks WHERE active = 1 AND catalog_type = ?"
                " AND subscription IN (?, ?) ORDER BY id",
                lookup(occurrence.event_type).name,
                ORGANIZATION,
                center or ORGANIZATION,
            )
        ]

    # -- delivery status ---------------------------------------------------------------------

    def record_failure(self, webhook_id: int, deactivate_after: int) -> Webhook | None:
        """Count one failure against an active webhook; at ``deactivate_after`` consecutive
        failures it is deactivated. Returns the webhook, inactive when this call deactivated it,
        or None when it is not active (failures of an inactive webhook count for nothing)."""
        with self._transaction() as conn:
            row = conn.execute(
                "UPDATE webhooks SET consecutive_failures = consecutive_failures + 1"
                " WHERE id = ? AND active = 1 RETURNING consecutive_failures",
                (webhook_id,),
            ).fetchone()
            if row is not None and row[0] >= deactivate_after:
                now = _time(self._clock.now())
                conn.execute(
                    "UPDATE webhooks SET active = 0, deactivated_at = ?, updated_at = ?"
                    " WHERE id = ?",
                    (now, now, webhook_id),
                )
        return None if row is None else self.get_webhook(webhook_id)

    def record_success(self, webhook_id: int) -> None:
        """A delivery succeeded: the webhook's consecutive failures start again from zero."""
        with self._transaction() as conn:
            conn.execute(
                "UPDATE webhooks SET consecutive_failures = 0 WHERE id = ? AND active = 1",
                (webhook_id,),
            )

    def reactivate(self, webhook_id: int) -> Webhook:
        """Make a webhook active again, with its failure counter at zero."""
        now = _time(self._clock.now())
        with self._transaction() as conn:
            found = conn.execute(
                "UPDATE webhooks SET active = 1, consecutive_failures = 0, deactivated_at = NULL,"
                " updated_at = ? WHERE id = ?",
                (now, webhook_id),
            ).rowcount
        if not found:
            raise NotFound(f"webhook {webhook_id} does not exist")
        return self.get_webhook(webhook_id)

    # -- delivery log ------------------------------------------------------------------------

    def log_attempt(self, attempt: Attempt) -> Attempt:
        """Append one attempt to the delivery log; returns it with its id."""
        with self._transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO attempts (at, kind, webhook_id, event_id, event_type, delivery_id,"
                " number, http_verb, url, outcome, status, error, response, duration)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    _time(attempt.at),
                    attempt.kind.value,
                    attempt.webhook_id,
                    attempt.event_id,
                    attempt.event_type,
                    attempt.delivery_id,
                    attempt.number,
                    attempt.http_verb,
                    attempt.url,
                    attempt.outcome.value,
                    attempt.status,
                    attempt.error,
                    attempt.response[:RESPONSE_EXCERPT],
                    attempt.duration,
                ),
            )
        return replace(attempt, id=cursor.lastrowid or 0)

    def attempts(
        self,
        webhook_id: int | None = None,
        *,
        event_id: str | None = None,
        outcome: Outcome | None = None,
        limit: int = 1000,
        newest_first: bool = False,
    ) -> list[Attempt]:
        """The delivery log, oldest first (or newest first), optionally for one webhook, event
        or outcome."""
        filters = {"webhook_id": webhook_id, "event_id": event_id, "outcome": outcome}
        used = {name: value for name, value in filters.items() if value is not None}
        where = " AND ".join(f"{name} = ?" for name in used) or "1 = 1"
        order = "id DESC" if newest_first else "id"
        return [
            _attempt(row)
            for row in self._rows(
                f"SELECT {_ATTEMPT_COLUMNS} FROM attempts WHERE {where} ORDER BY {order} LIMIT ?",
                *used.values(),
                limit,
            )
        ]

    def failures(self, webhook_id: int, limit: int = 100) -> list[Attempt]:
        """A webhook's failure log: its failed attempts, newest first."""
        return [
            _attempt(row)
            for row in self._rows(
                f"SELECT {_ATTEMPT_COLUMNS} FROM attempts WHERE webhook_id = ? AND outcome = ?"
                " ORDER BY id DESC LIMIT ?",
                webhook_id,
                Outcome.FAILURE.value,
                limit,
            )
        ]

    # -- emails ------------------------------------------------------------------------------

    def log_email(self, email: SentEmail) -> SentEmail:
        """Record an email sent (or not sent: ``error``); returns it with its id."""
        with self._transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO emails (at, webhook_id, recipient, subject, body, transport,"
                " failure_log_url, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    _time(email.at),
                    email.webhook_id,
                    email.recipient,
                    email.subject,
                    email.body,
                    email.transport,
                    email.failure_log_url,
                    email.error,
                ),
            )
        return replace(email, id=cursor.lastrowid or 0)

    def emails(self, webhook_id: int | None = None, limit: int = 100) -> list[SentEmail]:
        """Sent emails, newest first, optionally about one webhook."""
        where = "" if webhook_id is None else "WHERE webhook_id = ?"
        params = () if webhook_id is None else (webhook_id,)
        return [
            _email(row)
            for row in self._rows(
                f"SELECT {_EMAIL_COLUMNS} FROM emails {where} ORDER BY id DESC LIMIT ?",
                *params,
                limit,
            )
        ]


def _spec_values(spec: WebhookSpec) -> tuple[str, ...]:
    return (
        spec.name,
        spec.description,
        spec.subscription,
        spec.event_type,
        spec.event_name,
        spec.catalog_type,
        spec.action,
        spec.http_verb,
        spec.url,
        spec.secret,
    )
