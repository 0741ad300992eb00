"""Everything that hangs off a customer: contacts, work addresses, branches, leads, bookings,
notes, tags, and the money rows (invoices, lines, payments, allocations, credit notes).

The money rows come with the customer's stored ledger figures, worked out here in Python to
the definitions of ``crm.ledger`` (recomputing them in SQL afterwards would cost as much as
the load). That is a copy of the ledger's rules, so it is not trusted: ``demo.check`` runs
the ledger's own comparison after every seed. On SQLite money columns hold binary floating
point (the column affinity is NUMERIC and SQLAlchemy binds floats); the ledger rounds its SQL
to the cent, and this module rounds the float SQLite computes the same way."""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal

from crm.models.finance import round_money
from crm.models.sequence import PREFIXES
from crm.validation import customer_search_text
from demo.customers import Cust, CustomerStream
from demo.tables import TABLES
from demo.vocabulary import (
    ATTRIBUTION,
    BOOKING_STATUS,
    BOOKING_TITLES,
    BRANCH_NAMES,
    BREAKDOWN,
    CREDIT_REASONS,
    INV_STATUS,
    INVOICE_NOTES,
    INVOICES_BY_KIND,
    INWARD_LETTERS,
    LABOUR_QTY,
    LANDLINE_BLOCKS,
    LEAD_MESSAGES,
    LEAD_OPEN,
    LEAD_SOURCES,
    LINE_CATEGORY,
    LINE_TEXT,
    LOST_REASONS,
    MOBILE_BLOCKS,
    NOTE_BODIES,
    NOTE_DNWWA,
    NOTE_IMPORTANT,
    NOTE_KIND,
    PARTS_QTY,
    PAY_METHOD,
    PERSONAL_DOMAINS,
    POSITIONS,
    REMINDER_INTERVALS,
    REMINDER_PAST,
    REMINDERS,
    TERMS,
    TITLE_F,
    TITLE_M,
    Pools,
    slug,
)

ZERO = Decimal("0.00")
ONE = Decimal("1.00")
HUNDRED = Decimal(100)
TAX_STANDARD = Decimal("20.00")
TAX_ZERO = Decimal("0.00")
LANDLORD_WINDOW = 50_000  # landlords of work addresses come from the latest 50,000 of them


class _Inv:
    __slots__ = ("id", "row", "issue", "due", "total", "allocated", "allocated_f")


class Generator:
    """Turns customers into rows of every table, batch by batch."""

    def __init__(self, seed: int, count: int, start: dict, today: date, float_money: bool,
                 tag_ids: list[int], author_ids: list[int]) -> None:
        self.pools = Pools(seed)
        self.customers = CustomerStream(seed, self.pools, count, today)
        # "crm-seed": named before the seed moved to demo/; a new name would change every data set
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
                    email = f"{slug(first)}.{slug(surname)}@{domain}"
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
                rid = self.next_id("service_reminder")
                out["service_reminder"].append((
                    rid, wid, self.d(due), REMINDERS[int(r() * len(REMINDERS))], status,
                    REMINDER_INTERVALS[rid % len(REMINDER_INTERVALS)], 1, stamp, stamp,
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
                LEAD_MESSAGES[int(r() * len(LEAD_MESSAGES))], "won", cid, None, None,
                BOOKING_TITLES[converted % len(BOOKING_TITLES)], None, 1, stamp, stamp,
            ))
        if r() < 0.15:
            title, first, surname = self.random_person()
            day = self.today_ord - int(r() * 400)
            stamp = self.dt(day, 96 + int(r() * 140))
            email = f"{slug(first)}.{slug(surname)}{int(r() * 100)}@" \
                    f"{PERSONAL_DOMAINS[int(r() * len(PERSONAL_DOMAINS))]}" if r() < 0.8 else None
            lid = self.next_id("lead")
            phone = self.random_phone(True) if r() < 0.6 else None
            source = LEAD_SOURCES[int(r() * len(LEAD_SOURCES))]
            message = LEAD_MESSAGES[int(r() * len(LEAD_MESSAGES))]
            status = LEAD_OPEN[int(r() * 100)]
            # An open lead has a follow-up (from a few days ago to a fortnight ahead: the
            # board's "due today" holds a few); a lost one a reason.
            lost = LOST_REASONS[lid % len(LOST_REASONS)] if status == "lost" else None
            follow_up = None if lost else self.d(max(day, self.today_ord - 3 + lid % 18))
            # What it is for and the day wanted, from the lead's number (no extra draws).
            purpose = BOOKING_TITLES[lid % len(BOOKING_TITLES)]
            wanted = self.d(max(day, self.today_ord) + 10 + lid % 120) if lid % 4 else None
            rows.append((
                lid, first, surname, None, email, phone, source, message, status, None, lost,
                follow_up, purpose, wanted, 1, stamp, stamp,
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
            first, surname = None, None
            if c.email and r() < 0.85:
                email = c.email
                first, surname = c.first, c.surname
            elif contact_emails:
                email = contact_emails[int(r() * len(contact_emails))]
            else:
                email = None
            made = min(day, self.today_ord) - int(r() * 30)
            made = max(made, c.created_day)
            stamp = self.dt(made, 96 + int(r() * 130))
            attribution = ATTRIBUTION[int(r() * 100)]
            reviewed = None
            if attribution == "related":
                # Booked under this customer's e-mail by someone else (a partner, a
                # colleague): reviewed long ago unless made in the last fortnight.
                p = self.pools
                first = p.female[(cid * 7 + k) % len(p.female)]
                surname = p.surnames[(cid * 13 + k) % len(p.surnames)]
                reviewed = None if made >= self.today_ord - 14 else stamp
            rows.append((
                self.next_id("booking"), self.number("booking"), cid,
                work_ids[int(r() * len(work_ids))] if work_ids and r() < 0.7 else None,
                lead_id if k == 0 else None, BOOKING_TITLES[int(r() * len(BOOKING_TITLES))],
                status, self.dt(day, start), self.dt(end_day, end_tod),
                None if value is None else self.money(value), email, first, surname,
                attribution, reviewed, 1, stamp, stamp,
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
