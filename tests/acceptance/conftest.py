"""Acceptance fixtures: ``zenoti-bridge sandbox run`` as a real child process (``sandbox_url``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.acceptance.serve_process import free_port


@pytest.fixture
def sandbox_url(tmp_path: Path) -> Iterator[str]:
    """A sandbox (level quiet-spa, seed 11, emails into tmp_path/outbox); yields its URL."""
    port = free_port()
    config = tmp_path / "sandbox.toml"
    config.write_text(
        "[sandbox]\n"
        f'state = "{tmp_path / "sandbox.db"}"\n'
        "seed = 11\n"
        "[sandbox.mail]\n"
        f'outbox = "{tmp_path / "outbox"}"\n'
        'admin_email = "ops@example.com"\n'
    )
    log = (tmp_path / "sandbox.log").open("wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZB_")}
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "zenoti_bridge", "sandbox", "run", "--config", str(config)),
            *("--port", str(port), "--level", "quiet-spa", "--log-level", "warning"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/api/webhooks", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        "sandbox did not start:\n" + (tmp_path / "sandbox.log").read_text()
                    ) from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
