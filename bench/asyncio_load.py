"""The built-in load generator, for machines without wrk: raw asyncio streams, keep-alive.

Each connection sends one pre-built request, reads the whole answer, then sends the next, until
the time is up (closed loop, like wrk). Unlike wrk it knows which answer belongs to which event,
so it returns the ids answered ``accepted`` for an exact check against the store. It is Python:
it needs far more CPU per request than wrk, and that CPU is taken from the server on the same
cores, so compare its figures only with a baseline measured by it in the same run.
"""

from __future__ import annotations

import asyncio
import importlib.util
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

from load_result import Latency, LoadResult
from signed_events import EventFile, read_requests

T = TypeVar("T")


@dataclass(slots=True)
class _Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    acknowledged: list[str] = field(default_factory=list)
    socket_errors: int = 0
    handed_out: int = 0
    exhausted: bool = False


class _Sender:
    """Hands out requests in file order, each at most once, until the deadline."""

    def __init__(self, requests: Iterator[tuple[str, bytes]], deadline: float, tally: _Tally):
        self.requests = requests
        self.deadline = deadline
        self.tally = tally

    def next(self) -> tuple[str, bytes] | None:
        if time.perf_counter() >= self.deadline:
            return None
        item = next(self.requests, None)
        if item is None:
            self.tally.exhausted = True
            return None
        self.tally.handed_out += 1
        return item


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


def _record(tally: _Tally, event_id: str, status: int, body: bytes, seconds: float) -> None:
    tally.latencies.append(seconds)
    tally.statuses[status] += 1
    if status == 200:
        outcome = orjson.loads(body).get("status", "")
        tally.outcomes[outcome] += 1
        if outcome == "accepted":
            tally.acknowledged.append(event_id)


async def _connection(host: str, port: int, sender: _Sender) -> None:
    tally = sender.tally
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        tally.socket_errors += 1
        return
    try:
        while (item := sender.next()) is not None:
            event_id, request = item
            started = time.perf_counter()
            writer.write(request)
            status, body = await read_answer(reader)
            _record(tally, event_id, status, body, time.perf_counter() - started)
    except (OSError, asyncio.IncompleteReadError, ValueError):
        tally.socket_errors += 1
    finally:
        writer.close()


def percentile(ordered: list[float], fraction: float) -> float:
    """The ``fraction`` quantile of sorted latencies in seconds, in milliseconds."""
    if not ordered:
        return 0.0
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank] * 1000


def latency_summary(latencies: list[float]) -> Latency:
    """Percentiles, maximum and mean of latencies in seconds, in milliseconds."""
    ordered = sorted(latencies)
    mean = sum(ordered) / len(ordered) * 1000 if ordered else 0.0
    return Latency(
        p50=percentile(ordered, 0.50),
        p90=percentile(ordered, 0.90),
        p99=percentile(ordered, 0.99),
        p999=percentile(ordered, 0.999),
        max=ordered[-1] * 1000 if ordered else 0.0,
        mean=mean,
    )


async def _run(
    host: str,
    port: int,
    path: str,
    events: EventFile,
    connections: int,
    seconds: float,
    on_start: Callable[[int | None], None] | None,
) -> LoadResult:
    tally = _Tally()
    # built before the clock starts, so reading the file costs the measurement nothing
    requests = iter(list(read_requests(events, f"{host}:{port}", path)))
    if on_start is not None:
        on_start(None)
    started = time.perf_counter()
    sender = _Sender(requests, started + seconds, tally)
    await asyncio.gather(*(_connection(host, port, sender) for _ in range(connections)))
    elapsed = time.perf_counter() - started
    answers = sum(tally.statuses.values())
    ok = sum(n for status, n in tally.statuses.items() if 200 <= status < 300)
    return LoadResult(
        tool="asyncio",
        connections=connections,
        seconds=elapsed,
        answers=answers,
        statuses=dict(tally.statuses),
        non_2xx=answers - ok,
        socket_errors=tally.socket_errors,
        latency=latency_summary(tally.latencies),
        handed_out=tally.handed_out,
        sentinels=1 if tally.exhausted else 0,
        acknowledged=tally.acknowledged,
        outcomes=dict(tally.outcomes),
    )


def run_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` on a fresh event loop, uvloop's when installed."""
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if importlib.util.find_spec("uvloop") is not None:
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coroutine)


def run_asyncio(
    host: str,
    port: int,
    path: str,
    events: EventFile,
    *,
    connections: int,
    seconds: float,
    on_start: Callable[[int | None], None] | None = None,
) -> LoadResult:
    """One closed-loop run of ``connections`` keep-alive connections for ``seconds``.

    ``on_start(None)`` is called once the requests are built, just before the clock starts.
    """
    return run_loop(_run(host, port, path, events, connections, seconds, on_start))
