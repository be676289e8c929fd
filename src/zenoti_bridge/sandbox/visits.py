"""The visits layer of the activity: appointment groups from booking to invoice and feedback.

A booked visit gets a fate when it is made (most guests come; some cancel, some never show,
some bookings are deleted) and its next step goes on the center's agenda: confirmation,
check-in at the start, each service started and completed, the invoice after the last one (a
package covering a service is redeemed at that checkout), sometimes feedback, rarely a refund.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, time, timedelta

from . import payloads
from .sales import Sales
from .state import (
    CANCELLED,
    CHECKIN,
    CLOSED,
    CONFIRM,
    NEW,
    NO_SHOW,
    Appointment,
    Feedback,
    Group,
    GuestRecord,
    Invoice,
    Package,
)
from .timeline import THERAPY_JOBS, Action, Due, Occurrences, floor_minutes
from .world import Center, Service, guid

UTM = (("booknow", "instagram"), ("booknow", "google"), ("website", "organic"), ("", ""))
COMMENTS = {
    1: "Waited 25 minutes and the room was cold.",
    2: "Service was rushed.",
    3: "Fine, nothing special.",
    4: "Lovely room, a bit of a wait at check-in.",
    5: "Wonderful as always, thank you!",
}


class Visits(Sales):
    """Appointment groups: booked, confirmed, changed, cancelled, deleted, no-shows, served,
    invoiced, rated and refunded."""

    def _due_table(self) -> dict[str, Due]:
        return super()._due_table() | {
            "confirm": self._due_confirm,
            "update": self._due_update,
            "cancel": self._due_cancel,
            "delete": self._due_delete,
            "no_show": self._due_no_show,
            "checkin": self._due_checkin,
            "start": self._due_start,
            "complete": self._due_complete,
            "invoice": self._due_invoice,
            "feedback": self._due_feedback,
            "refund": self._due_refund,
        }

    def _spontaneous_table(self) -> list[tuple[float, Action]]:
        return [*super()._spontaneous_table(), (30, self._act_book)]

    def _story_table(self) -> dict[str, Action]:
        return super()._story_table() | {
            "AppointmentGroup.Created": self._story_group_created,
            "AppointmentGroup.Updated": self._story_group_updated,
            "AppointmentGroup.Status": self._story_group_status,
            "AppointmentGroup.Delete": self._story_group_delete,
            "Appointment.Started": self._story_started,
            "Appointment.Completed": self._story_completed,
            "Appointment.Feedback.Created": self._story_feedback,
            "Invoice.Closed": self._story_invoice,
            "Guest.Package.Redemption": self._story_redemption,
            "Guest.Package.RedemptionReversal": self._story_reversal,
        }

    def _add_to_calendar(self, group: Group, appointment: Appointment) -> None:
        self._group_of[appointment.id] = group
        self._calendar.setdefault(appointment.therapist.id, []).append(appointment)

    def _services_at(self, center: Center) -> list[Service]:
        jobs = {s.profile.job_name for s in self._staff_at(center, THERAPY_JOBS)}
        return [s for s in self.world.services if s.job in jobs]

    def _lines(
        self, center: Center, start: datetime, services: list[Service], walk_in: bool
    ) -> list[Appointment] | None:
        """Back-to-back appointments from ``start``, each with a free therapist (None if not)."""
        lines, moment = [], start
        for service in services:
            end = moment + timedelta(minutes=service.minutes)
            staff = self._staff_at(center, (service.job,))
            free = [s for s in staff if not self._busy(s.profile.id, moment, end)]
            if not free and not walk_in:
                return None
            therapist = self._rng.choice(free or staff).profile
            room = self._rng.choice(self.world.rooms_at(center.id, service.room))
            requested = self._rng.random() < 0.3
            lines.append(
                Appointment(
                    guid(self._rng),
                    guid(self._rng),
                    service,
                    therapist,
                    room,
                    moment,
                    end,
                    self._now,
                    requested,
                )
            )
            moment = end
        if not walk_in and center.local(moment).time() > center.closes:
            return None
        return lines

    def _slot(self, center: Center, minutes: int) -> datetime | None:
        """A start within business hours, today (an hour from now at the earliest) or later."""
        offset = self._rng.choice((0, 0, 0, 1, 1, 1, 2, 3, 4, 5, 6, 7))
        local_day = self._today(center) + timedelta(days=offset)
        opens = center.opens.hour * 60 + center.opens.minute
        last = center.closes.hour * 60 + center.closes.minute - minutes
        if last < opens:
            return None
        start_minute = opens + 15 * self._rng.randint(0, (last - opens) // 15)
        wall = datetime.combine(local_day, time(start_minute // 60, start_minute % 60))
        start = center.utc(wall)
        return start if start >= self._now + timedelta(hours=1) else None

    def _book(
        self,
        out: Occurrences,
        center: Center,
        guest: GuestRecord,
        *,
        start: datetime | None = None,
        services: list[Service] | None = None,
        group_invoice_id: str | None = None,
    ) -> Group | None:
        """Book a visit: at ``start`` (a walk-in), or at a free slot in business hours."""
        offered = self._services_at(center)
        if not offered:
            return None
        count = self._rng.choice((1, 1, 1, 1, 1, 2, 2, 3))
        for _ in range(8):
            chosen = services or self._rng.sample(offered, min(count, len(offered)))
            begin = start or self._slot(center, sum(s.minutes for s in chosen))
            lines = self._lines(center, begin, chosen, start is not None) if begin else None
            if lines:
                return self._open_group(out, center, guest, lines, group_invoice_id)
        return None

    def _open_group(
        self,
        out: Occurrences,
        center: Center,
        guest: GuestRecord,
        lines: list[Appointment],
        group_invoice_id: str | None,
    ) -> Group:
        group = Group(
            id=guid(self._rng),
            center=center,
            guest_id=guest.profile.id,
            invoice_id=guid(self._rng),
            invoice_number=str(self._next(f"invoice:{center.id}")),
            created=self._now,
            utm=self._rng.choice(UTM),
            appointments=lines,
            group_invoice_id=group_invoice_id,
        )
        self.groups[group.id] = group
        self.open_groups[group.id] = group
        for appointment in lines:
            self._add_to_calendar(group, appointment)
        self._group_event(out, "AppointmentGroup.Created", group)
        return group

    def _group_event(self, out: Occurrences, event_type: str, group: Group) -> None:
        group.listed = 0 if group.deleted else len(group.current)
        self._touch("appointment_group", group.id)
        for appointment in group.current:
            self._touch("appointment", appointment.id)
        profile = self.guests[group.guest_id].profile
        created = event_type == "AppointmentGroup.Created"
        data = payloads.group(
            group, self.world.organization.id, profile, self._now, created=created
        )
        self._emit(out, event_type, group.center.id, data)

    def _plan_group(self, group: Group) -> None:
        """Roll the visit's fate and put its next step on the center's agenda."""
        center, start, made = group.center, group.start, group.created
        fate = self._rng.choices(("show", "cancel", "no_show", "delete"), (82, 8, 5, 5))[0]
        lead = start - made
        if fate != "delete" and lead > timedelta(hours=3) and self._rng.random() < 0.6:
            when = self._between(made + timedelta(minutes=10), start - timedelta(hours=2))
            self._schedule(center, when, "confirm", group.id)
        if lead > timedelta(hours=2) and self._rng.random() < 0.12:
            when = self._between(made + timedelta(minutes=5), start - timedelta(hours=1))
            self._schedule(center, when, "update", group.id)
        if fate in ("cancel", "delete") and lead > timedelta(minutes=30):
            when = self._between(made + timedelta(minutes=5), start - timedelta(minutes=15))
            self._schedule(center, when, fate, group.id)
        elif fate == "no_show":
            self._schedule(center, start + self._minutes(20, 60), "no_show", group.id)
        else:
            self._schedule(center, start - self._minutes(0, 15), "checkin", group.id)

    def _set_status(self, out: Occurrences, group: Group, status: int) -> None:
        late = group.start - self._now < timedelta(hours=24)
        fee = (status == CANCELLED and late) or (status == NO_SHOW and self._rng.random() < 0.5)
        group.status = group.reported_status = status
        if status in (CANCELLED, NO_SHOW):
            self.open_groups.pop(group.id, None)
        self._touch("appointment_group", group.id)
        data = payloads.group_status(group, status, fee)
        self._emit(out, "AppointmentGroup.Status", group.center.id, data)
        if status == CHECKIN:
            for appointment in group.current:
                when = max(self._now, appointment.start) + self._minutes(0, 5)
                self._schedule(group.center, when, "start", f"{group.id}/{appointment.id}")

    def _change_group(self, out: Occurrences, group: Group) -> None:
        """A service added after the last one, or the last one removed."""
        current = group.current
        if len(current) > 1 and self._rng.random() < 0.5:
            current[-1].removed = True
        else:
            offered = [
                s for s in self._services_at(group.center) if s not in [a.service for a in current]
            ]
            lines = self._lines(group.center, group.end, offered[:1], False) if offered else None
            if not lines:
                if len(current) < 2:
                    return
                current[-1].removed = True
            else:
                group.appointments.append(lines[0])
                self._add_to_calendar(group, lines[0])
        self._group_event(out, "AppointmentGroup.Updated", group)

    def _delete_group(self, out: Occurrences, group: Group, *, via_delete: bool) -> None:
        last = group.current[-1]
        group.deleted = True
        self.open_groups.pop(group.id, None)
        if via_delete:
            data = payloads.group_deleted(group, self.world.organization.id, last.id)
            self._touch("appointment_group", group.id)
            self._emit(out, "AppointmentGroup.Delete", group.center.id, data)
            return
        for appointment in group.current:  # an empty snapshot drops every appointment
            appointment.removed = True
        self._group_event(out, "AppointmentGroup.Updated", group)

    def _start(self, out: Occurrences, group: Group, appointment: Appointment) -> None:
        appointment.progress = 1
        self._touch("appointment", appointment.id)
        self._emit(
            out, "Appointment.Started", group.center.id, payloads.progress(group, appointment)
        )
        when = max(self._now, appointment.end) + self._minutes(0, 5)
        self._schedule(group.center, when, "complete", f"{group.id}/{appointment.id}")

    def _complete(self, out: Occurrences, group: Group, appointment: Appointment) -> None:
        appointment.progress = 2
        self._touch("appointment", appointment.id)
        data = payloads.progress(group, appointment)
        self._emit(out, "Appointment.Completed", group.center.id, data)
        if all(a.progress == 2 for a in group.current):
            self._schedule(group.center, self._now + self._minutes(5, 20), "invoice", group.id)

    def _walk_in(
        self,
        out: Occurrences,
        center: Center,
        guest: GuestRecord,
        *,
        done: bool,
        service: Service | None = None,
    ) -> Group:
        """A walk-in served now (``done``: already over, recorded at the desk afterwards)."""
        service = service or self._rng.choice(self._services_at(center))
        start = floor_minutes(self._now, 5) - timedelta(minutes=service.minutes if done else 0)
        group = self._book(out, center, guest, start=start, services=[service])
        assert group is not None  # a walk-in is always squeezed in, busy therapists or not
        self._set_status(out, group, CHECKIN)
        self._start(out, group, group.current[0])
        if done:
            self._complete(out, group, group.current[0])
        return group

    def _package_for(self, group: Group) -> tuple[Package, Appointment] | None:
        today = self._today(group.center)
        for package in self.packages.values():
            usable = package.status == 1 and package.balance > 0 and package.end >= today
            if package.guest_id != group.guest_id or not usable:
                continue
            for appointment in group.current:
                if appointment.service.id == package.plan.service_id:
                    return package, appointment
        return None

    def _close_visit(self, out: Occurrences, group: Group, *, redeem: bool = True) -> Invoice:
        center = group.center
        covered = self._package_for(group) if redeem else None
        items = []
        for appointment in group.current:
            price = center.price(appointment.service.price)
            redeemed = covered is not None and covered[1] is appointment
            service = appointment.service
            ids = (appointment.invoice_item_id, service.id, service.name, service.code)
            therapist = self.staff[appointment.therapist.id]
            items.append(self._item(center, 0, ids, price, therapist, price if redeemed else 0))
        if self._rng.random() < 0.3:
            items += self._retail_items(center, self.staff[group.current[0].therapist.id])
        group.invoiced, group.status = True, CLOSED
        self.open_groups.pop(group.id, None)
        invoice = self._invoice(out, center, group.guest_id, items, group=group)
        if covered is not None:
            self._redeem(out, covered[0], covered[1], invoice)
        if self._rng.random() < 0.35:
            self._schedule(center, self._now + self._minutes(120, 1800), "feedback", group.id)
        if self._rng.random() < 0.03:
            self._schedule(center, self._now + self._minutes(1440, 4320), "refund", invoice.id)
        return invoice

    def _refund(self, out: Occurrences, original: Invoice) -> None:
        original.refunded = True
        items = [
            replace(i, invoice_item_id=guid(self._rng), sales=-i.sales, discount=0, tax=-i.tax)
            for i in original.items
        ]
        self._invoice(out, original.center, original.guest_id, items, refund_of=original)

    def _feedback(self, out: Occurrences, group: Group) -> None:
        rating = self._rng.choices((5, 4, 3, 2, 1), (45, 30, 13, 7, 5))[0]
        tags = sorted(self._rng.sample((1, 2, 3, 4), self._rng.randint(0, 2)))
        record = Feedback(group.id, group.guest_id, group.center.id, rating, COMMENTS[rating])
        key = f"{group.id}:{group.guest_id}"
        self.feedback[key] = record
        self._touch("feedback", key)
        data = payloads.feedback(record, self.world.organization.id, tags)
        self._emit(out, "Appointment.Feedback.Created", group.center.id, data)

    def _pending(self, group_id: str, *statuses: int) -> Group | None:
        """The group if it is still open, in one of ``statuses``, with a guest on file."""
        group = self.open_groups.get(group_id)
        ok = group is not None and group.status in statuses and self._alive(group.guest_id)
        return group if ok else None

    def _due_confirm(self, out: Occurrences, key: str) -> None:
        group = self._pending(key, NEW)
        if group and self._now < group.start:
            self._set_status(out, group, CONFIRM)

    def _due_update(self, out: Occurrences, key: str) -> None:
        group = self._pending(key, NEW, CONFIRM)
        if group and self._now < group.start - timedelta(hours=1):
            self._change_group(out, group)

    def _due_cancel(self, out: Occurrences, key: str) -> None:
        group = self._pending(key, NEW, CONFIRM)
        if group and self._now < group.start:
            self._set_status(out, group, CANCELLED)

    def _due_delete(self, out: Occurrences, key: str) -> None:
        group = self._pending(key, NEW, CONFIRM)
        if group and self._now < group.start:
            self._delete_group(out, group, via_delete=self._rng.random() < 0.5)

    def _due_no_show(self, out: Occurrences, key: str) -> None:
        group = self._pending(key, NEW, CONFIRM)
        if group and self._now >= group.start:
            self._set_status(out, group, NO_SHOW)

    def _due_checkin(self, out: Occurrences, key: str) -> None:
        group = self._pending(key, NEW, CONFIRM)
        if group:
            self._set_status(out, group, CHECKIN)

    def _appointment(self, key: str, progress: int) -> tuple[Group, Appointment] | None:
        group_id, appointment_id = key.split("/")
        group = self._pending(group_id, CHECKIN)
        if group is None:
            return None
        found = [a for a in group.current if a.id == appointment_id and a.progress == progress]
        return (group, found[0]) if found else None

    def _due_start(self, out: Occurrences, key: str) -> None:
        found = self._appointment(key, 0)
        if found:
            self._start(out, *found)

    def _due_complete(self, out: Occurrences, key: str) -> None:
        found = self._appointment(key, 1)
        if found:
            self._complete(out, *found)

    def _due_invoice(self, out: Occurrences, key: str) -> None:
        group = self._pending(key, CHECKIN)
        if group and all(a.progress == 2 for a in group.current):
            self._close_visit(out, group)

    def _due_feedback(self, out: Occurrences, key: str) -> None:
        group = self.groups[key]
        if self._alive(group.guest_id) and f"{key}:{group.guest_id}" not in self.feedback:
            self._feedback(out, group)

    def _due_refund(self, out: Occurrences, key: str) -> None:
        invoice = self.invoices[key]
        if self._alive(invoice.guest_id) and not invoice.refunded:
            self._refund(out, invoice)

    def _act_book(self, out: Occurrences, center: Center) -> None:
        guests = self._guests_at(center)
        if not guests:
            return
        guest = self._rng.choice(guests)
        if self._rng.random() < 0.08:  # two friends booked together: one group invoice
            others = [g for g in guests if g is not guest]
            shared = guid(self._rng)
            first = self._book(out, center, guest, group_invoice_id=shared)
            if first and others:
                second = self._book(
                    out,
                    center,
                    self._rng.choice(others),
                    start=first.start,
                    group_invoice_id=shared,
                )
                if second:
                    self._plan_group(second)
            if first:
                self._plan_group(first)
            return
        group = self._book(out, center, guest)
        if group:
            self._plan_group(group)

    def _bookable(self, out: Occurrences, center: Center) -> Group:
        """A booked visit that has not started (booking one if none is waiting)."""
        waiting = [
            g
            for g in self.open_groups.values()
            if g.center is center
            and g.status in (NEW, CONFIRM)
            and g.start > self._now
            and self._alive(g.guest_id)
        ]
        if waiting:
            return self._rng.choice(waiting)
        return self._story_book(out, center)

    def _story_book(self, out: Occurrences, center: Center) -> Group:
        for _ in range(10):
            group = self._book(out, center, self._guest(out, center))
            if group:
                self._plan_group(group)
                return group
        raise RuntimeError(f"no free slot at {center.name} for a booking")

    def _story_group_created(self, out: Occurrences, center: Center) -> None:
        self._story_book(out, center)

    def _story_group_updated(self, out: Occurrences, center: Center) -> None:
        group = self._bookable(out, center)
        before = len(out)
        self._change_group(out, group)
        if len(out) == before:  # nothing fits after it: the guest drops a service instead
            self._delete_group(out, group, via_delete=False)

    def _story_group_status(self, out: Occurrences, center: Center) -> None:
        group = self._bookable(out, center)
        status = CONFIRM if group.status == NEW else CANCELLED
        self._set_status(out, group, status)

    def _story_group_delete(self, out: Occurrences, center: Center) -> None:
        self._delete_group(out, self._bookable(out, center), via_delete=True)

    def _checked_in(self, center: Center, progress: int) -> list[tuple[Group, Appointment]]:
        return [
            (g, a)
            for g in self.open_groups.values()
            if g.center is center and g.status == CHECKIN and self._alive(g.guest_id)
            for a in g.current
            if a.progress == progress and (progress == 0 or a.end <= self._now)
        ]

    def _story_started(self, out: Occurrences, center: Center) -> None:
        ready = [(g, a) for g, a in self._checked_in(center, 0) if a.start <= self._now]
        if ready:
            self._start(out, *self._rng.choice(ready))
        else:
            self._walk_in(out, center, self._guest(out, center), done=False)

    def _story_completed(self, out: Occurrences, center: Center) -> None:
        ready = self._checked_in(center, 1)
        if ready:
            self._complete(out, *self._rng.choice(ready))
        else:
            self._walk_in(out, center, self._guest(out, center), done=True)

    def _served(self, out: Occurrences, center: Center) -> Group:
        """A visit that is over and waits for its invoice (a walk-in if none does)."""
        waiting = [
            g
            for g in self.open_groups.values()
            if g.center is center
            and g.status == CHECKIN
            and self._alive(g.guest_id)
            and all(a.progress == 2 for a in g.current)
        ]
        if waiting:
            return self._rng.choice(waiting)
        return self._walk_in(out, center, self._guest(out, center), done=True)

    def _story_invoice(self, out: Occurrences, center: Center) -> None:
        self._close_visit(out, self._served(out, center), redeem=False)

    def _story_feedback(self, out: Occurrences, center: Center) -> None:
        rated = set(self.feedback)
        done = [
            g
            for g in self.groups.values()
            if g.center is center
            and g.invoiced
            and self._alive(g.guest_id)
            and f"{g.id}:{g.guest_id}" not in rated
        ]
        if not done:
            group = self._served(out, center)
            self._close_visit(out, group)
            done = [group]
        self._feedback(out, self._rng.choice(done))

    def _story_redemption(self, out: Occurrences, center: Center) -> None:
        usable = [
            p
            for p in self._live_packages()
            if p.center is center
            and p.status == 1
            and p.balance > 0
            and p.end >= self._today(center)
        ]
        if usable:
            package = self._rng.choice(usable)
        else:
            plan = self._rng.choice(self.world.packages)
            package = self._sell_package(out, center, self._guest(out, center), plan)
        guest = self.guests[package.guest_id]
        service = self.world.service(package.plan.service_id)
        self._close_visit(out, self._walk_in(out, center, guest, done=True, service=service))

    def _story_reversal(self, out: Occurrences, center: Center) -> None:
        uses = self._reversible(center)
        if not uses:
            self._story_redemption(out, center)
            uses = self._reversible(center)
        self._reverse(out, *self._rng.choice(uses))
