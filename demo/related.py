"""Deterministic demo data, fast enough for a million customers.

``seed_database(engine, customers=N, seed=S, batch=B, progress=callable) -> {table: rows}``

How it is built:

- Faker (en_GB, seeded with the seed) builds small pools once: first names, surnames, streets,
  towns, company names. Every row is then drawn from the pools with ``random.Random`` (calling
  Faker per row would be far too slow for a million customers).
- Two independent random streams: *customers* (the customer rows, including the planted
  duplicates) and *related* (everything hanging off a customer). ``planted_duplicate_pairs``
  replays only the first. The same seed into an empty database gives the same rows, whatever
  the batch size.
- Rows are plain tuples written through the DBAPI: ``executemany`` on SQLite, ``COPY`` on
  PostgreSQL, with explicit ids continuing from ``max(id)`` of each table and document numbers
  continuing from ``document_sequence``. Large loads drop the secondary indexes and foreign
  keys first and re-create them exactly as they were (read from the catalogue) afterwards.
- The stored ledger figures (``crm.ledger``) are computed here in Python while generating, to
  the definitions of ``crm.ledger``. On SQLite money columns hold binary floating point (the
  column affinity is NUMERIC and SQLAlchemy binds floats); the ledger rounds its SQL to the
  cent, and the seed rounds the float SQLite computes the same way, so
  ``crm.ledger.differences`` finds nothing.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import time
from collections.abc import Callable
from datetime import date
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.engine import Engine

from crm.models.finance import round_money
from crm.models.sequence import PREFIXES
from crm.validation import customer_search_text, normalize_email, normalize_phone

log = logging.getLogger(__name__)
ZERO = Decimal("0.00")
HUNDRED = Decimal(100)
TAX_STANDARD = Decimal("20.00")
TAX_ZERO = Decimal("0.00")

# --------------------------------------------------------------------------------------------
# Tables, in insertion (foreign key) order, and the columns the seed writes.

COLUMNS: dict[str, tuple[str, ...]] = {
    "customer": (
        "id", "reference", "kind", "customer_type", "title", "first_name", "surname",
        "company_name", "email", "phone", "status", "advertising_source", "price_book",
        "creditor_days", "third_party_reference", "notes", "email_opt_in", "sms_opt_in",
        "post_opt_in", "search_text", "balance", "account_credit", "overdue_amount",
        "oldest_overdue_on", "next_due_on", "ledger_as_of", "address_line_1", "address_line_2",
        "town", "county", "postcode", "country", "version", "created_at", "updated_at",
    ),
    "customer_tag": ("customer_id", "tag_id"),
    "contact": (
        "id", "customer_id", "title", "first_name", "surname", "position", "email", "phone",
        "mobile", "email_opt_in", "sms_opt_in", "is_primary", "version", "created_at",
        "updated_at",
    ),
    "branch": (
        "id", "customer_id", "name", "phone", "status", "address_line_1", "address_line_2",
        "town", "county", "postcode", "country", "version", "created_at", "updated_at",
    ),
    "work_address": (
        "id", "customer_id", "landlord_id", "occupier_title", "occupier_first_name",
        "occupier_surname", "occupier_phone", "occupier_email", "status", "address_line_1",
        "address_line_2", "town", "county", "postcode", "country", "version", "created_at",
        "updated_at",
    ),
    "service_reminder": (
        "id", "work_address_id", "due_on", "description", "status", "version", "created_at",
        "updated_at",
    ),
    "lead": (
        "id", "first_name", "surname", "company_name", "email", "phone", "source", "message",
        "status", "customer_id", "version", "created_at", "updated_at",
    ),
    "booking": (
        "id", "reference", "customer_id", "work_address_id", "lead_id", "title", "status",
        "starts_at", "ends_at", "value", "contact_email", "attribution", "version",
        "created_at", "updated_at",
    ),
    "note": (
        "id", "customer_id", "work_address_id", "kind", "body", "important",
        "do_not_work_with_again", "author_id", "version", "created_at", "updated_at",
    ),
    "invoice": (
        "id", "customer_id", "number", "status", "issue_date", "due_date", "notes",
        "outstanding", "subtotal", "tax_total", "total", "version", "created_at", "updated_at",
    ),
    "invoice_line": (
        "id", "invoice_id", "position", "category", "description", "quantity", "unit_price",
        "tax_rate", "net_amount", "tax_amount", "version", "created_at", "updated_at",
    ),
    "credit_note": (
        "id", "customer_id", "invoice_id", "number", "status", "issue_date", "description",
        "breakdown_style", "subtotal", "tax_total", "total", "version", "created_at",
        "updated_at",
    ),
    "credit_note_line": (
        "id", "credit_note_id", "position", "category", "description", "quantity",
        "unit_price", "tax_rate", "net_amount", "tax_amount", "version", "created_at",
        "updated_at",
    ),
    "payment": (
        "id", "customer_id", "received_on", "method", "reference", "amount", "version",
        "created_at", "updated_at",
    ),
    "allocation": (
        "id", "invoice_id", "payment_id", "credit_note_id", "amount", "version", "created_at",
        "updated_at",
    ),
}
TABLES = tuple(COLUMNS)
ID_TABLES = tuple(t for t in TABLES if "id" in COLUMNS[t]) + ("tag",)

# --------------------------------------------------------------------------------------------
# Fixed vocabularies. Weighted choices are lookup tables of 100 (or so) entries: one random()
# and one index per draw.


def _table(*pairs) -> tuple:
    out: list = []
    for value, weight in pairs:
        out.extend([value] * weight)
    return tuple(out)


KIND = _table(("lead", 10), ("prospect", 15), ("client", 75))
CTYPE = _table(("private", 70), ("company", 20), ("landlord", 10))
STATUS = _table(("active", 85), ("dormant", 10), ("archived", 5))
TITLE_M = _table(("Mr", 84), ("Dr", 4), ("Prof", 1), (None, 11))
TITLE_F = _table(("Mrs", 38), ("Ms", 24), ("Miss", 20), ("Dr", 4), ("Mx", 1), (None, 13))
ADVERTISING = _table(
    ("Google", 20), ("Word of mouth", 15), ("Repeat customer", 10), ("Facebook", 8),
    ("Instagram", 6), ("Website", 8), ("Referral", 8), ("Checkatrade", 4), ("Yell", 3),
    ("Flyer", 3), ("Trade show", 2), ("Local paper", 2), (None, 11),
)
PRICE_BOOKS = ("Standard", "Trade", "Landlord", "Commercial", "Charity", "Loyalty")
CREDITOR_DAYS = (7, 14, 14, 21, 30, 30, 30, 30, 45, 60)
TERMS = _table((0, 10), (7, 20), (14, 35), (30, 35))
THIRD_PARTY = ("XERO-", "SAGE/", "QB-", "FA")
CUSTOMER_NOTES = (
    "Prefers morning appointments.", "Gate code 4921; please close the gate.",
    "Dog on the premises - ring ahead.", "Send invoices to the accounts address only.",
    "Parking permit needed; ask at reception.", "Key held by the neighbour at number 12.",
    "Hard of hearing - text rather than call.", "Pays by bank transfer within a week.",
    "Asked for quotes in writing before any work.", "Contact the site manager on arrival.",
    "Prefers e-mail; do not call before 10am.", "VAT registered; needs VAT invoices.",
)
PERSONAL_DOMAINS = _table(
    ("example.com", 30), ("example.org", 15), ("example.net", 15), ("mail.example.com", 12),
    ("inbox.example.net", 10), ("post.example.org", 8), ("home.example.com", 10),
)
COMPANY_TLDS = ("example.com", "example.org", "example.net")
COMPANY_LOCALS = _table(
    ("info", 30), ("office", 15), ("accounts", 15), ("hello", 10), ("enquiries", 10),
    ("admin", 10), ("bookings", 10),
)
TRADES = (
    "Plumbing", "Heating", "Electrical", "Building", "Roofing", "Joinery", "Decorating",
    "Landscapes", "Events", "Catering", "Productions", "Studios", "Tours", "Lettings",
    "Property Management", "Facilities", "Cleaning Services", "Gas Services", "Maintenance",
    "Construction", "Audio", "Entertainments", "Leisure", "Holidays", "Media", "Interiors",
    "Glazing", "Drainage", "Security", "Fire Protection", "Estates", "Homes", "Hospitality",
    "Venues", "Sound & Light", "Hire", "Logistics", "Garden Services", "Care", "Dental",
)
LEGAL = _table(("Ltd", 55), ("Limited", 15), ("LLP", 5), ("& Co", 5), ("", 20))
STREET_SUFFIXES = _table(
    ("Road", 25), ("Street", 18), ("Lane", 12), ("Avenue", 8), ("Close", 8), ("Drive", 6),
    ("Way", 4), ("Crescent", 4), ("Gardens", 3), ("Grove", 3), ("Place", 2), ("Terrace", 2),
    ("Court", 2), ("Mews", 1), ("Walk", 1), ("Hill", 1),
)
STREET_WORDS = (
    "High", "Church", "Station", "Mill", "Park", "Victoria", "Queen's", "King's", "Manor",
    "School", "Green", "Chapel", "London", "York", "Windsor", "Albert", "North", "South",
    "West", "East", "New", "Market", "Bridge", "Castle", "Orchard", "Meadow", "Springfield",
    "Grange", "Highfield", "Kingsway", "Elm", "Oak", "Ash", "Beech", "Willow", "Cedar",
)
TOWN_SUFFIXES = (
    "ton", "ham", "ford", "bury", "field", "ley", "worth", "by", "stead", "well", "bridge",
    "combe", "wick", "minster", "borough", "chester", "mouth", "hurst", "dale", "thorpe",
)
TOWN_PREFIXES = _table(("", 80), ("Upper ", 4), ("Lower ", 4), ("Great ", 4), ("Little ", 4),
                       ("North ", 2), ("South ", 2))
TOWN_AFFIXES = _table(("", 92), (" on Sea", 3), (" upon Avon", 2), (" St Mary", 3))
HOUSE_NAMES = (
    "Rose Cottage", "The Old Rectory", "Ivy House", "The Barn", "Orchard House", "Meadow View",
    "The Coach House", "Hillside", "Fern Lodge", "The Willows", "Holly Cottage", "Brook House",
)
LOCALITIES = ("Westfield", "Northgate", "Eastbrook", "Southview", "Old Town", "Riverside",
              "Hilltop", "Parkside", "Meadowbank", "Moorside")
POSTCODE_AREAS = (
    "AB AL B BA BB BD BH BL BN BR BS CA CB CF CH CM CO CR CT CV CW DA DD DE DG DH DL DN DT "
    "DY E EC EH EN EX FK FY G GL GU HA HD HG HP HR HU HX IG IP IV KA KT KY L LA LD LE LL LN "
    "LS LU M ME MK ML N NE NG NN NP NR NW OL OX PA PE PH PL PO PR RG RH RM S SA SE SG SK SL "
    "SM SN SO SP SR SS ST SW SY TA TD TF TN TQ TR TS TW UB W WA WD WF WN WR WS WV YO"
).split()
INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
POSITIONS = ("Office manager", "Director", "Accounts", "Facilities manager", "Site manager",
             "Owner", "PA", "Operations manager", "Property manager", "Bookings")
BRANCH_NAMES = ("Head office", "Depot", "Warehouse", "Showroom", "Yard", "Studio")
REMINDERS = ("Annual boiler service", "Gas safety certificate", "PAT testing",
             "Chimney sweep", "Gutter clean", "Alarm service", "Fire extinguisher check",
             "Air conditioning service", "Electrical inspection (EICR)", "Piano tuning",
             "Window clean", "Septic tank empty")
REMINDER_PAST = _table(("done", 70), ("due", 25), ("cancelled", 5))
LEAD_SOURCES = ("Website form", "Phone", "E-mail", "Facebook", "Instagram", "Referral",
                "Google Ads", "Trade show", "Walk-in")
LEAD_OPEN = _table(("new", 40), ("contacted", 25), ("lost", 35))
LEAD_MESSAGES = (
    "Could you quote for a full service next month?", "Looking for a band for a wedding in June.",
    "Do you cover our area? We need someone this week.", "Please call me back about a repair.",
    "Interested in a group booking for 12 people.", "Need a price for a kitchen refit.",
    "Can you send availability for a studio session?", "Our boiler has stopped working.",
)
BOOKING_TITLES = (
    "Boiler service", "Wedding reception set", "Corporate away day", "Kitchen tap replacement",
    "Studio session (4 h)", "Guided walking tour", "Annual gas safety check",
    "Birthday party band", "Emergency call-out", "Roof repair survey", "Bathroom refit",
    "Garden clearance", "Christmas party DJ", "Recording session (full day)",
    "Electrical inspection", "Team-building kayak trip", "Window replacement", "Drain unblock",
    "Festival slot", "Photography workshop",
)
BOOKING_STATUS = _table(("enquiry", 15), ("confirmed", 25), ("completed", 50), ("cancelled", 10))
ATTRIBUTION = _table(("exact", 85), ("related", 10), ("manual", 5))
NOTE_KIND = _table(("note", 60), ("call", 25), ("email", 15))
NOTE_BODIES = (
    "Called to confirm the appointment; all fine.", "Customer asked for a revised quote.",
    "Left a voicemail about the overdue invoice.", "Sent the statement by e-mail.",
    "Access via the side gate; parking on the drive.", "Happy with the work, will recommend us.",
    "Asked to move the booking to the following week.", "Chased payment; promised by Friday.",
    "Discussed next year's service plan.", "Complained about the arrival time; apologised.",
    "Requested paper invoices by post.", "New contact for bookings from next month.",
)
NOTE_IMPORTANT = ("Always call before arriving - vulnerable customer.",
                  "Only the accounts contact may approve work over 500 pounds.",
                  "Asbestos survey on file: do not drill the loft hatch.")
NOTE_DNWWA = ("Refused access twice and was abusive on the phone. Do not work with again.",
              "Disputed every invoice; account closed. Do not book again.")
LINE_CATEGORY = _table(("labour", 50), ("parts", 35), ("other", 15))
LINE_TEXT = {
    "labour": ("Labour", "Engineer time", "Call-out and first hour", "Performance fee",
               "Guide fee", "Studio time", "Technician time"),
    "parts": ("Replacement valve", "Thermostat", "Cable and fittings", "Filter set",
              "Sealant and consumables", "Pump", "Radiator", "Strings and consumables"),
    "other": ("Travel", "Parking", "Equipment hire", "Admin fee", "Disposal",
              "Booking deposit"),
}
LABOUR_QTY = tuple(Decimal(x) for x in ("1.00", "1.00", "1.50", "2.00", "2.00", "2.50", "3.00",
                                        "4.00", "0.50", "8.00"))
PARTS_QTY = tuple(Decimal(x) for x in ("1.00", "1.00", "1.00", "2.00", "3.00", "4.00", "5.00",
                                       "10.00"))
ONE = Decimal("1.00")
INV_STATUS = _table(("issued", 85), ("draft", 10), ("void", 5))
INVOICES_BY_KIND = {
    "lead": (0,),
    "prospect": _table((0, 55), (1, 30), (2, 15)),
    "client": _table((0, 4), (1, 10), (2, 14), (3, 17), (4, 17), (5, 13), (6, 10), (7, 7),
                     (8, 4), (10, 3), (12, 1)),
}
INVOICE_NOTES = ("Thank you for your business.", "Payment by bank transfer please.",
                 "Quote ref on request.", None, None, None, None, None, None, None)
PAY_METHOD = _table(("bank_transfer", 55), ("card", 30), ("cash", 5), ("cheque", 5),
                    ("other", 5))
BREAKDOWN = _table(("none", 60), ("by_category", 20), ("full", 15), ("full_by_category", 5))
CREDIT_REASONS = ("Goodwill credit", "Refund for cancelled visit", "Pricing error",
                  "Duplicate charge", "Parts returned", "Discount agreed after the job")
TAG_POOL = (
    ("VIP", "gold"), ("Slow payer", "red"), ("Key account", "blue"), ("Trade", "grey"),
    ("Repeat", "green"), ("Newsletter", "teal"), ("Referral", "purple"),
    ("Commercial", "navy"), ("Residential", "olive"), ("Priority", "orange"),
    ("Seasonal", "brown"), ("Awkward access", "black"),
)
NICKNAMES = {
    "Robert": ("Bob", "Rob", "Bobby"), "William": ("Bill", "Will", "Billy"),
    "Elizabeth": ("Liz", "Beth", "Lizzie"), "Margaret": ("Maggie", "Peggy"),
    "James": ("Jim", "Jimmy", "Jamie"), "Thomas": ("Tom", "Tommy"), "Richard": ("Rich", "Rick"),
    "Katherine": ("Kate", "Kath"), "Catherine": ("Cath", "Kate"), "Jennifer": ("Jen", "Jenny"),
    "Michael": ("Mike", "Mick"), "Christopher": ("Chris",), "Daniel": ("Dan", "Danny"),
    "Matthew": ("Matt",), "Anthony": ("Tony",), "Samuel": ("Sam",), "Alexander": ("Alex",),
    "Benjamin": ("Ben",), "Joseph": ("Joe",), "Edward": ("Ed", "Ted"), "Patricia": ("Pat",),
    "Susan": ("Sue",), "Deborah": ("Debbie", "Deb"), "Rebecca": ("Becky", "Becca"),
    "Jessica": ("Jess",), "Victoria": ("Vicky", "Tori"), "Charlotte": ("Charlie", "Lottie"),
    "Nicholas": ("Nick",), "Jonathan": ("Jon", "Johnny"), "Stephen": ("Steve",),
    "Steven": ("Steve",), "Andrew": ("Andy", "Drew"), "David": ("Dave",), "Peter": ("Pete",),
    "Timothy": ("Tim",), "Abigail": ("Abby",), "Samantha": ("Sam", "Sammy"),
    "Eleanor": ("Ellie", "Nell"), "Oliver": ("Ollie",), "Frederick": ("Fred", "Freddie"),
    "Henry": ("Harry",), "Gregory": ("Greg",), "Jacqueline": ("Jackie",), "Kenneth": ("Ken",),
    "Leonard": ("Len", "Leo"), "Philip": ("Phil",), "Raymond": ("Ray",), "Ronald": ("Ron",),
    "Ian": ("Iain",), "Joshua": ("Josh",), "Nathan": ("Nate",), "Zoe": ("Zoë",),
}

# Phone numbers: every customer of one run gets a different number (a bijection of the run
# index), so the only shared numbers are the planted duplicates. Ranges checked valid by
# ``phonenumbers`` (tests sample them through crm.validation.normalize_phone).
MOBILE_BLOCKS = tuple(range(40, 60)) + tuple(range(71, 90)) + tuple(range(92, 100))
MOBILE_SPACE = len(MOBILE_BLOCKS) * 10**7
LANDLINE_BLOCKS = tuple(
    f"+44{area}{d}" for area in ("207", "208", "203", "161", "141", "151", "292") for d in
    "23456789"
)
LANDLINE_SPACE = len(LANDLINE_BLOCKS) * 10**6
PHONE_MUL = 2654435761  # odd, and coprime with both spaces (2, 5, 7, 47 do not divide it)

DUPLICATE_RATE = 0.02
DUPLICATE_WINDOW = 20_000
LANDLORD_WINDOW = 50_000


def _slug(value: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", value.lower())


# --------------------------------------------------------------------------------------------
# Pools (Faker, once per seed)


class Pools:
    def __init__(self, seed: int) -> None:
        from faker import Faker

        rng = random.Random(f"crm-seed:{seed}:pools")
        fake = Faker("en_GB")
        fake.seed_instance(seed)
        extra = [Faker(loc) for loc in ("en_US", "en_NZ", "en_IE")]

        def names(attr: str, n: int) -> list[str]:
            pool: list[str] = []
            seen: set[str] = set()
            for f in (fake, *extra):  # en_GB first, topped up from US, NZ and Irish lists
                person = f.provider("faker.providers.person")
                values = [v for v in dict.fromkeys(getattr(person, attr)) if v.isalpha()]
                rng.shuffle(values)
                for v in values:
                    if v not in seen and len(pool) < n:
                        seen.add(v)
                        pool.append(v)
            return pool

        self.male = names("first_names_male", 250)
        self.female = names("first_names_female", 250)
        self.surnames = names("last_names", 1500)
        streets: dict[str, None] = {}
        while len(streets) < 400:
            word = rng.choice(STREET_WORDS) if rng.random() < 0.35 else fake.last_name()
            streets[f"{word} {rng.choice(STREET_SUFFIXES)}"] = None
        self.streets = list(streets)
        towns: dict[str, tuple] = {}
        counties = [fake.county() for _ in range(60)]
        while len(towns) < 300:
            stem = fake.last_name() if rng.random() < 0.7 else fake.first_name()
            stem = stem.rstrip("sy") if len(stem) > 5 else stem
            name = f"{rng.choice(TOWN_PREFIXES)}{stem}{rng.choice(TOWN_SUFFIXES)}"
            name = name + rng.choice(TOWN_AFFIXES)
            if name not in towns:
                area = rng.choice(POSTCODE_AREAS)
                districts = tuple(sorted(rng.sample(range(1, 30), rng.randint(1, 3))))
                towns[name] = (name, rng.choice(counties), area, districts)
        self.towns = list(towns.values())
        companies: dict[str, None] = {}
        while len(companies) < 300:
            name = fake.company()
            name = re.sub(r"\b(Inc|LLC)$", "Ltd", name)
            companies[name] = None
        self.companies = list(companies)


class _Bloom:
    """A small Bloom filter with a deterministic hash: keeps generated e-mails distinct in
    bounded memory (a false positive only adds digits to an address)."""

    def __init__(self, capacity: int) -> None:
        self.bits = max(1 << 16, capacity * 12)
        self.array = bytearray(self.bits // 8 + 1)

    def _positions(self, value: str):
        digest = hashlib.blake2b(value.encode(), digest_size=12).digest()
        bits = self.bits
        for k in range(0, 12, 4):
            yield int.from_bytes(digest[k:k + 4], "little") % bits

    def add_if_new(self, value: str) -> bool:
        """Add ``value``; True if it was (certainly) not there before."""
        array = self.array
        new = False
        for pos in self._positions(value):
            byte, bit = pos >> 3, 1 << (pos & 7)
            if not array[byte] & bit:
                new = True
                array[byte] |= bit
        return new


class Cust:
    """A customer's own fields, from the customers stream."""

    __slots__ = (
        "index", "kind", "ctype", "status", "title", "first", "surname", "company", "email",
        "phone", "line1", "line2", "town", "county", "postcode", "advertising", "price_book",
        "creditor_days", "third_party", "notes", "email_opt_in", "sms_opt_in", "post_opt_in",
        "created_day", "created_tod", "updated_days", "sex", "domain", "dup_of",
    )


# --------------------------------------------------------------------------------------------
# The customers stream


class CustomerStream:
    """Customer rows (and the planted duplicates) for run indexes 0, 1, 2, ...

    Depends only on the seed and the pools, never on what is in the database, so
    ``planted_duplicate_pairs`` can replay it.
    """

    def __init__(self, seed: int, pools: Pools, capacity: int, today: date) -> None:
        self.rng = random.Random(f"crm-seed:{seed}:customers")
        self.pools = pools
        self.today_ord = today.toordinal()
        self.bloom = _Bloom(capacity)
        self.window: list[Cust] = []
        self.window_pos = 0
        offset = random.Random(f"crm-seed:{seed}:phones").random()
        self.mobile_offset = int(offset * MOBILE_SPACE)
        self.landline_offset = int(offset * LANDLINE_SPACE)

    # -- pieces ------------------------------------------------------------------------------

    def person(self, c: Cust) -> None:
        r = self.rng.random
        p = self.pools
        if r() < 0.5:
            c.sex, c.first = "m", p.male[int(r() * len(p.male))]
            c.title = TITLE_M[int(r() * len(TITLE_M))]
        else:
            c.sex, c.first = "f", p.female[int(r() * len(p.female))]
            c.title = TITLE_F[int(r() * len(TITLE_F))]
        c.surname = p.surnames[int(r() * len(p.surnames))]

    def company_name(self) -> str:
        r = self.rng.random
        p = self.pools
        x = r()
        legal = LEGAL[int(r() * len(LEGAL))]
        trade = TRADES[int(r() * len(TRADES))]
        if x < 0.30:
            return p.companies[int(r() * len(p.companies))]
        if x < 0.65:
            name = f"{p.surnames[int(r() * len(p.surnames))]} {trade}"
        elif x < 0.85:
            name = f"{p.towns[int(r() * len(p.towns))][0]} {trade}"
        else:
            s1 = p.surnames[int(r() * len(p.surnames))]
            s2 = p.surnames[int(r() * len(p.surnames))]
            name = f"{s1} & {s2}"
        return f"{name} {legal}".strip()

    def address(self, c: Cust) -> None:
        r = self.rng.random
        p = self.pools
        town, county, area, districts = p.towns[int(r() * len(p.towns))]
        c.town = town
        c.county = county if r() < 0.4 else None
        c.postcode = (
            f"{area}{districts[int(r() * len(districts))]} {int(r() * 10)}"
            f"{INWARD_LETTERS[int(r() * 20)]}{INWARD_LETTERS[int(r() * 20)]}"
        )
        street = p.streets[int(r() * len(p.streets))]
        x = r()
        number = 1 + int(r() * r() * 240)
        c.line2 = None
        if x < 0.72:
            c.line1 = f"{number} {street}"
        elif x < 0.86:
            c.line1 = f"Flat {1 + int(r() * 24)}, {number} {street}"
        elif x < 0.94:
            c.line1, c.line2 = HOUSE_NAMES[int(r() * len(HOUSE_NAMES))], street
        else:
            c.line1 = f"Unit {1 + int(r() * 40)}, {street}"
        if c.line2 is None and r() < 0.1:
            c.line2 = LOCALITIES[int(r() * len(LOCALITIES))]

    def email_for(self, c: Cust) -> str:
        r = self.rng.random
        first, surname = (c.first or "").lower(), (c.surname or "").lower()
        surname = _slug(surname)
        first = _slug(first)
        for attempt in range(8):
            if c.ctype == "company":
                if first and r() < 0.3:
                    local = first if r() < 0.5 else f"{first}.{surname}"
                else:
                    local = COMPANY_LOCALS[int(r() * len(COMPANY_LOCALS))]
                domain = c.domain
                if attempt:
                    domain = f"{_slug(c.company or '')}{attempt + 1}.{COMPANY_TLDS[attempt % 3]}"
                email = f"{local}@{domain}"
            else:
                x = r()
                if x < 0.4:
                    local = f"{first}.{surname}"
                elif x < 0.6:
                    local = f"{first[:1]}{surname}"
                elif x < 0.75:
                    local = f"{first}{surname}"
                elif x < 0.9:
                    local = f"{first}_{surname}"
                else:
                    local = f"{surname}.{first}"
                if attempt or r() < 0.55:
                    local += str(1950 + int(r() * 56) if r() < 0.5 else 1 + int(r() * 999))
                email = f"{local}@{PERSONAL_DOMAINS[int(r() * len(PERSONAL_DOMAINS))]}"
            if self.bloom.add_if_new(email):
                return email
        return email

    def phone_for(self, c: Cust) -> str:
        i = c.index
        if c.ctype == "company":
            k = (i * PHONE_MUL + self.landline_offset) % LANDLINE_SPACE
            return f"{LANDLINE_BLOCKS[k // 10**6]}{k % 10**6:06d}"
        k = (i * PHONE_MUL + self.mobile_offset) % MOBILE_SPACE
        return f"+447{MOBILE_BLOCKS[k // 10**7]}{k % 10**7:07d}"

    # -- a customer --------------------------------------------------------------------------

    def next(self, index: int) -> Cust:
        r = self.rng.random
        if index >= 20 and self.window and r() < DUPLICATE_RATE:
            c = self._duplicate(index)
            if c is not None:
                return c
        c = Cust()
        c.index = index
        c.dup_of = None
        c.kind = KIND[int(r() * 100)]
        c.ctype = CTYPE[int(r() * 100)]
        c.status = STATUS[int(r() * 100)]
        c.company = c.first = c.surname = c.title = c.sex = c.domain = None
        if c.ctype == "company":
            c.company = self.company_name()
            c.domain = f"{_slug(c.company)}.{COMPANY_TLDS[int(r() * 3)]}"
            if r() < 0.6:
                self.person(c)
        else:
            self.person(c)
            if c.ctype == "landlord" and r() < 0.2:
                c.company = f"{c.surname} Properties"
        self.address(c)
        self._rest(c)
        c.email = self.email_for(c) if r() < 0.95 else None
        c.phone = self.phone_for(c) if r() < 0.92 else None
        self._remember(c)
        return c

    def _rest(self, c: Cust) -> None:
        r = self.rng.random
        c.advertising = ADVERTISING[int(r() * len(ADVERTISING))]
        business = c.ctype != "private"
        c.price_book = PRICE_BOOKS[int(r() * len(PRICE_BOOKS))] if r() < (
            0.4 if business else 0.08) else None
        c.creditor_days = CREDITOR_DAYS[int(r() * len(CREDITOR_DAYS))] if r() < (
            0.5 if c.ctype == "company" else 0.3 if business else 0.05) else None
        if r() < (0.35 if business else 0.1):
            prefix = THIRD_PARTY[int(r() * len(THIRD_PARTY))]
            c.third_party = f"{prefix}{10000 + int(r() * 90000)}"
        else:
            c.third_party = None
        c.notes = CUSTOMER_NOTES[int(r() * len(CUSTOMER_NOTES))] if r() < 0.1 else None
        c.email_opt_in = r() < 0.75
        c.sms_opt_in = r() < 0.55
        c.post_opt_in = r() < 0.4
        c.created_day = self.today_ord - 30 - int(r() * 1795)
        c.created_tod = 96 + int(r() * 120)  # 08:00 to 18:00, in 5 minute steps
        c.updated_days = 0 if r() < 0.6 else int(r() * (self.today_ord - c.created_day))

    def _remember(self, c: Cust) -> None:
        if len(self.window) < DUPLICATE_WINDOW:
            self.window.append(c)
        else:
            self.window[self.window_pos] = c
            self.window_pos = (self.window_pos + 1) % DUPLICATE_WINDOW

    def _duplicate(self, index: int) -> Cust | None:
        """The same person typed in again: same e-mail (typed differently), same phone (in
        another format), or same surname and postcode with a nickname or a typo."""
        rng = self.rng
        r = rng.random
        o = self.window[int(r() * len(self.window))]
        ways = []
        if o.email:
            ways.append("email")
        if o.phone:
            ways.append("phone")
        if o.surname and o.ctype != "company":
            ways.append("name")
        if not ways:
            return None
        way = ways[int(r() * len(ways))]
        c = Cust()
        c.index = index
        c.dup_of = o.index
        c.kind = "lead" if r() < 0.4 else ("prospect" if r() < 0.5 else "client")
        c.ctype, c.status, c.sex, c.domain = o.ctype, "active", o.sex, o.domain
        c.title = o.title if r() < 0.5 else None
        c.first, c.surname, c.company = o.first, o.surname, o.company
        for attr in ("line1", "line2", "town", "county", "postcode"):
            setattr(c, attr, getattr(o, attr))
        self._rest(c)
        if way == "email":
            messy = "".join(ch.upper() if r() < 0.3 else ch for ch in o.email)
            c.email = normalize_email(f"  {messy} ")
            c.phone = None if r() < 0.6 else self.phone_for(c)
            if c.first and r() < 0.5:
                c.first = self._variant(c.first)
            if r() < 0.4:  # moved house, same e-mail
                self.address(c)
        elif way == "phone":
            national = "0" + o.phone[3:]
            typed = rng.choice((
                f"{national[:5]} {national[5:]}", f"+44 {o.phone[3:7]} {o.phone[7:]}",
                f"({national[:4]}) {national[4:]}", national,
            ))
            c.phone = normalize_phone(typed)
            c.email = None if r() < 0.5 else self.email_for(c)
            if c.first and r() < 0.3:
                c.first = self._variant(c.first)
        else:
            c.first = self._variant(c.first) if c.first else c.first
            c.line1 = c.line1.replace(" Road", " Rd").replace(" Street", " St")
            c.email = None if r() < 0.5 else self.email_for(c)
            c.phone = None if r() < 0.6 else self.phone_for(c)
        return c

    def _variant(self, first: str) -> str:
        rng = self.rng
        if first in NICKNAMES and rng.random() < 0.7:
            return rng.choice(NICKNAMES[first])
        if len(first) < 4:
            return first + first[-1]
        k = rng.randrange(1, len(first) - 1)
        way = rng.random()
        if way < 0.4:  # two letters swapped
            return first[:k] + first[k + 1] + first[k] + first[k + 2:]
        if way < 0.7:  # a letter dropped
            return first[:k] + first[k + 1:]
        return first[:k] + first[k] + first[k:]  # a letter doubled


def planted_duplicate_pairs(customers: int, seed: int) -> list[tuple[int, int]]:
    """(original id, duplicate id) of the duplicates a seed run plants in an empty database."""
    today = date.today()
    stream = CustomerStream(seed, Pools(seed), customers, today)
    pairs = []
    for index in range(customers):
        c = stream.next(index)
        if c.dup_of is not None:
            pairs.append((c.dup_of + 1, index + 1))
    return pairs


# --------------------------------------------------------------------------------------------
# The related rows and the ledger


class _Inv:
    __slots__ = ("id", "row", "issue", "due", "total", "allocated", "allocated_f")


class Generator:
    """Turns customers into rows of every table, batch by batch."""

    def __init__(self, seed: int, count: int, start: dict, today: date, float_money: bool,
                 tag_ids: list[int], author_ids: list[int]) -> None:
        self.pools = Pools(seed)
        self.customers = CustomerStream(seed, self.pools, count, today)
        self.rng = random.Random(f"crm-seed:{seed}:related")
        self.today = today
        self.today_ord = today.toordinal()
        self.float_money = float_money
        self.money = float if float_money else str
        self.ids = dict(start["ids"])  # next id per table
        self.seq = dict(start["seq"])  # next number per document sequence
        self.tag_ids = tag_ids
        self.author_ids = author_ids
        self.landlords: list[int] = []
        self.landlord_pos = 0
        self.float_open = 0  # fully paid on paper, open to SQLite's floating point
        base = self.today_ord - 4000
        self.date_base = base
        self.dates = [date.fromordinal(base + k).isoformat() for k in range(6000)]
        self.times = [f"{m // 60:02d}:{m % 60:02d}:00.000000" for m in range(0, 1440, 5)]

    # -- helpers -----------------------------------------------------------------------------

    def d(self, ordinal: int) -> str:
        return self.dates[ordinal - self.date_base]

    def dt(self, ordinal: int, tod: int) -> str:
        return f"{self.dates[ordinal - self.date_base]} {self.times[tod]}"

    def next_id(self, table: str) -> int:
        value = self.ids[table]
        self.ids[table] = value + 1
        return value

    def number(self, name: str) -> str:
        value = self.seq[name]
        self.seq[name] = value + 1
        return f"{PREFIXES[name]}{value:06d}"

    def random_phone(self, mobile: bool) -> str:
        r = self.rng.random
        if mobile:
            return f"+447{MOBILE_BLOCKS[int(r() * len(MOBILE_BLOCKS))]}{int(r() * 10**7):07d}"
        return f"{LANDLINE_BLOCKS[int(r() * len(LANDLINE_BLOCKS))]}{int(r() * 10**6):06d}"

    def random_person(self) -> tuple[str | None, str, str]:
        r = self.rng.random
        p = self.pools
        if r() < 0.5:
            first, title = p.male[int(r() * len(p.male))], TITLE_M[int(r() * len(TITLE_M))]
        else:
            first, title = p.female[int(r() * len(p.female))], TITLE_F[int(r() * len(TITLE_F))]
        return title, first, p.surnames[int(r() * len(p.surnames))]

    def random_address(self) -> tuple:
        r = self.rng.random
        p = self.pools
        town, county, area, districts = p.towns[int(r() * len(p.towns))]
        postcode = (
            f"{area}{districts[int(r() * len(districts))]} {int(r() * 10)}"
            f"{INWARD_LETTERS[int(r() * 20)]}{INWARD_LETTERS[int(r() * 20)]}"
        )
        line1 = f"{1 + int(r() * r() * 240)} {p.streets[int(r() * len(p.streets))]}"
        return line1, None, town, county if r() < 0.4 else None, postcode

    def when(self, c: Cust) -> tuple[int, int]:
        """A day between the customer's creation and today, and a time of day."""
        r = self.rng.random
        return (c.created_day + int(r() * (self.today_ord - c.created_day + 1)),
                96 + int(r() * 130))

    # -- one batch ---------------------------------------------------------------------------

    def batch(self, first_index: int, count: int) -> dict[str, list]:
        out: dict[str, list] = {t: [] for t in TABLES}
        for index in range(first_index, first_index + count):
            c = self.customers.next(index)
            self.customer(c, out)
        return out

    def customer(self, c: Cust, out: dict[str, list]) -> None:
        r = self.rng.random
        cid = self.next_id("customer")
        reference = self.number("customer")
        created = self.dt(c.created_day, c.created_tod)
        updated = self.dt(c.created_day + c.updated_days, c.created_tod) if c.updated_days \
            else created
        contacts = self.contacts(cid, c, out, created)
        work_ids = self.work_addresses(cid, c, out)
        if c.ctype == "company":
            self.branches(cid, c, out)
        lead_id = self.leads(cid, c, out)
        self.bookings(cid, c, out, work_ids, lead_id, contacts)
        self.notes(cid, c, out, work_ids)
        if self.tag_ids and r() < 0.3:
            k = 1 if r() < 0.6 else (2 if r() < 0.75 else 3)
            for tag_id in self.rng.sample(self.tag_ids, min(k, len(self.tag_ids))):
                out["customer_tag"].append((cid, tag_id))
        ledger = self.money_rows(cid, c, out)
        m = self.money
        out["customer"].append((
            cid, reference, c.kind, c.ctype, c.title, c.first, c.surname, c.company, c.email,
            c.phone, c.status, c.advertising, c.price_book, c.creditor_days, c.third_party,
            c.notes, c.email_opt_in, c.sms_opt_in, c.post_opt_in,
            customer_search_text(reference, c.first, c.surname, c.company, c.email, c.phone,
                                 c.postcode),
            m(ledger[0]), m(ledger[1]), m(ledger[2]), ledger[3], ledger[4],
            self.d(self.today_ord), c.line1, c.line2, c.town, c.county, c.postcode, "GB", 1,
            created, updated,
        ))
        if c.ctype == "landlord":
            if len(self.landlords) < LANDLORD_WINDOW:
                self.landlords.append(cid)
            else:
                self.landlords[self.landlord_pos] = cid
                self.landlord_pos = (self.landlord_pos + 1) % LANDLORD_WINDOW

    def contacts(self, cid: int, c: Cust, out: dict, created: str) -> list[str]:
        r = self.rng.random
        rows = out["contact"]
        n = 1 if r() < 0.55 else 2
        primary = r() < 0.9
        emails = []
        for k in range(n):
            if k == 0 and c.surname:
                title, first, surname = c.title, c.first, c.surname
                email, position = c.email, ("Owner" if c.ctype == "company" else None)
                mobile = c.phone if c.phone and c.phone.startswith("+447") else (
                    self.random_phone(True) if r() < 0.5 else None)
            else:
                title, first, surname = self.random_person()
                if c.ctype != "company" and c.surname and r() < 0.6:
                    surname = c.surname  # partner or family member
                position = POSITIONS[int(r() * len(POSITIONS))] if c.ctype != "private" \
                    else None
                if r() < 0.7:
                    domain = c.domain or PERSONAL_DOMAINS[int(r() * len(PERSONAL_DOMAINS))]
                    email = f"{_slug(first)}.{_slug(surname)}@{domain}"
                else:
                    email = None
                mobile = self.random_phone(True) if r() < 0.7 else None
            if email:
                emails.append(email)
            phone = self.random_phone(False) if r() < 0.3 else None
            rows.append((
                self.next_id("contact"), cid, title, first, surname, position, email, phone,
                mobile, r() < 0.7, r() < 0.5, primary and k == 0, 1, created, created,
            ))
        return emails

    def work_addresses(self, cid: int, c: Cust, out: dict) -> list[int]:
        r = self.rng.random
        x = r()
        if c.ctype == "private":
            n = 0 if x < 0.15 else 1 if x < 0.95 else 2
        elif c.ctype == "company":
            n = 0 if x < 0.35 else 1 if x < 0.75 else 2 if x < 0.9 else 3
        else:
            n = 1 if x < 0.4 else 2 if x < 0.7 else 3 if x < 0.9 else 4
        ids = []
        rows = out["work_address"]
        for k in range(n):
            wid = self.next_id("work_address")
            ids.append(wid)
            day, tod = self.when(c)
            stamp = self.dt(day, tod)
            if k == 0 and c.ctype == "private":
                address = (c.line1, c.line2, c.town, c.county, c.postcode)
                occupier = (c.title, c.first, c.surname)
                phone, email = c.phone, c.email
            else:
                address = self.random_address()
                if r() < 0.3:
                    occupier = (None, None, "Occupier")
                    phone = email = None
                else:
                    occupier = self.random_person()
                    phone = self.random_phone(True) if r() < 0.6 else None
                    email = None
            landlord = None
            if c.ctype != "landlord" and self.landlords and r() < 0.12:
                landlord = self.landlords[int(r() * len(self.landlords))]
            rows.append((
                wid, cid, landlord, *occupier, phone, email,
                "dormant" if r() < 0.08 else "active", *address, "GB", 1, stamp, stamp,
            ))
            x = r()
            for _ in range(0 if x < 0.6 else 1 if x < 0.9 else 2):
                due = self.today_ord - 365 + int(r() * 730)
                status = REMINDER_PAST[int(r() * 100)] if due < self.today_ord else "due"
                out["service_reminder"].append((
                    self.next_id("service_reminder"), wid, self.d(due),
                    REMINDERS[int(r() * len(REMINDERS))], status, 1, stamp, stamp,
                ))
        return ids

    def branches(self, cid: int, c: Cust, out: dict) -> None:
        r = self.rng.random
        x = r()
        for k in range(0 if x < 0.4 else 1 if x < 0.75 else 2):
            line1, line2, town, county, postcode = self.random_address()
            day, tod = self.when(c)
            stamp = self.dt(day, tod)
            name = f"{town} branch" if k else BRANCH_NAMES[int(r() * len(BRANCH_NAMES))]
            out["branch"].append((
                self.next_id("branch"), cid, name,
                self.random_phone(False) if r() < 0.8 else None,
                "dormant" if r() < 0.1 else "active", line1, line2, town, county, postcode,
                "GB", 1, stamp, stamp,
            ))

    def leads(self, cid: int, c: Cust, out: dict) -> int | None:
        """A converted lead for some clients, and open or lost leads of other people."""
        r = self.rng.random
        rows = out["lead"]
        converted = None
        if c.kind == "client" and c.surname and r() < 0.2:
            converted = self.next_id("lead")
            day = max(c.created_day - int(r() * 20), self.date_base)
            stamp = self.dt(day, 100)
            rows.append((
                converted, c.first, c.surname, c.company, c.email, c.phone,
                LEAD_SOURCES[int(r() * len(LEAD_SOURCES))],
                LEAD_MESSAGES[int(r() * len(LEAD_MESSAGES))], "converted", cid, 1, stamp,
                stamp,
            ))
        if r() < 0.15:
            title, first, surname = self.random_person()
            day = self.today_ord - int(r() * 400)
            stamp = self.dt(day, 96 + int(r() * 140))
            email = f"{_slug(first)}.{_slug(surname)}{int(r() * 100)}@" \
                    f"{PERSONAL_DOMAINS[int(r() * len(PERSONAL_DOMAINS))]}" if r() < 0.8 else None
            rows.append((
                self.next_id("lead"), first, surname, None, email,
                self.random_phone(True) if r() < 0.6 else None,
                LEAD_SOURCES[int(r() * len(LEAD_SOURCES))],
                LEAD_MESSAGES[int(r() * len(LEAD_MESSAGES))], LEAD_OPEN[int(r() * 100)], None,
                1, stamp, stamp,
            ))
        return converted

    def bookings(self, cid, c: Cust, out, work_ids, lead_id, contact_emails) -> None:
        r = self.rng.random
        x = r()
        if c.kind == "lead":
            n = 0 if x < 0.7 else 1
        elif c.kind == "prospect":
            n = 0 if x < 0.3 else 1 if x < 0.9 else 2
        else:
            n = 0 if x < 0.15 else 1 if x < 0.65 else 2 if x < 0.9 else 3
        if lead_id and n == 0:
            n = 1
        rows = out["booking"]
        for k in range(n):
            status = BOOKING_STATUS[int(r() * 100)]
            if status == "completed":
                day = self.today_ord - 1 - int(r() * 700)
            elif status == "cancelled":
                day = self.today_ord - 400 + int(r() * 500)
            else:
                day = self.today_ord - 5 + int(r() * 185)
            day = max(day, c.created_day)
            start = 96 + int(r() * 144)  # 08:00 to 20:00
            length = 12 + int(r() * 84) if r() < 0.9 else 288 * (1 + int(r() * 3))
            end = start + length
            end_day, end_tod = day + end // 288, end % 288
            if status == "enquiry" and r() < 0.5:
                value = None
            else:
                value = Decimal(5000 + int(r() * r() * 495000)).scaleb(-2)
            if c.email and r() < 0.85:
                email = c.email
            elif contact_emails:
                email = contact_emails[int(r() * len(contact_emails))]
            else:
                email = None
            made = min(day, self.today_ord) - int(r() * 30)
            made = max(made, c.created_day)
            stamp = self.dt(made, 96 + int(r() * 130))
            rows.append((
                self.next_id("booking"), self.number("booking"), cid,
                work_ids[int(r() * len(work_ids))] if work_ids and r() < 0.7 else None,
                lead_id if k == 0 else None, BOOKING_TITLES[int(r() * len(BOOKING_TITLES))],
                status, self.dt(day, start), self.dt(end_day, end_tod),
                None if value is None else self.money(value), email,
                ATTRIBUTION[int(r() * 100)], 1, stamp, stamp,
            ))

    def notes(self, cid, c: Cust, out, work_ids) -> None:
        r = self.rng.random
        x = r()
        rows = out["note"]
        authors = self.author_ids
        for _ in range(0 if x < 0.35 else 1 if x < 0.75 else 2 if x < 0.9 else 3):
            y = r()
            important = dnwwa = False
            if y < 0.01:
                body, dnwwa, important = NOTE_DNWWA[int(r() * len(NOTE_DNWWA))], True, True
            elif y < 0.04:
                body, important = NOTE_IMPORTANT[int(r() * len(NOTE_IMPORTANT))], True
            else:
                body = NOTE_BODIES[int(r() * len(NOTE_BODIES))]
            day, tod = self.when(c)
            stamp = self.dt(day, tod)
            rows.append((
                self.next_id("note"), cid,
                work_ids[int(r() * len(work_ids))] if work_ids and r() < 0.2 else None,
                NOTE_KIND[int(r() * 100)], body, important, dnwwa,
                authors[int(r() * len(authors))] if authors and r() < 0.7 else None,
                1, stamp, stamp,
            ))

    # -- money -------------------------------------------------------------------------------

    def lines(self, table: str, parent: int, n: int, stamp: str, scale: Decimal | None = None):
        """1..n lines; returns (subtotal, tax_total)."""
        r = self.rng.random
        m = self.money
        rows = self.out_lines
        subtotal = tax_total = ZERO
        rate = TAX_STANDARD if r() < 0.8 else TAX_ZERO
        for position in range(n):
            category = LINE_CATEGORY[int(r() * 100)]
            texts = LINE_TEXT[category]
            if category == "labour":
                quantity = LABOUR_QTY[int(r() * len(LABOUR_QTY))]
                price = Decimal(3500 + int(r() * 6000)).scaleb(-2)
            elif category == "parts":
                quantity = PARTS_QTY[int(r() * len(PARTS_QTY))]
                price = Decimal(250 + int(r() * r() * 45000)).scaleb(-2)
            else:
                quantity = ONE
                price = Decimal(1000 + int(r() * 24000)).scaleb(-2)
            if scale is not None:
                quantity = ONE
                price = round_money(scale * Decimal(10 + int(r() * 40)) / HUNDRED)
                if price <= 0:
                    price = Decimal("1.00")
            net = round_money(quantity * price)
            tax = round_money(net * rate / HUNDRED)
            subtotal += net
            tax_total += tax
            rows[table].append((
                self.next_id(table), parent, position, category,
                texts[int(r() * len(texts))], m(quantity), m(price), m(rate), m(net), m(tax), 1,
                stamp, stamp,
            ))
        return subtotal, tax_total

    def money_rows(self, cid: int, c: Cust, out: dict) -> tuple:
        rng = self.rng
        r = rng.random
        m = self.money
        today = self.today_ord
        self.out_lines = out
        first_day = max(c.created_day, today - 730)
        span = today - first_day
        issued: list[_Inv] = []
        invoices = out["invoice"]
        table = INVOICES_BY_KIND[c.kind]
        invoiced = credited = paid = allocated_p = allocated_c = ZERO
        for _ in range(table[int(r() * len(table))]):
            status = INV_STATUS[int(r() * 100)]
            if status == "draft":
                issue = today - int(r() * min(span, 45))
            else:
                issue = first_day + int(r() * (span + 1))
            terms = c.creditor_days if c.creditor_days is not None else TERMS[int(r() * 100)]
            due = issue + terms
            iid = self.next_id("invoice")
            tod = 96 + int(r() * 130)
            stamp = self.dt(issue, tod)
            x = r()
            subtotal, tax_total = self.lines("invoice_line", iid,
                                             1 if x < 0.6 else 2 if x < 0.9 else 3, stamp)
            total = subtotal + tax_total
            number = None if status == "draft" else self.number("invoice")
            row = [iid, cid, number, status, self.d(issue), self.d(due),
                   INVOICE_NOTES[int(r() * len(INVOICE_NOTES))], 0 if self.float_money else
                   "0.00", m(subtotal), m(tax_total), m(total), 1, stamp, stamp]
            invoices.append(row)
            if status == "issued":
                inv = _Inv()
                inv.id, inv.row, inv.issue, inv.due, inv.total = iid, row, issue, due, total
                inv.allocated, inv.allocated_f = ZERO, 0.0
                issued.append(inv)
                invoiced += total
        payments = out["payment"]
        allocations = out["allocation"]
        issued.sort(key=lambda i: (i.issue, i.id))
        bad_payer = r() < 0.12
        current = None  # [row, day] of the payment being built

        def allocate(inv: _Inv, amount: Decimal, payment_id, credit_id, stamp: str) -> list:
            inv.allocated += amount
            inv.allocated_f += float(amount)
            row = [self.next_id("allocation"), inv.id, payment_id, credit_id, m(amount), 1,
                   stamp, stamp]
            allocations.append(row)
            return row

        def new_payment(day: int, amount: Decimal) -> list:
            method = PAY_METHOD[int(r() * 100)]
            if method == "bank_transfer":
                reference = f"BACS {int(r() * 10**8):08d}"
            elif method == "card":
                reference = f"CARD ****{int(r() * 10**4):04d}"
            elif method == "cheque":
                reference = f"CHQ {100000 + int(r() * 900000)}"
            else:
                reference = None
            stamp = self.dt(day, 96 + int(r() * 130))
            row = [self.next_id("payment"), cid, self.d(day), method, reference, amount, 1,
                   stamp, stamp, day, []]  # working fields: day, allocation rows
            payments.append(row)
            return row

        partials = []
        for inv in issued:
            late = today - inv.due
            if late <= 0:
                p_full = 0.25
            elif late <= 30:
                p_full = 0.55
            elif late <= 60:
                p_full = 0.7
            elif late <= 90:
                p_full = 0.8
            else:
                p_full = 0.92
            if bad_payer:
                p_full *= 0.45
            x = r()
            if x < p_full:
                amount = inv.total
            elif x < p_full + 0.07:
                amount = round_money(inv.total * Decimal(10 + int(r() * 80)) / HUNDRED)
                if not ZERO < amount < inv.total:
                    continue
                partials.append(inv)
            else:
                continue
            latest = min(today, inv.due + 25)
            day = inv.issue + int(r() * (max(latest - inv.issue, 0) + 1))
            if current is not None and r() < 0.5:
                row = current
                if day > current[9]:
                    current[9] = day
                row[5] += amount
            else:
                row = new_payment(day, amount)
                current = row
            row[10].append(allocate(inv, amount, row[0], None, row[7]))
        for inv in partials:
            if r() < 0.45 and today - inv.due > 20:
                remaining = inv.total - inv.allocated
                day = inv.due + int(r() * (today - inv.due + 1))
                row = new_payment(day, remaining)
                row[10].append(allocate(inv, remaining, row[0], None, row[7]))
        if issued and r() < 0.05 and current is not None:
            current[5] += Decimal(500 + int(r() * 9500)).scaleb(-2)  # overpaid: account credit
        if c.kind == "client" and r() < 0.04:  # a deposit on account
            day = max(today - int(r() * 120), c.created_day)
            new_payment(day, Decimal(5000 + int(r() * 45000)).scaleb(-2))
        # payments of this customer are the tail of the list: fix up and sum them
        for row in reversed(payments):
            if row[1] != cid:
                break
            if len(row) == 11:
                day, rows = row[9], row[10]
                del row[9:]
                row[2] = self.d(day)
                stamp = self.dt(day, 96 + int(r() * 130))
                row[7] = row[8] = stamp
                for allocation in rows:
                    allocation[6] = allocation[7] = stamp
            paid += row[5]
            row[5] = m(row[5])
        # credit notes
        n_credit = 0
        if issued:
            x = r()
            n_credit = 0 if x < 0.87 else 1 if x < 0.99 else 2
        for _ in range(n_credit):
            against = issued[int(r() * len(issued))] if r() < 0.65 else None
            status = "void" if r() < 0.08 else "issued"
            if against is not None:
                day = against.issue + int(r() * (today - against.issue + 1))
            else:
                day = first_day + int(r() * (span + 1))
            nid = self.next_id("credit_note")
            stamp = self.dt(day, 96 + int(r() * 130))
            scale = against.total if against is not None else None
            subtotal, tax_total = self.lines("credit_note_line", nid, 1 if r() < 0.7 else 2,
                                             stamp, scale)
            total = subtotal + tax_total
            reason = CREDIT_REASONS[int(r() * len(CREDIT_REASONS))]
            out["credit_note"].append((
                nid, cid, against.id if against is not None else None,
                self.number("credit_note"), status, self.d(day),
                reason, BREAKDOWN[int(r() * 100)], m(subtotal), m(tax_total), m(total), 1,
                stamp, stamp,
            ))
            if status != "issued":
                continue
            credited += total
            target = against
            if target is None:
                open_ = [i for i in issued if i.total > i.allocated]
                target = open_[0] if open_ else None
            if target is not None and r() < 0.7:
                remaining = target.total - target.allocated
                amount = min(total, remaining)
                if amount > 0:
                    allocate(target, amount, None, nid, stamp)
                    allocated_c += amount
        # the ledger, as crm.ledger defines it
        overdue = ZERO
        oldest = next_due = None
        for inv in issued:
            outstanding = inv.total - inv.allocated
            if self.float_money:
                outstanding_f = round(float(inv.total) - inv.allocated_f, 2)  # as crm.ledger
                inv.row[7] = outstanding_f
                is_open = outstanding_f > 0
                if is_open and outstanding <= 0:
                    self.float_open += 1
            else:
                inv.row[7] = str(outstanding)
                is_open = outstanding > 0
            if is_open:
                if inv.due < today:
                    overdue += outstanding
                    if oldest is None or inv.due < oldest:
                        oldest = inv.due
                elif next_due is None or inv.due < next_due:
                    next_due = inv.due
        allocated_total = ZERO
        for inv in issued:
            allocated_total += inv.allocated
        allocated_p = allocated_total - allocated_c
        balance = invoiced - credited - paid
        account_credit = paid + credited - allocated_p - allocated_c
        return (
            balance, account_credit, overdue,
            None if oldest is None else self.d(oldest),
            None if next_due is None else self.d(next_due),
        )


# --------------------------------------------------------------------------------------------
# Loading

BIG_LOAD = 20_000  # from this many customers (and at least half what is there) indexes are
#                    dropped and re-created around the load


def _quote(name: str) -> str:
    return f'"{name}"'


class _phase:
    """Log how long a step of the load took."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self):
        self.started = time.perf_counter()

    def __exit__(self, *exc) -> None:
        log.info("%s: %.1f s", self.what, time.perf_counter() - self.started)


class _Loader:
    """What both databases share: reading the starting point, tags and sequences."""

    float_money = False

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # subclasses: query(sql, params) -> rows, execute(sql, params), commit(),
    # write(rows_by_table), drop_indexes(), restore_indexes(), finish()

    def start(self) -> dict:
        ids = {}
        for table in ID_TABLES:
            ids[table] = (self.query(f"SELECT max(id) FROM {_quote(table)}")[0][0] or 0) + 1  # noqa: S608
        seq = {name: value for name, value in
               self.query("SELECT name, next_value FROM document_sequence")}
        for name in PREFIXES:
            if name not in seq:
                self.execute("INSERT INTO document_sequence (name, next_value) VALUES "  # noqa: S608
                             f"({self.mark}, {self.mark})", (name, 1))
                seq[name] = 1
        tags = {name: tag_id for tag_id, name in self.query("SELECT id, name FROM tag")}
        created = 0
        now = date.today().isoformat() + " 09:00:00.000000"
        for name, colour in TAG_POOL:
            if name not in tags:
                tags[name] = ids["tag"]
                ids["tag"] += 1
                created += 1
                m = self.mark
                self.execute(
                    "INSERT INTO tag (id, name, colour, created_at, updated_at) "  # noqa: S608
                    f"VALUES ({m}, {m}, {m}, {m}, {m})",
                    (tags[name], name, colour, now, now),
                )
        self.commit()
        customers = self.query("SELECT count(*) FROM customer")[0][0]
        authors = [row[0] for row in self.query(
            "SELECT id FROM \"user\" WHERE role IN ('owner', 'admin', 'coordinator') ORDER BY id")]
        return {
            "ids": ids, "seq": seq, "tag_ids": [tags[name] for name, _ in TAG_POOL],
            "tags_created": created, "existing_customers": customers, "authors": authors,
        }

    def save_sequences(self, seq: dict) -> None:
        for name, value in seq.items():
            self.execute(f"UPDATE document_sequence SET next_value = {self.mark} "  # noqa: S608
                         f"WHERE name = {self.mark}", (value, name))


class _SqliteLoader(_Loader):
    float_money = True
    mark = "?"

    def __enter__(self):
        self.conn = self.engine.connect()
        self.raw = self.conn.connection.driver_connection
        self.raw.commit()
        cur = self.raw.cursor()
        self.saved = {p: cur.execute(f"PRAGMA {p}").fetchone()[0]
                      for p in ("foreign_keys", "synchronous", "cache_size", "temp_store")}
        for pragma in ("foreign_keys=OFF", "synchronous=OFF", "cache_size=-524288",
                       "temp_store=MEMORY"):
            cur.execute(f"PRAGMA {pragma}")
        self.dropped: list[str] = []
        self.first_customer_id = None
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.raw.rollback()
            self.restore_indexes()
            cur = self.raw.cursor()
            for pragma, value in self.saved.items():
                cur.execute(f"PRAGMA {pragma}={value}")
        finally:
            self.conn.close()

    def query(self, sql, params=()):
        return self.raw.execute(sql, params).fetchall()

    def execute(self, sql, params=()):
        self.raw.execute(sql, params)

    def commit(self):
        self.raw.commit()

    def before_load(self, big: bool, first_customer_id: int, existing: int) -> None:
        from crm.search_index import disable_sqlite_triggers

        self.first_customer_id = first_customer_id
        self.fts_rebuild = existing == 0
        with self.conn.begin():
            disable_sqlite_triggers(self.conn)
        if big:
            names = ", ".join(f"'{t}'" for t in TABLES)
            rows = self.query(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "  # noqa: S608
                f"AND tbl_name IN ({names}) AND sql NOT LIKE 'CREATE UNIQUE%' ORDER BY name")
            for name, sql in rows:
                self.raw.execute(f"DROP INDEX {_quote(name)}")
                self.dropped.append(sql)
            self.raw.commit()

    def write(self, rows: dict[str, list], seq: dict) -> None:
        cur = self.raw.cursor()
        for table in TABLES:
            batch = rows[table]
            if batch:
                columns = COLUMNS[table]
                cur.executemany(
                    f"INSERT INTO {_quote(table)} ({', '.join(columns)}) "  # noqa: S608
                    f"VALUES ({', '.join('?' * len(columns))})",
                    batch,
                )
        self.save_sequences(seq)
        self.raw.commit()

    def restore_indexes(self) -> None:
        while self.dropped:
            with _phase(self.dropped[0].split(" ON ")[0]):
                self.raw.execute(self.dropped[0])
                self.raw.commit()
            self.dropped.pop(0)

    def finish(self) -> None:
        from crm.search_index import create_search_index, rebuild_sqlite_index

        self.restore_indexes()
        with _phase("search index"), self.conn.begin():
            if self.fts_rebuild:
                rebuild_sqlite_index(self.conn)
            else:
                self.conn.execute(text(
                    "INSERT INTO customer_fts(rowid, search_text) "
                    "SELECT id, search_text FROM customer WHERE id >= :first"
                ), {"first": self.first_customer_id})
                create_search_index(self.conn)
        with _phase("ANALYZE"):
            self.raw.execute("ANALYZE")
            self.raw.commit()
        with _phase("checkpoint"):
            self.raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")


class _PostgresLoader(_Loader):
    mark = "%s"

    def __enter__(self):
        self.raw = self.engine.raw_connection()
        self.pg = self.raw.driver_connection
        self.pg.rollback()
        with self.pg.cursor() as cur:
            cur.execute("SET synchronous_commit TO off")
            cur.execute("SET maintenance_work_mem TO '1GB'")
        self.pg.commit()
        self.dropped_indexes: list[str] = []
        self.dropped_keys: list[tuple[str, str, str]] = []
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.pg.rollback()
            self.restore_indexes()
            with self.pg.cursor() as cur:
                cur.execute("RESET synchronous_commit")
                cur.execute("RESET maintenance_work_mem")
            self.pg.commit()
        finally:
            self.raw.close()

    def query(self, sql, params=()):
        with self.pg.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()

    def execute(self, sql, params=()):
        with self.pg.cursor() as cur:
            cur.execute(sql, params)

    def commit(self):
        self.pg.commit()

    def before_load(self, big: bool, first_customer_id: int, existing: int) -> None:
        if not big:
            return
        tables = list(TABLES)
        self.dropped_keys = [tuple(row) for row in self.query(
            "SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid) "
            "FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
            "WHERE c.contype = 'f' AND t.relname = ANY(%s) "
            "AND t.relnamespace = current_schema()::regnamespace ORDER BY 1, 2", (tables,))]
        self.dropped_indexes = [row[0] for row in self.query(
            "SELECT pg_get_indexdef(x.indexrelid) FROM pg_index x "
            "JOIN pg_class t ON t.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE t.relname = ANY(%s) AND t.relnamespace = current_schema()::regnamespace "
            "AND NOT x.indisunique AND NOT x.indisprimary ORDER BY i.relname", (tables,))]
        with self.pg.cursor() as cur:
            for table, name, _ in self.dropped_keys:
                cur.execute(f"ALTER TABLE {table} DROP CONSTRAINT {_quote(name)}")
            for definition in self.dropped_indexes:
                name = definition.split(" INDEX ", 1)[1].split(" ON ", 1)[0]
                cur.execute(f"DROP INDEX {name}")
        self.pg.commit()

    def write(self, rows: dict[str, list], seq: dict) -> None:
        with self.pg.cursor() as cur:
            for table in TABLES:
                batch = rows[table]
                if not batch:
                    continue
                columns = ", ".join(COLUMNS[table])
                with cur.copy(f"COPY {_quote(table)} ({columns}) FROM STDIN") as copy:
                    write_row = copy.write_row
                    for row in batch:
                        write_row(row)
        self.save_sequences(seq)
        self.pg.commit()

    def restore_indexes(self) -> None:
        with self.pg.cursor() as cur:
            while self.dropped_indexes:
                with _phase(self.dropped_indexes[0].split(" USING ")[0]):
                    cur.execute(self.dropped_indexes[0])
                    self.pg.commit()
                self.dropped_indexes.pop(0)
            while self.dropped_keys:
                table, name, definition = self.dropped_keys[0]
                with _phase(f"foreign key {name}"):
                    cur.execute(f"ALTER TABLE {table} ADD CONSTRAINT {_quote(name)} {definition}")
                    self.pg.commit()
                self.dropped_keys.pop(0)

    def finish(self) -> None:
        self.restore_indexes()
        with self.pg.cursor() as cur:
            for table in ID_TABLES:
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence(%s, 'id'), max(id)) "  # noqa: S608
                    f"FROM {_quote(table)} HAVING max(id) IS NOT NULL", (_quote(table),))
        self.pg.commit()
        self.pg.autocommit = True
        try:
            with _phase("VACUUM ANALYZE"), self.pg.cursor() as cur:
                cur.execute("VACUUM ANALYZE " + ", ".join(_quote(t) for t in ID_TABLES +
                                                           ("customer_tag", "document_sequence")))
        finally:
            self.pg.autocommit = False


def _generate(generator: Generator, customers: int, batch: int):
    done = 0
    while done < customers:
        n = min(batch, customers - done)
        rows = generator.batch(done, n)
        done += n
        yield n, rows, dict(generator.seq)


def _can_fork() -> bool:
    """Generate in a child process when a core is free for it (CRM_SEED_PARALLEL=0/1 forces)."""
    import multiprocessing
    import os
    import sys

    forced = os.environ.get("CRM_SEED_PARALLEL")
    possible = sys.platform.startswith("linux") and "fork" in \
        multiprocessing.get_all_start_methods()
    if forced is not None:
        return possible and forced not in ("0", "", "false", "no")
    cores = os.cpu_count() or 1
    return possible and cores > 1 and os.getloadavg()[0] <= cores - 1


def _child(generator: Generator, customers: int, batch: int, queue) -> None:
    try:
        for item in _generate(generator, customers, batch):
            queue.put(item)
        queue.put(None)
    except BaseException:  # noqa: BLE001  (reported to the parent)
        import traceback

        queue.put(("error", traceback.format_exc(), None))
    queue.close()
    queue.join_thread()


def _in_child(generator: Generator, customers: int, batch: int):
    """The batches of ``_generate``, made in a forked process (bounded queue of 2)."""
    import multiprocessing
    import queue as queues

    context = multiprocessing.get_context("fork")
    channel = context.Queue(maxsize=2)
    process = context.Process(target=_child, args=(generator, customers, batch, channel),
                              daemon=True, name="crm-seed-generator")
    process.start()
    try:
        while True:
            try:
                item = channel.get(timeout=5)
            except queues.Empty:
                if not process.is_alive():
                    raise RuntimeError(
                        f"The seed generator process died (exit code {process.exitcode})."
                    ) from None
                continue
            if item is None:
                break
            if item[0] == "error":
                raise RuntimeError(f"The seed generator failed:\n{item[1]}")
            yield item
    finally:
        if process.is_alive():
            process.terminate()
        process.join()


def seed_database(
    engine: Engine,
    *,
    customers: int,
    seed: int = 1,
    batch: int = 5000,
    progress: Callable[[int], object] | None = None,
    rebuild_indexes: bool | None = None,
    parallel: bool | None = None,
) -> dict[str, int]:
    """Insert ``customers`` customers with all their related rows; return rows per table.

    Ids, references and document numbers continue after what is already there. Indexes are
    dropped and re-created around large loads (``rebuild_indexes`` forces the choice). Rows
    are generated in a forked child process while this one writes (``parallel``, by default
    on Linux when there is more than one batch); the rows are the same either way.
    """
    if customers < 0:
        raise ValueError("customers must not be negative")
    dialect = engine.dialect.name
    if dialect == "sqlite":
        loader: _Loader = _SqliteLoader(engine)
    elif dialect == "postgresql":
        loader = _PostgresLoader(engine)
    else:
        raise ValueError(f"Seeding is not supported on {dialect}.")
    today = date.today()
    counts = dict.fromkeys(TABLES, 0)
    with loader:
        start = loader.start()
        existing = start["existing_customers"]
        big = rebuild_indexes if rebuild_indexes is not None else (
            customers >= BIG_LOAD and customers * 2 >= existing)
        generator = Generator(seed, customers, start, today, loader.float_money,
                              start["tag_ids"], start["authors"])
        clock = time.perf_counter()
        loader.before_load(big, start["ids"]["customer"], existing)
        log.info("prepared (big load: %s) in %.1f s", big, time.perf_counter() - clock)
        if parallel is None:
            parallel = customers > batch and _can_fork()
        batches = _in_child(generator, customers, batch) if parallel else _generate(
            generator, customers, batch)
        writing = 0.0
        clock = time.perf_counter()
        for n, rows, seq in batches:
            started = time.perf_counter()
            loader.write(rows, seq)
            writing += time.perf_counter() - started
            for table, table_rows in rows.items():
                counts[table] += len(table_rows)
            del rows
            if progress is not None:
                progress(n)
        log.info("generated and written in %.1f s (writing %.1f s, parallel: %s)",
                 time.perf_counter() - clock, writing, parallel)
        loader.finish()
    counts["tag"] = start["tags_created"]
    return counts


def _main() -> None:  # python -m demo.related DATABASE_URL N [SEED]: timing without Flask
    import sys

    from sqlalchemy import create_engine

    import crm  # noqa: F401  (the SQLite connect pragmas)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    url, n = sys.argv[1], int(sys.argv[2])
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    started = time.perf_counter()
    counts = seed_database(create_engine(url), customers=n, seed=seed)
    print(f"{time.perf_counter() - started:.1f} s", counts, f"{sum(counts.values()):,} rows")


if __name__ == "__main__":
    _main()
