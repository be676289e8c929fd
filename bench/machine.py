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
from collections.abc import Callable, Iterable, Mapping
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


@dataclass(frozen=True, slots=True)
class _Ticks:
    """CPU seconds since boot, summed over cores, from the first line of /proc/stat."""

    processes: float  # user, nice, system: time charged to some process
    kernel: float  # irq, softirq (loopback TCP is mostly softirq), steal by the hypervisor

    @property
    def busy(self) -> float:
        return self.processes + self.kernel


def _ticks() -> _Ticks | None:
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    hz = os.sysconf("SC_CLK_TCK")
    return _Ticks(processes=(user + nice + system) / hz, kernel=(irq + softirq + steal) / hz)


def busy_cores(seconds: float = 1.0) -> float | None:
    """How many cores' worth of CPU the machine used over the next ``seconds``."""
    before = _ticks()
    time.sleep(seconds)
    after = _ticks()
    if before is None or after is None:
        return None
    return (after.busy - before.busy) / seconds


def _stat_cpu(stat: Path) -> float | None:
    """User + system CPU seconds from a ``/proc`` stat file (a process's or one thread's)."""
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except OSError:  # the process or thread ended meanwhile
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float | None:
    """User + system CPU seconds of a running process, all threads included."""
    return _stat_cpu(Path(f"/proc/{pid}/stat"))


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """Every thread of a running process: thread id -> (OS name, user + system CPU seconds)."""
    found: dict[int, tuple[str, float]] = {}
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            name = (task / "comm").read_text().strip()
        except OSError:  # the thread ended meanwhile
            continue
        cpu = _stat_cpu(task / "stat")
        if cpu is not None:
            found[int(task.name)] = (name, cpu)
    return found


def thread_cores(
    pid: int, before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]], wall: float
) -> dict[str, float]:
    """Cores used per thread name between two :func:`thread_cpu` readings of ``pid``.

    The main thread (the event loop in the bridge's servers) is called ``main``; threads sharing
    a name (unnamed helper threads keep the process's) are added up. A thread that ended before
    the second reading is not counted.
    """
    cores: dict[str, float] = {}
    for tid, (name, cpu) in after.items():
        label = "main" if tid == pid else name
        spent = cpu - before.get(tid, (name, 0.0))[1]
        cores[label] = cores.get(label, 0.0) + spent / wall
    return dict(sorted(cores.items(), key=lambda item: (item[0] != "main", -item[1])))


@dataclass(frozen=True, slots=True)
class CpuShare:
    """Cores used on average during a measurement: the server, the load generator, the kernel
    outside any process (mostly loopback networking in softirq), and every other process; and
    the server's own split by thread (``main`` is the event loop)."""

    server: float | None
    load_generator: float | None
    kernel: float | None
    other: float | None
    server_threads: dict[str, float] | None = None


class CpuWindow:
    """Open when the measurement starts; close once the load generator has finished.

    The load generator is either a child process (``generator_pid``: its CPU time before the
    window is subtracted from what the kernel reports once it is reaped) or this process.
    """

    def __init__(self, server_pid: int, generator_pid: int | None) -> None:
        self._server_pid = server_pid
        self._server = process_cpu(server_pid)
        self._threads = thread_cpu(server_pid)
        self._external = generator_pid is not None
        self._generator = process_cpu(generator_pid) if generator_pid is not None else None
        self._children = _children_cpu()
        self._self = _self_cpu()
        self._machine = _ticks()
        self._started = time.monotonic()

    def close(self) -> CpuShare:
        wall = max(time.monotonic() - self._started, 1e-9)
        server_now = process_cpu(self._server_pid)
        threads_now = thread_cpu(self._server_pid)
        server, threads = None, None
        if server_now is not None and self._server is not None:
            server = (server_now - self._server) / wall
        if threads_now and self._threads:
            threads = thread_cores(self._server_pid, self._threads, threads_now, wall)
        generator: float | None = (_self_cpu() - self._self) / wall
        if self._external:
            spent = _children_cpu() - self._children
            generator = None if self._generator is None else (spent - self._generator) / wall
        machine, kernel, other = _ticks(), None, None
        if machine is not None and self._machine is not None:
            kernel = (machine.kernel - self._machine.kernel) / wall
            if server is not None and generator is not None:
                spent = (machine.processes - self._machine.processes) / wall
                other = max(0.0, spent - server - generator)
        return CpuShare(
            server=server,
            load_generator=generator,
            kernel=kernel,
            other=other,
            server_threads=threads,
        )


@dataclass(frozen=True, slots=True)
class CpuSplit:
    """Cores used on average during a measurement by named groups of processes, by the kernel
    outside processes, and by every other process on the machine (someone else's work)."""

    groups: dict[str, float]
    kernel: float | None
    other: float | None


class GroupCpuWindow:
    """Like :class:`CpuWindow`, for several processes: open when the measurement starts.

    Each group is a function returning its process ids; it is called again at ``close()``, so
    processes that started meanwhile count (from zero). A process that exits before ``close()``
    is not counted in its group and shows up as ``other``.
    """

    def __init__(self, groups: Mapping[str, Callable[[], Iterable[int]]]) -> None:
        self._groups = dict(groups)
        self._before = {name: _cpu_of(pids()) for name, pids in self._groups.items()}
        self._machine = _ticks()
        self._started = time.monotonic()

    def close(self) -> CpuSplit:
        wall = max(time.monotonic() - self._started, 1e-9)
        cores: dict[str, float] = {}
        for name, pids in self._groups.items():
            before = self._before[name]
            now = _cpu_of(pids())
            cores[name] = sum(cpu - before.get(pid, 0.0) for pid, cpu in now.items()) / wall
        machine, kernel, other = _ticks(), None, None
        if machine is not None and self._machine is not None:
            kernel = (machine.kernel - self._machine.kernel) / wall
            spent = (machine.processes - self._machine.processes) / wall
            other = max(0.0, spent - sum(cores.values()))
        return CpuSplit(groups=cores, kernel=kernel, other=other)


def _cpu_of(pids: Iterable[int]) -> dict[int, float]:
    found = {}
    for pid in pids:
        cpu = process_cpu(pid)
        if cpu is not None:
            found[pid] = cpu
    return found
