"""What the customer portal may read: everything goes through ``CustomerScope``, made for the
signed-in customer, and every query in it is filtered by that customer's id. A document of
another customer, a draft, or an id that names nothing all come back as None, which the
portal answers with the same 404.

Each method is a fixed handful of statements whatever the customer holds (lists are paged),
so a portal page costs the same for a customer with 3 invoices or 3,000
(``tests/integration/test_portal.py`` counts them).
"""

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from crm.models import Allocation, Booking, CreditNote, Customer, Invoice, Note, Payment
from crm.statements import Statement, build_statement

PAGE = 20
SHOWN = ("issued", "void")  # a draft is not the customer's to see


@dataclass(frozen=True)
class Page:
    rows: list
    page: int
    pages: int
    total: int


@dataclass(frozen=True)
class Applied:
    """Money set against an invoice: a payment or a credit note, and how much of it."""

    on: date
    kind: str  # "payment" / "credit note"
    reference: str
    amount: object
    document_id: int | None = None


class CustomerScope:
    def __init__(self, session: Session, customer: Customer):
        self.session, self.customer = session, customer
        self.id = customer.id

    # --- the statement ------------------------------------------------------------------
    def statement(self, **options) -> Statement:
        """The same statement as the admin's Statement tab and the PDF."""
        return build_statement(self.session, customer_id=self.id, **options)

    # --- invoices and credit notes ------------------------------------------------------
    def invoices(self, page: int = 0) -> Page:
        return self._page(Invoice, page, Invoice.status.in_(SHOWN),
                          order=(Invoice.issue_date.desc(), Invoice.id.desc()))

    def invoice(self, invoice_id) -> Invoice | None:
        return self._one(Invoice, invoice_id, Invoice.status.in_(SHOWN),
                         options=(selectinload(Invoice.lines),))

    def credit_notes(self, page: int = 0) -> Page:
        return self._page(CreditNote, page, order=(CreditNote.issue_date.desc(),
                                                   CreditNote.id.desc()),
                          options=(selectinload(CreditNote.invoice),))

    def credit_note(self, note_id) -> CreditNote | None:
        return self._one(CreditNote, note_id, options=(selectinload(CreditNote.lines),
                                                       selectinload(CreditNote.invoice)))

    def applied_to(self, invoice: Invoice) -> list[Applied]:
        """The payments and credit notes set against one of the customer's invoices, oldest
        first: the live allocations only (``crm.ledger``'s rule), so nothing from a voided
        credit note, and nothing on a void invoice (what was paid on it became credit)."""
        if invoice.status != "issued":
            return []
        rows = self.session.execute(
            select(Allocation.amount, Payment.received_on, Payment.reference, Payment.method,
                   CreditNote.issue_date, CreditNote.number, CreditNote.id)
            .outerjoin(Payment, Payment.id == Allocation.payment_id)
            .outerjoin(CreditNote, CreditNote.id == Allocation.credit_note_id)
            .where(Allocation.invoice_id == invoice.id,
                   or_(Allocation.credit_note_id.is_(None), CreditNote.status == "issued"))
            .order_by(func.coalesce(Payment.received_on, CreditNote.issue_date), Allocation.id)
        ).all()
        return [
            Applied(r.received_on, "payment", r.reference or r.method.replace("_", " "),
                    r.amount) if r.received_on is not None else
            Applied(r.issue_date, "credit note", r.number, r.amount, r.id)
            for r in rows
        ]

    def questions(self, invoice: Invoice) -> list[Note]:
        return list(self.session.scalars(
            select(Note).where(Note.customer_id == self.id, Note.kind == "portal",
                               Note.invoice_id == invoice.id)
            .order_by(Note.created_at.desc()).limit(50)))

    # --- payments -----------------------------------------------------------------------
    def payments(self, page: int = 0) -> tuple[Page, dict[int, list]]:
        """A page of payments, newest first, and for each what it paid (invoice numbers and
        amounts), in two statements plus the count."""
        listed = self._page(Payment, page, order=(Payment.received_on.desc(),
                                                  Payment.id.desc()))
        paid: dict[int, list] = {}
        ids = [p.id for p in listed.rows]
        if ids:
            for payment_id, number, invoice_id, amount in self.session.execute(
                    select(Allocation.payment_id, Invoice.number, Invoice.id, Allocation.amount)
                    .join(Invoice, Invoice.id == Allocation.invoice_id)
                    .where(Allocation.payment_id.in_(ids), Invoice.customer_id == self.id)
                    .order_by(Allocation.id)):
                paid.setdefault(payment_id, []).append((number, invoice_id, amount))
        return listed, paid

    # --- bookings -----------------------------------------------------------------------
    def bookings(self, limit: int = 50) -> tuple[list[Booking], list[Booking]]:
        """(upcoming soonest first, past latest first), with their work addresses."""
        now = datetime.now()
        upcoming = self.session.scalars(
            select(Booking).options(selectinload(Booking.work_address))
            .where(Booking.customer_id == self.id, Booking.starts_at >= now)
            .order_by(Booking.starts_at).limit(limit)).all()
        past = self.session.scalars(
            select(Booking).options(selectinload(Booking.work_address))
            .where(Booking.customer_id == self.id, Booking.starts_at < now)
            .order_by(Booking.starts_at.desc()).limit(limit)).all()
        return list(upcoming), list(past)

    # --- steps --------------------------------------------------------------------------
    def _one(self, model, key, *criteria, options=()):
        if not isinstance(key, int):
            return None
        return self.session.execute(
            select(model).options(*options)
            .where(model.id == key, model.customer_id == self.id, *criteria)
        ).scalar_one_or_none()

    def _page(self, model, page: int, *criteria, order, options=()) -> Page:
        where = (model.customer_id == self.id, *criteria)
        total = self.session.scalar(select(func.count()).select_from(model).where(*where))
        pages = max(1, -(-total // PAGE))
        page = min(max(page, 0), pages - 1)
        rows = self.session.scalars(
            select(model).options(*options).where(*where).order_by(*order)
            .offset(page * PAGE).limit(PAGE)).all()
        return Page(list(rows), page, pages, total)
