"""The people layer of the activity: guests (profiles, consent, duplicates, deletion) and staff."""

from __future__ import annotations

from dataclasses import replace

from . import payloads
from .state import CATEGORIES, CHANNELS, GuestRecord, StaffRecord
from .timeline import FRONT_DESK, THERAPY_JOBS, Action, Due, Occurrences, Timeline
from .world import Center, guest_email, hire, new_guest, phone_number


class People(Timeline):
    """Guests sign up (sometimes twice, then get merged), change details and consent, leave;
    staff are hired, updated and leave."""

    def _due_table(self) -> dict[str, Due]:
        return super()._due_table() | {"merge": self._due_merge}

    def _spontaneous_table(self) -> list[tuple[float, Action]]:
        return [
            *super()._spontaneous_table(),
            (6, self._act_new_guest),
            (4, self._act_update_guest),
            (3, self._act_consent),
            (0.5, self._act_delete_guest),
            (0.3, self._act_hire),
            (0.4, self._act_update_employee),
            (0.6, self._act_fire),
        ]

    def _story_table(self) -> dict[str, Action]:
        return super()._story_table() | {
            "Guest.Created": self._story_guest_created,
            "Guest.Updated": self._story_guest_updated,
            "Guest.Deleted": self._story_guest_deleted,
            "Guest.Merged": self._story_guest_merged,
            "Guest.OptedIn": self._story_consent(True),
            "Guest.OptedOut": self._story_consent(False),
            "Employee.Created": self._act_hire,
            "Employee.Updated": self._act_update_employee,
            "Employee.Deleted": self._story_employee_deleted,
        }

    # -- guests ---------------------------------------------------------------------------------

    def _guest(
        self, out: Occurrences, center: Center, exclude: tuple[str, ...] = ()
    ) -> GuestRecord:
        """A guest of the center (a new one if nobody is on file)."""
        present = [r for r in self._guests_at(center) if r.profile.id not in exclude]
        return self._rng.choice(present) if present else self._create_guest(out, center)

    def _held(self) -> set[str]:
        """Guests something is still to happen to (or who have history): never deleted."""
        held = {g.guest_id for g in self.open_groups.values()}
        held |= {r.duplicate_of for r in self.guests.values() if r.duplicate_of and not r.deleted}
        for booking in self.bookings.values():
            if booking.status in ("booked", "approved") and not booking.session.cancelled:
                held.add(booking.guest_id)
                held |= {booking.friend[0]} if booking.friend else set()
        held |= {m.guest_id for m in self.memberships.values()}
        held |= {p.guest_id for p in self.packages.values()}
        return held | {i.guest_id for i in self.invoices.values()}

    def _deletable(self, center: Center) -> list[GuestRecord]:
        held = self._held()
        return [r for r in self._guests_at(center) if r.profile.id not in held]

    def _guest_event(self, out: Occurrences, event_type: str, record: GuestRecord) -> None:
        record.published = True
        center = self.world.center(record.profile.center_id)
        self._touch("guest", record.profile.id)
        self._emit(out, event_type, center.id, payloads.guest(record, center))

    def _create_guest(
        self, out: Occurrences, center: Center, duplicate_of: GuestRecord | None = None
    ) -> GuestRecord:
        number, code = self._next("guest"), self._next(f"code:{center.id}")
        profile = new_guest(self._rng, center, number, code, self._now, on_file=False)
        if duplicate_of is not None:  # the same person signing up again with another address
            same = duplicate_of.profile
            profile = replace(
                profile,
                first_name=same.first_name,
                last_name=same.last_name,
                gender=same.gender,
                birth_date=same.birth_date,
                email=guest_email(self._rng, same.first_name, same.last_name),
            )
        record = self._on_file(profile)
        self.guests[profile.id] = record
        if duplicate_of is None:
            self._roster[center.id][profile.id] = record
        else:
            record.duplicate_of = duplicate_of.profile.id
            self._schedule(center, self._now + self._minutes(60, 2880), "merge", profile.id)
        self._guest_event(out, "Guest.Created", record)
        return record

    def _update_guest(self, out: Occurrences, record: GuestRecord) -> None:
        profile, center = record.profile, self.world.center(record.profile.center_id)
        change = self._rng.choice(("email", "mobile", "address"))
        if change == "email":
            email = guest_email(self._rng, profile.first_name, profile.last_name)
            profile = replace(profile, email=email)
        elif change == "mobile":
            profile = replace(profile, mobile=phone_number(self._rng, center))
        else:
            street = self._rng.choice(("Alder St", "Orchard Way", "Summit Blvd", "Fern St"))
            profile = replace(profile, address_1=f"{self._rng.randint(12, 4800)} {street}")
        record.profile = profile
        self._guest_event(out, "Guest.Updated", record)

    def _delete_guest(self, out: Occurrences, record: GuestRecord) -> None:
        record.deleted = True
        self._roster[record.profile.center_id].pop(record.profile.id, None)
        self._guest_event(out, "Guest.Deleted", record)

    def _merge(self, out: Occurrences, duplicate: GuestRecord) -> None:
        survivor = self.guests[duplicate.duplicate_of or ""]
        center = self.world.center(survivor.profile.center_id)
        duplicate.deleted, duplicate.merged_into = True, survivor.profile.id
        survivor.published = True
        self._touch("guest", survivor.profile.id)
        self._touch("guest", duplicate.profile.id)
        data = payloads.merged(survivor, center, duplicate.profile.id)
        self._emit(out, "Guest.Merged", center.id, data)

    def _set_consent(
        self, out: Occurrences, record: GuestRecord, category: str, channel: str, value: bool
    ) -> None:
        record.consent[category][channel] = value
        center = self.world.center(record.profile.center_id)
        self._touch("guest", record.profile.id)
        data = payloads.consent(record, center, category, channel, self._now)
        self._emit(out, "Guest.OptedIn" if value else "Guest.OptedOut", center.id, data)

    def _consent_choice(self, center: Center, value: bool) -> tuple[GuestRecord, str, str] | None:
        """A guest and channel whose consent is ``value`` (marketing mostly: people change it)."""
        choices = [
            (r, category, channel)
            for r in self._guests_at(center)
            for category in CATEGORIES
            for channel in CHANNELS
            if r.consent[category][channel] == value
            and (category == "marketing" or channel != "sms" or r.profile.mobile)
        ]
        marketing = [c for c in choices if c[1] == "marketing"]
        pool = marketing if marketing and self._rng.random() < 0.85 else choices
        return self._rng.choice(pool) if pool else None

    # -- staff ----------------------------------------------------------------------------------

    def _employee_event(self, out: Occurrences, event_type: str, record: StaffRecord) -> None:
        center = self.world.center(record.profile.center_id)
        self._touch("employee", record.profile.id)
        self._emit(out, event_type, center.id, payloads.employee(record, center))

    def _hire(self, out: Occurrences, center: Center) -> StaffRecord:
        job = self._rng.choice((*THERAPY_JOBS, "FRONT DESK"))
        number = self._next("employee")
        person = hire(self._rng, center, job, self.world.job_ids[job], number, self._today(center))
        record = StaffRecord(person, show_in_catalog=False)
        self.staff[person.id] = record
        self._employee_event(out, "Employee.Created", record)
        return record

    def _update_employee(self, out: Occurrences, record: StaffRecord) -> None:
        person, center = record.profile, self.world.center(record.profile.center_id)
        change = self._rng.choice(("mobile", "catalog", "email"))
        if change == "mobile":
            record.profile = replace(person, mobile=phone_number(self._rng, center))
        elif change == "catalog":
            record.show_in_catalog = not record.show_in_catalog
        else:
            first, last = person.first_name.lower(), person.last_name.lower()
            record.profile = replace(person, email=f"{first}.{last}@example.net")
        self._employee_event(out, "Employee.Updated", record)

    def _fire(self, out: Occurrences, record: StaffRecord) -> None:
        record.deleted = True
        record.end_date = self._today(self.world.center(record.profile.center_id))
        self._employee_event(out, "Employee.Deleted", record)

    def _leavers(self, center: Center) -> list[StaffRecord]:
        """Therapists who may leave: nothing booked with them, and a colleague in their job."""
        staff = self._staff_at(center, THERAPY_JOBS)
        jobs = [s.profile.job_name for s in staff]
        return [
            s
            for s in staff
            if jobs.count(s.profile.job_name) > 1 and not self._booked(s.profile.id)
        ]

    # -- due, spontaneous, stories --------------------------------------------------------------

    def _due_merge(self, out: Occurrences, key: str) -> None:
        duplicate = self.guests[key]
        if not duplicate.deleted and self._alive(duplicate.duplicate_of or ""):
            self._merge(out, duplicate)

    def _act_new_guest(self, out: Occurrences, center: Center) -> None:
        guests = self._guests_at(center)
        twin = self._rng.choice(guests) if guests and self._rng.random() < 0.1 else None
        self._create_guest(out, center, duplicate_of=twin)

    def _act_update_guest(self, out: Occurrences, center: Center) -> None:
        guests = self._guests_at(center)
        if guests:
            self._update_guest(out, self._rng.choice(guests))

    def _act_consent(self, out: Occurrences, center: Center) -> None:
        found = self._consent_choice(center, self._rng.random() < 0.6)
        if found:
            record, category, channel = found
            self._set_consent(out, record, category, channel, not record.consent[category][channel])

    def _act_delete_guest(self, out: Occurrences, center: Center) -> None:
        candidates = self._deletable(center)
        if candidates:
            self._delete_guest(out, self._rng.choice(candidates))

    def _act_hire(self, out: Occurrences, center: Center) -> None:
        self._hire(out, center)

    def _act_update_employee(self, out: Occurrences, center: Center) -> None:
        staff = self._staff_at(center, (*FRONT_DESK, *THERAPY_JOBS))
        if staff:
            self._update_employee(out, self._rng.choice(staff))

    def _act_fire(self, out: Occurrences, center: Center) -> None:
        leaving = self._leavers(center)
        if leaving:
            self._fire(out, self._rng.choice(leaving))

    def _story_guest_created(self, out: Occurrences, center: Center) -> None:
        self._create_guest(out, center)

    def _story_guest_updated(self, out: Occurrences, center: Center) -> None:
        self._update_guest(out, self._guest(out, center))

    def _story_guest_deleted(self, out: Occurrences, center: Center) -> None:
        candidates = self._deletable(center)
        record = self._rng.choice(candidates) if candidates else self._create_guest(out, center)
        self._delete_guest(out, record)

    def _story_guest_merged(self, out: Occurrences, center: Center) -> None:
        waiting = [
            r
            for r in self.guests.values()
            if r.duplicate_of and not r.deleted and r.profile.center_id == center.id
        ]
        if waiting:
            duplicate = self._rng.choice(waiting)
        else:
            duplicate = self._create_guest(out, center, duplicate_of=self._guest(out, center))
        self._merge(out, duplicate)

    def _story_consent(self, value: bool) -> Action:
        def story(out: Occurrences, center: Center) -> None:
            found = self._consent_choice(center, not value)
            if found is None:  # everyone agrees: someone changes their mind twice
                found = self._consent_choice(center, value)
                assert found is not None
                self._set_consent(out, *found, not value)
            self._set_consent(out, *found, value)

        return story

    def _story_employee_deleted(self, out: Occurrences, center: Center) -> None:
        leaving = self._leavers(center)
        self._fire(out, self._rng.choice(leaving) if leaving else self._hire(out, center))
