"""Zenoti's delivery policy, and the engine that plays it against the configured webhooks.

The policy (zenoti/README.md §3): each request waits 10 s; a failed delivery (non-2xx, timeout,
connection error) is retried up to 5 times with exponential backoff between 30 s and 10 min;
20 consecutive failures deactivate the webhook and email the administrator. Events that happen
while a webhook is inactive are never sent to it, not even after it is reactivated.

Every wait runs on the engine's :class:`~.model.SandboxClock`, so with a
:class:`~.timing.FakeClock` a test plays the whole policy in milliseconds::

    engine = DeliveryEngine(state, clock, DeliveryPolicy(), OutboxMailer("outbox"),
                            failure_log_url=lambda hook: f"http://sandbox/webhooks/{hook.id}/failures")
    await engine.start()
    await engine.submit(occurrence)  # one delivery per matching active webhook
    await engine.idle()              # no request in flight; retries wait on the clock
    await engine.stop()
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from ..errors import NotFound
from ..signature import DEFAULT_HEADER, sign
from .automations import Attempt, AttemptKind, Outcome, SandboxState, Webhook
from .mail import Mailer, send_deactivation_email
from .model import Occurrence, SandboxClock, object_id
from .timing import within

log = logging.getLogger(__name__)

FailureCount = Literal["attempts", "events"]


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """How Zenoti delivers, as data; the defaults are Zenoti's documented values.

    ``count`` decides what "20 consecutive failures" counts, which Zenoti does not document:
    ``"attempts"`` (every failed request, the stricter reading) or ``"events"`` (an event counts
    once, when all its attempts have failed). ``jitter`` spreads each delay by up to that
    fraction either way, always kept within ``[backoff_initial, backoff_max]``.
    """

    timeout: float = 10.0
    retries: int = 5
    backoff_initial: float = 30.0
    backoff_factor: float = 2.0
    backoff_max: float = 600.0
    jitter: float = 0.0
    deactivate_after: int = 20
    count: FailureCount = "attempts"

    def __post_init__(self) -> None:
        checks = {
            "timeout must be positive": self.timeout > 0,
            "retries must be 0 or more": self.retries >= 0,
            "backoff needs 0 < backoff_initial <= backoff_max": (
                0 < self.backoff_initial <= self.backoff_max
            ),
            "backoff_factor must be at least 1": self.backoff_factor >= 1,
            "jitter must be within [0, 1]": 0 <= self.jitter <= 1,
            "deactivate_after must be at least 1": self.deactivate_after >= 1,
            f"count must be 'attempts' or 'events', not {self.count!r}": (
                self.count in ("attempts", "events")
            ),
        }
        problems = [message for message, holds in checks.items() if not holds]
        if problems:
            raise ValueError("invalid delivery policy: " + "; ".join(problems))

    @property
    def max_attempts(self) -> int:
        """Attempts per event and webhook: the first one plus the retries."""
        return self.retries + 1

    def nominal_backoff(self, failed: int) -> float:
        """Seconds from a delivery's ``failed``-th failed attempt to the next, unjittered."""
        exponent = min(failed - 1, 64)  # past 2**64 the cap has long been reached
        return min(self.backoff_max, self.backoff_initial * self.backoff_factor**exponent)

    def backoff(self, failed: int, rng: random.Random) -> float:
        """The delay after the ``failed``-th failed attempt, jittered when ``jitter`` is set."""
        delay = self.nominal_backoff(failed)
        if self.jitter:
            delay *= 1 + self.jitter * (2 * rng.random() - 1)
        return min(self.backoff_max, max(self.backoff_initial, delay))

    def schedule(self) -> tuple[float, ...]:
        """Every nominal delay of one delivery: ``(30, 60, 120, 240, 480)`` by default."""
        return tuple(self.nominal_backoff(failed) for failed in range(1, self.max_attempts))


@dataclass(frozen=True, slots=True)
class Delivery:
    """One occurrence on its way to one webhook. ``id`` is the envelope's ``id``; every retry of
    the delivery sends it again (whether Zenoti does is not documented)."""

    id: str
    webhook_id: int
    occurrence: Occurrence


@dataclass(frozen=True, slots=True)
class _Reply:
    outcome: Outcome
    status: int | None
    error: str | None
    response: str


class DeliveryEngine:
    """Sends occurrences to the matching webhooks with Zenoti's policy.

    Each delivery runs in its own task, and at most ``concurrency`` requests go to one webhook
    at a time, so a slow endpoint only ever delays itself.
    """

    def __init__(
        self,
        state: SandboxState,
        clock: SandboxClock,
        policy: DeliveryPolicy,
        mailer: Mailer,
        failure_log_url: Callable[[Webhook], str],
        client: httpx.AsyncClient | None = None,
        concurrency: int = 32,
        rng: random.Random | None = None,
    ) -> None:
        self.state = state
        self.clock = clock
        self.policy = policy
        self.mailer = mailer
        self.failure_log_url = failure_log_url
        self.concurrency = concurrency
        self._client = client
        self._owns_client = client is None
        self._rng = rng or random.Random()
        self._tasks: dict[int, set[asyncio.Task[None]]] = {}
        self._sending: set[asyncio.Task[Any]] = set()
        self._gates: dict[int, asyncio.Semaphore] = {}
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the HTTP client (unless one was given)."""
        if self._client is None:
            # no pool limit: per-webhook gates, not one shared pool, bound the connections
            self._client = httpx.AsyncClient(
                timeout=None,  # noqa: S113 - within() times requests out on the engine's clock
                limits=httpx.Limits(max_connections=None),
            )

    async def stop(self) -> None:
        """Cancel every pending delivery and retry; close the HTTP client if the engine made it."""
        tasks = [task for group in self._tasks.values() for task in group]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def idle(self) -> None:
        """Wait until no delivery is doing anything but waiting on the clock for a retry."""
        await self._idle.wait()

    @property
    def in_flight(self) -> int:
        """How many requests are waiting for an answer."""
        return len(self._sending)

    # -- operations --------------------------------------------------------------------------

    async def submit(self, occurrence: Occurrence) -> list[Delivery]:
        """Start one delivery of ``occurrence`` to every matching active webhook."""
        self._require_client()
        deliveries = [
            Delivery(object_id(self.clock.now()), webhook.id, occurrence)
            for webhook in self.state.matching(occurrence)
        ]
        for delivery in deliveries:
            self._spawn(delivery.webhook_id, self._deliver(delivery))
        return deliveries

    async def test(self, webhook_id: int) -> Attempt:
        """Zenoti's test button: an empty, unsigned POST, logged; counts nothing, active or not."""
        self._require_client()
        webhook = self.state.get_webhook(webhook_id)
        return await self._send(webhook, "POST", b"", {}, kind=AttemptKind.TEST, number=1)

    def reactivate(self, webhook_id: int) -> Webhook:
        """Activate a deactivated webhook with its failure counter at zero; new events reach it,
        the ones that happened while it was inactive never will."""
        return self.state.reactivate(webhook_id)

    # -- one delivery ------------------------------------------------------------------------

    async def _deliver(self, delivery: Delivery) -> None:
        body = delivery.occurrence.body(delivery.id)
        for number in range(1, self.policy.max_attempts + 1):
            if number > 1:
                await self._wait(self.policy.backoff(number - 1, self._rng))
            if not await self._attempt(delivery, body, number):
                return
        if self.policy.count == "events":
            await self._count_failure(delivery.webhook_id)

    async def _attempt(self, delivery: Delivery, body: bytes, number: int) -> bool:
        """Send one attempt; True when it failed and the webhook is still active to retry."""
        async with self._gate(delivery.webhook_id):
            webhook = self._active(delivery.webhook_id)
            if webhook is None:
                return False
            attempt = await self._send(
                webhook,
                webhook.http_verb,
                body,
                _headers(webhook.secret, body),
                kind=AttemptKind.EVENT,
                number=number,
                delivery=delivery,
            )
        if attempt.outcome is Outcome.SUCCESS:
            self.state.record_success(webhook.id)
            return False
        if self.policy.count == "attempts":
            await self._count_failure(webhook.id)
        return self._active(webhook.id) is not None

    async def _send(
        self,
        webhook: Webhook,
        verb: str,
        body: bytes,
        headers: dict[str, str],
        *,
        kind: AttemptKind,
        number: int,
        delivery: Delivery | None = None,
    ) -> Attempt:
        started = self.clock.now()
        task = asyncio.current_task()
        assert task is not None  # always called from a task
        self._sending.add(task)
        try:
            reply = await self._exchange(verb, webhook.url, body, headers)
        finally:
            self._sending.discard(task)
        occurrence = None if delivery is None else delivery.occurrence
        return self.state.log_attempt(
            Attempt(
                at=started,
                kind=kind,
                webhook_id=webhook.id,
                event_id=None if occurrence is None else occurrence.event_id,
                event_type=None if occurrence is None else occurrence.event_type,
                delivery_id=None if delivery is None else delivery.id,
                number=number,
                http_verb=verb,
                url=webhook.url,
                outcome=reply.outcome,
                status=reply.status,
                error=reply.error,
                response=reply.response,
                duration=(self.clock.now() - started).total_seconds(),
            )
        )

    async def _exchange(self, verb: str, url: str, body: bytes, headers: dict[str, str]) -> _Reply:
        client = self._require_client()
        request = client.request(verb, url, content=body, headers=headers)
        try:
            response = await within(self.clock, self.policy.timeout, request)
        except TimeoutError:
            return _Reply(Outcome.FAILURE, None, f"timeout after {self.policy.timeout:g} s", "")
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            return _Reply(Outcome.FAILURE, None, _describe_error(exc), "")
        if response.is_success:
            return _Reply(Outcome.SUCCESS, response.status_code, None, response.text)
        status = response.status_code
        return _Reply(Outcome.FAILURE, status, f"HTTP {status}", response.text)

    # -- failures and deactivation -----------------------------------------------------------

    async def _count_failure(self, webhook_id: int) -> None:
        webhook = self.state.record_failure(webhook_id, self.policy.deactivate_after)
        if webhook is None or webhook.active:
            return
        log.warning("webhook %s (%s) deactivated after failures", webhook.id, webhook.name)
        self._drop_pending(webhook_id)
        await send_deactivation_email(
            self.mailer, self.state, webhook, self.failure_log_url(webhook), self.clock.now()
        )

    def _drop_pending(self, webhook_id: int) -> None:
        # retries waiting on the clock or for the gate go; requests already sent finish and are
        # logged, but an inactive webhook neither counts their failures nor retries them
        current = asyncio.current_task()
        for task in self._tasks.get(webhook_id, set()):
            if task is not current and task not in self._sending:
                task.cancel()

    def _active(self, webhook_id: int) -> Webhook | None:
        try:
            webhook = self.state.get_webhook(webhook_id)
        except NotFound:
            return None
        return webhook if webhook.active else None

    # -- tasks and bookkeeping ---------------------------------------------------------------

    def _require_client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError("the delivery engine is not started: await engine.start() first")
        return self._client

    def _gate(self, webhook_id: int) -> asyncio.Semaphore:
        return self._gates.setdefault(webhook_id, asyncio.Semaphore(self.concurrency))

    def _spawn(self, webhook_id: int, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.setdefault(webhook_id, set()).add(task)
        self._busy_by(1)
        task.add_done_callback(functools.partial(self._finished, webhook_id))

    def _finished(self, webhook_id: int, task: asyncio.Task[None]) -> None:
        self._tasks[webhook_id].discard(task)
        self._busy_by(-1)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("delivery to webhook %s crashed", webhook_id, exc_info=error)

    async def _wait(self, seconds: float) -> None:
        self._busy_by(-1)
        try:
            await self.clock.sleep(seconds)
        finally:
            self._busy_by(1)

    def _busy_by(self, change: int) -> None:
        self._busy += change
        if self._busy:
            self._idle.clear()
        else:
            self._idle.set()


def _headers(secret: str, body: bytes) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if secret:
        headers[DEFAULT_HEADER] = sign(secret, body)
    return headers


def _describe_error(exc: Exception) -> str:
    # short texts for the failure log: "connection refused", "timeout (ReadTimeout)", ...
    if isinstance(exc, httpx.ConnectError) and _caused_by(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, httpx.TimeoutException):
        return f"timeout ({type(exc).__name__})"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    # httpx wraps the socket error a few levels down ("All connection attempts failed")
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
