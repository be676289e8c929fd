"""The sales layer of the activity: invoices, retail, memberships and packages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from . import payloads
from .people import People
from .state import (
    Appointment,
    Group,
    GuestRecord,
    Invoice,
    Item,
    Membership,
    Package,
    Redemption,
    StaffRecord,
)
from .timeline import Action, Due, Occurrences
from .world import Center, MembershipPlan, PackagePlan, guid

CANCEL_REASONS = ("Moving out of area", "Too expensive", "Not using it enough", "Health reasons")


class Sales(People):
    """Retail sales, membership sales and their life (freeze, cancel, reinstate), package sales
    and their life (redemptions at checkout, reversals, status and validity changes)."""

    def _due_table(self) -> dict[str, Due]:
        return super()._due_table() | {"unfreeze": self._due_unfreeze}

    def _spontaneous_table(self) -> list[tuple[float, Action]]:
        return [
            *super()._spontaneous_table(),
            (4, self._act_retail),
            (1.5, self._act_sell_membership),
            (1.5, self._act_sell_package),
            (0.6, self._act_freeze),
            (0.4, self._act_cancel_membership),
            (0.3, self._act_reinstate),
            (0.4, self._act_package_status),
            (0.4, self._act_package_validity),
            (0.8, self._act_reverse),
        ]

    def _story_table(self) -> dict[str, Action]:
        return super()._story_table() | {
            "Guest.Membership.Created": self._story_membership_created,
            "Guest.Membership.Freeze": self._story_membership("Freeze"),
            "Guest.Membership.Unfreeze": self._story_membership("Unfreeze"),
            "Guest.Membership.Cancelled": self._story_membership("Cancelled"),
            "Guest.Membership.Reinstate": self._story_membership("Reinstate"),
            "Guest.Package.Creation": self._story_package_created,
            "Guest.Package.StatusUpdate": self._story_package(self._package_status),
            "Guest.Package.ValidityUpdate": self._story_package(self._package_validity),
        }

    def _item(
        self,
        center: Center,
        kind: int,
        ids: tuple[str, str, str, str],
        price: int,
        seller: StaffRecord | None,
        discount: int = 0,
    ) -> Item:
        rate = center.country.product_tax if kind in (2, 6) else center.country.service_tax
        sales = price - discount
        tax = 0 if kind == 6 else round(sales * rate)
        line, item_id, name, code = ids
        return Item(
            line,
            item_id,
            name,
            kind,
            code,
            sales,
            discount,
            tax,
            seller.profile if seller else None,
        )

    def _invoice(
        self,
        out: Occurrences,
        center: Center,
        guest_id: str,
        items: list[Item],
        *,
        group: Group | None = None,
        refund_of: Invoice | None = None,
    ) -> Invoice:
        invoice = Invoice(
            id=group.invoice_id if group else guid(self._rng),
            center=center,
            guest_id=guest_id,
            number=group.invoice_number if group else str(self._next(f"invoice:{center.id}")),
            receipt=f"{center.code}R{self._next(f'receipt:{center.id}')}",
            local_date=self._today(center),
            items=items,
            appointments=refund_of.appointments if refund_of else group.current if group else [],
            group_id=group.id if group else refund_of.group_id if refund_of else None,
            group_invoice_id=group.group_invoice_id if group else None,
            closed=self._rng.random() > 0.05 or refund_of is not None,
            refund=refund_of is not None,
        )
        self.invoices[invoice.id] = invoice
        self._touch("invoice", invoice.id)
        profile = self.guests[guest_id].profile
        self._emit(out, "Invoice.Closed", center.id, payloads.invoice(invoice, profile))
        return invoice

    def _retail_items(self, center: Center, seller: StaffRecord) -> list[Item]:
        products = self._rng.sample(self.world.products, self._rng.choice((1, 1, 2)))
        items = []
        for product in products:
            price = center.price(product.price)
            discount = round(price * 0.1) if self._rng.random() < 0.15 else 0
            kind = 6 if product.code.startswith("GIFT") else 2
            ids = (guid(self._rng), product.id, product.name, product.code)
            items.append(self._item(center, kind, ids, price, seller, discount))
        return items

    def _sell_membership(
        self, out: Occurrences, center: Center, guest: GuestRecord, plan: MembershipPlan
    ) -> Membership:
        seller = self._desk(center)
        ids = (guid(self._rng), plan.id, plan.name, plan.code)
        item = self._item(center, 3, ids, center.price(plan.price), seller)
        invoice = self._invoice(out, center, guest.profile.id, [item])
        today = self._today(center)
        membership = Membership(
            id=guid(self._rng),
            group_id=guid(self._rng),
            guestpass_id=guid(self._rng),
            plan=plan,
            guest_id=guest.profile.id,
            center=center,
            invoice=invoice,
            seller=seller.profile,
            member_code=f"{plan.code[:3]}-{self._next('member')}",
            start=today,
            expiry=today + timedelta(days=364),
        )
        self.memberships[membership.id] = membership
        data = payloads.membership_created(membership, guest.profile, self._service_names())
        self._membership_event(out, "Guest.Membership.Created", membership, data)
        return membership

    def _service_names(self) -> dict[str, tuple[str, int]]:
        return {s.id: (s.name, s.minutes) for s in self.world.services}

    def _membership_event(
        self, out: Occurrences, event_type: str, membership: Membership, data: dict[str, Any]
    ) -> None:
        self._touch("membership", membership.id)
        self._emit(out, event_type, membership.center.id, data)

    def _freeze(self, out: Occurrences, membership: Membership) -> None:
        days = self._rng.choice((7, 14, 30, 60))
        membership.state, membership.frozen = "frozen", True
        center = membership.center
        data = payloads.membership_frozen(
            membership, self._today(center), days, self._desk(center).profile
        )
        self._membership_event(out, "Guest.Membership.Freeze", membership, data)
        self._schedule(center, self._now + timedelta(days=days + 1), "unfreeze", membership.id)

    def _unfreeze(self, out: Occurrences, membership: Membership) -> None:
        membership.state, membership.frozen = "active", False
        data = payloads.membership_unfrozen(membership, self._today(membership.center))
        self._membership_event(out, "Guest.Membership.Unfreeze", membership, data)

    def _cancel_membership(self, out: Occurrences, membership: Membership) -> None:
        membership.state, membership.cancelled = "cancelled", True
        reason = self._rng.choice(CANCEL_REASONS)
        by = self._desk(membership.center).profile
        data = payloads.membership_cancelled(membership, self._now, reason, by)
        self._membership_event(out, "Guest.Membership.Cancelled", membership, data)

    def _reinstate(self, out: Occurrences, membership: Membership) -> None:
        membership.state, membership.cancelled, membership.frozen = "active", False, False
        profile = self.guests[membership.guest_id].profile
        today = self._today(membership.center)
        data = payloads.membership_reinstated(membership, profile, today, self._service_names())
        self._membership_event(out, "Guest.Membership.Reinstate", membership, data)

    def _sell_package(
        self, out: Occurrences, center: Center, guest: GuestRecord, plan: PackagePlan
    ) -> Package:
        seller = self._desk(center)
        ids = (guid(self._rng), plan.id, plan.name, plan.code)
        item = self._item(center, 4, ids, center.price(plan.price), seller)
        invoice = self._invoice(out, center, guest.profile.id, [item])
        today = self._today(center)
        package = Package(
            id=guid(self._rng),
            plan=plan,
            guest_id=guest.profile.id,
            center=center,
            invoice=invoice,
            purchased_local=center.local(self._now).replace(microsecond=0),
            start=today,
            end=today + timedelta(days=plan.valid_days),
        )
        self.packages[package.id] = package
        service = self.world.service(plan.service_id)
        data = payloads.package_created(package, service.name, service.minutes)
        self._package_event(out, "Guest.Package.Creation", package, data)
        return package

    def _package_event(
        self, out: Occurrences, event_type: str, package: Package, data: dict[str, Any]
    ) -> None:
        self._touch("package", package.id)
        self._emit(out, event_type, package.center.id, data)

    def _redemption_data(
        self, package: Package, use: Redemption, *, reversal: bool
    ) -> dict[str, Any]:
        service = self.world.service(package.plan.service_id)
        product_id = package.plan.product_id
        product = self.world.product(product_id) if product_id else None
        return payloads.package_redemption(
            package,
            use,
            (service.id, service.name),
            (product.id, product.name) if product else None,
            reversal=reversal,
        )

    def _redeem(
        self, out: Occurrences, package: Package, appointment: Appointment, invoice: Invoice
    ) -> None:
        first = not package.redemptions
        use = Redemption(
            invoice=invoice,
            service_item_id=guid(self._rng),
            product_item_id=guid(self._rng) if first and package.plan.product_id else None,
            therapist=appointment.therapist,
            usage_local=package.center.local(appointment.start),
        )
        package.redemptions.append(use)
        data = self._redemption_data(package, use, reversal=False)
        self._package_event(out, "Guest.Package.Redemption", package, data)

    def _reverse(self, out: Occurrences, package: Package, use: Redemption) -> None:
        use.reversed = True
        data = self._redemption_data(package, use, reversal=True)
        self._package_event(out, "Guest.Package.RedemptionReversal", package, data)

    def _package_status(self, out: Occurrences, package: Package) -> None:
        package.status, package.state = (2, 0) if package.status == 1 else (1, 2)
        data = payloads.package(package, first_redemption=bool(package.redemptions))
        self._package_event(out, "Guest.Package.StatusUpdate", package, data)

    def _package_validity(self, out: Occurrences, package: Package) -> None:
        package.end += timedelta(days=self._rng.choice((30, 60, 90)))
        data = payloads.package(package, first_redemption=bool(package.redemptions))
        self._package_event(out, "Guest.Package.ValidityUpdate", package, data)

    def _live_memberships(self, state: str) -> list[Membership]:
        return [
            m for m in self.memberships.values() if m.state == state and self._alive(m.guest_id)
        ]

    def _live_packages(self) -> list[Package]:
        return [p for p in self.packages.values() if self._alive(p.guest_id)]

    def _due_unfreeze(self, out: Occurrences, key: str) -> None:
        membership = self.memberships[key]
        if membership.state == "frozen" and self._alive(membership.guest_id):
            self._unfreeze(out, membership)

    def _act_retail(self, out: Occurrences, center: Center) -> None:
        guests = self._guests_at(center)
        if guests:
            guest = self._rng.choice(guests)
            items = self._retail_items(center, self._desk(center))
            self._invoice(out, center, guest.profile.id, items)

    def _act_sell_membership(self, out: Occurrences, center: Center) -> None:
        guests = self._guests_at(center)
        if guests:
            plan = self._rng.choice(self.world.memberships)
            self._sell_membership(out, center, self._rng.choice(guests), plan)

    def _act_sell_package(self, out: Occurrences, center: Center) -> None:
        guests = self._guests_at(center)
        if guests:
            plan = self._rng.choice(self.world.packages)
            self._sell_package(out, center, self._rng.choice(guests), plan)

    def _act_freeze(self, out: Occurrences, center: Center) -> None:
        active = [m for m in self._live_memberships("active") if m.center is center]
        if active:
            self._freeze(out, self._rng.choice(active))

    def _act_cancel_membership(self, out: Occurrences, center: Center) -> None:
        active = [m for m in self._live_memberships("active") if m.center is center]
        if active:
            self._cancel_membership(out, self._rng.choice(active))

    def _act_reinstate(self, out: Occurrences, center: Center) -> None:
        cancelled = [m for m in self._live_memberships("cancelled") if m.center is center]
        if cancelled:
            self._reinstate(out, self._rng.choice(cancelled))

    def _act_package_status(self, out: Occurrences, center: Center) -> None:
        packages = [p for p in self._live_packages() if p.center is center]
        if packages:
            self._package_status(out, self._rng.choice(packages))

    def _act_package_validity(self, out: Occurrences, center: Center) -> None:
        packages = [p for p in self._live_packages() if p.center is center and p.status == 1]
        if packages:
            self._package_validity(out, self._rng.choice(packages))

    def _reversible(self, center: Center) -> list[tuple[Package, Redemption]]:
        return [
            (p, r)
            for p in self._live_packages()
            if p.center is center
            for r in p.redemptions
            if not r.reversed
        ]

    def _act_reverse(self, out: Occurrences, center: Center) -> None:
        uses = self._reversible(center)
        if uses:
            self._reverse(out, *self._rng.choice(uses))

    def _sold_membership(self, out: Occurrences, center: Center, state: str) -> Membership:
        found = [m for m in self._live_memberships(state) if m.center is center]
        if found:
            return self._rng.choice(found)
        plan = self._rng.choice(self.world.memberships)
        membership = self._sell_membership(out, center, self._guest(out, center), plan)
        if state == "frozen":
            self._freeze(out, membership)
        elif state == "cancelled":
            self._cancel_membership(out, membership)
        return membership

    def _story_membership_created(self, out: Occurrences, center: Center) -> None:
        plan = self._rng.choice(self.world.memberships)
        self._sell_membership(out, center, self._guest(out, center), plan)

    def _story_membership(self, kind: str) -> Action:
        needs = {"Freeze": "active", "Unfreeze": "frozen", "Cancelled": "active"}
        act = {
            "Freeze": self._freeze,
            "Unfreeze": self._unfreeze,
            "Cancelled": self._cancel_membership,
            "Reinstate": self._reinstate,
        }[kind]

        def story(out: Occurrences, center: Center) -> None:
            act(out, self._sold_membership(out, center, needs.get(kind, "cancelled")))

        return story

    def _owned_package(self, out: Occurrences, center: Center) -> Package:
        owned = [p for p in self._live_packages() if p.center is center]
        if owned:
            return self._rng.choice(owned)
        plan = self._rng.choice(self.world.packages)
        return self._sell_package(out, center, self._guest(out, center), plan)

    def _story_package_created(self, out: Occurrences, center: Center) -> None:
        plan = self._rng.choice(self.world.packages)
        self._sell_package(out, center, self._guest(out, center), plan)

    def _story_package(self, act: Callable[[Occurrences, Package], None]) -> Action:
        def story(out: Occurrences, center: Center) -> None:
            act(out, self._owned_package(out, center))

        return story
