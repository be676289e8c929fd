"""Business activity in the sandbox's world: actions that change its state and emit occurrences.

An :class:`Activity` holds everything that happened since the world's start (guests, visits,
invoices, memberships, packages, classes...) and performs business actions at simulated times.
Each action returns the :class:`~.model.Occurrence` objects Zenoti would send for it, shaped by
:mod:`.payloads`. The story stays consistent: an invoice closes only for a visit that happened,
nothing happens to a deleted guest, and event times never go backwards.

Two ways to act:

- :meth:`Activity.step` performs one random action, the way a center's day unfolds: work that
  is due (a check-in at an appointment's start, the invoice after the last service) comes first,
  otherwise something spontaneous (a booking, a new guest, a membership sale...).
- :meth:`Activity.trigger` makes one chosen event type happen now, preceded by whatever its
  story needs (a walk-in visit before ``Appointment.Completed``, a sale before
  ``Guest.Membership.Freeze``).

:meth:`Activity.expected` is the world's own view of every entity the occurrences touched, in
the vocabulary of the bridge's mirror tables, for tests that compare the two. The actions live
in layers, one module per domain (see :mod:`.timeline`).

    activity = Activity(World.generate(7, start=start), seed=7)
    activity.trigger("Appointment.Completed", at)[-1].event_type  # 'Appointment.Completed'
"""

from __future__ import annotations

from datetime import datetime

from ..catalog import lookup
from .classes import Classes
from .expected import Expected, expected
from .timeline import Occurrences

DUE_SHARE = 0.85  # how often a step does due work (a check-in, an invoice) when there is some


class Activity(Classes):
    """The evolving state of a :class:`~.world.World` and the business actions on it."""

    def step(self, at: datetime, center_id: str | None = None) -> Occurrences:
        """Perform one random business action at ``at`` (in ``center_id``, or any center).

        Returns the occurrences it produced; none when nothing can happen.
        """
        self._begin(at)
        center = self.world.center(center_id) if center_id else self._rng.choice(self.world.centers)
        if self._rng.random() < DUE_SHARE:
            out = self._run_due(center)
            if out:
                return out
        for _ in range(8):
            out = []
            self._pick(self._spontaneous)(out, center)
            if out:
                return out
        return self._run_due(center)

    def trigger(self, event_type: str, at: datetime, center_id: str | None = None) -> Occurrences:
        """Make ``event_type`` happen at ``at``; the returned list ends with it.

        The type is matched tolerantly (``guestpass.redeemed``). Occurrences before the chosen
        one are the story it needs (a booking before ``Appointment.Started``). When nothing in
        the world can have the event yet, the story is the shortest one that makes it possible
        at ``at``: a visit it needs may be a walk-in entered at the desk after the fact.
        """
        kind = lookup(event_type)
        story = self._stories.get(kind.name) if kind.routed else None
        if story is None:
            raise ValueError(
                f"unknown Zenoti event type {event_type!r}: use a catalog type such as "
                "'Guest.Created' or 'AppointmentGroup.Status' (case and spaces do not matter)"
            )
        self._begin(at)
        center = self.world.center(center_id) if center_id else self._rng.choice(self.world.centers)
        out: Occurrences = []
        story(out, center)
        if not out or out[-1].event_type != kind.name:  # a bug in the story, not in the input
            raise RuntimeError(f"the story for {kind.name} did not end with it")
        return out

    def expected(self) -> Expected:
        """The world's view of every entity an occurrence touched, as the mirror should hold it.

        See :func:`.expected.expected`.
        """
        return expected(self)
