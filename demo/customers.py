"""The customers stream: the customer rows of a run, duplicates planted among them.

A stream of its own (its own random generator, nothing read from the database) so that
``planted_duplicate_pairs`` can replay it without writing anything: the duplicate-finding
tests and the benchmark measure recall against the pairs it returns."""

from __future__ import annotations

import hashlib
import random
from datetime import date

from crm.validation import normalize_email, normalize_phone
from demo.vocabulary import (
    ADVERTISING,
    COMPANY_LOCALS,
    COMPANY_TLDS,
    CREDITOR_DAYS,
    CTYPE,
    CUSTOMER_NOTES,
    HOUSE_NAMES,
    INWARD_LETTERS,
    KIND,
    LANDLINE_BLOCKS,
    LANDLINE_SPACE,
    LEGAL,
    LOCALITIES,
    MOBILE_BLOCKS,
    MOBILE_SPACE,
    NICKNAMES,
    PERSONAL_DOMAINS,
    PHONE_MUL,
    PRICE_BOOKS,
    STATUS,
    THIRD_PARTY,
    TITLE_F,
    TITLE_M,
    TRADES,
    Pools,
    slug,
)

DUPLICATE_RATE = 0.02  # of customers typed in again: a realistic share for the finder to find
DUPLICATE_WINDOW = 20_000  # originals are drawn from the latest 20,000: memory stays flat


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


class CustomerStream:
    """Customer rows (and the planted duplicates) for run indexes 0, 1, 2, ...

    Depends only on the seed and the pools, never on what is in the database, so
    ``planted_duplicate_pairs`` can replay it.
    """

    def __init__(self, seed: int, pools: Pools, capacity: int, today: date) -> None:
        # "crm-seed": named before the seed moved to demo/; a new name would change every data set
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
        surname = slug(surname)
        first = slug(first)
        for attempt in range(8):
            if c.ctype == "company":
                if first and r() < 0.3:
                    local = first if r() < 0.5 else f"{first}.{surname}"
                else:
                    local = COMPANY_LOCALS[int(r() * len(COMPANY_LOCALS))]
                domain = c.domain
                if attempt:
                    domain = f"{slug(c.company or '')}{attempt + 1}.{COMPANY_TLDS[attempt % 3]}"
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
            c.domain = f"{slug(c.company)}.{COMPANY_TLDS[int(r() * 3)]}"
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
