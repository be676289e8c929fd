"""The evolving state of the sandbox's world: what the activity has made happen so far.

Plain mutable records, one per Zenoti entity, holding exactly what later events and the
expected mirror need. Times are timezone-aware UTC unless a name says ``local`` (a center's
wall-clock time, naive, as Zenoti writes it). Money is in integer cents of the center's currency.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from .world import (
    Center,
    ClassOffering,
    Employee,
    Guest,
    MembershipPlan,
    PackagePlan,
    Room,
    Service,
)

# Appointment group statuses (Zenoti's appointment status enum)
NO_SHOW, CANCELLED, NEW, CLOSED, CHECKIN, CONFIRM = -2, -1, 0, 1, 2, 4
STATUS_NAMES = {
    NO_SHOW: "no_show",
    CANCELLED: "cancelled",
    NEW: "new",
    CLOSED: "closed",
    CHECKIN: "checkin",
    CONFIRM: "confirm",
}
PROGRESS_NAMES = {1: "started", 2: "completed"}
CATEGORIES = ("marketing", "transactional")
CHANNELS = ("email", "sms", "whatsapp")


@dataclass(slots=True)
class GuestRecord:
    """A guest: the current profile, consent per category and channel, and its fate."""

    profile: Guest
    consent: dict[str, dict[str, bool]]
    loyalty: bool
    published: bool = False  # a full snapshot (Created, Updated, Deleted, Merged) was sent
    deleted: bool = False
    merged_into: str | None = None
    duplicate_of: str | None = None  # a second profile of one person, waiting to be merged


@dataclass(slots=True)
class StaffRecord:
    """An employee: the current profile and how the center shows them."""

    profile: Employee
    show_in_catalog: bool = True
    end_date: date | None = None
    deleted: bool = False


@dataclass(slots=True)
class Appointment:
    """One service of an appointment group."""

    id: str
    invoice_item_id: str
    service: Service
    therapist: Employee
    room: Room
    start: datetime
    end: datetime
    created: datetime
    requested: bool  # the guest asked for this therapist
    progress: int = 0  # 1 started, 2 completed
    removed: bool = False


@dataclass(slots=True)
class Group:
    """An appointment group: one visit of one guest, one or more services in a row."""

    id: str
    center: Center
    guest_id: str
    invoice_id: str
    invoice_number: str
    created: datetime
    utm: tuple[str, str]
    appointments: list[Appointment]
    group_invoice_id: str | None = None
    status: int = NEW
    reported_status: int | None = None  # the last AppointmentGroup.Status sent
    listed: int = 0  # appointments in the newest snapshot sent
    deleted: bool = False
    invoiced: bool = False

    @property
    def current(self) -> list[Appointment]:
        """The appointments still in the group."""
        return [a for a in self.appointments if not a.removed]

    @property
    def start(self) -> datetime:
        """When the first current appointment starts."""
        return min(a.start for a in self.current)

    @property
    def end(self) -> datetime:
        """When the last current appointment ends."""
        return max(a.end for a in self.current)


@dataclass(frozen=True, slots=True)
class Item:
    """One invoice line. ``kind``: 0 service, 2 product, 3 membership, 4 package."""

    invoice_item_id: str
    item_id: str
    name: str
    kind: int
    code: str
    sales: int
    discount: int
    tax: int
    seller: Employee | None

    @property
    def final(self) -> int:
        """What the line costs the guest, tax included."""
        return self.sales + self.tax


@dataclass(slots=True)
class Invoice:
    """A closed invoice (a visit, a retail sale, a purchase, or a refund of one of them)."""

    id: str
    center: Center
    guest_id: str
    number: str
    receipt: str
    local_date: date
    items: list[Item]
    appointments: list[Appointment]
    group_id: str | None = None
    group_invoice_id: str | None = None
    closed: bool = True
    refund: bool = False
    refunded: bool = False

    @property
    def net(self) -> int:
        """The total before tax."""
        return sum(i.sales for i in self.items)

    @property
    def tax(self) -> int:
        """The tax of every line."""
        return sum(i.tax for i in self.items)

    @property
    def total(self) -> int:
        """What the guest paid."""
        return self.net + self.tax


@dataclass(slots=True)
class Membership:
    """A guest's membership, from its sale to freezes, cancellation and reinstatement."""

    id: str
    group_id: str
    guestpass_id: str
    plan: MembershipPlan
    guest_id: str
    center: Center
    invoice: Invoice
    seller: Employee
    member_code: str
    start: date
    expiry: date
    state: str = "active"  # active, frozen, cancelled (the bridge's vocabulary)
    frozen: bool = False  # a freeze is on record (cleared by Unfreeze and Reinstate)
    cancelled: bool = False  # a cancellation is on record (cleared by Reinstate)
    passes_used: int = 0


@dataclass(slots=True)
class Redemption:
    """One use of a package at checkout."""

    invoice: Invoice
    service_item_id: str
    product_item_id: str | None
    therapist: Employee
    usage_local: datetime
    reversed: bool = False


@dataclass(slots=True)
class Package:
    """A guest's prepaid package of sessions."""

    id: str
    plan: PackagePlan
    guest_id: str
    center: Center
    invoice: Invoice
    purchased_local: datetime
    start: date
    end: date
    status: int = 1
    state: int = 2
    redemptions: list[Redemption] = field(default_factory=list)

    @property
    def used(self) -> int:
        """Sessions used and not reversed."""
        return sum(1 for r in self.redemptions if not r.reversed)

    @property
    def balance(self) -> int:
        """Sessions left."""
        return self.plan.sessions - self.used


@dataclass(slots=True)
class Session:
    """A scheduled class session (times are the center's wall clock)."""

    id: int
    offering: ClassOffering
    center: Center
    start_local: datetime
    capacity: int
    updated: bool = False
    cancelled: bool = False
    deleted: bool = False

    @property
    def start(self) -> datetime:
        """When the session starts, in UTC."""
        return self.center.utc(self.start_local)


@dataclass(slots=True)
class Booking:
    """A class registration; ``status`` uses the bridge's words (booked, approved, no_show...)."""

    id: int
    session: Session
    guest_id: str
    waitlist: bool
    status: str = "booked"
    group_invoice_id: str | None = None
    friend: tuple[str, int] | None = None  # a guest brought along, with their registration id


@dataclass(frozen=True, slots=True)
class PassUse:
    """A guest pass of a membership, used by a friend for a class session."""

    id: str
    membership_id: str
    guest_id: str
    session_id: int
    date_local: datetime
    balance: int


@dataclass(frozen=True, slots=True)
class Feedback:
    """A guest's rating of a visit."""

    group_id: str
    guest_id: str
    center_id: str
    rating: int
    comments: str
