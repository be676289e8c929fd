"""What the benchmark ran on, and how busy the machine was while it measured (Linux ``/proc``).

The load generator shares the cores with the server, and other work on the machine skews both.
:class:`CpuWindow` splits the CPU time of a measurement into the server, the load generator and
everything else, so a run disturbed by some other process shows it.
"""

from __future__ import annotations

import os
import platform
import resource
import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def describe() -> dict[str, str | int]:
    return {
        "cores": os.cpu_count() or 0,
        "cpu": cpu_model(),
        "system": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
    }


def _busy_and_total() -> tuple[float, float] | None:
    """Seconds of busy and of all CPU time, summed over cores, since boot."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    ticks = [int(x) for x in fields[:8]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(ticks) - idle) / hz, sum(ticks) / hz


def busy_cores(seconds: float = 1.0) -> float | None:
    """How many cores' worth of CPU the machine used over the next ``seconds``."""
    before = _busy_and_total()
    time.sleep(seconds)
    after = _busy_and_total()
    if before is None or after is None:
        return None
    return (after[0] - before[0]) / seconds


def process_cpu(pid: int) -> float | None:
    """User + system CPU seconds of a running process, all threads included."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True, slots=True)
class CpuShare:
    """Cores used on average during a measurement, by whom."""

    server: float | None
    load_generator: float | None
    other: float | None


class CpuWindow:
    """Open when the measurement starts; close once the load generator has finished.

    The load generator is either a child process (``generator_pid``: its CPU time before the
    window is subtracted from what the kernel reports once it is reaped) or this process.
    """

    def __init__(self, server_pid: int, generator_pid: int | None) -> None:
        self._server_pid = server_pid
        self._server = process_cpu(server_pid)
        self._external = generator_pid is not None
        self._generator = process_cpu(generator_pid) if generator_pid is not None else None
        self._children = _children_cpu()
        self._self = _self_cpu()
        self._machine = _busy_and_total()
        self._started = time.monotonic()

    def close(self) -> CpuShare:
        wall = max(time.monotonic() - self._started, 1e-9)
        server_now = process_cpu(self._server_pid)
        server = None
        if server_now is not None and self._server is not None:
            server = (server_now - self._server) / wall
        generator: float | None = (_self_cpu() - self._self) / wall
        if self._external:
            spent = _children_cpu() - self._children
            generator = None if self._generator is None else (spent - self._generator) / wall
        machine = _busy_and_total()
        other = None
        if None not in (machine, self._machine, server, generator):
            assert machine is not None and self._machine is not None
            busy = (machine[0] - self._machine[0]) / wall
            other = max(0.0, busy - (server or 0.0) - (generator or 0.0))
        return CpuShare(server=server, load_generator=generator, other=other)
