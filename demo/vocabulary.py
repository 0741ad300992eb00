"""The words and weights the demo data is drawn from, and the per-seed pools built with Faker.

Kept apart from the code that draws from them so that the shape of the data (how many
clients, which titles, how often an invoice is void) can be read and tuned in one place.
The draws index into these tables, so changing a table (or the order of its entries)
changes the data every seed gives."""

from __future__ import annotations

import random
import re
from decimal import Decimal


def slug(value: str) -> str:
    """A name as it may appear in an e-mail address: lower case letters and digits only."""
    return re.sub(r"[^a-z0-9]+", "", value.lower())


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
LEAD_OPEN = _table(("new", 30), ("contacted", 20), ("quoted", 15), ("lost", 35))
LOST_REASONS = ("Went with another supplier", "Too expensive", "Date not available",
                "No reply after quote", "Out of our area")
REMINDER_INTERVALS = (12, 12, 12, 6, 24)  # months; most services are annual
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


class Pools:
    """Names, streets, towns and companies for one seed.

    Faker is called here, a few thousand times, and never per row: at a million customers a
    Faker call per field would take longer than the whole load."""

    def __init__(self, seed: int) -> None:
        from faker import Faker

        # "crm-seed": named before the seed moved to demo/; a new name would change every data set
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
