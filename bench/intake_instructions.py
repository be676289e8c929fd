"""Benchmark: the CPU instructions each target's server spends per webhook, counted by callgrind.

    .venv/bin/python bench/intake_instructions.py [--requests 2000] [--connections 8]
                                                  [--warmup 300] [--role intake|serve]

Why. ``bench/intake.py`` measures what the targets are about (events per second, latency, the
ratio to a no-op app), but on a shared 2-core machine two runs minutes apart differ by 10 to
15 %, more than most changes to the request path are worth. Instructions counted by
``valgrind --tool=callgrind`` do not depend on what else the machine is doing: the same code,
requests and environment give the same count within a fraction of a percent, so a change of 2 %
shows. It is a companion to ``bench/intake.py``, not a replacement: instructions are not time
(a cache miss, a system call, a wait for the GIL or for the disk cost time and few instructions),
and what the kernel does (loopback TCP, fsync, the page cache) is not counted at all.

Method. Every event is signed beforehand (the Guest.Created sample with new ids, as in
``bench/intake.py``). Each target (the no-op ASGI app on the same server stack, then
``zenoti-bridge intake`` or ``serve`` on SQLite as shipped) is started under callgrind with
instrumentation off; it gets ``--warmup`` requests, then instrumentation is switched on
(``callgrind_control -i on``) for exactly ``--requests`` requests over ``--connections``
keep-alive connections from a client in this process, then off again, and the server is stopped.
Reported per target: instructions per request in all, and per thread (thread 1 runs the event
loop; on SQLite the writer and the checkpointer are two of the others). Time-driven work (the
checkpointer every 50 ms, uvicorn's housekeeping) runs about 50 times slower under callgrind, so
its share here is larger than in a real run. Every answer must be a 200 and, for the intake,
every event stored once. Results also go to ``bench/results/intake-instructions-<time>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson

from asyncio_load import read_answer
from intake import phase
from servers import (
    HOST,
    ServerFailed,
    bridge_server_command,
    free_port,
    noop_command,
    spawn,
    write_config,
)
from signed_events import read_requests, write_event_file
from zenoti_bridge.storage.queries import Reader

SOURCE = "bench"
PATH = f"/webhooks/zenoti/{SOURCE}"
RESULTS = Path(__file__).with_name("results")
READY_SECONDS = 600.0  # a server starting under callgrind is about 50 times slower


class BenchError(Exception):
    """Bad input, a missing tool or a failed target: exit status 2."""


@dataclass(slots=True)
class Count:
    target: str
    requests: int
    total: int = 0
    threads: dict[str, int] = field(default_factory=dict)
    answers: dict[str, int] = field(default_factory=dict)
    stored: int | None = None

    @property
    def per_request(self) -> float:
        return self.total / self.requests


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Instructions per webhook request: the intake against a no-op app.",
        epilog="The method is described at the top of bench/intake_instructions.py.",
    )
    parser.add_argument("--requests", type=int, default=2000, help="requests counted per target")
    parser.add_argument("--warmup", type=int, default=300, help="requests before counting")
    parser.add_argument("--connections", type=int, default=8, help="keep-alive connections")
    parser.add_argument(
        "--role", choices=("intake", "serve"), default="intake", help="the bridge's role"
    )
    args = parser.parse_args(argv)
    if not 100 <= args.requests <= 100_000:
        parser.error("--requests must be between 100 and 100000")
    if not 0 <= args.warmup <= 10_000:
        parser.error("--warmup must be between 0 and 10000")
    if not 1 <= args.connections <= 64:
        parser.error("--connections must be between 1 and 64")
    return args


# -- the client -----------------------------------------------------------------------------


async def _one_connection(port: int, requests: list[bytes], answers: dict[str, int]) -> None:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        for request in requests:
            writer.write(request)
            status, _ = await read_answer(reader)
            answers[str(status)] = answers.get(str(status), 0) + 1
    finally:
        writer.close()


def send(port: int, requests: list[bytes], connections: int) -> dict[str, int]:
    """Send every request once, closed loop; the answers by status."""
    answers: dict[str, int] = {}

    async def run() -> None:
        await asyncio.gather(
            *(_one_connection(port, requests[n::connections], answers) for n in range(connections))
        )

    asyncio.run(run())
    return answers


# -- one target under callgrind -------------------------------------------------------------


def valgrind_command(out: Path) -> list[str]:
    return [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        "--separate-threads=yes",
        f"--callgrind-out-file={out}.%p",
    ]


def control(pid: int, switch: str) -> None:
    subprocess.run(
        ["callgrind_control", "-i", switch, str(pid)], check=True, capture_output=True, timeout=60
    )


_TOTALS = re.compile(rb"^totals: (\d+)$", re.MULTILINE)


def read_counts(prefix: Path, pid: int, count: Count) -> None:
    """Sum the per-thread files callgrind wrote at exit (``<prefix>.<pid>-NN``)."""
    for part in sorted(prefix.parent.glob(f"{prefix.name}.{pid}-*")):
        found = _TOTALS.search(part.read_bytes())
        instructions = int(found.group(1)) if found else 0
        if instructions:
            thread = part.name.rsplit("-", 1)[1].lstrip("0") or "0"
            count.threads[f"thread {thread}"] = instructions
            count.total += instructions
    if count.total == 0:
        raise BenchError(f"callgrind wrote no counts for {count.target} ({prefix}.{pid}-*)")


def measure(
    key: str,
    name: str,
    command: list[str],
    workdir: Path,
    port: int,
    warmup: list[bytes],
    counted: list[bytes],
    connections: int,
) -> Count:
    prefix = workdir / f"callgrind-{key}"
    phase(f"{name}: starting under callgrind (a minute or two)")
    server = spawn(
        name, valgrind_command(prefix) + command, workdir / f"{key}.log", "/healthz", port
    )
    process = server.process
    count = Count(target=name, requests=len(counted))
    try:
        server.wait_ready(READY_SECONDS)
        if warmup:
            phase(f"  warm-up: {len(warmup):,} requests")
            send(port, warmup, connections)
        phase(f"  counting {len(counted):,} requests over {connections} connections")
        control(process.pid, "on")
        count.answers = send(port, counted, connections)
        control(process.pid, "off")
    finally:
        phase("  stopping (callgrind writes its counts)")
        server.stop(timeout=300)
    read_counts(prefix, process.pid, count)
    phase(f"  {count.per_request:,.0f} instructions per request")
    return count


# -- report ---------------------------------------------------------------------------------


def report(noop: Count, bridge: Count, role: str) -> list[str]:
    print()
    print(f"{'target':36s} {'instructions/request':>20s}   by thread (thread 1: event loop)")
    print("-" * 100)
    for count in (noop, bridge):
        threads = ", ".join(
            f"{thread}: {value / count.requests:,.0f}" for thread, value in count.threads.items()
        )
        print(f"{count.target:36s} {count.per_request:>20,.0f}   {threads}")
    print()
    ratio = noop.per_request / bridge.per_request
    loop = noop.threads.get("thread 1", 0) / max(bridge.threads.get("thread 1", 1), 1)
    print(f"instruction ratio no-op / {role}: {ratio:.3f} (all threads), {loop:.3f} (event loop)")
    problems = []
    for count in (noop, bridge):
        if count.answers != {"200": count.requests}:
            problems.append(f"{count.target}: answers {count.answers}, expected all 200")
    if bridge.stored is not None:
        print(f"stored events: {bridge.stored:,} (warm-up and counted requests)")
    return problems


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            print(f"error: {tool} is not installed (apt-get install valgrind)", file=sys.stderr)
            return 2
    workdir = Path(tempfile.mkdtemp(prefix="zb-instructions-"))
    try:
        secret = secrets.token_urlsafe(24)
        phase(f"signing {args.warmup * 2 + args.requests * 2:,} events")
        events = write_event_file(
            workdir / "events.tsv",
            secret=secret,
            epoch_seconds=int(time.time()),
            first=0,
            count=args.warmup * 2 + args.requests * 2,
        )
        lines = [request for _, request in read_requests(events, HOST, PATH)]
        # the no-op gets the first half, the bridge the second: every event it sees is new
        half = args.warmup + args.requests
        noop_port = free_port()
        noop = measure(
            "noop",
            "(b) no-op ASGI app",
            noop_command(noop_port),
            workdir,
            noop_port,
            lines[: args.warmup],
            lines[args.warmup : half],
            args.connections,
        )
        database = workdir / "bench.db"
        port = free_port()
        config = workdir / "bridge.toml"
        write_config(
            config, database_url=f"sqlite:///{database}", port=port, source=SOURCE, secret=secret
        )
        bridge = measure(
            "bridge",
            f"(a) {args.role}, SQLite FULL",
            bridge_server_command(config, port, args.role),
            workdir,
            port,
            lines[half : half + args.warmup],
            lines[half + args.warmup :],
            args.connections,
        )
        with Reader(f"sqlite:///{database}") as reader:
            bridge.stored = reader.count_events()
        problems = report(noop, bridge, args.role)
        if bridge.stored != args.warmup + args.requests:
            problems.append(f"stored {bridge.stored:,}, expected {args.warmup + args.requests:,}")
        RESULTS.mkdir(exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = RESULTS / f"intake-instructions-{stamp}.json"
        document = {
            "benchmark": "intake-instructions",
            "command": " ".join(["bench/intake_instructions.py", *(argv or sys.argv[1:])]),
            "options": vars(args),
            "targets": [asdict(noop), asdict(bridge)],
            "per_request": {noop.target: noop.per_request, bridge.target: bridge.per_request},
            "ratio": noop.per_request / bridge.per_request,
            "problems": problems,
        }
        path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
        print(f"results: {path}")
        for problem in problems:
            print(f"FAILED: {problem}")
        return 1 if problems else 0
    except (BenchError, ServerFailed, subprocess.SubprocessError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
