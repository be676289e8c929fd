"""The deactivation email Zenoti sends, delivered into an outbox folder or over SMTP.

Both mailers are small transports behind :class:`Mailer`; :func:`send_deactivation_email`
composes the message, sends it and records it in the sandbox's state, with the error when it
could not be sent: a broken mail setup never stops deliveries.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import uuid
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Protocol

from .automations import SandboxState, SentEmail, Webhook

log = logging.getLogger(__name__)

DEFAULT_SENDER = "Zenoti Sandbox <no-reply@zenoti-sandbox.invalid>"
DEFAULT_RECIPIENT = "administrator@zenoti-sandbox.invalid"

# zenoti/README.md §3, word for word
DEACTIVATION_TEXT = (
    "Due to a series of delivery failures, the webhook {WebhookName} has been temporarily "
    "deactivated. Please verify that the destination URL is working and resolve the webhook "
    "errors which are listed in the below link. {WebhookFailureLogURL} After resolving the "
    "webhook errors, you can activate this webhook from inactive tab of webhooks page."
)
DEACTIVATION_SUBJECT = "Webhook {WebhookName} has been deactivated"


class Mailer(Protocol):
    """Where emails go. ``deliver`` raises when the message could not be handed over.

    Example::

        mailer = OutboxMailer("sandbox-outbox")
        await send_deactivation_email(mailer, state, webhook, url, clock.now())
    """

    transport: str
    sender: str
    recipient: str

    async def deliver(self, message: EmailMessage) -> None: ...


class OutboxMailer:
    """Writes each email as an ``.eml`` file into ``folder`` (the default: needs no server)."""

    transport = "outbox"

    def __init__(
        self,
        folder: str | Path,
        *,
        sender: str = DEFAULT_SENDER,
        recipient: str = DEFAULT_RECIPIENT,
    ) -> None:
        self.folder = Path(folder)
        self.sender = sender
        self.recipient = recipient

    async def deliver(self, message: EmailMessage) -> None:
        """Write the message to a new file in the folder."""
        await asyncio.to_thread(self._write, message)

    def _write(self, message: EmailMessage) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / f"{uuid.uuid4().hex}.eml").write_bytes(bytes(message))


class SmtpMailer:
    """Sends each email through an SMTP server (optionally with STARTTLS and a login)."""

    transport = "smtp"

    def __init__(
        self,
        host: str,
        port: int,
        sender: str = DEFAULT_SENDER,
        recipient: str = DEFAULT_RECIPIENT,
        *,
        starttls: bool = False,
        user: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.recipient = recipient
        self.starttls = starttls
        self.user = user
        self.password = password
        self.timeout = timeout

    async def deliver(self, message: EmailMessage) -> None:
        """Send the message; smtplib blocks, so it runs in a thread."""
        await asyncio.to_thread(self._send, message)

    def _send(self, message: EmailMessage) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.user:
                smtp.login(self.user, self.password or "")
            smtp.send_message(message)


def deactivation_email(
    webhook_name: str, failure_log_url: str, sender: str, recipient: str, at: datetime
) -> EmailMessage:
    """The email telling the administrator that a webhook was deactivated."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = DEACTIVATION_SUBJECT.format(WebhookName=webhook_name)
    message["Date"] = format_datetime(at)
    message["Message-ID"] = make_msgid(domain="zenoti-sandbox.invalid")
    message.set_content(
        DEACTIVATION_TEXT.format(WebhookName=webhook_name, WebhookFailureLogURL=failure_log_url)
    )
    return message


async def send_deactivation_email(
    mailer: Mailer, state: SandboxState, webhook: Webhook, failure_log_url: str, at: datetime
) -> SentEmail:
    """Send the deactivation email for ``webhook`` and record it (with the error, if any)."""
    message = deactivation_email(webhook.name, failure_log_url, mailer.sender, mailer.recipient, at)
    error: str | None = None
    try:
        await mailer.deliver(message)
    except Exception as exc:  # any transport failure is recorded, never raised into deliveries
        error = f"{type(exc).__name__}: {exc}"
        log.warning("deactivation email for webhook %s not sent: %s", webhook.id, error)
    return state.log_email(
        SentEmail(
            at=at,
            webhook_id=webhook.id,
            recipient=mailer.recipient,
            subject=str(message["Subject"]),
            body=message.get_content().rstrip("\n"),
            transport=mailer.transport,
            failure_log_url=failure_log_url,
            error=error,
        )
    )
