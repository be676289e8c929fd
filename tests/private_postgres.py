"""A PostgreSQL server of a test's own, which the test may stop and start again.

The shared server at ``ZB_TEST_POSTGRES_URL`` serves every other test, so it must never be
stopped; this one is made with ``initdb`` from the installed PostgreSQL, in a temporary
directory, on a free loopback port, with trust authentication. Run as root (as CI does), the
server runs as the ``postgres`` user, which PostgreSQL requires.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


class NotAvailable(RuntimeError):
    """PostgreSQL's server programs are not installed, or cannot run here."""


def _bin_dir() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name)
    )
    if not versions:
        raise NotAvailable("pg_ctl and initdb not found (Debian: apt-get install postgresql)")
    return versions[-1].parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class PrivatePostgres:
    bin_dir: Path
    data: Path
    port: int
    as_user: list[str]

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str) -> None:
        _run([*self.as_user, str(self.bin_dir / "pg_ctl"), "-D", str(self.data), *args])

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data} "
            "-c fsync=off -c full_page_writes=off"
        )
        self._pg_ctl("-o", options, "-l", str(self.data / "server.log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """``fast`` ends every session (their connections break) and shuts down cleanly."""
        self._pg_ctl("-m", mode, "-w", "stop")


def _run(command: list[str]) -> None:
    """Run a server program; any way it fails is NotAvailable, with what it printed."""
    name = " ".join(command)
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NotAvailable(f"{name}: {exc}") from None
    if result.returncode != 0:
        raise NotAvailable(f"{name}: {result.stdout}{result.stderr}")


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A running server of one's own; stopped and deleted afterwards."""
    bin_dir = _bin_dir()
    root = Path(tempfile.mkdtemp(prefix="zb-pg-"))
    root.chmod(0o755)  # the postgres user must reach the data directory inside
    data = root / "data"
    data.mkdir(mode=0o700)
    as_user: list[str] = []
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            raise NotAvailable("running as root needs a postgres user to run the server") from None
        os.chown(data, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    server = PrivatePostgres(bin_dir, data, _free_port(), as_user)
    initdb = [str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]
    try:
        # C.UTF-8 exists on every Debian, whatever locales were generated or LANG says
        _run([*as_user, *initdb, "--locale=C.UTF-8", "-E", "UTF8"])
        try:
            server.start()  # inside: a start that timed out may still leave a server running
            yield server
        finally:
            with contextlib.suppress(NotAvailable):  # not running, or stopped already
                server.stop("immediate")
    finally:
        shutil.rmtree(root, ignore_errors=True)
