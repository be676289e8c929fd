"""An open-loop load generator: events sent at a fixed rate, whatever the answers do.

Zenoti sends webhooks when things happen, not when the previous answer arrived, so latency at
a given rate is measured open loop: request ``i`` is due ``i / rate`` seconds after the start
and goes out then on an idle keep-alive connection (a new one when all are busy), even if
earlier answers are late. Its latency runs from when it was *due* to the end of its answer, so
a generator that fell behind its schedule shows up in the figures instead of hiding a slow
server (no coordinated omission). Every request is built before the clock starts (the lines of
an event file, ``signed_events.read_requests``) and the generator knows which answer belongs to
which event.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from asyncio_load import read_answer, run_loop
from signed_events import EventFile, read_requests

StreamPair = tuple[asyncio.StreamReader, asyncio.StreamWriter]
LATE = 0.010


@dataclass(frozen=True, slots=True)
class Answer:
    """One request: when it was due (seconds after the start) and what came back."""

    event_id: str
    due: float
    latency: float | None  # seconds from due to the end of the answer; None: no answer
    status: int  # 0 when no answer came (socket error or timeout)
    outcome: str  # the "status" field of a 200 answer: accepted, duplicate...


@dataclass(slots=True)
class OpenLoopResult:
    rate: float
    seconds: float  # from the first due time to the last answer
    answers: list[Answer]
    connections_opened: int
    most_behind: float  # seconds the generator was late sending a request, at worst
    late: int  # requests sent more than LATE seconds after they were due
    statuses: Counter[int] = field(default_factory=Counter)

    @property
    def acknowledged(self) -> list[str]:
        return [a.event_id for a in self.answers if a.status == 200 and a.outcome == "accepted"]


async def _run(
    host: str,
    port: int,
    requests: list[tuple[str, bytes]],
    rate: float,
    answer_timeout: float,
    max_connections: int,
    on_start: Callable[[], None] | None,
) -> OpenLoopResult:
    idle: list[StreamPair] = []
    slots = asyncio.Semaphore(max_connections)
    answers: list[Answer | None] = [None] * len(requests)
    opened = 0

    async def send(index: int, event_id: str, request: bytes, due: float) -> None:
        nonlocal opened
        async with slots:
            pair = idle.pop() if idle else None
            try:
                if pair is None:
                    pair = await asyncio.open_connection(host, port)
                    opened += 1
                pair[1].write(request)
                status, body = await asyncio.wait_for(read_answer(pair[0]), answer_timeout)
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
                if pair is not None:
                    pair[1].close()
                answers[index] = Answer(event_id, due - start, None, 0, "")
                return
            finished = time.perf_counter()
            idle.append(pair)
            outcome = ""
            if status == 200:
                document = orjson.loads(body)
                outcome = str(document.get("status", "")) if isinstance(document, dict) else ""
            answers[index] = Answer(event_id, due - start, finished - due, status, outcome)

    if on_start is not None:
        on_start()
    # perf_counter, not loop.time(): uvloop's clock moves in whole milliseconds
    start = time.perf_counter() + 0.05
    behind = 0.0
    late = 0
    tasks: list[asyncio.Task[None]] = []
    for index, (event_id, request) in enumerate(requests):
        due = start + index / rate
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        else:
            behind = max(behind, -wait)
            if -wait > LATE:
                late += 1
        tasks.append(asyncio.create_task(send(index, event_id, request, due)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    for pair in idle:
        pair[1].close()
    done = [a for a in answers if a is not None]
    result = OpenLoopResult(rate, elapsed, done, opened, behind, late)
    result.statuses.update(a.status for a in done)
    return result


def run_open_loop(
    host: str,
    port: int,
    path: str,
    events: EventFile,
    *,
    rate: float,
    count: int,
    timeout: float = 10.0,
    max_connections: int = 256,
    on_start: Callable[[], None] | None = None,
) -> OpenLoopResult:
    """Send the first ``count`` events of ``events`` at ``rate`` per second, open loop.

    ``on_start()`` is called once every request is built, just before the clock starts.
    """
    requests = list(read_requests(events, f"{host}:{port}", path))[:count]
    # what exists now lives to the end: keep the collector from walking it again and again
    gc.collect()
    gc.freeze()
    try:
        return run_loop(_run(host, port, requests, rate, timeout, max_connections, on_start))
    finally:
        gc.unfreeze()
