"""Raise a credit note (against an issued invoice, or standalone on a customer) and void one.

Against an invoice, everything ever credited on it (issued credit notes, this one included)
can never exceed its total. The credit note pays off what is still outstanding on the
invoice (an ``Allocation`` from the note) and the rest becomes account credit. Standalone,
all of it is account credit. What is outstanding and what is account credit have one
definition, ``crm.ledger``; this module only reads it.

Numbers come from the gap-free ``credit_note`` sequence, taken only once every check has
passed, so a refusal never consumes one (and a rollback gives it back).
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm import validation
from crm.actions import ActionError, ActionResult
from crm.actions.guards import live_customer
from crm.formatting import money as shown
from crm.ledger import flush_ledger
from crm.models import Allocation, CreditNote, CreditNoteLine, Customer, Invoice, Note, User
from crm.models.audit import record
from crm.models.base import ZERO
from crm.models.finance import BREAKDOWN_STYLES, LINE_CATEGORIES
from crm.models.sequence import next_number
from crm.validation import MONEY_MAX, money, sane_date

MAX_LINES = 200
MAX_DESCRIPTION = 500
REASON_MAX = 500


@dataclass(frozen=True)
class InvoicePosition:
    """What an invoice stands at for crediting: its total, what issued credit notes against
    it already credit, what is still owed, and so how much more it can be credited."""

    invoice_id: int
    number: str
    customer_id: int
    issue_date: date
    total: Decimal
    credited: Decimal
    outstanding: Decimal

    @property
    def creditable(self) -> Decimal:
        return max(self.total - self.credited, ZERO)

    def split(self, total: Decimal) -> tuple[Decimal, Decimal]:
        """(applied to the invoice, left as account credit) of a credit note of ``total``."""
        applied = min(total, max(self.outstanding, ZERO))
        return applied, total - applied


@dataclass(frozen=True)
class Priced:
    """Validated lines with their per-line half-up amounts, and the document's totals."""

    lines: tuple[CreditNoteLine, ...]
    subtotal: Decimal
    tax_total: Decimal
    total: Decimal


def credit_note_lines_from(invoice: Invoice) -> list[dict]:
    """The invoice's lines as the editable defaults of a credit note against it."""
    return [
        {"category": line.category, "description": line.description,
         "quantity": line.quantity, "unit_price": line.unit_price, "tax_rate": line.tax_rate}
        for line in invoice.lines
    ]


def invoice_position(session: Session, invoice_id: int, *, lock: bool = False
                     ) -> InvoicePosition:
    """Where the invoice stands, refusing one that cannot be credited (missing, draft, void).

    ``lock`` takes the invoice's row lock first (PostgreSQL), so that two credit notes
    raised at once against one invoice are checked one after the other."""
    query = select(Invoice).where(Invoice.id == invoice_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    invoice = session.execute(query).scalar_one_or_none()
    if invoice is None:
        raise ActionError("That invoice does not exist.")
    if invoice.status != "issued":
        label = invoice.number or f"Draft invoice #{invoice.id}"
        raise ActionError(f"{label} is {invoice.status}: only issued invoices can be credited.")
    # The stored outstanding is kept by the ledger before each commit; bring it up to date
    # with anything this transaction changed so far.
    flush_ledger(session)
    session.refresh(invoice)
    credited = session.execute(
        select(func.coalesce(func.sum(CreditNote.total), ZERO))
        .where(CreditNote.invoice_id == invoice.id, CreditNote.status == "issued")
    ).scalar_one()
    return InvoicePosition(
        invoice_id=invoice.id, number=invoice.number, customer_id=invoice.customer_id,
        issue_date=invoice.issue_date, total=invoice.total,
        credited=Decimal(credited).quantize(Decimal("0.01")), outstanding=invoice.outstanding,
    )


def price_lines(lines: list[dict]) -> Priced:
    """Validate the lines as typed (strings or numbers) and price them, per line half-up.

    The raise screen's preview and the action share it, so what is previewed is what is
    raised."""
    if not lines:
        raise ActionError("Add at least one line to the credit note.")
    if len(lines) > MAX_LINES:
        raise ActionError(f"A credit note holds at most {MAX_LINES} lines.")
    priced = tuple(_line(position, values) for position, values in enumerate(lines, 1))
    subtotal = sum((line.net_amount for line in priced), ZERO)
    tax_total = sum((line.tax_amount for line in priced), ZERO)
    total = subtotal + tax_total
    if total > MONEY_MAX:
        raise ActionError("That credit note is too large.")
    if total <= 0:
        raise ActionError(f"The credit note comes to {shown(ZERO)}: there is nothing to credit.")
    return Priced(priced, subtotal, tax_total, total)


def _line(position: int, values: dict) -> CreditNoteLine:
    def checked(parse, key: str, label: str, **kwargs) -> Decimal:
        try:
            return parse(values.get(key, ""), **kwargs)
        except ValueError as exc:
            raise ActionError(f"Line {position}, {label}: {exc}") from None

    def amount(key: str, label: str, **kwargs) -> Decimal:
        return checked(money, key, label, **kwargs)

    description = str(values.get("description") or "").strip()
    if not description:
        raise ActionError(f"Line {position}: enter a description.")
    if len(description) > MAX_DESCRIPTION:
        raise ActionError(f"Line {position}: a description holds at most {MAX_DESCRIPTION} "
                          "characters.")
    category = values.get("category") or "labour"
    if category not in LINE_CATEGORIES:
        raise ActionError(f"Line {position}: the category is one of "
                          f"{', '.join(LINE_CATEGORIES)}.")
    quantity = checked(validation.quantity, "quantity", "quantity")
    unit_price = amount("unit_price", "unit price", allow_zero=True)
    tax_rate = checked(validation.tax_rate, "tax_rate", "tax rate")
    try:
        validation.line_amounts(quantity, unit_price, tax_rate)
    except ValueError as exc:
        raise ActionError(f"Line {position}: {exc}") from None
    line = CreditNoteLine(position=position, category=category, description=description,
                          quantity=quantity, unit_price=unit_price, tax_rate=tax_rate)
    line.compute()
    return line


def customer_for_credit(session: Session, customer_id: int) -> Customer:
    """The customer a standalone credit note is for: live (not merged) and not redacted."""
    return live_customer(session, customer_id, doing="raise a credit note")


def _header(issue_date: date | None, description: str | None, breakdown_style: str
            ) -> tuple[date, str | None]:
    if breakdown_style not in BREAKDOWN_STYLES:
        raise ActionError(f"The breakdown style is one of: {', '.join(BREAKDOWN_STYLES)}.")
    description = (description or "").strip() or None
    if description and len(description) > MAX_DESCRIPTION:
        raise ActionError(f"The description holds at most {MAX_DESCRIPTION} characters.")
    try:
        issue_date = sane_date(issue_date or date.today())
    except ValueError as exc:
        raise ActionError(f"Issue date: {exc}") from None
    return issue_date, description


def _check_room(position: InvoicePosition, total: Decimal, issue_date: date) -> None:
    if issue_date < position.issue_date:
        raise ActionError(f"A credit note against {position.number} cannot be dated before the "
                          f"invoice ({position.issue_date.isoformat()}).")
    if position.creditable <= 0:
        raise ActionError(f"{position.number} has already been credited in full "
                          f"({shown(position.credited)} of {shown(position.total)}).")
    if total > position.creditable:
        raise ActionError(
            f"{position.number} can be credited at most {shown(position.creditable)} more "
            f"(total {shown(position.total)}, already credited {shown(position.credited)}); "
            f"this credit note comes to {shown(total)}."
        )


def raise_credit_note(
    session: Session, *, actor: User | None, lines: list[dict], invoice_id: int | None = None,
    customer_id: int | None = None, issue_date: date | None = None,
    description: str | None = None, breakdown_style: str = "none",
) -> ActionResult:
    """Raise a credit note against an issued invoice (``invoice_id``) or standalone on a
    customer (``customer_id``): exactly one of the two."""
    if (invoice_id is None) == (customer_id is None):
        raise ActionError("Raise a credit note either against an invoice or for a customer.")
    issue_date, description = _header(issue_date, description, breakdown_style)
    priced = price_lines(lines)
    position = None
    if invoice_id is not None:
        position = invoice_position(session, invoice_id, lock=True)
        _check_room(position, priced.total, issue_date)
        customer = session.get(Customer, position.customer_id)
    else:
        customer = customer_for_credit(session, customer_id)

    note = CreditNote(
        customer_id=customer.id, invoice_id=invoice_id,
        number=next_number(session, "credit_note"), status="issued", issue_date=issue_date,
        description=description, breakdown_style=breakdown_style, lines=list(priced.lines),
    )
    session.add(note)
    session.flush()
    applied, to_credit = position.split(priced.total) if position else (ZERO, priced.total)
    if applied > 0:
        session.add(Allocation(invoice_id=position.invoice_id, credit_note_id=note.id,
                               amount=applied))
        session.flush()

    record(session, actor=actor, verb="raise_credit_note", subject_type="Customer",
           subject_id=customer.id, details={
               "credit_note_id": note.id, "number": note.number,
               "invoice_number": position.number if position else None,
               "total": str(priced.total), "applied": str(applied), "to_credit": str(to_credit),
           })
    return ActionResult(
        "raise_credit_note", changed=1, changed_refs=(note.number,),
        message=_summary(note.number, priced.total, applied, to_credit, position),
        details={"credit_note_id": note.id, "number": note.number, "total": priced.total,
                 "applied": applied, "to_credit": to_credit},
    )


def _summary(number: str, total: Decimal, applied: Decimal, to_credit: Decimal,
             position: InvoicePosition | None) -> str:
    parts = [f"{number} raised for {shown(total)}"]
    if position is not None:
        parts.append(f"{shown(applied)} applied to {position.number}")
    if to_credit > 0 or position is None:
        parts.append(f"{shown(to_credit)} became account credit")
    return parts[0] + ": " + ", ".join(parts[1:]) + "."


def void_credit_note(session: Session, *, credit_note_id: int, actor: User | None,
                     reason: str) -> ActionResult:
    """Void an issued credit note. Its allocations stop counting (the ledger counts only
    allocations from issued credit notes), so whatever it paid off is owed again, and what
    it left as account credit is gone. The reason is written as a note on the customer (the
    audit trail holds no free text); a redacted customer gets no note."""
    note = session.execute(
        select(CreditNote).where(CreditNote.id == credit_note_id).with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if note is None:
        raise ActionError("That credit note does not exist.")
    if note.status == "void":
        raise ActionError(f"{note.number} is already void; nothing changed.")
    reason = (reason or "").strip()
    if not reason:
        raise ActionError("Give a reason for voiding the credit note.")
    if len(reason) > REASON_MAX:
        raise ActionError(f"Keep the reason to {REASON_MAX} characters or fewer.")

    released = session.execute(
        select(func.coalesce(func.sum(Allocation.amount), ZERO))
        .join(Invoice, Invoice.id == Allocation.invoice_id)
        .where(Allocation.credit_note_id == note.id, Invoice.status == "issued")
    ).scalar_one()
    released = Decimal(released).quantize(Decimal("0.01"))
    note.status = "void"
    customer = session.get(Customer, note.customer_id)
    if customer.redacted_at is None:
        session.add(Note(customer_id=customer.id, kind="note",
                         body=f"Credit note {note.number} voided: {reason}",
                         author_id=actor.id if actor is not None else None))
    session.flush()
    record(session, actor=actor, verb="void_credit_note", subject_type="Customer",
           subject_id=customer.id, details={
               "credit_note_id": note.id, "number": note.number,
               "invoice_number": note.invoice.number if note.invoice else None,
               "total": str(note.total), "released": str(released),
           })
    owed_again = f"; {shown(released)} is owed again on the invoices it paid off" if released else ""
    return ActionResult(
        "void_credit_note", changed=1, changed_refs=(note.number,),
        message=f"{note.number} voided{owed_again}.",
        details={"credit_note_id": note.id, "number": note.number, "released": released},
    )
