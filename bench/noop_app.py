"""The baseline for intake benchmarks: a no-op ASGI app on the same server stack as the bridge.

It reads the whole request body and answers ``200 {"status":"ok"}``. Any path outside
``/webhooks/`` and ``/healthz`` gets 404, as on the bridge, so a load generator's sentinel
requests are counted as errors on both targets. The uvicorn options are those of
``zenoti_bridge.server.run`` (uvloop, httptools, access log off, backlog 4096, keep-alive 75 s, no
server header), so the difference between the two targets is the intake's own work.

Run: ``python bench/noop_app.py --port 8181``.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn

from zenoti_bridge.server import uvicorn_config

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_OK = b'{"status":"ok"}'
_NOT_FOUND = b'{"error":"not_found"}'


def _headers(body: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Read the body, answer 200 with a small JSON body (404 for unknown paths)."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        more = bool(message.get("more_body", False))
    path = scope["path"]
    found = path.startswith("/webhooks/") or path == "/healthz"
    body = _OK if found else _NOT_FOUND
    await send(
        {"type": "http.response.start", "status": 200 if found else 404, "headers": _headers(body)}
    )
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def serve(host: str, port: int, log_level: str = "warning") -> None:
    """Serve ``app`` on exactly the server stack of ``zenoti_bridge.server``."""
    config = uvicorn_config(app, host=host, port=port, log_level=log_level)
    uvicorn.Server(config).run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()
    serve(args.host, args.port, args.log_level)


if __name__ == "__main__":
    main()
