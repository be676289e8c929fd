"""The bottom layer of the sandbox's activity: its state, its clock, and the events it emits.

The activity is built in layers, one module each, every layer using those below it:
``timeline`` (state, time, occurrences, the agenda of due work) < ``people`` (guests and staff)
< ``sales`` (invoices, memberships, packages) < ``visits`` (appointments) < ``classes``
(sessions, bookings, guest passes) < ``activity`` (the public API). Each layer adds its actions
to three tables: due work (run when its time comes), spontaneous actions (weighted), and the
stories :meth:`~.activity.Activity.trigger` tells to make one event type happen.

Pure code: randomness comes from one ``random.Random``, time from the callers.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from .model import Occurrence, object_id
from .state import (
    Appointment,
    Booking,
    Feedback,
    Group,
    GuestRecord,
    Invoice,
    Membership,
    Package,
    PassUse,
    Session,
    StaffRecord,
)
from .world import Center, Guest, World

Occurrences = list[Occurrence]
Action = Callable[[Occurrences, Center], None]  # acts at a center, appending what it emits
Due = Callable[[Occurrences, str], None]  # runs due work for one entity key
FRONT_DESK = ("FRONT DESK", "CENTER MANAGER")
THERAPY_JOBS = ("ESTHETICIAN", "MASSAGE THERAPIST", "STYLIST", "NAIL TECHNICIAN")
_SELF_CONTAINED = ("Guest.Membership.", "Guest.Package.", "Guestpass.")


def envelope_resource(event_type: str) -> str | None:
    """``event_resource`` as Zenoti sets it: null on memberships, packages, passes and groups."""
    if event_type.startswith(_SELF_CONTAINED):
        return None
    if event_type.startswith("AppointmentGroup."):
        return "AppointmentGroup" if event_type == "AppointmentGroup.Status" else None
    return event_type.split(".")[0]


def floor_minutes(moment: datetime, minutes: int) -> datetime:
    """``moment`` rounded down to a multiple of ``minutes`` (walk-ins start on the 5 minutes)."""
    return moment.replace(minute=moment.minute - moment.minute % minutes, second=0, microsecond=0)


class Timeline:
    """Everything that happened so far, the simulated clock, and how occurrences are emitted."""

    def __init__(self, world: World, *, seed: int | None = None) -> None:
        self.world = world
        self._rng = random.Random(f"activity:{world.seed if seed is None else seed}")
        self._now = self._last = world.start
        self._events = 0
        self._seq: dict[str, int] = {}
        self._touched: dict[str, dict[str, None]] = {}
        self._agenda: dict[str, list[tuple[datetime, int, str, str]]] = {
            c.id: [] for c in world.centers
        }
        self.guests = {g.id: self._on_file(g) for g in world.guests}
        self.staff = {e.id: StaffRecord(e) for e in world.employees}
        self.groups: dict[str, Group] = {}
        self.open_groups: dict[str, Group] = {}
        self.invoices: dict[str, Invoice] = {}
        self.memberships: dict[str, Membership] = {}
        self.packages: dict[str, Package] = {}
        self.sessions: dict[int, Session] = {}
        self.bookings: dict[int, Booking] = {}
        self.passes: dict[str, PassUse] = {}
        self.feedback: dict[str, Feedback] = {}
        # indexes, so a step costs the same on day 1 and day 30
        self._roster: dict[str, dict[str, GuestRecord]] = {c.id: {} for c in world.centers}
        for record in self.guests.values():
            self._roster[record.profile.center_id][record.profile.id] = record
        self._group_of: dict[str, Group] = {}  # appointment id -> its group
        self._calendar: dict[str, list[Appointment]] = {}  # employee id -> open appointments
        self._session_bookings: dict[int, list[Booking]] = {}
        self._upcoming: dict[str, dict[int, Session]] = {c.id: {} for c in world.centers}
        self._scheduled_until = {c.id: c.local(world.start) for c in world.centers}
        self._start_numbers()
        self._due = self._due_table()
        self._spontaneous = self._spontaneous_table()
        self._stories = self._story_table()

    def touched(self) -> dict[str, list[str]]:
        """Per mirror resource, the ids of the entities the occurrences so far touched."""
        return {resource: list(keys) for resource, keys in self._touched.items()}

    def visit_of(self, appointment_id: str) -> Group:
        """The appointment group an appointment belongs to."""
        return self._group_of[appointment_id]

    # -- the layers' tables (each layer extends them) -------------------------------------------

    def _due_table(self) -> dict[str, Due]:
        return {}

    def _spontaneous_table(self) -> list[tuple[float, Action]]:
        return []

    def _story_table(self) -> dict[str, Action]:
        return {}

    # -- numbering ------------------------------------------------------------------------------

    def _on_file(self, guest: Guest) -> GuestRecord:
        consent = {
            "marketing": {
                "email": guest.marketing_email,
                "sms": guest.marketing_sms,
                "whatsapp": False,
            },
            "transactional": {"email": True, "sms": guest.mobile is not None, "whatsapp": False},
        }
        return GuestRecord(guest, consent, loyalty=self._rng.random() < 0.5)

    def _start_numbers(self) -> None:
        self._seq["guest"] = max(g.number for g in self.world.guests) + 1
        self._seq["employee"] = max(int(e.code[2:]) for e in self.world.employees) + 1
        self._seq["session"] = self._rng.randint(50000, 60000)
        self._seq["registration"] = self._rng.randint(600000, 700000)
        self._seq["member"] = self._rng.randint(40000, 50000)
        self._seq["agenda"] = 0
        for center in self.world.centers:
            prefix = len(center.code)
            codes = [int(g.code[prefix:]) for g in self.world.guests if g.center_id == center.id]
            self._seq[f"code:{center.id}"] = max(codes) + 1
            self._seq[f"invoice:{center.id}"] = self._rng.randint(3000, 9000)
            self._seq[f"receipt:{center.id}"] = self._rng.randint(1000, 2000)

    def _next(self, name: str) -> int:
        value = self._seq[name]
        self._seq[name] = value + 1
        return value

    # -- time and events ------------------------------------------------------------------------

    def _begin(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("simulated times must be timezone-aware (e.g. tzinfo=UTC)")
        self._now = max(at.astimezone(UTC), self._last)

    def _emit(
        self, out: Occurrences, event_type: str, center_id: str, data: dict[str, Any]
    ) -> None:
        # events of one action are a few milliseconds apart, and never go backwards
        moment = max(self._now, self._last) + timedelta(
            microseconds=self._rng.randrange(1000, 250_000)
        )
        self._last = moment
        self._events += 1  # from 1: object_id() draws random bytes for a counter of 0
        out.append(
            Occurrence(
                event_type=event_type,
                event_id=object_id(moment, self._events),
                event_timestamp=moment,
                center_id=center_id,
                data=data,
                event_resource=envelope_resource(event_type),
            )
        )

    def _touch(self, resource: str, key: str) -> None:
        self._touched.setdefault(resource, {})[key.lower()] = None

    def _schedule(self, center: Center, when: datetime, action: str, key: str) -> None:
        heapq.heappush(self._agenda[center.id], (when, self._next("agenda"), action, key))

    def _run_due(self, center: Center) -> Occurrences:
        """The first due work at the center that still makes sense (stale entries are dropped)."""
        agenda = self._agenda[center.id]
        while agenda and agenda[0][0] <= self._now:
            _, _, action, key = heapq.heappop(agenda)
            out: Occurrences = []
            self._due[action](out, key)
            if out:
                return out
        return []

    def _pick(self, table: list[tuple[float, Action]]) -> Action:
        point = self._rng.random() * sum(weight for weight, _ in table)
        for weight, action in table:
            point -= weight
            if point < 0:
                return action
        return table[-1][1]

    def _between(self, start: datetime, end: datetime) -> datetime:
        span = max((end - start).total_seconds(), 0.0)
        return start + timedelta(seconds=self._rng.uniform(0, span))

    def _minutes(self, low: int, high: int) -> timedelta:
        return timedelta(minutes=self._rng.randint(low, high))

    def _today(self, center: Center) -> date:
        return center.local(self._now).date()

    # -- who is around --------------------------------------------------------------------------

    def _alive(self, guest_id: str) -> bool:
        record = self.guests.get(guest_id)
        return record is not None and not record.deleted

    def _guests_at(self, center: Center) -> list[GuestRecord]:
        """The center's guests on file (not deleted, not a duplicate waiting to be merged)."""
        return list(self._roster[center.id].values())

    def _staff_at(self, center: Center, jobs: tuple[str, ...]) -> list[StaffRecord]:
        return [
            s
            for s in self.staff.values()
            if not s.deleted and s.profile.center_id == center.id and s.profile.job_name in jobs
        ]

    def _desk(self, center: Center) -> StaffRecord:
        return self._rng.choice(self._staff_at(center, FRONT_DESK))

    def _booked(self, employee_id: str) -> list[Appointment]:
        """The employee's appointments in open visits."""
        calendar = self._calendar.get(employee_id, [])
        calendar[:] = [
            a for a in calendar if not a.removed and self._group_of[a.id].id in self.open_groups
        ]
        return calendar

    def _busy(self, employee_id: str, start: datetime, end: datetime) -> bool:
        return any(a.start < end and start < a.end for a in self._booked(employee_id))

    def _active_bookings(self, session: Session) -> list[Booking]:
        return [
            b
            for b in self._session_bookings.get(session.id, [])
            if b.status in ("booked", "approved")
        ]
