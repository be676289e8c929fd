"""The sandbox's synthetic Zenoti organization, generated from a seed (pure, deterministic).

A :class:`World` is the organization as it stands when the simulation starts: centers with their
time zone, currency and business hours, staff, the service and retail catalog, membership and
package plans, classes, and the guests already on file. Everything comes from one
``random.Random(seed)``: the same seed gives the same world, id for id. The world never changes;
:mod:`.activity` copies what it needs into its own evolving state.

    world = World.generate(7, centers=2, start=datetime(2024, 6, 3, tzinfo=UTC))
    world.centers[0].name, world.centers[0].time_zone  # ('Harbor Point', 'America/Los_Angeles')
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

EMAIL_DOMAINS = ("example.com", "example.org", "example.net")
MALE, FEMALE = 1, 2  # Zenoti's gender values as the samples show them


def guid(rng: random.Random) -> str:
    """A lowercase version-4 GUID drawn from ``rng`` (never from the OS)."""
    value = rng.getrandbits(128)
    value = (value & ~(0xF << 76)) | (0x4 << 76)
    value = (value & ~(0x3 << 62)) | (0x2 << 62)
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


# -- the organization -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Organization:
    """The Zenoti tenant: every center, employee and guest belongs to it."""

    id: str
    name: str


@dataclass(frozen=True, slots=True)
class Country:
    """How a country writes money, taxes and phone numbers."""

    id: int  # Zenoti's country id (225 is the United States in the samples)
    currency: str
    currency_id: int
    price_factor: float  # catalog prices are set in USD and converted with this factor
    service_tax: float
    product_tax: float
    calling_code: int
    phone_prefix: str  # a range reserved for fiction (555 in North America, 07700 900 in the UK)
    phone_digits: int


COUNTRIES = {
    "US": Country(225, "USD", 148, 1.0, 0.0, 0.081, 1, "555", 4),
    "CA": Country(38, "CAD", 27, 1.35, 0.05, 0.12, 1, "555", 4),
    "GB": Country(224, "GBP", 47, 0.8, 0.2, 0.2, 44, "7700900", 3),
    "AU": Country(13, "AUD", 9, 1.5, 0.1, 0.1, 61, "491570", 3),
    "NZ": Country(153, "NZD", 106, 1.65, 0.15, 0.15, 64, "21555", 4),
    "IN": Country(100, "INR", 65, 60.0, 0.18, 0.18, 91, "98765", 5),
    "AE": Country(223, "AED", 2, 3.7, 0.05, 0.05, 971, "50555", 4),
}


@dataclass(frozen=True, slots=True)
class Center:
    """One location: its own time zone, currency, hours, rooms and staff."""

    id: str
    code: str  # two letters: invoices are numbered HPT3317, receipts HPR1188, guests HP20931
    name: str
    time_zone: str
    country_code: str
    state: str
    city: str
    address_1: str
    zip_code: str
    phone: str
    opens: time
    closes: time
    company_name: str

    @property
    def country(self) -> Country:
        """Money, tax and phone conventions of the center's country."""
        return COUNTRIES[self.country_code]

    @property
    def currency(self) -> str:
        """ISO 4217 code of the money the center charges in."""
        return self.country.currency

    @property
    def zone(self) -> ZoneInfo:
        """The IANA time zone as an object."""
        return ZoneInfo(self.time_zone)

    def local(self, moment: datetime) -> datetime:
        """``moment`` as the center's wall-clock time, without offset (how Zenoti writes it)."""
        return moment.astimezone(self.zone).replace(tzinfo=None)

    def utc(self, wall: datetime) -> datetime:
        """The UTC moment of a center wall-clock time."""
        return wall.replace(tzinfo=self.zone).astimezone(UTC)

    def is_open(self, moment: datetime) -> bool:
        """True during business hours, in the center's own time zone."""
        return self.opens <= self.local(moment).time() < self.closes

    def opening_after(self, moment: datetime) -> datetime:
        """The next moment (UTC) the center opens, or ``moment`` itself when it is open."""
        if self.is_open(moment):
            return moment
        wall = self.local(moment)
        day = wall.date() if wall.time() < self.opens else wall.date() + timedelta(days=1)
        return self.utc(datetime.combine(day, self.opens))

    def closing_after(self, moment: datetime) -> datetime:
        """When the business day that contains ``moment`` (an open moment) ends, in UTC."""
        return self.utc(datetime.combine(self.local(moment).date(), self.closes))

    def price(self, usd_cents: int) -> int:
        """A catalog price (USD cents) in the center's currency, rounded like a price list."""
        factor = self.country.price_factor
        return usd_cents if factor == 1.0 else round(usd_cents * factor / 100) * 100


@dataclass(frozen=True, slots=True)
class Room:
    """A bookable room; ``kind`` says which services it hosts."""

    id: str
    center_id: str
    name: str
    kind: str


@dataclass(frozen=True, slots=True)
class Employee:
    """A staff member as hired: name, job and contact details."""

    id: str
    code: str
    center_id: str
    first_name: str
    last_name: str
    gender: int
    email: str
    mobile: str
    job_id: str
    job_name: str
    hired: date

    @property
    def full_name(self) -> str:
        """First and last name, as Zenoti prints therapist names."""
        return f"{self.first_name} {self.last_name}"


@dataclass(frozen=True, slots=True)
class Service:
    """A bookable service of the catalog; ``job`` is who can perform it, ``room`` where."""

    id: str
    code: str
    name: str
    minutes: int
    price: int  # USD cents
    job: str
    room: str


@dataclass(frozen=True, slots=True)
class Product:
    """A retail product sold at the front desk."""

    id: str
    code: str
    name: str
    price: int  # USD cents


@dataclass(frozen=True, slots=True)
class MembershipPlan:
    """A recurring membership: monthly fee, guest passes, credit and included services."""

    id: str
    code: str
    name: str
    price: int  # USD cents per month
    guestpasses: int
    service_credit: int  # USD cents
    included_service_id: str | None


@dataclass(frozen=True, slots=True)
class PackagePlan:
    """A prepaid series of one service, valid for some days, maybe with a product thrown in."""

    id: str
    code: str
    name: str
    service_id: str
    sessions: int
    price: int  # USD cents
    valid_days: int
    product_id: str | None


@dataclass(frozen=True, slots=True)
class ClassOffering:
    """A class a center runs every week at fixed times (``slots``: weekday, local start)."""

    id: int  # Zenoti's class (workshop) ids are integers
    center_id: str
    name: str
    minutes: int
    capacity: int
    web_capacity: int
    slots: tuple[tuple[int, time], ...]


@dataclass(frozen=True, slots=True)
class Guest:
    """A guest on file when the simulation starts."""

    id: str
    number: int  # Zenoti's integer ``_id``
    code: str
    center_id: str
    first_name: str
    last_name: str
    gender: int
    email: str
    mobile: str | None
    birth_date: date
    address_1: str
    city: str
    zip_code: str
    country_id: int
    created: datetime  # UTC
    marketing_email: bool
    marketing_sms: bool


# -- built-in reference data ------------------------------------------------------------------

# name, city, state, zip, address, area code, country, IANA zone
_CENTERS: tuple[tuple[str, str, str, str, str, str, str, str], ...] = (
    ("Harbor Point", "Tacoma", "WA", "98402", "1120 Dock St", "253", "US", "America/Los_Angeles"),
    (
        "Pearl District",
        "Portland",
        "OR",
        "97209",
        "1035 NW Johnson St",
        "503",
        "US",
        "America/Los_Angeles",
    ),
    ("Cherry Creek", "Denver", "CO", "80206", "245 Columbine St", "303", "US", "America/Denver"),
    (
        "South Congress",
        "Austin",
        "TX",
        "78704",
        "1601 S Congress Ave",
        "512",
        "US",
        "America/Chicago",
    ),
    ("Back Bay", "Boston", "MA", "02116", "338 Newbury St", "617", "US", "America/New_York"),
    ("Old Town", "Scottsdale", "AZ", "85251", "7144 E Main St", "480", "US", "America/Phoenix"),
    ("Lakeview", "Chicago", "IL", "60657", "3312 N Broadway", "773", "US", "America/Chicago"),
    ("Coconut Grove", "Miami", "FL", "33133", "3015 Grand Ave", "305", "US", "America/New_York"),
    ("Park Slope", "Brooklyn", "NY", "11215", "214 7th Ave", "718", "US", "America/New_York"),
    ("Kaimuki", "Honolulu", "HI", "96816", "1137 11th Ave", "808", "US", "Pacific/Honolulu"),
    (
        "Midtown",
        "Anchorage",
        "AK",
        "99503",
        "3700 Old Seward Hwy",
        "907",
        "US",
        "America/Anchorage",
    ),
    (
        "North Beach",
        "San Francisco",
        "CA",
        "94133",
        "1550 Stockton St",
        "415",
        "US",
        "America/Los_Angeles",
    ),
    ("Buckhead", "Atlanta", "GA", "30305", "3035 Peachtree Rd NE", "404", "US", "America/New_York"),
    ("Kitsilano", "Vancouver", "BC", "V6K 2G5", "2190 W 4th Ave", "604", "CA", "America/Vancouver"),
    ("Yorkville", "Toronto", "ON", "M5R 1B5", "88 Yorkville Ave", "416", "CA", "America/Toronto"),
    ("Shoreditch", "London", "", "E1 6JE", "41 Redchurch St", "", "GB", "Europe/London"),
    ("Prahran", "Melbourne", "VIC", "3181", "214 Chapel St", "", "AU", "Australia/Melbourne"),
    ("Ponsonby", "Auckland", "", "1011", "132 Ponsonby Rd", "", "NZ", "Pacific/Auckland"),
    (
        "Indiranagar",
        "Bengaluru",
        "KA",
        "560038",
        "12th Main Rd, HAL 2nd Stage",
        "",
        "IN",
        "Asia/Kolkata",
    ),
    ("Jumeirah", "Dubai", "", "", "Al Wasl Rd, Villa 41", "", "AE", "Asia/Dubai"),
)

_ROOMS = (
    ("treatment", ("Treatment Room 1", "Treatment Room 2", "Treatment Room 3")),
    ("massage", ("Massage Suite A", "Massage Suite B", "Couples Suite")),
    ("styling", ("Styling Chair 1", "Styling Chair 2", "Styling Chair 3")),
    ("nails", ("Nail Station 1", "Nail Station 2")),
    ("studio", ("Studio A",)),
)
_STAFF = (
    ("CENTER MANAGER", 1),
    ("FRONT DESK", 2),
    ("ESTHETICIAN", 3),
    ("MASSAGE THERAPIST", 3),
    ("STYLIST", 3),
    ("NAIL TECHNICIAN", 2),
    ("YOGA INSTRUCTOR", 2),
)
JOBS = tuple(job for job, _ in _STAFF)

# code, name, minutes, USD cents, job, room kind
_SERVICES = (
    ("HF60", "Hydrating Facial 60", 60, 12500, "ESTHETICIAN", "treatment"),
    ("SF90", "Signature Facial 90", 90, 16500, "ESTHETICIAN", "treatment"),
    ("EF30", "Express Facial 30", 30, 6500, "ESTHETICIAN", "treatment"),
    ("BRW15", "Brow Shaping", 15, 2500, "ESTHETICIAN", "treatment"),
    ("LASH45", "Lash Lift", 45, 9500, "ESTHETICIAN", "treatment"),
    ("DT50", "Deep Tissue Massage 50", 50, 11000, "MASSAGE THERAPIST", "massage"),
    ("SW60", "Swedish Massage 60", 60, 9500, "MASSAGE THERAPIST", "massage"),
    ("HS90", "Hot Stone Massage 90", 90, 15500, "MASSAGE THERAPIST", "massage"),
    ("PN60", "Prenatal Massage 60", 60, 10500, "MASSAGE THERAPIST", "massage"),
    ("WHC45", "Women's Haircut", 45, 8500, "STYLIST", "styling"),
    ("MHC30", "Men's Haircut", 30, 4500, "STYLIST", "styling"),
    ("BLO45", "Blowout", 45, 5500, "STYLIST", "styling"),
    ("SPC90", "Single Process Color", 90, 12000, "STYLIST", "styling"),
    ("BAL150", "Balayage", 150, 26000, "STYLIST", "styling"),
    ("MAN30", "Classic Manicure", 30, 3500, "NAIL TECHNICIAN", "nails"),
    ("GEL45", "Gel Manicure", 45, 5000, "NAIL TECHNICIAN", "nails"),
    ("PED60", "Spa Pedicure", 60, 6500, "NAIL TECHNICIAN", "nails"),
)
_PRODUCTS = (
    ("SPF40M", "Mineral Sunscreen SPF 40", 3650),
    ("HASER", "Hyaluronic Serum", 5800),
    ("CLAYM", "Kaolin Clay Mask", 3200),
    ("ARGO", "Argan Hair Oil", 2900),
    ("RPSH", "Repair Shampoo 300ml", 2400),
    ("RPCO", "Repair Conditioner 300ml", 2400),
    ("LAVL", "Lavender Body Lotion", 2200),
    ("CUTO", "Cuticle Oil", 1400),
    ("MGSC", "Magnesium Bath Soak", 1800),
    ("GIFTC", "Gift Card 50", 5000),
)
# code, name, USD cents, guest passes, credit cents, included service code
_MEMBERSHIPS = (
    ("GLOW-M", "Glow Club Monthly", 8900, 2, 2000, "HF60"),
    ("MASS-M", "Massage Club Monthly", 7900, 1, 0, "SW60"),
    ("YOGA-U", "Unlimited Yoga", 13900, 4, 0, None),
)
# code, name, service code, sessions, USD cents, valid days, product code
_PACKAGES = (
    ("FAC6", "Six Facial Series", "HF60", 6, 54000, 183, "SPF40M"),
    ("MAS5", "Five Massage Pack", "SW60", 5, 42500, 365, "LAVL"),
    ("BLO4", "Blowout Bundle", "BLO45", 4, 18000, 120, None),
)
# name, minutes, capacity, web capacity, weekly slots (weekday, hour, minute)
_CLASSES = (
    ("Morning Vinyasa", 60, 18, 12, ((0, 10, 0), (2, 10, 0), (4, 10, 0))),
    ("Pilates Mat", 50, 14, 10, ((1, 12, 0), (3, 12, 0), (5, 9, 0))),
    ("Yin Yoga", 75, 16, 12, ((0, 18, 30), (3, 18, 30), (6, 10, 0))),
    ("Barre Sculpt", 45, 12, 8, ((1, 17, 30), (4, 17, 30))),
    ("Guided Meditation", 30, 20, 20, ((2, 12, 15), (5, 11, 0))),
)


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FEMALE_NAMES = _words(
    "Avery Mira Sofia Hannah Priya Amara Chloe Leila Nora Grace Isabel Yuki Fatima Elena Zoe "
    "Maya Ingrid Camila Aisha Julia Olivia Mei Rosa Tessa Naomi Clara Ines Hana Lucia Freya "
)
MALE_NAMES = _words(
    "Jonah Dev Marcus Liam Mateo Kenji Omar Theo Samuel Arjun Felix Diego Noah Elias Tariq "
    "Ravi Lucas Hugo Daniel Kwame Oscar Ethan Marco Jamal Anton Caleb Finn Rohan Ivan Malik "
)
LAST_NAMES = _words(
    "Lindqvist Castellanos Raman Okafor Nakamura Haddad Brennan Moreau Kowalski Fernandes "
    "Whitaker Osei Petrov Delgado Sato Ibrahim Gallagher Novak Mensah Quinn Rossi Chen Patel "
    "Alvarez Eriksen Boateng Fischer Kapoor Walsh Tanaka Mbeki Silva Horvat Reyes Nguyen Kaur "
    "Dubois Larsen Adeyemi Morgan Vasquez Yilmaz Park Sullivan Abara Lindgren Marsh Costa "
    "Jensen Akhtar "
)
STREETS = (
    "Quayside Ave",
    "Alder St",
    "Juniper Ln",
    "Harbor View Dr",
    "Maple Ct",
    "Cedar Ridge Rd",
    "Orchard Way",
    "Linden Ave",
    "Bayberry Pl",
    "Willow Bend",
    "Summit Blvd",
    "Fern St",
)


def ascii_slug(text: str) -> str:
    """Lowercase ASCII letters only, for e-mail addresses built from names."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in plain.lower() if c.isalpha())


def guest_email(rng: random.Random, first: str, last: str) -> str:
    """A realistic address on one of the example domains reserved by RFC 2606."""
    first_part, last_part = ascii_slug(first), ascii_slug(last)
    local = rng.choice(
        (
            f"{first_part}.{last_part}",
            f"{first_part}{last_part[0]}{rng.randint(1, 99)}",
            f"{first_part[0]}{last_part}",
            f"{first_part}_{last_part}{rng.randint(70, 99)}",
        )
    )
    return f"{local}@{rng.choice(EMAIL_DOMAINS)}"


def phone_number(rng: random.Random, center: Center) -> str:
    """A national number in a range reserved for fiction, in the center's country."""
    country = center.country
    area = center.phone[:3] if country.calling_code == 1 else ""
    tail = rng.randrange(10**country.phone_digits)
    return f"{area}{country.phone_prefix}{tail:0{country.phone_digits}d}"


def person_name(rng: random.Random) -> tuple[str, str, int]:
    """First name, last name and Zenoti gender."""
    gender = rng.choice((FEMALE, FEMALE, MALE))
    first = rng.choice(FEMALE_NAMES if gender == FEMALE else MALE_NAMES)
    return first, rng.choice(LAST_NAMES), gender


# -- generation -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class World:
    """A synthetic Zenoti organization as it stands at ``start`` (immutable)."""

    seed: int
    start: datetime
    organization: Organization
    centers: tuple[Center, ...]
    rooms: tuple[Room, ...]
    job_ids: dict[str, str]
    employees: tuple[Employee, ...]
    services: tuple[Service, ...]
    products: tuple[Product, ...]
    memberships: tuple[MembershipPlan, ...]
    packages: tuple[PackagePlan, ...]
    classes: tuple[ClassOffering, ...]
    guests: tuple[Guest, ...]

    @classmethod
    def generate(
        cls, seed: int, *, centers: int = 1, guests_per_center: int = 30, start: datetime
    ) -> World:
        """Build the organization for ``seed``; ``start`` (timezone-aware) is when time begins."""
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware, e.g. datetime(2024, 6, 3, tzinfo=UTC)")
        if centers < 1 or guests_per_center < 2:
            raise ValueError("a world needs at least 1 center and 2 guests per center")
        rng = random.Random(seed)
        organization = Organization(guid(rng), rng.choice(_ORGANIZATION_NAMES))
        built = _centers(rng, centers)
        job_ids = {job: guid(rng) for job in JOBS}
        rooms = tuple(room for center in built for room in _rooms(rng, center))
        staff = _employees(rng, built, job_ids, start)
        services = tuple(Service(guid(rng), *spec) for spec in _SERVICES)
        products = tuple(Product(guid(rng), *spec) for spec in _PRODUCTS)
        by_code = {s.code: s.id for s in services} | {p.code: p.id for p in products}
        return cls(
            seed=seed,
            start=start.astimezone(UTC),
            organization=organization,
            centers=built,
            rooms=rooms,
            job_ids=job_ids,
            employees=staff,
            services=services,
            products=products,
            memberships=tuple(
                MembershipPlan(guid(rng), code, name, price, passes, credit, by_code.get(svc or ""))
                for code, name, price, passes, credit, svc in _MEMBERSHIPS
            ),
            packages=tuple(
                PackagePlan(
                    guid(rng), code, name, by_code[svc], n, price, days, by_code.get(prod or "")
                )
                for code, name, svc, n, price, days, prod in _PACKAGES
            ),
            classes=_classes(rng, built),
            guests=_guests(rng, built, guests_per_center, start),
        )

    def center(self, center_id: str) -> Center:
        """The center with this id."""
        return next(c for c in self.centers if c.id == center_id)

    def service(self, service_id: str) -> Service:
        """The service with this id."""
        return next(s for s in self.services if s.id == service_id)

    def product(self, product_id: str) -> Product:
        """The product with this id."""
        return next(p for p in self.products if p.id == product_id)

    def rooms_at(self, center_id: str, kind: str) -> list[Room]:
        """The rooms of one kind at one center."""
        return [r for r in self.rooms if r.center_id == center_id and r.kind == kind]


_ORGANIZATION_NAMES = (
    "Harbor & Pine Wellness Group",
    "Saltwater Spa Collective",
    "Lumen Day Spas",
    "Evergreen Salon & Spa Co.",
)


def _center_code(name: str, taken: set[str]) -> str:
    words = name.split()
    code = (words[0][0] + words[1][0]) if len(words) > 1 else name[:2]
    code = code.upper()
    suffix = 2
    while code in taken:
        code, suffix = f"{code[0]}{suffix}", suffix + 1
    taken.add(code)
    return code


def _centers(rng: random.Random, count: int) -> tuple[Center, ...]:
    order = [_CENTERS[0], *rng.sample(_CENTERS[1:], len(_CENTERS) - 1)]
    taken: set[str] = set()
    centers = []
    for n in range(count):
        name, city, state, zip_code, address, area, country_code, zone = order[n % len(order)]
        if n >= len(order):
            name = f"{name} {n // len(order) + 1}"
        country = COUNTRIES[country_code]
        number = rng.randrange(10**country.phone_digits)
        centers.append(
            Center(
                id=guid(rng),
                code=_center_code(name, taken),
                name=name,
                time_zone=zone,
                country_code=country_code,
                state=state,
                city=city,
                address_1=address,
                zip_code=zip_code,
                phone=f"{area}{country.phone_prefix}{number:0{country.phone_digits}d}",
                opens=time(rng.choice((8, 9, 10))),
                closes=time(rng.choice((19, 20, 21))),
                company_name=f"{name} {rng.choice(('Spa', 'Salon & Spa', 'Wellness'))} LLC",
            )
        )
    return tuple(centers)


def _rooms(rng: random.Random, center: Center) -> list[Room]:
    return [Room(guid(rng), center.id, name, kind) for kind, names in _ROOMS for name in names]


def _employees(
    rng: random.Random, centers: Sequence[Center], job_ids: dict[str, str], start: datetime
) -> tuple[Employee, ...]:
    staff = []
    number = rng.randint(300, 500)
    for center in centers:
        for job, count in _STAFF:
            for _ in range(count):
                hired = start.date() - timedelta(days=rng.randint(30, 2400))
                staff.append(hire(rng, center, job, job_ids[job], number, hired))
                number += rng.randint(1, 9)
    return tuple(staff)


def hire(
    rng: random.Random, center: Center, job: str, job_id: str, number: int, hired: date
) -> Employee:
    """A new employee record (used by the world, and by the activity for new hires)."""
    first, last, gender = person_name(rng)
    email = f"{ascii_slug(first)}.{ascii_slug(last)[0]}@{rng.choice(EMAIL_DOMAINS)}"
    return Employee(
        id=guid(rng),
        code=f"E-{number:04d}",
        center_id=center.id,
        first_name=first,
        last_name=last,
        gender=gender,
        email=email,
        mobile=phone_number(rng, center),
        job_id=job_id,
        job_name=job,
        hired=hired,
    )


def _classes(rng: random.Random, centers: Sequence[Center]) -> tuple[ClassOffering, ...]:
    classes = []
    class_id = rng.randint(7000, 7900)
    for center in centers:
        for name, minutes, capacity, web, slots in _CLASSES:
            # a class runs only when its slots fall in the center's business hours
            fitting = tuple(
                (weekday, time(hour, minute))
                for weekday, hour, minute in slots
                if center.opens <= time(hour, minute) and _ends_by(hour, minute, minutes, center)
            )
            if fitting:
                offering = ClassOffering(class_id, center.id, name, minutes, capacity, web, fitting)
                classes.append(offering)
                class_id += rng.randint(1, 40)
    return tuple(classes)


def _ends_by(hour: int, minute: int, minutes: int, center: Center) -> bool:
    end = hour * 60 + minute + minutes
    return end <= center.closes.hour * 60 + center.closes.minute


def _guests(
    rng: random.Random, centers: Sequence[Center], per_center: int, start: datetime
) -> tuple[Guest, ...]:
    guests = []
    number = rng.randint(900000, 910000)
    for center in centers:
        code = rng.randint(20000, 30000)
        for _ in range(per_center):
            guests.append(
                new_guest(rng, center, number, code, start - timedelta(days=1), on_file=True)
            )
            number += rng.randint(1, 40)
            code += rng.randint(1, 9)
    return tuple(guests)


def new_guest(
    rng: random.Random, center: Center, number: int, code: int, now: datetime, *, on_file: bool
) -> Guest:
    """A guest profile; ``on_file`` ones were created up to four years before ``now``."""
    first, last, gender = person_name(rng)
    created = now - timedelta(seconds=rng.randint(0, 4 * 365 * 86400)) if on_file else now
    return Guest(
        id=guid(rng),
        number=number,
        code=f"{center.code}{code}",
        center_id=center.id,
        first_name=first,
        last_name=last,
        gender=gender,
        email=guest_email(rng, first, last),
        mobile=phone_number(rng, center) if rng.random() < 0.85 else None,
        birth_date=date(rng.randint(1952, 2005), rng.randint(1, 12), rng.randint(1, 28)),
        address_1=f"{rng.randint(12, 4800)} {rng.choice(STREETS)}",
        city=center.city,
        zip_code=center.zip_code,
        country_id=center.country.id,
        created=created.astimezone(UTC).replace(microsecond=0),
        marketing_email=rng.random() < 0.7,
        marketing_sms=rng.random() < 0.4,
    )
