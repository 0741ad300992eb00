"""The one statement builder: the admin page, the portal and every PDF render
what ``build_statement`` returns, so their numbers always agree.

Two kinds:

- *outstanding* at a date: the unpaid issued invoices (issue and due date, days overdue,
  total, what is still owed), the payments and credit notes not yet allocated (what is left
  of each), the balance and the aging of what is owed by due date;
- *activity* for a period: the opening balance (everything before the start), every
  invoice, credit note and payment dated in the period in date order with a running
  balance, and the closing balance. It also carries the outstanding figures at its end date.

It follows ``crm.ledger``'s definitions: void invoices and credit notes are left out, and
only live allocations count (from a payment or an issued credit note, to an issued invoice).

The date of the position:

- ``as_of=None`` means *now*: every document as it stands, aged at today. Its balance is
  ``Customer.balance``, its account credit ``Customer.account_credit`` and its overdue
  buckets sum to ``Customer.overdue_amount``.
- a given ``as_of`` is the position at the end of that day, read from the documents as they
  stand now: a document counts from its own date (an invoice or credit note from its issue
  date, a payment from ``received_on``); an allocation counts from the later of the dates of
  its two documents (its ``created_at`` records when it was typed in, not when the money
  moved, so it is not used). A document voided since is left out at every date: the ledger
  keeps no date of voiding.

Aging: ``aging`` lists (label, amount) for Current (not yet overdue: due on or after the date)
then 1–30, 31–60, 61–90 and Over 90 days overdue; the four overdue buckets sum to
``overdue``, all five to ``invoiced_outstanding``. Due on the date itself is not overdue, as
in the ledger.

Data is read in a constant number of SQL statements (five) whatever the number of
documents: the customer, its issued invoices (with their contacts), issued credit notes,
payments and live allocations; everything else is arithmetic on Decimals.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, aliased

from crm.formatting import money
from crm.models import Allocation, Contact, CreditNote, Customer, Invoice, Payment
from crm.validation import sane_date

ZERO = Decimal("0.00")
KINDS = ("outstanding", "activity")
NO_CONTACT = "No contact"
BUCKETS = (  # label, lowest and highest days overdue
    ("Current", None, 0),
    ("1–30 days", 1, 30),
    ("31–60 days", 31, 60),
    ("61–90 days", 61, 90),
    ("Over 90 days", 91, None),
)
_ORDER = {"invoice": 0, "credit_note": 1, "payment": 2}


class StatementError(ValueError):
    """A statement that cannot be built as asked; the message is for the user."""


@dataclass
class StatementLine:
    """One document on a statement. ``amount`` is signed as it moves the balance (an invoice
    adds, a payment or credit note takes away); ``outstanding`` likewise (what is still owed
    on an invoice, minus what is left unallocated of a payment or credit note)."""

    kind: str  # "invoice", "credit_note" or "payment"
    id: int
    number: str
    on: date
    description: str
    total: Decimal
    amount: Decimal
    outstanding: Decimal = ZERO
    due_date: date | None = None
    days_overdue: int | None = None
    balance: Decimal | None = None  # the running balance (activity statements)
    contact_id: int | None = None
    contact_name: str = NO_CONTACT

    @property
    def is_invoice(self) -> bool:
        return self.kind == "invoice"

    @property
    def label(self) -> str:
        return {"invoice": "Invoice", "credit_note": "Credit note", "payment": "Payment"}[
            self.kind
        ]


@dataclass
class StatementGroup:
    """The lines of one contact (``contact_id`` None is "No contact") and their sum: what is
    still owed (outstanding statements group the open invoices only; the unallocated credits
    belong to the whole account) or the net movement (activity)."""

    contact_id: int | None
    label: str
    activity: bool
    lines: list[StatementLine] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return sum((line.amount if self.activity else line.outstanding
                    for line in self.lines), ZERO)


@dataclass
class Statement:
    customer: Customer
    kind: str
    as_of: date  # the date of the position (the end date of an activity statement)
    start: date | None
    end: date | None
    lines: list[StatementLine]  # outstanding: invoices then credits; activity: by date
    groups: list[StatementGroup]  # empty unless grouped by contact
    balance: Decimal
    invoiced_outstanding: Decimal  # what is owed on the unpaid invoices
    account_credit: Decimal  # what is left of payments and credit notes
    overdue: Decimal
    aging: list[tuple[str, Decimal]]
    opening_balance: Decimal = ZERO  # activity only
    closing_balance: Decimal = ZERO  # activity: equals balance
    invoiced: Decimal = ZERO  # activity: totals of the period
    credited: Decimal = ZERO
    paid: Decimal = ZERO
    open_invoices: list[StatementLine] = field(default_factory=list)
    open_credits: list[StatementLine] = field(default_factory=list)

    @property
    def is_activity(self) -> bool:
        return self.kind == "activity"

    @property
    def overdue_aging(self) -> list[tuple[str, Decimal]]:
        return self.aging[1:]

    @property
    def grouped(self) -> bool:
        return bool(self.groups)

    @property
    def position(self) -> "Position":
        """How its position reads (``position()``)."""
        return position(self)


def build_statement(
    session: Session,
    *,
    customer_id: int,
    kind: str = "outstanding",
    as_of: date | None = None,
    start: date | None = None,
    end: date | None = None,
    group_by_contact: bool = False,
) -> Statement:
    """Build a statement (see the module docstring). For an activity statement ``end``
    defaults to ``as_of`` or today and ``start`` to ``default_activity_start(end)``."""
    if kind not in KINDS:
        raise StatementError(f"Unknown kind of statement {kind!r}: use outstanding or activity.")
    for label, value in (("As at", as_of), ("From", start), ("To", end)):
        try:
            sane_date(value)
        except ValueError as exc:
            raise StatementError(f"{label}: {exc}") from None
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise StatementError("No such customer.")
    if kind == "activity":
        end = end or as_of or date.today()
        start = start or default_activity_start(end)
        if start > end:
            raise StatementError("The start date is after the end date.")
        as_of = end
    else:
        start = end = None
    data = _Ledger.load(session, customer_id)
    position = _position(data, as_of)
    if kind == "outstanding":
        lines = position.invoices + position.credits
        statement = _statement(customer, kind, as_of, None, None, lines, position)
        statement.closing_balance = statement.balance
    else:
        statement = _activity(customer, data, position, start, end)
    if group_by_contact:
        activity = kind == "activity"
        statement.groups = _groups(statement.lines if activity else position.invoices, activity)
    return statement


def default_activity_start(end: date) -> date:
    """Where an activity statement starts unless told: the first of the month about three
    months before ``end``, so the last three months and this one so far (month-to-date
    alone is empty early in a month)."""
    return (end - timedelta(days=91)).replace(day=1)


# --- how the position reads -------------------------------------------------------------

@dataclass(frozen=True)
class PositionLine:
    key: str  # "overdue", "not_yet_due", "account_credit", "balance"
    label: str
    amount: Decimal  # as printed beside the label (account credit: what is taken away)
    text: str  # the amount as a person reads it: "£925.44", "£55.31 in credit"


@dataclass(frozen=True)
class Position:
    """How a statement's position reads, in the e-mail, on the page and in the PDF alike:
    ``lines`` for a table (what is overdue, what is not yet due, less the account credit,
    and the balance they make), ``sentence`` for a line of text:
    "Overdue £980.75, less account credit £55.31, balance £925.44." A balance below zero
    reads "£55.31 in credit"."""

    lines: tuple[PositionLine, ...]
    sentence: str

    def line(self, key: str) -> PositionLine:
        return next(line for line in self.lines if line.key == key)


def balance_text(balance: Decimal) -> str:
    """"£925.44", or "£55.31 in credit" below zero."""
    return money(balance) if balance >= 0 else f"{money(-balance)} in credit"


def position(statement: "Statement") -> Position:
    """The one wording of a statement's position (see ``Position``)."""
    return position_of(overdue=statement.overdue,
                       not_yet_due=statement.invoiced_outstanding - statement.overdue,
                       account_credit=statement.account_credit)


def position_of(*, overdue: Decimal, not_yet_due: Decimal, account_credit: Decimal) -> Position:
    """The wording of what is owed (overdue, not yet due) less the account credit."""
    credit = account_credit
    balance = overdue + not_yet_due - credit
    lines = (
        PositionLine("overdue", "Overdue", overdue, money(overdue)),
        PositionLine("not_yet_due", "Not yet due", not_yet_due, money(not_yet_due)),
        PositionLine("account_credit", "Less account credit", credit, money(credit)),
        PositionLine("balance", "Balance", balance, balance_text(balance)),
    )
    return Position(lines, _sentence(overdue, not_yet_due, credit, balance))


def _sentence(overdue: Decimal, not_yet_due: Decimal, credit: Decimal, balance: Decimal) -> str:
    owed = [(label, amount) for label, amount in (("Overdue", overdue),
                                                  ("not yet due", not_yet_due)) if amount > 0]
    if not owed and credit <= 0:
        return f"Balance {money(balance)}: nothing is owed."
    if not credit > 0 and len(owed) == 1:
        said = "all of it overdue" if owed[0][0] == "Overdue" else "nothing overdue"
        return f"Balance {balance_text(balance)}, {said}."
    parts = [f"{label} {money(amount)}" for label, amount in owed]
    if credit > 0:
        parts.append(f"{'less account credit' if owed else 'Account credit'} {money(credit)}")
    parts.append(f"balance {balance_text(balance)}")
    text = ", ".join(parts)
    return text[0].upper() + text[1:] + "."


# --- reading ----------------------------------------------------------------------------

@dataclass
class _Ledger:
    invoices: list
    notes: list
    payments: list
    allocations: list

    @classmethod
    def load(cls, session: Session, customer_id: int) -> "_Ledger":
        invoices = session.execute(
            select(Invoice.id, Invoice.number, Invoice.issue_date, Invoice.due_date,
                   Invoice.total, Invoice.notes, Invoice.contact_id, Contact.title,
                   Contact.first_name, Contact.surname)
            .outerjoin(Contact, Contact.id == Invoice.contact_id)
            .where(Invoice.customer_id == customer_id, Invoice.status == "issued")
            .order_by(Invoice.issue_date, Invoice.id)
        ).all()
        notes = session.execute(
            select(CreditNote.id, CreditNote.number, CreditNote.issue_date, CreditNote.total,
                   CreditNote.description, CreditNote.invoice_id)
            .where(CreditNote.customer_id == customer_id, CreditNote.status == "issued")
            .order_by(CreditNote.issue_date, CreditNote.id)
        ).all()
        payments = session.execute(
            select(Payment.id, Payment.received_on, Payment.amount, Payment.method,
                   Payment.reference)
            .where(Payment.customer_id == customer_id)
            .order_by(Payment.received_on, Payment.id)
        ).all()
        live_invoice, live_note = aliased(Invoice), aliased(CreditNote)
        allocations = session.execute(
            select(Allocation.invoice_id, Allocation.payment_id, Allocation.credit_note_id,
                   Allocation.amount)
            .join(live_invoice, live_invoice.id == Allocation.invoice_id)
            .outerjoin(live_note, live_note.id == Allocation.credit_note_id)
            .where(live_invoice.customer_id == customer_id, live_invoice.status == "issued",
                   or_(Allocation.credit_note_id.is_(None), live_note.status == "issued"))
        ).all()
        return cls(invoices, notes, payments, allocations)


def _money(value) -> Decimal:
    return Decimal(value or 0).quantize(Decimal("0.01"))


def _contact_name(row) -> str:
    name = " ".join(p for p in (row.title, row.first_name, row.surname) if p)
    return name or NO_CONTACT


# --- the position at a date -------------------------------------------------------------

@dataclass
class _Position:
    invoices: list[StatementLine]
    credits: list[StatementLine]
    aging: list[tuple[str, Decimal]]


def _position(data: _Ledger, as_of: date | None) -> _Position:
    """The open invoices and unallocated credits at the end of ``as_of`` (None: now)."""
    today = as_of or date.today()

    def counts(on: date) -> bool:
        return as_of is None or on <= as_of

    invoice_on = {row.id: row.issue_date for row in data.invoices}
    source_on = {("credit_note", row.id): row.issue_date for row in data.notes}
    source_on.update({("payment", row.id): row.received_on for row in data.payments})
    to_invoice: dict[int, Decimal] = defaultdict(lambda: ZERO)
    from_source: dict[tuple, Decimal] = defaultdict(lambda: ZERO)
    for row in data.allocations:
        source = ("payment", row.payment_id) if row.payment_id else ("credit_note",
                                                                   row.credit_note_id)
        # Only an allocation whose two documents exist at the date (and are not void).
        if source not in source_on or row.invoice_id not in invoice_on:
            continue
        if counts(max(source_on[source], invoice_on[row.invoice_id])):
            to_invoice[row.invoice_id] += _money(row.amount)
            from_source[source] += _money(row.amount)

    invoices, buckets = [], [ZERO] * len(BUCKETS)
    for row in data.invoices:
        owed = _money(row.total) - to_invoice[row.id]
        if not counts(row.issue_date) or owed <= 0:
            continue
        days = (today - row.due_date).days
        buckets[_bucket(days)] += owed
        invoices.append(StatementLine(
            kind="invoice", id=row.id, number=row.number or "", on=row.issue_date,
            description=row.notes or "", total=_money(row.total), amount=_money(row.total),
            outstanding=owed, due_date=row.due_date, days_overdue=max(days, 0),
            contact_id=row.contact_id, contact_name=_contact_name(row),
        ))
    credits = []
    for row in data.notes:
        left = _money(row.total) - from_source[("credit_note", row.id)]
        if counts(row.issue_date) and left > 0:
            credits.append(_note_line(row, outstanding=-left))
    for row in data.payments:
        left = _money(row.amount) - from_source[("payment", row.id)]
        if counts(row.received_on) and left > 0:
            credits.append(_payment_line(row, outstanding=-left))
    credits.sort(key=lambda line: (line.on, _ORDER[line.kind], line.id))
    aging = [(label, amount) for (label, _, _), amount in zip(BUCKETS, buckets, strict=True)]
    return _Position(invoices, credits, aging)


def _bucket(days_overdue: int) -> int:
    for index, (_, low, high) in enumerate(BUCKETS):
        if (low is None or days_overdue >= low) and (high is None or days_overdue <= high):
            return index
    raise AssertionError("the buckets cover every number of days")


def _note_line(row, **values) -> StatementLine:
    return StatementLine(
        kind="credit_note", id=row.id, number=row.number, on=row.issue_date,
        description=row.description or "", total=_money(row.total),
        amount=-_money(row.total), **values,
    )


def _payment_line(row, **values) -> StatementLine:
    return StatementLine(
        kind="payment", id=row.id, number=row.reference or "", on=row.received_on,
        description=row.method.replace("_", " ").capitalize(), total=_money(row.amount),
        amount=-_money(row.amount), **values,
    )


def _statement(customer, kind, as_of, start, end, lines, position: _Position) -> Statement:
    invoiced_outstanding = sum((line.outstanding for line in position.invoices), ZERO)
    account_credit = -sum((line.outstanding for line in position.credits), ZERO)
    return Statement(
        customer=customer, kind=kind, as_of=as_of or date.today(), start=start, end=end,
        lines=lines, groups=[], balance=invoiced_outstanding - account_credit,
        invoiced_outstanding=invoiced_outstanding, account_credit=account_credit,
        overdue=sum((amount for _, amount in position.aging[1:]), ZERO),
        aging=position.aging, open_invoices=position.invoices, open_credits=position.credits,
    )


# --- activity ---------------------------------------------------------------------------

def _activity(customer, data: _Ledger, position: _Position, start: date, end: date):
    contact_of = {row.id: (row.contact_id, _contact_name(row)) for row in data.invoices}
    everything = [
        StatementLine(kind="invoice", id=row.id, number=row.number or "", on=row.issue_date,
                      description=row.notes or "", total=_money(row.total),
                      amount=_money(row.total), due_date=row.due_date,
                      contact_id=row.contact_id, contact_name=_contact_name(row))
        for row in data.invoices
    ]
    for row in data.notes:
        contact_id, name = contact_of.get(row.invoice_id, (None, NO_CONTACT))
        everything.append(_note_line(row, contact_id=contact_id, contact_name=name))
    everything.extend(_payment_line(row) for row in data.payments)
    everything.sort(key=lambda line: (line.on, _ORDER[line.kind], line.id))

    opening = sum((line.amount for line in everything if line.on < start), ZERO)
    lines, running = [], opening
    for line in everything:
        if start <= line.on <= end:
            running += line.amount
            line.balance = running
            lines.append(line)
    statement = _statement(customer, "activity", end, start, end, lines, position)
    statement.opening_balance, statement.closing_balance = opening, running
    statement.invoiced = sum((x.amount for x in lines if x.kind == "invoice"), ZERO)
    statement.credited = -sum((x.amount for x in lines if x.kind == "credit_note"), ZERO)
    statement.paid = -sum((x.amount for x in lines if x.kind == "payment"), ZERO)
    return statement


def _groups(lines: list[StatementLine], activity: bool) -> list[StatementGroup]:
    """Lines by contact, contacts by name, "No contact" last."""
    groups: dict[int | None, StatementGroup] = {}
    for line in lines:
        group = groups.setdefault(
            line.contact_id, StatementGroup(line.contact_id, line.contact_name, activity)
        )
        group.lines.append(line)
    return sorted(groups.values(), key=lambda g: (g.contact_id is None, g.label.lower(),
                                                   g.contact_id or 0))
