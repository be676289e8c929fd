"""Operating-system names for the bridge's threads.

Python before 3.14 names its threads only for itself: to ``top -H``, ``ps -L`` and
``/proc/<pid>/task/*/comm`` every thread of the process is called ``zenoti-bridge``, so the
event loop, the SQLite writer and its checkpointer cannot be told apart when one of them is the
one using a core. Linux keeps a name of up to 15 bytes per thread, which a thread sets for
itself with ``prctl(PR_SET_NAME)``; elsewhere (or without ``libc``) naming does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading
from collections.abc import Callable

MAX_NAME_BYTES = 15
_PR_SET_NAME = 15  # linux/prctl.h


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None
    function: Callable[..., int] = libc.prctl
    return function


_PRCTL = _prctl()


def name_this_thread(name: str | None = None) -> bool:
    """Give the calling thread its Python name (or ``name``) as its OS name, cut to 15 bytes.

    Returns whether the OS took the name.
    """
    if _PRCTL is None:
        return False
    text = (name or threading.current_thread().name).encode("utf-8", "replace")
    return _PRCTL(_PR_SET_NAME, ctypes.c_char_p(text[:MAX_NAME_BYTES]), 0, 0, 0) == 0


def named_thread(target: Callable[[], None], name: str) -> threading.Thread:
    """A daemon thread that runs ``target`` under ``name``, for Python and for the OS alike."""
    if len(name.encode()) > MAX_NAME_BYTES:
        raise ValueError(f"thread name {name!r} is longer than {MAX_NAME_BYTES} bytes")

    def run() -> None:
        name_this_thread(name)
        target()

    return threading.Thread(target=run, name=name, daemon=True)
