"""A real HTTP endpoint on loopback whose answer per path a test sets: a status, or no answer.

    endpoint = Endpoint()
    await endpoint.start()
    endpoint.answer("/down", 500)
    endpoint.answer("/slow", HANG)       # reads the request, never answers
    endpoint.url("/down"), endpoint.refused_url  # the latter: a port where nothing listens
    endpoint.requests("/down")           # what arrived, in order

A tiny asyncio HTTP/1.1 server rather than a framework: it must be able to hang on purpose, and
to stop at once with requests still open.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus

HANG = "hang"
LOOPBACK_PATIENCE = 5.0  # real seconds


async def eventually(check: Callable[[], bool]) -> None:
    """Poll ``check`` while loopback I/O happens; fail after ``LOOPBACK_PATIENCE``."""
    async with asyncio.timeout(LOOPBACK_PATIENCE):
        while not check():  # noqa: ASYNC110 - servers and engines change what check() reads
            await asyncio.sleep(0.002)


@dataclass(frozen=True, slots=True)
class Received:
    """One request as it arrived (header names lowercase)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def free_port() -> int:
    """A loopback TCP port nothing listens on (now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Endpoint:
    """Answers 200 on every path unless told otherwise by :meth:`answer`."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._answers: dict[str, tuple[int | str, str]] = {}
        self._release = asyncio.Event()
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self.port = 0
        self.refused_url = f"http://127.0.0.1:{free_port()}/refused"

    async def start(self) -> None:
        """Listen on a free loopback port."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Release hanging requests and close every connection."""
        self._release.set()
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            await self._server.wait_closed()

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` on this endpoint."""
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, path: str, status: int | str, text: str = "") -> None:
        """Answer ``status`` (or :data:`HANG`) with ``text`` on ``path`` from now on."""
        self._answers[path] = (status, text)

    def requests(self, path: str) -> list[Received]:
        """The requests received on ``path``, oldest first."""
        return [request for request in self.received if request.path == path]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while await self._exchange(reader, writer):
                pass
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away (a cancelled request, a closed pool)
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        request_line, *lines = head.strip().split("\r\n")
        method, path, _ = request_line.split(" ", 2)
        headers = {
            name.strip().lower(): value.strip()
            for name, value in (line.split(":", 1) for line in lines)
        }
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.received.append(Received(method, path, headers, body))
        status, text = self._answers.get(path, (200, ""))
        if status == HANG:
            await self._release.wait()
            return False
        content = (text or f"answer {status}").encode()
        writer.write(
            f"HTTP/1.1 {status} {HTTPStatus(int(status)).phrase}\r\n"
            f"Content-Type: text/plain\r\nContent-Length: {len(content)}\r\n\r\n".encode()
            + content
        )
        await writer.drain()
        return True
