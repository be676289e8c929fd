"""The classes layer of the activity: the class schedule, registrations and guest passes.

Centers publish their weekly classes a week ahead; some sessions are moved, cancelled (their
registrations with them) and deleted. Guests register, or ask for a place on the waitlist, which
the center approves or rejects; a few cancel, never show up, or get their registration deleted.
Members bring friends to a class on their membership's guest passes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from . import payloads
from .state import Booking, GuestRecord, Membership, PassUse, Session
from .timeline import Action, Due, Occurrences, floor_minutes
from .visits import Visits
from .world import Center, ClassOffering, guid

SCHEDULE_DAYS = 7  # centers publish their class schedule this far ahead


class Classes(Visits):
    """Class sessions and registrations, and guest passes used for them."""

    def _due_table(self) -> dict[str, Due]:
        return super()._due_table() | {
            "session_update": self._due_session_update,
            "session_cancel": self._due_session_cancel,
            "session_delete": self._due_session_delete,
            "booking_decide": self._due_booking_decide,
            "booking_cancel": self._due_booking("Class.Booking.Cancelled", "cancelled", False),
            "booking_no_show": self._due_booking("Class.Booking.NoShow", "no_show", True),
            "booking_delete": self._due_booking("Class.Booking.Deleted", "deleted", False),
        }

    def _spontaneous_table(self) -> list[tuple[float, Action]]:
        return [
            *super()._spontaneous_table(),
            (12, self._act_book_class),
            (8, self._act_publish),
            (0.8, self._act_guest_pass),
        ]

    def _story_table(self) -> dict[str, Action]:
        return super()._story_table() | {
            "Class.Schedule.Created": self._story_schedule_created,
            "Class.Schedule.Updated": self._story_session(self._update_session),
            "Class.Schedule.Cancelled": self._story_session(self._cancel_session),
            "Class.Schedule.Deleted": self._story_session_deleted,
            "Class.Booking.Created": self._story_booking_created,
            "Class.Booking.Cancelled": self._story_booking("Class.Booking.Cancelled", "cancelled"),
            "Class.Booking.Deleted": self._story_booking("Class.Booking.Deleted", "deleted"),
            "Class.Booking.NoShow": self._story_no_show,
            "Class.Booking.Approved": self._story_decision(True),
            "Class.Booking.Rejected": self._story_decision(False),
            "Guestpass.Redeemed": self._story_guest_pass,
        }

    def _next_slot(self, center: Center) -> tuple[ClassOffering, datetime] | None:
        after = max(self._scheduled_until[center.id], center.local(self._now) + timedelta(hours=1))
        slots = [
            (datetime.combine(after.date() + timedelta(days=d), at), offering)
            for offering in self.world.classes
            if offering.center_id == center.id
            for d in range(8)
            for weekday, at in offering.slots
            if (after.date() + timedelta(days=d)).weekday() == weekday
        ]
        upcoming = sorted((s for s in slots if s[0] > after), key=lambda s: (s[0], s[1].id))
        return (upcoming[0][1], upcoming[0][0]) if upcoming else None

    def _publish(
        self, out: Occurrences, center: Center, offering: ClassOffering, start_local: datetime
    ) -> Session:
        session = Session(self._next("session"), offering, center, start_local, offering.capacity)
        self.sessions[session.id] = session
        if session.start > self._now:
            self._upcoming[center.id][session.id] = session
        self._scheduled_until[center.id] = max(self._scheduled_until[center.id], start_local)
        self._session_event(out, "Class.Schedule.Created", session)
        lead = session.start - self._now
        if lead > timedelta(hours=3):
            roll = self._rng.random()
            action = "session_cancel" if roll < 0.04 else "session_update" if roll < 0.12 else ""
            if action:
                when = self._between(self._now, session.start - timedelta(hours=2))
                self._schedule(center, when, action, str(session.id))
        return session

    def _session_event(self, out: Occurrences, event_type: str, session: Session) -> None:
        self._touch("class_session", str(session.id))
        self._emit(out, event_type, session.center.id, payloads.session(session))

    def _update_session(self, out: Occurrences, session: Session) -> None:
        session.updated = True
        if self._rng.random() < 0.5:
            session.start_local += timedelta(minutes=15)
        else:
            session.capacity = max(4, session.capacity + self._rng.choice((-2, 2, 4)))
        self._session_event(out, "Class.Schedule.Updated", session)

    def _cancel_session(self, out: Occurrences, session: Session) -> None:
        for booking in self._active_bookings(session):
            self._booking_event(out, "Class.Booking.Cancelled", booking, "cancelled")
        session.cancelled = True
        self._session_event(out, "Class.Schedule.Cancelled", session)
        if self._rng.random() < 0.5:
            when = self._now + self._minutes(60, 1440)
            self._schedule(session.center, when, "session_delete", str(session.id))

    def _delete_session(self, out: Occurrences, session: Session) -> None:
        session.deleted = True
        self._session_event(out, "Class.Schedule.Deleted", session)

    def _open_sessions(self, center: Center, *, within: timedelta, room: bool) -> list[Session]:
        """Sessions that start after now and within ``within``; ``room``: with a seat left."""
        upcoming = self._upcoming[center.id]
        for gone in [k for k, s in upcoming.items() if s.start <= self._now or s.cancelled]:
            del upcoming[gone]
        return [
            s
            for s in upcoming.values()
            if s.start <= self._now + within
            and (not room or len(self._active_bookings(s)) < s.capacity)
        ]

    def _book_class(
        self, out: Occurrences, session: Session, guest: GuestRecord, *, request: bool = False
    ) -> Booking:
        waitlist = request or len(self._active_bookings(session)) >= session.capacity
        booking = Booking(self._next("registration"), session, guest.profile.id, waitlist)
        if waitlist:
            booking.group_invoice_id = guid(self._rng)
            friends = [r for r in self._guests_at(session.center) if r is not guest]
            if friends and self._rng.random() < 0.6:
                friend = self._rng.choice(friends).profile.id
                booking.friend = (friend, self._next("registration"))
        self.bookings[booking.id] = booking
        self._session_bookings.setdefault(session.id, []).append(booking)
        self._booking_event(out, "Class.Booking.Created", booking, "booked")
        if waitlist:
            when = min(self._now + self._minutes(60, 360), session.start - timedelta(minutes=30))
            self._schedule(session.center, max(when, self._now), "booking_decide", str(booking.id))
        else:
            self._plan_attendance(booking)
        return booking

    def _booking_event(
        self, out: Occurrences, event_type: str, booking: Booking, status: str
    ) -> None:
        booking.status = status
        self._touch("class_booking", str(booking.id))
        center = booking.session.center
        if event_type in ("Class.Booking.Approved", "Class.Booking.Rejected"):
            friend = booking.friend[0] if booking.friend else None
            profile = self.guests[friend].profile if friend and self._alive(friend) else None
            data = payloads.booking_decided(booking, profile)
        else:
            data = payloads.booking(booking, created=event_type == "Class.Booking.Created")
        self._emit(out, event_type, center.id, data)

    def _plan_attendance(self, booking: Booking) -> None:
        session, key = booking.session, str(booking.id)
        fate = self._rng.choices(("attend", "cancel", "no_show", "delete"), (88, 7, 4, 1))[0]
        lead = session.start - self._now
        if fate == "cancel" and lead > timedelta(minutes=20):
            when = self._between(self._now, session.start - timedelta(minutes=10))
            self._schedule(session.center, when, "booking_cancel", key)
        elif fate == "no_show":
            when = max(self._now, session.start) + self._minutes(15, 45)
            self._schedule(session.center, when, "booking_no_show", key)
        elif fate == "delete":
            self._schedule(session.center, self._now + self._minutes(2, 30), "booking_delete", key)

    def _decide(self, out: Occurrences, booking: Booking, approve: bool) -> None:
        if approve:
            self._booking_event(out, "Class.Booking.Approved", booking, "approved")
            self._plan_attendance(booking)
        else:
            self._booking_event(out, "Class.Booking.Rejected", booking, "rejected")

    def _guest_pass(
        self, out: Occurrences, membership: Membership, friend: GuestRecord, session: Session
    ) -> None:
        self._book_class(out, session, friend)
        membership.passes_used += 1
        use = PassUse(
            id=guid(self._rng),
            membership_id=membership.id,
            guest_id=friend.profile.id,
            session_id=session.id,
            date_local=session.start_local,
            balance=membership.plan.guestpasses - membership.passes_used,
        )
        self.passes[use.id] = use
        self._touch("guestpass_redemption", use.id)
        data = payloads.guestpass(use, membership, guid(self._rng))
        self._emit(out, "Guestpass.Redeemed", session.center.id, data)

    def _due_session_update(self, out: Occurrences, key: str) -> None:
        session = self.sessions[int(key)]
        if not (session.cancelled or session.deleted) and self._now < session.start:
            self._update_session(out, session)

    def _due_session_cancel(self, out: Occurrences, key: str) -> None:
        session = self.sessions[int(key)]
        if not (session.cancelled or session.deleted) and self._now < session.start:
            self._cancel_session(out, session)

    def _due_session_delete(self, out: Occurrences, key: str) -> None:
        session = self.sessions[int(key)]
        if not session.deleted and not self._active_bookings(session):
            self._delete_session(out, session)

    def _due_booking_decide(self, out: Occurrences, key: str) -> None:
        booking = self.bookings[int(key)]
        session = booking.session
        if booking.status == "booked" and self._alive(booking.guest_id) and not session.cancelled:
            self._decide(out, booking, self._rng.random() < 0.7)

    def _due_booking(
        self, event_type: str, status: str, after_start: bool
    ) -> Callable[[Occurrences, str], None]:
        def run(out: Occurrences, key: str) -> None:
            booking = self.bookings[int(key)]
            session = booking.session
            live = booking.status == "approved" or (
                booking.status == "booked" and not booking.waitlist
            )
            timely = (self._now >= session.start) == after_start
            if live and timely and self._alive(booking.guest_id) and not session.cancelled:
                self._booking_event(out, event_type, booking, status)

        return run

    def _act_book_class(self, out: Occurrences, center: Center) -> None:
        sessions = self._open_sessions(center, within=timedelta(days=SCHEDULE_DAYS), room=False)
        if sessions:
            session = self._rng.choice(sessions)
            booked = {b.guest_id for b in self._active_bookings(session)}
            guests = [g for g in self._guests_at(center) if g.profile.id not in booked]
            if guests:
                self._book_class(
                    out, session, self._rng.choice(guests), request=self._rng.random() < 0.05
                )

    def _act_publish(self, out: Occurrences, center: Center) -> None:
        found = self._next_slot(center)
        horizon = center.local(self._now) + timedelta(days=SCHEDULE_DAYS)
        if found and found[1] <= horizon:
            self._publish(out, center, *found)

    def _pass_holders(self, center: Center) -> list[Membership]:
        return [
            m
            for m in self._live_memberships("active")
            if m.center is center and m.passes_used < m.plan.guestpasses
        ]

    def _act_guest_pass(self, out: Occurrences, center: Center) -> None:
        holders = self._pass_holders(center)
        sessions = self._open_sessions(center, within=timedelta(days=3), room=True)
        if holders and sessions:
            membership = self._rng.choice(holders)
            session = self._rng.choice(sessions)
            taken = {b.guest_id for b in self._active_bookings(session)} | {membership.guest_id}
            friends = [g for g in self._guests_at(center) if g.profile.id not in taken]
            if friends:
                self._guest_pass(out, membership, self._rng.choice(friends), session)

    def _story_guest_pass(self, out: Occurrences, center: Center) -> None:
        holders = self._pass_holders(center)
        membership = (
            self._rng.choice(holders) if holders else self._sold_membership(out, center, "active")
        )
        session = self._seat(out, center)
        taken = {b.guest_id for b in self._active_bookings(session)} | {membership.guest_id}
        friends = [g for g in self._guests_at(center) if g.profile.id not in taken]
        friend = self._rng.choice(friends) if friends else self._create_guest(out, center)
        self._guest_pass(out, membership, friend, session)

    def _class_center(self, center: Center) -> Center:
        if any(c.center_id == center.id for c in self.world.classes):
            return center
        return next(
            c for c in self.world.centers if any(o.center_id == c.id for o in self.world.classes)
        )

    def _story_schedule_created(self, out: Occurrences, center: Center) -> None:
        center = self._class_center(center)
        found = self._next_slot(center)
        assert found is not None
        self._publish(out, center, *found)

    def _seat(self, out: Occurrences, center: Center) -> Session:
        """A future session with a seat left (publishing the next one if none has)."""
        center = self._class_center(center)
        sessions = self._open_sessions(center, within=timedelta(days=30), room=True)
        if sessions:
            return self._rng.choice(sessions)
        found = self._next_slot(center)
        assert found is not None
        return self._publish(out, center, *found)

    def _story_session(self, act: Callable[[Occurrences, Session], None]) -> Action:
        def story(out: Occurrences, center: Center) -> None:
            act(out, self._seat(out, center))

        return story

    def _story_session_deleted(self, out: Occurrences, center: Center) -> None:
        empty = [
            s
            for s in self.sessions.values()
            if s.center.id == center.id
            and not s.deleted
            and not self._active_bookings(s)
            and (s.cancelled or s.start > self._now)
        ]
        session = self._rng.choice(empty) if empty else self._seat(out, center)
        if self._active_bookings(session):
            self._cancel_session(out, session)
        self._delete_session(out, session)

    def _story_booking_created(self, out: Occurrences, center: Center) -> None:
        session = self._seat(out, center)
        booked = {b.guest_id for b in self._active_bookings(session)}
        guest = self._guest(out, session.center, exclude=tuple(booked))
        self._book_class(out, session, guest)

    def _live_booking(self, out: Occurrences, center: Center) -> Booking:
        live = [
            b
            for b in self.bookings.values()
            if b.session.center.id == center.id
            and b.status in ("booked", "approved")
            and not b.session.cancelled
            and b.session.start > self._now
            and self._alive(b.guest_id)
        ]
        if live:
            return self._rng.choice(live)
        session = self._seat(out, center)
        return self._book_class(out, session, self._guest(out, session.center))

    def _story_booking(self, event_type: str, status: str) -> Action:
        def story(out: Occurrences, center: Center) -> None:
            self._booking_event(out, event_type, self._live_booking(out, center), status)

        return story

    def _story_no_show(self, out: Occurrences, center: Center) -> None:
        started = [
            b
            for b in self.bookings.values()
            if b.session.center.id == center.id
            and b.status in ("booked", "approved")
            and not b.session.cancelled
            and self._alive(b.guest_id)
            and b.session.start <= self._now < b.session.start + timedelta(hours=3)
        ]
        if started:
            booking = self._rng.choice(started)
        else:  # a drop-in session entered after it began, and a guest who never came
            center = self._class_center(center)
            offering = self._rng.choice([c for c in self.world.classes if c.center_id == center.id])
            start = floor_minutes(center.local(self._now), 5) - timedelta(minutes=20)
            session = self._publish(out, center, offering, start)
            booking = self._book_class(out, session, self._guest(out, center))
        self._booking_event(out, "Class.Booking.NoShow", booking, "no_show")

    def _story_decision(self, approve: bool) -> Action:
        def story(out: Occurrences, center: Center) -> None:
            waiting = [
                b
                for b in self.bookings.values()
                if b.session.center.id == center.id
                and b.status == "booked"
                and b.waitlist
                and not b.session.cancelled
                and b.session.start > self._now
                and self._alive(b.guest_id)
            ]
            if waiting:
                booking = self._rng.choice(waiting)
            else:
                session = self._seat(out, center)
                booking = self._book_class(
                    out, session, self._guest(out, session.center), request=True
                )
            self._decide(out, booking, approve)

        return story
