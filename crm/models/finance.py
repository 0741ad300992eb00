"""Money: invoices, credit notes, payments and the allocations between them."""

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, Numeric, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.models.base import ZERO, Base, Money, Versioned, length_check, long_text
from crm.models.customer import Customer, _in
from crm.personal_data import ERASE, KEEP, erase

LINE_CATEGORIES = ("labour", "parts", "other")
INVOICE_STATUSES = ("draft", "issued", "void")
CREDIT_NOTE_STATUSES = ("issued", "void")
BREAKDOWN_STYLES = ("none", "by_category", "full", "full_by_category")
PAYMENT_METHODS = ("bank_transfer", "card", "cash", "cheque", "other")
CENT = Decimal("0.01")


def round_money(value: Decimal) -> Decimal:
    """Half-up to two places, per line: the rule every total in the system uses."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


class LineFields:
    position: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    category: Mapped[str] = mapped_column(String(10), default="labour", server_default="labour")
    description: Mapped[str] = mapped_column(String(500))
    quantity: Mapped[Decimal] = mapped_column(Numeric(10, 2), default=Decimal("1"))
    unit_price: Mapped[Decimal] = mapped_column(Money)
    tax_rate: Mapped[Decimal] = mapped_column(Numeric(5, 2), default=ZERO, server_default="0")
    net_amount: Mapped[Decimal] = mapped_column(Money, default=ZERO, server_default="0")
    tax_amount: Mapped[Decimal] = mapped_column(Money, default=ZERO, server_default="0")

    def compute(self) -> None:
        self.net_amount = round_money(Decimal(self.quantity or 0) * Decimal(self.unit_price or 0))
        self.tax_amount = round_money(self.net_amount * Decimal(self.tax_rate or 0) / 100)

    def __str__(self) -> str:
        return self.description or ""


class DocumentTotals:
    subtotal: Mapped[Decimal] = mapped_column(Money, default=ZERO, server_default="0")
    tax_total: Mapped[Decimal] = mapped_column(Money, default=ZERO, server_default="0")
    total: Mapped[Decimal] = mapped_column(Money, default=ZERO, server_default="0")

    def compute_totals(self) -> None:
        for line in self.lines:
            line.compute()
        self.subtotal = sum((line.net_amount for line in self.lines), ZERO)
        self.tax_total = sum((line.tax_amount for line in self.lines), ZERO)
        self.total = self.subtotal + self.tax_total


class Invoice(DocumentTotals, Versioned, Base):
    __tablename__ = "invoice"
    __table_args__ = (
        CheckConstraint(_in("status", INVOICE_STATUSES), name="status"),
        CheckConstraint("status = 'draft' OR number IS NOT NULL", name="issued_has_number"),
        CheckConstraint("due_date >= issue_date", name="due_after_issue"),
        Index("ix_invoice_customer_id_due_date", "customer_id", "due_date"),
        Index("ix_invoice_issue_date_id", "issue_date", "id"),
        # The drafts waiting to be issued, in the list's order (the dashboard counts them and
        # opens the list filtered to them: a page of the newest stops after 20 rows).
        Index("ix_invoice_draft_issue_date_id", "issue_date", "id",
              sqlite_where=text("status = 'draft'"), postgresql_where=text("status = 'draft'")),
        length_check("invoice", "notes"),
        length_check("invoice", "address_format"),
    )

    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    number: Mapped[str | None] = mapped_column(String(20), unique=True)
    status: Mapped[str] = mapped_column(String(10), default="draft", server_default="draft")
    issue_date: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date)
    notes: Mapped[str | None] = mapped_column(**long_text("invoice", "notes"))
    # What is still owed; kept by crm.ledger with the customer's balance.
    outstanding: Mapped[Decimal] = mapped_column(Money, default=ZERO, server_default="0")
    # Where the work was done (its landlord and address are tags of the address format).
    work_address_id: Mapped[int | None] = mapped_column(
        ForeignKey("work_address.id"), index=True
    )
    # The customer's contact it is for: statements can be grouped by contact.
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id"), index=True)
    # How the invoice is addressed: lines of tags such as [customer_name] or
    # "[landlord_name] c/o [customer_name]"; NULL means the customer's own address.
    address_format: Mapped[str | None] = mapped_column(**long_text("invoice", "address_format"))

    # Kept for legal retention with number, dates and amounts; the free-text notes go, and
    # so does an address format (it may spell out a name as plain text).
    __personal_data__ = {"number": KEEP, "status": KEEP, "notes": ERASE,
                         "address_format": ERASE}

    customer: Mapped[Customer] = relationship()
    work_address: Mapped["WorkAddress | None"] = relationship()  # noqa: F821
    contact: Mapped["Contact | None"] = relationship()  # noqa: F821
    lines: Mapped[list["InvoiceLine"]] = relationship(
        back_populates="invoice", cascade="all, delete-orphan", order_by="InvoiceLine.position"
    )

    def __str__(self) -> str:
        return self.number or f"Draft #{self.id}"


class InvoiceLine(LineFields, Versioned, Base):
    __tablename__ = "invoice_line"
    __table_args__ = (
        CheckConstraint(_in("category", LINE_CATEGORIES), name="category"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price >= 0", name="unit_price"),
    )

    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoice.id", ondelete="CASCADE"), index=True)
    invoice: Mapped[Invoice] = relationship(back_populates="lines")

    # Line descriptions are free text ("call-out to 12 Acacia Avenue for Mr Smith"); the
    # category, quantity, prices and tax stay, so the document still adds up.
    __personal_data__ = {"category": KEEP, "description": erase("[redacted]")}


class CreditNote(DocumentTotals, Versioned, Base):
    __tablename__ = "credit_note"
    __table_args__ = (
        CheckConstraint(_in("status", CREDIT_NOTE_STATUSES), name="status"),
        CheckConstraint(_in("breakdown_style", BREAKDOWN_STYLES), name="breakdown_style"),
        Index("ix_credit_note_customer_id_issue_date", "customer_id", "issue_date"),
    )

    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoice.id"), index=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    status: Mapped[str] = mapped_column(String(10), default="issued", server_default="issued")
    issue_date: Mapped[date] = mapped_column(Date)
    description: Mapped[str | None] = mapped_column(String(500))
    breakdown_style: Mapped[str] = mapped_column(
        String(20), default="none", server_default="none"
    )

    __personal_data__ = {
        "number": KEEP,
        "status": KEEP,
        "description": ERASE,
        "breakdown_style": KEEP,
    }

    customer: Mapped[Customer] = relationship()
    invoice: Mapped[Invoice | None] = relationship()
    lines: Mapped[list["CreditNoteLine"]] = relationship(
        back_populates="credit_note",
        cascade="all, delete-orphan",
        order_by="CreditNoteLine.position",
    )

    def __str__(self) -> str:
        return self.number


class CreditNoteLine(LineFields, Versioned, Base):
    __tablename__ = "credit_note_line"
    __table_args__ = (
        CheckConstraint(_in("category", LINE_CATEGORIES), name="category"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price >= 0", name="unit_price"),
    )

    credit_note_id: Mapped[int] = mapped_column(
        ForeignKey("credit_note.id", ondelete="CASCADE"), index=True
    )
    credit_note: Mapped[CreditNote] = relationship(back_populates="lines")

    # As on invoice lines.
    __personal_data__ = {"category": KEEP, "description": erase("[redacted]")}


class Payment(Versioned, Base):
    __tablename__ = "payment"
    __table_args__ = (
        CheckConstraint(_in("method", PAYMENT_METHODS), name="method"),
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_payment_customer_id_received_on", "customer_id", "received_on"),
        Index("ix_payment_received_on_id", "received_on", "id"),
    )

    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"))
    received_on: Mapped[date] = mapped_column(Date)
    method: Mapped[str] = mapped_column(String(20), default="bank_transfer")
    reference: Mapped[str | None] = mapped_column(String(100))
    amount: Mapped[Decimal] = mapped_column(Money)

    # Bank references usually carry the payer's name ("J SMITH INV-000123").
    __personal_data__ = {"method": KEEP, "reference": ERASE}

    customer: Mapped[Customer] = relationship()

    def __str__(self) -> str:
        return f"{self.received_on} {self.amount} {self.reference or ''}".strip()


class Allocation(Versioned, Base):
    """Part of a payment or credit note set against an invoice."""

    __tablename__ = "allocation"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(
            "(payment_id IS NULL) <> (credit_note_id IS NULL)", name="one_source"
        ),
    )

    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoice.id"), index=True)
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payment.id"), index=True)
    credit_note_id: Mapped[int | None] = mapped_column(ForeignKey("credit_note.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money)

    invoice: Mapped[Invoice] = relationship()
    payment: Mapped[Payment | None] = relationship()
    credit_note: Mapped[CreditNote | None] = relationship()

    def __str__(self) -> str:
        return f"{self.amount} to {self.invoice_id}"


# The business-wide figures of the owner's dashboard, stored so that the page never sums a
# million rows: kept by database triggers on every write (see ``crm.ledger_figures``).
BigMoney = Numeric(20, 2, asdecimal=True)


class LedgerDay(Base):
    """One calendar day's business-wide money figures.

    ``outstanding``: what is still owed on issued invoices due that day; ``invoiced``: the
    totals of the issued invoices dated that day; ``received``: the payments received that
    day. Aging buckets and monthly figures are sums of day ranges."""

    __tablename__ = "ledger_day"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    outstanding: Mapped[Decimal] = mapped_column(BigMoney, default=ZERO, server_default="0")
    invoiced: Mapped[Decimal] = mapped_column(BigMoney, default=ZERO, server_default="0")
    received: Mapped[Decimal] = mapped_column(BigMoney, default=ZERO, server_default="0")


class LedgerTotal(Base):
    """Business-wide totals with no date: one row, id 1."""

    __tablename__ = "ledger_total"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_credit: Mapped[Decimal] = mapped_column(BigMoney, default=ZERO, server_default="0")
