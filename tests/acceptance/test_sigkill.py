"""``kill -9`` of ``serve`` under load loses no acknowledged event and stores none twice.

The issue's "done when": an acceptance test kills ``serve`` with SIGKILL during a load of 20,000
distinct events (SQLite and PostgreSQL); after restart every event that got a 2xx is stored
exactly once.

How: 32 keep-alive connections deliver 20,000 distinct signed ``Guest.Created`` events. When a
seeded random share (30 % to 60 %) of them has been acknowledged, the sender SIGKILLs the server
while other requests are in flight and stops sending. A fresh ``serve`` on the same configuration
then receives every event that did not get a 2xx, the way Zenoti retries, until all 20,000 are
acknowledged. That server is SIGKILLed too, so the check reads only what is durable, never what a
clean shutdown might flush. The seed is ``ZB_TEST_SEED`` (printed with the results).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import payload
from zenoti_bridge.signature import DEFAULT_HEADER, sign
from zenoti_bridge.storage.queries import Reader

from .serve_process import ServeProcess, ServeProcesses, free_port, write_config
from .webhook_client import Connection, NoAnswer

EVENTS = 20_000
CONNECTIONS = 32
SOURCE = "acme"
SECRET = "sigkill-acceptance-secret"
SEED = int(os.environ.get("ZB_TEST_SEED", "20240603"))
KILL_BETWEEN = (0.30, 0.60)  # share of the events acknowledged when the kill comes
REQUEST_TIMEOUT = 10.0  # Zenoti's own delivery timeout
PHASE_DEADLINE = 90.0  # a hang guard, not a performance expectation
RESEND_ROUNDS = 3

pytestmark = pytest.mark.slow


@dataclass(frozen=True, slots=True)
class Delivery:
    """One signed webhook request, exactly as Zenoti would send it."""

    event_id: str
    body: bytes
    headers: dict[str, str]


@dataclass(slots=True)
class Round:
    """What the sender saw in one pass over a list of deliveries."""

    acknowledged: dict[str, str] = field(default_factory=dict)  # event_id -> answer's status
    unanswered: dict[str, str] = field(default_factory=dict)  # event_id -> error or HTTP code
    in_flight: int = 0
    in_flight_at_kill: int | None = None

    @property
    def sent(self) -> set[str]:
        return self.acknowledged.keys() | self.unanswered.keys()


def make_deliveries(count: int, rng: random.Random) -> list[Delivery]:
    """``count`` distinct Guest.Created events with 24-hex ids, signed with SECRET."""
    template: dict[str, Any] = orjson.loads(payload("Guest.Created"))
    event_prefix = f"{rng.getrandbits(32):08x}"
    delivery_prefix = f"{rng.getrandbits(32):08x}"
    deliveries = []
    for n in range(count):
        event_id = f"{event_prefix}{n:016x}"
        guest_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        body = orjson.dumps(
            {
                **template,
                "id": f"{delivery_prefix}{n:016x}",
                "event_id": event_id,
                "data": {**template["data"], "id": guest_id},
            }
        )
        headers = {"content-type": "application/json", DEFAULT_HEADER: sign(SECRET, body)}
        deliveries.append(Delivery(event_id, body, headers))
    return deliveries


async def deliver(
    server: ServeProcess,
    deliveries: Sequence[Delivery],
    *,
    kill_after: int | None = None,
    kill: Callable[[], None] | None = None,
) -> Round:
    """Send every delivery over CONNECTIONS keep-alive connections; record each answer or none.

    With ``kill_after``, ``kill`` runs as the ``kill_after``-th acknowledgement arrives, while
    the other connections' requests are still in flight, and no further delivery is started.
    """
    seen = Round()
    pending = iter(deliveries)
    path = server.webhook_path(SOURCE)
    stopped = False

    async def sender() -> None:
        nonlocal stopped
        connection = Connection("127.0.0.1", server.port, timeout=REQUEST_TIMEOUT)
        try:
            while not stopped:
                delivery = next(pending, None)
                if delivery is None:
                    return
                seen.in_flight += 1
                try:
                    status, answer = await connection.post(path, delivery.body, delivery.headers)
                except NoAnswer as exc:
                    seen.unanswered[delivery.event_id] = str(exc).split(":", 1)[0]
                    continue
                finally:
                    seen.in_flight -= 1
                if not 200 <= status < 300:
                    seen.unanswered[delivery.event_id] = f"HTTP {status}"
                    continue
                seen.acknowledged[delivery.event_id] = orjson.loads(answer)["status"]
                if len(seen.acknowledged) == kill_after and kill is not None:
                    seen.in_flight_at_kill = seen.in_flight
                    kill()
                    stopped = True
        finally:
            await connection.close()

    async with asyncio.timeout(PHASE_DEADLINE), asyncio.TaskGroup() as senders:
        for _ in range(CONNECTIONS):
            senders.create_task(sender())
    return seen


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def bridge_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database on each backend; ``serve`` migrates it at start."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bridge.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def test_every_acknowledged_event_survives_sigkill_exactly_once(
    bridge_database_url: str, tmp_path: Path
) -> None:
    started = time.perf_counter()
    rng = random.Random(SEED)
    deliveries = make_deliveries(EVENTS, rng)
    every_id = {d.event_id for d in deliveries}
    assert len(every_id) == EVENTS
    kill_after = round(EVENTS * rng.uniform(*KILL_BETWEEN))
    config = write_config(
        tmp_path / "bridge.toml", bridge_database_url, port=free_port(), secret=SECRET
    )

    with ServeProcesses(tmp_path) as servers:
        # 1. load, and SIGKILL the server once kill_after events are acknowledged
        first = servers.start(config)
        first.wait_ready()
        load_started = time.perf_counter()
        before = asyncio.run(
            deliver(
                first,
                deliveries,
                kill_after=kill_after,
                kill=lambda: os.kill(first.pid, signal.SIGKILL),
            )
        )
        load_seconds = time.perf_counter() - load_started
        assert first.kill() == -signal.SIGKILL, "serve must have died by SIGKILL"
        never_sent = every_id - before.sent
        assert before.in_flight_at_kill, "the kill must come while requests are in flight"
        assert len(before.acknowledged) >= kill_after, "the kill must come mid-load"
        assert never_sent, "the kill must come before every event was sent"
        assert set(before.acknowledged.values()) == {"accepted"}

        # 2. restart on the same configuration and resend what got no 2xx, as Zenoti retries
        second = servers.start(config)
        second.wait_ready()
        resend_started = time.perf_counter()
        lost_answers = dict(before.unanswered)  # sent at least once, no 2xx
        resent: dict[str, str] = {}
        to_send = [d for d in deliveries if d.event_id not in before.acknowledged]
        for _ in range(RESEND_ROUNDS):
            if not to_send:
                break
            again = asyncio.run(deliver(second, to_send))
            resent.update(again.acknowledged)
            lost_answers.update(again.unanswered)
            to_send = [d for d in to_send if d.event_id in again.unanswered]
        resend_seconds = time.perf_counter() - resend_started
        second.kill()  # read only what is on disk: no clean shutdown may flush anything

        assert not to_send, f"{len(to_send)} events still unacknowledged after resending"
        assert before.acknowledged.keys() | resent.keys() == every_id
        answers = Counter(resent.values())
        assert set(answers) <= {"accepted", "duplicate"}, answers
        duplicates = {event_id for event_id, status in resent.items() if status == "duplicate"}
        # only a delivery that reached the server before can have been stored before
        assert duplicates <= lost_answers.keys()
        # events acknowledged before the kill were not resent; their acknowledgements are final
        assert not resent.keys() & before.acknowledged.keys()

        # 3. every acknowledged event is stored exactly once, with exactly one job
        with Reader(bridge_database_url) as reader:
            stored = {
                event_id: (rows, jobs) for event_id, rows, jobs in reader.event_id_counts(SOURCE)
            }
            deliveries_recorded = reader.deliveries_count(SOURCE)
        lost = before.acknowledged.keys() - stored.keys()
        assert not lost, f"{len(lost)} acknowledged before the kill are gone: {sorted(lost)[:5]}"
        not_once = {event_id: n for event_id, n in stored.items() if n != (1, 1)}
        assert not not_once, (
            f"(rows, jobs) not (1, 1): {len(not_once)}, {list(not_once.items())[:5]}"
        )
        assert stored.keys() == every_id
        assert len(stored) == EVENTS
        # each duplicate answer is one recorded delivery; a lost answer may hide one more
        extra = deliveries_recorded - EVENTS
        assert len(duplicates) <= extra <= len(duplicates) + len(lost_answers)

    backend = bridge_database_url.split(":", 1)[0]
    print(
        f"\n[sigkill {backend}] seed {SEED}: killed after {len(before.acknowledged)} of {EVENTS} "
        f"acknowledged ({kill_after} wanted) with {before.in_flight_at_kill} in flight; "
        f"{len(before.unanswered)} unanswered ({dict(Counter(before.unanswered.values()))}), "
        f"{len(never_sent)} never sent; resent {len(resent)}: {dict(answers)} "
        f"({len(duplicates)} stored before the kill with the answer lost); "
        f"load {load_seconds:.1f} s, resend {resend_seconds:.1f} s, "
        f"total {time.perf_counter() - started:.1f} s"
    )
