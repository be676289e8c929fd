"""Driving wrk with ``bench/intake.lua``: every request is the next line of an event file.

wrk runs closed-loop: each connection sends its next request when the previous answer arrived.
Its latency percentiles come from its own histogram, after wrk's correction for coordinated
omission, and are read from the ``ZB_BENCH_RESULT`` line the Lua ``done()`` prints (the same
numbers as ``--latency`` prints, in microseconds instead of rounded text).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from load_result import Latency, LoadFailed, LoadResult

LUA = Path(__file__).with_name("intake.lua")
MARKER = "ZB_BENCH_RESULT "
READY = "ZB_BENCH_READY"


def wrk_path() -> str | None:
    return shutil.which("wrk")


def wrk_version() -> str:
    path = wrk_path()
    if path is None:
        return "wrk not installed"
    done = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
    return (done.stdout or done.stderr).split("[")[0].strip() or "wrk"


def run_wrk(
    url: str,
    events: Path,
    *,
    connections: int,
    seconds: int,
    threads: int = 1,
    on_start: Callable[[int | None], None] | None = None,
) -> LoadResult:
    """One wrk run against ``url`` sending the lines of ``events``; raises if wrk fails.

    ``on_start(pid)`` is called once every wrk thread has loaded its lines, just before wrk
    starts its clock (the Lua ``init()`` writes a marker to stderr when it is done).
    """
    path = wrk_path()
    if path is None:
        raise LoadFailed("wrk is not installed; use --tool asyncio or apt-get install wrk")
    command = [
        path,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        url,
        "--",
        str(events),
        str(threads),
    ]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stderr is not None
        early = _await_ready(process.stderr.readline, threads)
        if on_start is not None:
            on_start(process.pid)
        stdout, stderr = process.communicate()
    if process.returncode != 0 or MARKER not in stdout:
        problem = (early + stderr).strip() or stdout
        raise LoadFailed(f"wrk failed ({process.returncode}): {problem}")
    return parse_wrk(stdout, connections)


def _await_ready(readline: Callable[[], str], threads: int) -> str:
    """Read wrk's stderr until every thread reported ready; returns anything else it said."""
    other: list[str] = []
    ready = 0
    while ready < threads:
        line = readline()
        if not line:
            break  # wrk ended early; its exit code and output tell why
        if line.startswith(READY):
            ready += 1
        else:
            other.append(line)
    return "".join(other)


def parse_wrk(output: str, connections: int) -> LoadResult:
    """The LoadResult in wrk's output (the line the Lua ``done()`` printed)."""
    line = next(x for x in output.splitlines() if x.startswith(MARKER))
    data: dict[str, Any] = orjson.loads(line.removeprefix(MARKER))
    statuses: dict[int, int] = {}
    for thread in data["threads"]:
        for status, count in thread["statuses"].items():
            statuses[int(status)] = statuses.get(int(status), 0) + int(count)
    errors = data["errors"]
    answers = int(data["requests"])
    ok = sum(n for status, n in statuses.items() if 200 <= status < 300)
    return LoadResult(
        tool="wrk",
        connections=connections,
        seconds=data["duration_us"] / 1e6,
        answers=answers,
        statuses=statuses,
        non_2xx=answers - ok if statuses else int(errors["status"]),
        socket_errors=sum(int(errors[k]) for k in ("connect", "read", "write", "timeout")),
        latency=_latency(data["latency_us"]),
        handed_out=sum(int(t["handed_out"]) for t in data["threads"]),
        sentinels=sum(int(t["sentinels"]) for t in data["threads"]),
        raw_output=output,
    )


def _latency(micros: dict[str, float]) -> Latency:
    return Latency(
        p50=micros["p50"] / 1000,
        p90=micros["p90"] / 1000,
        p99=micros["p99"] / 1000,
        p999=micros["p999"] / 1000,
        max=micros["max"] / 1000,
        mean=micros["mean"] / 1000,
    )
