"""The sandbox's delivery engine against a real loopback endpoint, on a fake clock: Zenoti's
timeout, retries, backoff, deactivation, email, reactivation, signature, verbs and subscriptions."""

from __future__ import annotations

import asyncio
import email
import email.policy
import itertools
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiosmtpd.controller import Controller

from tests.conftest import SECRET, payload
from tests.integration.http_endpoint import (
    HANG,
    LOOPBACK_PATIENCE,
    Endpoint,
    eventually,
    free_port,
)
from zenoti_bridge.sandbox.automations import (
    AttemptKind,
    Outcome,
    SandboxState,
    Webhook,
    WebhookSpec,
)
from zenoti_bridge.sandbox.delivery import DeliveryEngine, DeliveryPolicy
from zenoti_bridge.sandbox.mail import DEACTIVATION_TEXT, Mailer, OutboxMailer, SmtpMailer
from zenoti_bridge.sandbox.model import Occurrence, object_id
from zenoti_bridge.sandbox.timing import FakeClock
from zenoti_bridge.signature import DEFAULT_HEADER, Verdict, verify

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CENTER = "5d7e6f4a-0000-4000-8000-00000000c001"
OTHER_CENTER = "5d7e6f4a-0000-4000-8000-00000000c002"
GUEST = orjson.loads(payload("Guest.Created"))["data"]


def occurrence(
    n: int, center: str | None = CENTER, event_type: str = "Guest.Created"
) -> Occurrence:
    moment = START + timedelta(seconds=n)
    return Occurrence(
        event_type=event_type,
        event_id=object_id(moment, n + 1),  # + 1: a counter of 0 draws a random id
        event_timestamp=moment,
        center_id=center,
        data={**GUEST, "id": f"00000000-0000-4000-8000-{n:012d}"},
    )


def failure_log_url(webhook: Webhook) -> str:
    return f"http://sandbox.test/webhooks/{webhook.id}/failures"


@dataclass
class Sandbox:
    """One engine on a fake clock, a state file and the loopback endpoint."""

    state: SandboxState
    clock: FakeClock
    engine: DeliveryEngine
    endpoint: Endpoint
    outbox: Path

    def hook(self, path: str = "/ok", **fields: Any) -> Webhook:
        """A webhook for ``Guest`` / ``Created`` posting to ``path`` on the endpoint."""
        spec: dict[str, Any] = {
            "name": f"hook {path}",
            "event_type": "Guest",
            "event_name": "Created",
            "url": self.endpoint.url(path),
        }
        return self.state.create_webhook(WebhookSpec(**{**spec, **fields}))

    async def play(self) -> None:
        """Run until no delivery is pending: let requests finish, jump to the next deadline."""
        while True:
            await asyncio.wait_for(self.engine.idle(), LOOPBACK_PATIENCE)
            deadline = self.clock.next_deadline()
            if deadline is None:
                return
            await self.clock.advance((deadline - self.clock.now()).total_seconds())

    async def settle(self) -> None:
        """Let requests in flight finish without moving the clock."""
        await asyncio.wait_for(self.engine.idle(), LOOPBACK_PATIENCE)

    def webhook(self, hook: Webhook) -> Webhook:
        return self.state.get_webhook(hook.id)


MakeSandbox = Callable[..., Awaitable[Sandbox]]


@pytest.fixture
async def make_sandbox(tmp_path: Path, endpoint: Endpoint) -> AsyncIterator[MakeSandbox]:
    """Build a sandbox with a policy (Zenoti's by default) and a mailer (an outbox)."""
    built: list[Sandbox] = []

    async def build(
        policy: DeliveryPolicy | None = None, mailer: Mailer | None = None, seed: int = 7
    ) -> Sandbox:
        clock = FakeClock(START)
        state = SandboxState(tmp_path / f"sandbox-{len(built)}.db", clock)
        outbox = tmp_path / "outbox"
        engine = DeliveryEngine(
            state,
            clock,
            policy or DeliveryPolicy(),
            mailer or OutboxMailer(outbox),
            failure_log_url,
            rng=random.Random(seed),
        )
        await engine.start()
        built.append(Sandbox(state, clock, engine, endpoint, outbox))
        return built[-1]

    yield build
    for sandbox in built:
        await sandbox.engine.stop()
        sandbox.state.close()


@dataclass
class SmtpSink:
    """An aiosmtpd handler keeping every message."""

    messages: list[email.message.EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        self.messages.append(message)
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[tuple[SmtpSink, int]]:
    sink = SmtpSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield sink, port
    controller.stop()


def gaps(times: list[datetime]) -> list[float]:
    return [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(times)]


# -- timeout, retries, backoff --------------------------------------------------------------


async def test_a_hanging_endpoint_times_out_at_exactly_ten_seconds(
    make_sandbox: MakeSandbox,
) -> None:
    sandbox = await make_sandbox()
    sandbox.endpoint.answer("/slow", HANG)
    hook = sandbox.hook("/slow")
    await sandbox.engine.submit(occurrence(1))
    await eventually(lambda: len(sandbox.endpoint.requests("/slow")) == 1)

    await sandbox.clock.advance(9.9)
    assert sandbox.engine.in_flight == 1
    assert sandbox.state.attempts(hook.id) == []

    await sandbox.clock.advance(0.1)
    await sandbox.settle()
    [attempt] = sandbox.state.attempts(hook.id)
    assert attempt.outcome is Outcome.FAILURE
    assert attempt.error == "timeout after 10 s" and attempt.status is None
    assert attempt.at == START and attempt.duration == 10.0
    assert sandbox.engine.in_flight == 0


async def test_a_failed_delivery_is_retried_five_times_with_exponential_backoff(
    make_sandbox: MakeSandbox,
) -> None:
    sandbox = await make_sandbox()
    sandbox.endpoint.answer("/down", 500)
    hook = sandbox.hook("/down")
    [delivery] = await sandbox.engine.submit(occurrence(1))
    await sandbox.play()
    await sandbox.clock.advance(86_400)  # a day later there still is no 7th attempt

    attempts = sandbox.state.attempts(hook.id)
    assert [a.number for a in attempts] == [1, 2, 3, 4, 5, 6]
    delays = gaps([a.at for a in attempts])
    assert delays == [30, 60, 120, 240, 480]
    assert all(30 <= delay <= 600 for delay in delays)
    assert {a.delivery_id for a in attempts} == {delivery.id}
    assert {a.error for a in attempts} == {"HTTP 500"}
    bodies = {request.body for request in sandbox.endpoint.requests("/down")}
    assert bodies == {delivery.occurrence.body(delivery.id)}


async def test_jittered_backoff_stays_within_thirty_seconds_and_ten_minutes(
    make_sandbox: MakeSandbox,
) -> None:
    policy = DeliveryPolicy(jitter=0.9, retries=8, deactivate_after=1000)
    sandbox = await make_sandbox(policy)
    sandbox.endpoint.answer("/down", 503)
    hook = sandbox.hook("/down")
    for n in range(5):
        await sandbox.engine.submit(occurrence(n))
    await sandbox.play()

    delays = [
        delay
        for n in range(5)
        for delay in gaps([a.at for a in sandbox.state.attempts(event_id=occurrence(n).event_id)])
    ]
    assert len(delays) == 5 * 8 and len(sandbox.state.attempts(hook.id)) == 5 * 9
    assert all(30 <= delay <= 600 for delay in delays)
    assert set(delays) - set(policy.schedule())  # jitter did move some delays


@pytest.mark.parametrize(
    ("answer", "error", "status"),
    [(500, "HTTP 500", 500), (404, "HTTP 404", 404), (None, "connection refused", None)],
)
async def test_non_2xx_answers_and_refused_connections_are_failures(
    make_sandbox: MakeSandbox, answer: int | None, error: str, status: int | None
) -> None:
    sandbox = await make_sandbox(DeliveryPolicy(retries=0))
    if answer is None:
        hook = sandbox.hook(url=sandbox.endpoint.refused_url)
    else:
        sandbox.endpoint.answer("/bad", answer, "x" * 2000)
        hook = sandbox.hook("/bad")
    await sandbox.engine.submit(occurrence(1))
    await sandbox.play()

    [attempt] = sandbox.state.attempts(hook.id)
    assert (attempt.outcome, attempt.error, attempt.status) == (Outcome.FAILURE, error, status)
    assert attempt.response == ("" if answer is None else "x" * 500)
    assert sandbox.state.failures(hook.id) == [attempt]
    assert sandbox.webhook(hook).consecutive_failures == 1


# -- deactivation ---------------------------------------------------------------------------


async def test_the_twentieth_failed_attempt_deactivates_the_webhook(
    make_sandbox: MakeSandbox,
) -> None:
    sandbox = await make_sandbox()
    sandbox.endpoint.answer("/down", 500)
    hook = sandbox.hook("/down")
    for n in range(3):
        await sandbox.engine.submit(occurrence(n))
        await sandbox.play()
    assert sandbox.webhook(hook).consecutive_failures == 18

    await sandbox.engine.submit(occurrence(3))
    await sandbox.settle()
    assert sandbox.webhook(hook).consecutive_failures == 19
    assert sandbox.webhook(hook).active

    retried_at = sandbox.clock.now() + timedelta(seconds=30)
    await sandbox.clock.advance(30)
    await sandbox.settle()
    deactivated = sandbox.webhook(hook)
    assert not deactivated.active
    assert deactivated.consecutive_failures == 20
    assert deactivated.deactivated_at == retried_at

    await sandbox.play()  # the 4th event's remaining retries were dropped
    assert len(sandbox.state.attempts(hook.id)) == 20
    assert sandbox.clock.sleepers == 0
    assert len(sandbox.state.emails(hook.id)) == 1


async def test_counting_events_deactivates_after_the_twentieth_failed_event(
    make_sandbox: MakeSandbox,
) -> None:
    sandbox = await make_sandbox(DeliveryPolicy(count="events"))
    sandbox.endpoint.answer("/down", 500)
    hook = sandbox.hook("/down")
    for n in range(19):
        await sandbox.engine.submit(occurrence(n))
    await sandbox.play()
    assert len(sandbox.state.attempts(hook.id)) == 19 * 6
    assert sandbox.webhook(hook).active
    assert sandbox.webhook(hook).consecutive_failures == 19

    await sandbox.engine.submit(occurrence(19))
    await sandbox.play()
    assert not sandbox.webhook(hook).active
    assert len(sandbox.state.attempts(hook.id)) == 20 * 6
    assert len(sandbox.state.emails(hook.id)) == 1


async def test_a_success_resets_the_consecutive_failures(make_sandbox: MakeSandbox) -> None:
    sandbox = await make_sandbox()
    hook = sandbox.hook("/flaky")

    async def deliver(n: int, status: int) -> None:
        sandbox.endpoint.answer("/flaky", status)
        await sandbox.engine.submit(occurrence(n))
        await sandbox.play()

    for n in range(3):
        await deliver(n, 500)
    await deliver(3, 200)
    assert sandbox.webhook(hook).consecutive_failures == 0
    for n in range(4, 7):
        await deliver(n, 500)

    assert sandbox.webhook(hook).consecutive_failures == 18
    assert sandbox.webhook(hook).active


async def test_the_deactivation_email_reaches_an_smtp_server(
    make_sandbox: MakeSandbox, smtp_server: tuple[SmtpSink, int]
) -> None:
    sink, port = smtp_server
    mailer = SmtpMailer("127.0.0.1", port, "zenoti@sandbox.test", "admin@spa.test")
    sandbox = await make_sandbox(DeliveryPolicy(retries=0, deactivate_after=2), mailer)
    hook = sandbox.hook(name="Spa memberships", url=sandbox.endpoint.refused_url)
    for n in range(3):
        await sandbox.engine.submit(occurrence(n))
        await sandbox.play()

    [message] = sink.messages
    expected = (
        "Due to a series of delivery failures, the webhook Spa memberships has been temporarily"
        " deactivated. Please verify that the destination URL is working and resolve the webhook"
        " errors which are listed in the below link. "
        f"http://sandbox.test/webhooks/{hook.id}/failures After resolving the webhook errors, you"
        " can activate this webhook from inactive tab of webhooks page."
    )
    assert message.get_content().strip() == expected
    assert "Spa memberships" in message["Subject"]
    assert (message["From"], message["To"]) == ("zenoti@sandbox.test", "admin@spa.test")
    [sent] = sandbox.state.emails()
    assert (sent.transport, sent.error, sent.body) == ("smtp", None, expected)
    assert sent.failure_log_url == failure_log_url(hook)


async def test_the_outbox_mailer_writes_the_email_as_an_eml_file(
    make_sandbox: MakeSandbox,
) -> None:
    sandbox = await make_sandbox(DeliveryPolicy(retries=0, deactivate_after=1))
    hook = sandbox.hook(name="Front desk", url=sandbox.endpoint.refused_url)
    await sandbox.engine.submit(occurrence(1))
    await sandbox.play()

    [file] = sandbox.outbox.glob("*.eml")
    message = email.message_from_bytes(file.read_bytes(), policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    text = DEACTIVATION_TEXT.format(
        WebhookName="Front desk", WebhookFailureLogURL=failure_log_url(hook)
    )
    assert message.get_content().strip() == text
    assert sandbox.state.emails(hook.id)[0].transport == "outbox"


async def test_a_mail_failure_is_recorded_and_deliveries_go_on(make_sandbox: MakeSandbox) -> None:
    mailer = SmtpMailer("127.0.0.1", free_port(), timeout=2)
    sandbox = await make_sandbox(DeliveryPolicy(retries=0, deactivate_after=1), mailer)
    sandbox.endpoint.answer("/down", 500)
    hook = sandbox.hook("/down")
    await sandbox.engine.submit(occurrence(1))
    await sandbox.play()

    [sent] = sandbox.state.emails(hook.id)
    assert sent.error is not None and "ConnectionRefusedError" in sent.error
    sandbox.engine.reactivate(hook.id)
    sandbox.endpoint.answer("/down", 200)
    await sandbox.engine.submit(occurrence(2))
    await sandbox.play()
    assert sandbox.state.attempts(hook.id)[-1].outcome is Outcome.SUCCESS


# -- inactive webhooks and reactivation -----------------------------------------------------


async def test_events_while_inactive_are_never_delivered_and_reactivation_resumes(
    make_sandbox: MakeSandbox,
) -> None:
    sandbox = await make_sandbox(DeliveryPolicy(retries=0, deactivate_after=3))
    sandbox.endpoint.answer("/hook", 500)
    hook = sandbox.hook("/hook")
    for n in range(3):
        await sandbox.engine.submit(occurrence(n))
        await sandbox.play()
    assert not sandbox.webhook(hook).active

    sandbox.endpoint.answer("/hook", 200)
    missed = occurrence(10)
    assert await sandbox.engine.submit(missed) == []
    await sandbox.play()
    reactivated = sandbox.engine.reactivate(hook.id)
    assert reactivated.active and reactivated.consecutive_failures == 0
    assert reactivated.deactivated_at is None
    await sandbox.clock.advance(3600)
    await sandbox.play()
    assert sandbox.state.attempts(event_id=missed.event_id) == []

    [delivery] = await sandbox.engine.submit(occurrence(11))
    await sandbox.play()
    assert sandbox.endpoint.requests("/hook")[-1].body == delivery.occurrence.body(delivery.id)
    assert len(sandbox.endpoint.requests("/hook")) == 4
    assert sandbox.webhook(hook).consecutive_failures == 0


async def test_deactivation_drops_every_pending_retry_of_the_webhook(
    make_sandbox: MakeSandbox,
) -> None:
    sandbox = await make_sandbox(DeliveryPolicy(deactivate_after=3))
    sandbox.endpoint.answer("/down", 500)
    hook = sandbox.hook("/down")
    for n in range(3):
        await sandbox.engine.submit(occurrence(n))
        await sandbox.settle()
        await sandbox.clock.advance(10)  # earlier events' retries are still waiting

    assert not sandbox.webhook(hook).active
    assert sandbox.clock.sleepers == 0
    sandbox.engine.reactivate(hook.id)
    await sandbox.clock.advance(3600)
    await sandbox.play()
    assert [a.number for a in sandbox.state.attempts(hook.id)] == [1, 1, 1]


async def test_requests_in_flight_at_deactivation_are_logged_but_never_retried(
    make_sandbox: MakeSandbox,
) -> None:
    sandbox = await make_sandbox(DeliveryPolicy(deactivate_after=1))
    sandbox.endpoint.answer("/slow", HANG)
    hook = sandbox.hook("/slow")
    await sandbox.engine.submit(occurrence(1))
    await sandbox.engine.submit(occurrence(2))
    await eventually(lambda: len(sandbox.endpoint.requests("/slow")) == 2)

    await sandbox.clock.advance(10)
    await sandbox.settle()
    assert [a.error for a in sandbox.state.attempts(hook.id)] == ["timeout after 10 s"] * 2
    assert not sandbox.webhook(hook).active
    sandbox.engine.reactivate(hook.id)
    sandbox.endpoint.answer("/slow", 200)
    await sandbox.clock.advance(3600)
    await sandbox.play()

    assert len(sandbox.state.attempts(hook.id)) == 2
    assert sandbox.webhook(hook).consecutive_failures == 0
    assert len(sandbox.state.emails(hook.id)) == 1


async def test_a_deleted_webhook_gets_no_more_retries(
    make_sandbox: MakeSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox = await make_sandbox()
    sandbox.endpoint.answer("/down", 500)
    hook = sandbox.hook("/down")
    await sandbox.engine.submit(occurrence(1))
    await sandbox.settle()
    sandbox.state.delete_webhook(hook.id)
    await sandbox.play()

    assert len(sandbox.state.attempts(hook.id)) == 1
    assert sandbox.state.list_webhooks() == []
    assert "crashed" not in caplog.text


# -- what goes on the wire ------------------------------------------------------------------


async def test_the_body_is_the_occurrence_body_and_the_signature_verifies(
    make_sandbox: MakeSandbox,
) -> None:
    sandbox = await make_sandbox()
    sandbox.hook("/signed", secret=SECRET)
    [delivery] = await sandbox.engine.submit(occurrence(1))
    await sandbox.play()

    [request] = sandbox.endpoint.requests("/signed")
    assert request.body == delivery.occurrence.body(delivery.id)
    assert orjson.loads(request.body)["id"] == delivery.id
    assert request.headers["content-type"] == "application/json"
    assert verify(request.body, request.headers[DEFAULT_HEADER], [SECRET.encode()]) == (
        Verdict.VALID
    )


async def test_a_webhook_without_secret_sends_no_signature(make_sandbox: MakeSandbox) -> None:
    sandbox = await make_sandbox()
    sandbox.hook("/unsigned")
    await sandbox.engine.submit(occurrence(1))
    await sandbox.play()
    [request] = sandbox.endpoint.requests("/unsigned")
    assert DEFAULT_HEADER not in request.headers


@pytest.mark.parametrize("verb", ["POST", "PUT", "PATCH"])
async def test_the_webhook_verb_is_used(make_sandbox: MakeSandbox, verb: str) -> None:
    sandbox = await make_sandbox()
    hook = sandbox.hook("/verb", http_verb=verb)
    await sandbox.engine.submit(occurrence(1))
    await sandbox.play()
    assert [r.method for r in sandbox.endpoint.requests("/verb")] == [verb]
    assert sandbox.state.attempts(hook.id)[0].http_verb == verb


async def test_organization_and_center_subscriptions_decide_who_receives(
    make_sandbox: MakeSandbox,
) -> None:
    sandbox = await make_sandbox()
    sandbox.hook("/org")
    sandbox.hook("/here", subscription=CENTER.upper())
    sandbox.hook("/there", subscription=OTHER_CENTER)
    sandbox.hook("/memberships", event_type="Guest Membership", event_name="Created")
    await sandbox.engine.submit(occurrence(1, CENTER))
    await sandbox.engine.submit(occurrence(2, None))
    await sandbox.play()

    received = {path: len(sandbox.endpoint.requests(path)) for path in ("/org", "/here")}
    assert received == {"/org": 2, "/here": 1}
    assert sandbox.endpoint.requests("/there") == []
    assert sandbox.endpoint.requests("/memberships") == []


async def test_each_matching_webhook_gets_its_own_delivery_id(make_sandbox: MakeSandbox) -> None:
    sandbox = await make_sandbox()
    sandbox.hook("/a")
    sandbox.hook("/b", subscription=CENTER)
    first, second = await sandbox.engine.submit(occurrence(1))
    await sandbox.play()
    assert first.id != second.id
    bodies = [sandbox.endpoint.requests(path)[0].body for path in ("/a", "/b")]
    assert [orjson.loads(body)["event_id"] for body in bodies] == [occurrence(1).event_id] * 2


async def test_the_test_button_sends_an_empty_unsigned_post(make_sandbox: MakeSandbox) -> None:
    sandbox = await make_sandbox(DeliveryPolicy(retries=0, deactivate_after=1))
    sandbox.endpoint.answer("/hook", 500)
    hook = sandbox.hook("/hook", http_verb="PUT", secret=SECRET)
    await sandbox.engine.submit(occurrence(1))
    await sandbox.play()
    assert not sandbox.webhook(hook).active
    sandbox.endpoint.answer("/hook", 200)

    attempt = await sandbox.engine.test(hook.id)  # works on the inactive tab too

    request = sandbox.endpoint.requests("/hook")[-1]
    assert (request.method, request.body) == ("POST", b"")
    assert DEFAULT_HEADER not in request.headers
    assert (attempt.kind, attempt.outcome, attempt.event_id) == (
        AttemptKind.TEST,
        Outcome.SUCCESS,
        None,
    )
    assert sandbox.state.attempts(hook.id)[-1] == attempt
    assert not sandbox.webhook(hook).active  # a test neither reactivates nor resets
    assert sandbox.webhook(hook).consecutive_failures == 1


async def test_a_hanging_webhook_does_not_delay_another_webhook(
    make_sandbox: MakeSandbox,
) -> None:
    sandbox = await make_sandbox()
    sandbox.endpoint.answer("/slow", HANG)
    slow = sandbox.hook("/slow")
    fast = sandbox.hook("/fast")
    for n in range(40):
        await sandbox.engine.submit(occurrence(n))

    await eventually(lambda: len(sandbox.state.attempts(fast.id)) == 40)
    assert {a.outcome for a in sandbox.state.attempts(fast.id)} == {Outcome.SUCCESS}
    assert sandbox.state.attempts(slow.id) == []
    assert sandbox.engine.in_flight == sandbox.engine.concurrency  # the slow one's gate is full
    assert sandbox.clock.now() == START


# -- state ----------------------------------------------------------------------------------


async def test_webhooks_and_their_log_survive_a_restart(
    make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    sandbox = await make_sandbox()
    hook = sandbox.hook("/kept", event_type="Class", event_name="booking no show")
    await sandbox.engine.submit(occurrence(1, event_type="Class.Booking.NoShow"))
    await sandbox.play()
    sandbox.state.close()

    reopened = SandboxState(tmp_path / "sandbox-0.db", sandbox.clock)
    try:
        assert reopened.list_webhooks(active=True) == [hook]
        assert hook.event_name == "Booking No Show"
        assert hook.catalog_type == "Class.Booking.NoShow"
        assert [a.outcome for a in reopened.attempts(hook.id)] == [Outcome.SUCCESS]
    finally:
        reopened.close()
