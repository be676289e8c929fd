"""The README's quickstart, for real: ./scripts/run on a fresh config, then a signed sample."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import PAYLOADS

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"scripts/run exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"scripts/run did not become ready:\n{log.read_text()}")


def test_scripts_run_serves_and_a_signed_sample_is_accepted(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "zenoti-bridge.toml"
    env = {
        **os.environ,
        "ZB_CONFIG": str(config),
        "ZB_DATABASE__URL": f"sqlite:///{tmp_path / 'bridge.db'}",
    }
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(ROOT / "scripts" / "run"), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", process, log)
        printed = log.read_text()
        assert config.exists(), "a starter config was written"
        match = re.search(r"source demo: POST (\S+)", printed)
        assert match, printed
        assert match.group(1) == f"http://127.0.0.1:{port}/webhooks/zenoti/demo"
        assert f"webhook URL: {match.group(1)}\n" in printed, "init printed the URL served"

        # as the README says: the URL comes from the config that ./scripts/run wrote
        sample = PAYLOADS / "Guest.Created.json"
        sent = subprocess.run(
            [str(BIN / "zenoti-bridge"), "send", str(sample), "--source", "demo"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert '"status":"accepted"' in sent.stdout

        unsigned = httpx.post(match.group(1), content=sample.read_bytes())
        assert unsigned.status_code == 401
    finally:
        process.send_signal(signal.SIGTERM)
        # uvicorn re-raises the signal once it has shut down cleanly
        assert process.wait(timeout=30) in (0, -signal.SIGTERM), log.read_text()
    assert "Application shutdown complete" in log.read_text()
