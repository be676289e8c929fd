"""A minimal HTTP/1.1 keep-alive client for load tests, the way Zenoti's sender behaves.

httpx is the right client everywhere else, but under load its connection pool costs ~2 ms of
CPU per request (it scans every connection and creates fresh locks for every request), which on
a 2-core machine leaves the server starved and a 20,000-event test running for minutes. This
client does only what the bridge's answers need: a request with a body, a response with a
``content-length``.

Usage::

    connection = Connection("127.0.0.1", port, timeout=10.0)
    try:
        status, body = await connection.post("/webhooks/zenoti/acme", payload, headers)
    except NoAnswer as exc:
        ...  # refused, reset, cut short or timed out: the outcome is unknown
    await connection.close()
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping


class NoAnswer(Exception):
    """The request got no complete answer; whether the server acted on it is unknown."""


class Connection:
    """One keep-alive connection; it reconnects on the next request after a failure."""

    def __init__(self, host: str, port: int, *, timeout: float) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, path: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        """The status code and body of the answer to one POST."""
        try:
            async with asyncio.timeout(self.timeout):
                return await self._exchange(path, body, headers)
        except (OSError, EOFError, TimeoutError, ValueError) as exc:
            # OSError: refused or reset; EOFError (IncompleteReadError): cut short;
            # ValueError: an unparseable answer. The connection is unusable either way.
            await self.close()
            raise NoAnswer(f"{type(exc).__name__}: {exc}") from exc

    async def _exchange(
        self, path: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, bytes]:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._streams
        head = [f"POST {path} HTTP/1.1", f"host: {self.host}:{self.port}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        head.append(f"content-length: {len(body)}")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()

        status_line = await reader.readuntil(b"\r\n")
        _, code, *_ = status_line.split(b" ", 2)
        length: int | None = None
        close = False
        while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        if length is None:
            raise ValueError("the answer has no content-length")
        answer = await reader.readexactly(length)
        if close:
            await self.close()
        return int(code), answer

    async def close(self) -> None:
        if self._streams is None:
            return
        _, writer = self._streams
        self._streams = None
        writer.close()
        with contextlib.suppress(OSError):  # already reset by the peer
            await writer.wait_closed()
