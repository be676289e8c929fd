"""Browser test of the sandbox's pages, in headless Chromium (Debian's, driven by Playwright).

A user adds a webhook whose endpoint fails, fires events until Zenoti's policy deactivates it,
finds it under Inactive with its failure log and the deactivation email, fixes the endpoint,
reactivates the webhook and sees deliveries resume.

The sandbox runs as a real ``zenoti-bridge sandbox run`` process on the real clock: 20 events
fail their first attempt at once, so the 20th consecutive failure comes without waiting for any
backoff (the retries, 30 s later, are dropped by the deactivation).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI
from zenoti_bridge.signature import DEFAULT_HEADER, Verdict, verify

CHROMIUM = os.environ.get("ZB_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SECRET = "browser-test-secret"
PATIENCE = 20.0  # real seconds for deliveries to show up


def _need_browser() -> Any:
    problem = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        problem = f"playwright is not installed ({exc})"
    if problem is None and not (shutil.which(CHROMIUM) or Path(CHROMIUM).exists()):
        problem = f"no chromium at {CHROMIUM} (scripts/test installs Debian's package)"
    if problem is None:
        return sync_playwright
    if IN_CI:
        pytest.fail(problem + " (CI=true: browser tests must run)")
    warnings.warn(problem + ": SKIPPING browser tests", stacklevel=2)
    pytest.skip("!!! " + problem)


class Destination:
    """The user's endpoint: answers 500 while ``failing``, else 200; records what arrived."""

    def __init__(self) -> None:
        self.failing = True
        self.received: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real endpoint would

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = 500 if outer.failing else 200
                text = b"database is down" if outer.failing else b"ok"
                self.send_response(status)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, *_args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # the sandbox opens up to 20 connections at once
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/zenoti"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Destination:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _reload_until(page: Any, url: str, selector: str, text: str) -> None:
    """Load ``url`` until ``selector`` holds ``text`` (deliveries happen in the background)."""
    deadline = time.monotonic() + PATIENCE
    while True:
        page.goto(url)
        if text in "".join(page.locator(selector).all_inner_texts()):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{url}: {selector} never showed {text!r}")
        time.sleep(0.2)


def test_a_failing_endpoint_deactivates_the_webhook_and_reactivation_resumes_deliveries(
    sandbox_url: str,
) -> None:
    sync_playwright = _need_browser()
    with Destination() as destination, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_default_timeout(10_000)

        # the user adds a webhook, as in Zenoti's form
        page.goto(f"{sandbox_url}/webhooks")
        page.get_by_role("link", name="+ Add webhook").click()
        page.get_by_label("Name", exact=True).fill("CRM new guests")
        page.get_by_label("Description", exact=True).fill("Sends new guests to the CRM")
        page.get_by_label("Event Type", exact=True).select_option("Guest")
        page.get_by_label("Event Name", exact=True).select_option("Created")
        page.get_by_label("HTTP verb", exact=True).select_option("POST")
        page.get_by_label("URL", exact=True).fill(destination.url)
        page.get_by_label("Signing secret").fill(SECRET)
        page.get_by_role("button", name="Save").click()
        assert page.locator("#state").inner_text() == "Active"
        webhook_path = page.url.split("?")[0].removeprefix(sandbox_url)

        # the endpoint fails; 20 new guests later the webhook is deactivated
        page.get_by_role("link", name="Trigger events").click()
        page.get_by_label("Event", exact=True).select_option("Guest.Created")
        page.get_by_label("How many", exact=True).fill("20")
        page.get_by_role("button", name="Fire").click()
        assert "Fired 20 events." in page.locator(".flash").inner_text()
        _reload_until(page, f"{sandbox_url}/webhooks?tab=inactive", "#webhooks", "CRM new guests")

        # it is under Inactive, with its failure log
        assert "Inactive (1)" in page.locator(".tabs").inner_text()
        row = page.locator("#webhooks tbody tr").filter(has_text="CRM new guests")
        assert row.locator("td.num").inner_text() == "20"
        row.get_by_role("link", name="Failure log").click()
        assert page.locator("h2").inner_text() == "20 failed attempts"
        failed = page.locator("#deliveries tbody tr")
        assert failed.count() == 20
        assert "500" in failed.first.inner_text()
        assert "database is down" in failed.first.inner_text()

        # the administrator got the email, with the link to that failure log
        page.get_by_role("link", name="Sent emails").click()
        email = page.locator(".email").first.inner_text()
        assert "Due to a series of delivery failures, the webhook CRM new guests" in email
        assert f"{webhook_path}/failures" in email
        assert "to ops@example.com" in email

        # nothing reaches the endpoint while inactive
        page.get_by_role("link", name="Trigger events").click()
        page.get_by_label("How many", exact=True).fill("2")
        page.get_by_label("Event", exact=True).select_option("Guest.Created")
        page.get_by_role("button", name="Fire").click()
        time.sleep(1.0)
        assert len(destination.received) == 20

        # the user fixes the endpoint and reactivates from the Inactive tab
        destination.failing = False
        page.goto(f"{sandbox_url}/webhooks?tab=inactive")
        page.locator("#webhooks tbody tr").filter(has_text="CRM new guests").get_by_role(
            "button", name="Reactivate"
        ).click()
        assert page.locator("#state").inner_text() == "Active"
        assert page.locator("#consecutive").inner_text() == "0"
        page.goto(f"{sandbox_url}/webhooks?tab=inactive")
        assert "Inactive (0)" in page.locator(".tabs").inner_text()

        # deliveries resume, and the events of the outage are not resent
        page.goto(f"{sandbox_url}/trigger")
        page.get_by_label("Event", exact=True).select_option("Guest.Created")
        page.get_by_label("How many", exact=True).fill("3")
        page.get_by_role("button", name="Fire").click()
        _reload_until(page, f"{sandbox_url}{webhook_path}", "#deliveries", "200")
        deadline = time.monotonic() + PATIENCE
        while len(destination.received) < 23 and time.monotonic() < deadline:
            time.sleep(0.05)
        page.goto(f"{sandbox_url}{webhook_path}")
        assert page.locator("#deliveries tbody tr .badge.ok").count() == 3
        browser.close()

    assert len(destination.received) == 23
    for headers, body in destination.received[20:]:
        assert verify(body, headers[DEFAULT_HEADER], [SECRET.encode()]) is Verdict.VALID
