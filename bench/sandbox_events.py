"""Benchmark events from the sandbox: a chain of 20 centers at work, as Zenoti would tell it.

The sandbox's scenario runner (``zenoti_bridge.sandbox.scenario.plan``) plays the
``chain-20`` level from a fixed start: every catalog type in consistent stories (guests,
visits, invoices, memberships, packages, classes, staff), in time order. Each occurrence
becomes one delivery with its own ``id``. Seeded: the same arguments give the same events.
"""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import islice

from mixed_events import MixedEvent
from zenoti_bridge.sandbox.model import object_id
from zenoti_bridge.sandbox.scenario import plan

LEVEL = "chain-20"
START = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def generate(count: int, *, seed: int) -> list[MixedEvent]:
    """The first ``count`` occurrences of the level's plan, as signed-to-be deliveries."""
    events = []
    for number, occurrence in enumerate(islice(plan(LEVEL, seed, START, None), count)):
        delivery = object_id(occurrence.event_timestamp, (1 << 32) + number)
        events.append(
            MixedEvent(occurrence.event_id, occurrence.event_type, occurrence.body(delivery))
        )
    return events
