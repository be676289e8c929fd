"""OS thread names: what `top -H` and /proc/<pid>/task/*/comm show."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from zenoti_bridge.threads import MAX_NAME_BYTES, name_this_thread, named_thread

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")


def _os_name(native_id: int) -> str:
    return Path(f"/proc/self/task/{native_id}/comm").read_text().strip()


@linux_only
def test_named_thread_carries_its_name_to_the_os() -> None:
    seen: list[str] = []
    thread = named_thread(
        lambda: seen.append(_os_name(threading.get_native_id())), "zb-test-thread"
    )
    thread.start()
    thread.join()
    assert thread.name == "zb-test-thread"
    assert thread.daemon
    assert seen == ["zb-test-thread"]


@linux_only
def test_long_names_are_cut_to_what_linux_keeps() -> None:
    seen: list[str] = []

    def run() -> None:
        assert name_this_thread("zb-a-name-far-longer-than-fifteen")
        seen.append(_os_name(threading.get_native_id()))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert seen == ["zb-a-name-far-longer-than-fifteen"[:MAX_NAME_BYTES]]


def test_named_thread_refuses_a_name_the_os_would_cut() -> None:
    with pytest.raises(ValueError, match="longer than 15 bytes"):
        named_thread(lambda: None, "zb-sqlite-checkpointer")
