"""The servers under test, each a subprocess: ``zenoti-bridge serve`` (or ``intake``), the no-op
ASGI app, and ``zenoti-bridge worker`` processes.

The bridge runs from a temporary TOML file holding only the database URL, the port and one
source, so every other setting (SQLite ``synchronous=FULL``, WAL, the group-commit writer, the
WAL limit, the PostgreSQL pool) is the shipped default. ``ZB_*`` variables are removed from the
child's environment so that nothing overrides the file.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

HOST = "127.0.0.1"
NOOP_APP = Path(__file__).with_name("noop_app.py")
NULL_STORE_APP = Path(__file__).with_name("null_store_app.py")
NOOP_WORKER = Path(__file__).with_name("noop_worker.py")
WORKER_BANNER = "(worker)"  # `zenoti-bridge worker` prints it once its workers are running
# uvicorn re-raises the SIGINT it handled once it has shut down: 130 (128 + SIGINT) is clean
CLEAN_EXITS = frozenset({0, 128 + signal.SIGINT, -signal.SIGINT})


class ServerFailed(RuntimeError):
    """A server did not start, or died."""


@dataclass(slots=True)
class _Process:
    """A process the benchmark started, and the file its output goes to."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self, timeout: float = 30.0) -> int:
        """SIGINT (queued writes and batches in flight finish), then SIGKILL if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # in case it was frozen (SIGSTOP)
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@dataclass(slots=True)
class Server(_Process):
    """One running server process and where its output goes."""

    port: int
    ready_path: str

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                raise ServerFailed(f"{self.name} exited with {code}:\n{self.tail()}")
            try:
                if httpx.get(self.base_url + self.ready_path, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise ServerFailed(f"{self.name} not ready after {timeout:.0f} s:\n{self.tail()}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("ZB_")}


def write_config(path: Path, *, database_url: str, port: int, source: str, secret: str) -> None:
    """A minimal configuration: everything not named here keeps its shipped default."""
    # JSON strings are valid TOML basic strings
    path.write_text(
        f"[database]\nurl = {json.dumps(database_url)}\n\n"
        f"[server]\nhost = {json.dumps(HOST)}\nport = {port}\n\n"
        f"[sources.{source}]\nwebhook_secrets = [{json.dumps(secret)}]\n"
        'signature = "enforce"\n',
        encoding="utf-8",
    )


def spawn(name: str, command: list[str], log: Path, ready_path: str, port: int) -> Server:
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=_clean_env(), cwd=log.parent
        )
    return Server(name=name, process=process, port=port, log=log, ready_path=ready_path)


def bridge_command() -> str:
    """The ``zenoti-bridge`` script installed beside this interpreter."""
    script = Path(sys.executable).with_name("zenoti-bridge")
    if not script.exists():
        raise ServerFailed(f"{script} not found; install the project (pip install -e .)")
    return str(script)


def start_intake(workdir: Path, config: Path, port: int, role: str = "serve") -> Server:
    """``zenoti-bridge serve`` (every role: intake and workers) or ``zenoti-bridge intake``
    (the intake alone), at log level warning.

    Readiness is ``/healthz``, which writes nothing (``/readyz`` writes a probe row), so the
    store's first write is the first event, as when Zenoti's first webhook arrives some time
    after a start.
    """
    command = bridge_server_command(config, port, role)
    log = workdir / f"{role}-{port}.log"
    return spawn(f"zenoti-bridge {role}", command, log, "/healthz", port)


def bridge_server_command(config: Path, port: int, role: str) -> list[str]:
    """``zenoti-bridge ROLE`` on ``port`` at log level warning."""
    script = bridge_command()
    return [script, role, "--config", str(config), "--port", str(port), "--log-level", "warning"]


def noop_command(port: int) -> list[str]:
    """The no-op ASGI app on ``port`` at log level warning."""
    return [sys.executable, str(NOOP_APP), "--port", str(port), "--log-level", "warning"]


def start_noop(workdir: Path, port: int) -> Server:
    command = noop_command(port)
    return spawn("no-op ASGI app", command, workdir / f"noop-{port}.log", "/healthz", port)


def null_store_command(config: Path, port: int) -> list[str]:
    """The bridge's app with a store that writes nothing, on ``port`` at log level warning."""
    return [
        sys.executable,
        str(NULL_STORE_APP),
        "--config",
        str(config),
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]


def start_null_store(workdir: Path, config: Path, port: int) -> Server:
    """The intake with no store (``null_store_app.py``), ready on ``/healthz``."""
    log = workdir / f"no-store-{port}.log"
    return spawn("intake with no store", null_store_command(config, port), log, "/healthz", port)


@contextmanager
def running(server: Server) -> Iterator[Server]:
    """Wait until ``server`` is ready; stop it however the block ends."""
    try:
        server.wait_ready()
        yield server
    finally:
        code = server.stop()
        if code not in CLEAN_EXITS:
            print(f"  warning: {server.name} exited with {code}:\n{server.tail()}", flush=True)


@dataclass(slots=True)
class WorkerProcess(_Process):
    """One ``zenoti-bridge worker`` process (or the no-op baseline worker) and its log."""

    def running(self) -> bool:
        """True once the worker printed its banner: its workers are claiming jobs."""
        try:
            return WORKER_BANNER in self.log.read_text(errors="replace")
        except OSError:
            return False

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            code = self.process.returncode
            raise ServerFailed(f"{self.name} exited with {code}:\n{self.tail()}")


def start_worker(
    workdir: Path, config: Path, name: str, *, concurrency: int = 2, noop: bool = False
) -> WorkerProcess:
    """``zenoti-bridge worker --config CONFIG`` at log level warning; with ``noop``, the same
    command run by ``noop_worker.py``, whose mirror applies nothing (the baseline)."""
    arguments = [
        "worker",
        "--config",
        str(config),
        "--concurrency",
        str(concurrency),
        "--log-level",
        "warning",
    ]
    prefix = [sys.executable, str(NOOP_WORKER)] if noop else [bridge_command()]
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            prefix + arguments, stdout=out, stderr=subprocess.STDOUT, env=_clean_env(), cwd=workdir
        )
    return WorkerProcess(name=name, process=process, log=log)


@contextmanager
def workers_running(
    workers: list[WorkerProcess], timeout: float = 60.0
) -> Iterator[list[WorkerProcess]]:
    """Wait until every worker is running; stop them all however the block ends."""
    try:
        deadline = time.monotonic() + timeout
        while not all(w.running() for w in workers):
            for worker in workers:
                worker.check_alive()
            if time.monotonic() > deadline:
                raise ServerFailed(f"workers not running after {timeout:.0f} s")
            time.sleep(0.005)
        yield workers
    finally:
        for worker in workers:
            code = worker.stop()
            if code not in CLEAN_EXITS:
                print(f"  warning: {worker.name} exited with {code}:\n{worker.tail()}", flush=True)
