from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from zenoti_bridge.server import SQLITE_SWITCH_INTERVAL, share_the_interpreter


@pytest.fixture
def switch_interval() -> Iterator[float]:
    before = sys.getswitchinterval()
    yield before
    sys.setswitchinterval(before)


def test_a_sqlite_process_lets_the_writer_thread_back_within_half_a_millisecond(
    switch_interval: float,
) -> None:
    sys.setswitchinterval(0.005)
    share_the_interpreter("sqlite")
    assert sys.getswitchinterval() == pytest.approx(SQLITE_SWITCH_INTERVAL)


def test_other_backends_keep_pythons_default(switch_interval: float) -> None:
    sys.setswitchinterval(0.005)
    share_the_interpreter("postgresql")
    assert sys.getswitchinterval() == pytest.approx(0.005)
