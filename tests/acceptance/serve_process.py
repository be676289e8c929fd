"""``zenoti-bridge serve`` (or ``intake``, ``worker``) as a real child process, for tests that
kill it.

Usage::

    config = write_config(tmp_path / "bridge.toml", database_url, port=free_port(), secret=s)
    with ServeProcesses(tmp_path) as servers:
        server = servers.start(config)   # output in tmp_path / "serve-1.log"
        server.wait_ready()
        ...                              # POST to server.webhook_url("acme")
        server.kill()                    # SIGKILL: no shutdown code runs
        again = servers.start(config)    # the same configuration, "serve-2.log"
        # the scale-out roles; extra options go to the command line ("intake-3.log", ...)
        intake = servers.start(config, "intake", port=free_port(), options=["--no-migrate"])
        worker = servers.start(config, "worker", options=["--no-migrate"])
    # leaving the block kills whatever still runs; on an error it prints every log first

The child gets no ``ZB_*`` variables from the test's environment: the file is its whole
configuration, so what the test wrote is what the server runs with.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

import httpx

READY_TIMEOUT = 30.0
POLL_INTERVAL = 0.05


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def write_config(
    path: Path, database_url: str, *, port: int, source: str = "acme", secret: str
) -> Path:
    """A TOML configuration with one enforcing source; returns ``path``."""
    # JSON string literals are valid TOML basic strings (the URL may hold '%' and '?')
    path.write_text(
        "[database]\n"
        f"url = {json.dumps(database_url)}\n"
        "\n[server]\n"
        'host = "127.0.0.1"\n'
        f"port = {port}\n"
        f"\n[sources.{source}]\n"
        f"webhook_secrets = [{json.dumps(secret)}]\n"
        'signature = "enforce"\n',
        encoding="utf-8",
    )
    return path


def bridge_command(config: Path, role: str = "serve", options: Sequence[str] = ()) -> list[str]:
    """The command line that starts ``role`` (serve, intake or worker) in this interpreter.

    ``python -m`` runs the server in the child itself (no wrapper process), so the child's pid
    is the server's pid and SIGKILL reaches the server.
    """
    return [
        sys.executable,
        "-m",
        "zenoti_bridge.cli",
        role,
        "--config",
        str(config),
        "--log-level",
        "warning",
        *options,
    ]


def serve_command(config: Path) -> list[str]:
    """The command line that starts ``serve`` in this interpreter."""
    return bridge_command(config, "serve")


class ServeProcess:
    """One ``serve`` (or ``intake``, ``worker``) child with its output in a log file.

    ``port`` overrides the configured port on the command line (two intakes, one file); a
    ``worker`` listens nowhere, so its port and URLs mean nothing.
    """

    def __init__(
        self,
        config: Path,
        log_path: Path,
        role: str = "serve",
        *,
        port: int | None = None,
        options: Sequence[str] = (),
    ) -> None:
        self.config = config
        self.log_path = log_path
        self.role = role
        self.port = _configured_port(config) if port is None else port
        self.command = bridge_command(
            config, role, [*options, *(["--port", str(port)] if port is not None else [])]
        )
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._log: IO[bytes] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def process(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise RuntimeError("the server was not started")
        return self._process

    @property
    def pid(self) -> int:
        return self.process.pid

    def webhook_path(self, source: str) -> str:
        return f"/webhooks/zenoti/{source}"

    def webhook_url(self, source: str) -> str:
        return self.base_url + self.webhook_path(source)

    def start(self) -> None:
        self._log = self.log_path.open("ab")
        env = {key: value for key, value in os.environ.items() if not key.startswith("ZB_")}
        self._process = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Return once /healthz and /readyz both answer 200; fail if the server exits first."""
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.base_url, timeout=2.0) as client:
            for path in ("/healthz", "/readyz"):
                while True:
                    code = self.process.poll()
                    if code is not None:
                        raise AssertionError(
                            f"{self.role} exited with {code} before {path} answered:\n"
                            f"{self.log_text()}"
                        )
                    try:
                        if client.get(path).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass  # not listening yet
                    if time.monotonic() > deadline:
                        raise AssertionError(
                            f"{path} did not answer 200 within {timeout:.0f} s:\n{self.log_text()}"
                        )
                    time.sleep(POLL_INTERVAL)

    def kill(self) -> int:
        """SIGKILL the server and return its exit code (``-SIGKILL`` if the signal killed it)."""
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        return self.process.wait(timeout=10)

    def stop(self) -> None:
        """Kill the server if it still runs and close the log; safe to call more than once."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_text(self) -> str:
        if self._log is not None:
            self._log.flush()
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""


def running(*processes: ServeProcess) -> Callable[[], None]:
    """A check that fails, with the log, as soon as one of ``processes`` has exited."""

    def check() -> None:
        for process in processes:
            code = process.process.poll()
            assert code is None, f"{process.role} exited with {code}:\n{process.log_text()}"

    return check


class ServeProcesses:
    """Every server a test starts, numbered in order; all stopped when the block ends."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[ServeProcess] = []

    def start(
        self,
        config: Path,
        role: str = "serve",
        *,
        port: int | None = None,
        options: Sequence[str] = (),
    ) -> ServeProcess:
        log_path = self.log_dir / f"{role}-{len(self.started) + 1}.log"
        server = ServeProcess(config, log_path, role, port=port, options=options)
        self.started.append(server)
        server.start()
        return server

    def __enter__(self) -> ServeProcesses:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        for server in self.started:
            server.stop()
        if error is not None:
            for server in self.started:
                print(f"\n----- {server.log_path} -----\n{server.log_text()}")


def _configured_port(config: Path) -> int:
    port: int = tomllib.loads(config.read_text(encoding="utf-8"))["server"]["port"]
    return port
