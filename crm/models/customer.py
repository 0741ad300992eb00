"""The customer aggregate: customer, its contacts, branches and tags."""

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    false,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.models.base import (
    ZERO,
    Base,
    Money,
    Timestamped,
    Versioned,
    length_check,
    long_text,
)
from crm.personal_data import (
    DERIVED,
    ERASE,
    KEEP,
    address_decisions,
    erase,
    placeholder,
)

CUSTOMER_KINDS = ("lead", "prospect", "client")
CUSTOMER_TYPES = ("private", "company", "landlord")
CUSTOMER_STATUSES = ("active", "dormant", "archived")
ADDRESS_STATUSES = ("active", "dormant")
TITLES = ("", "Mr", "Mrs", "Ms", "Miss", "Mx", "Dr", "Prof")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


LIVE = "merged_into_id IS NULL"


def _live_index(name: str, *columns: str) -> Index:
    return Index(name, *columns, sqlite_where=text(LIVE), postgresql_where=text(LIVE))


customer_tag = Table(
    "customer_tag",
    Base.metadata,
    Column("customer_id", ForeignKey("customer.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tag.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Tag(Timestamped, Base):
    __tablename__ = "tag"

    name: Mapped[str] = mapped_column(String(60), unique=True)
    colour: Mapped[str | None] = mapped_column(String(20))

    # Shared labels, not about anyone (a redacted customer's links to them are removed).
    __personal_data__ = {"name": KEEP, "colour": KEEP}

    def __str__(self) -> str:
        return self.name


class AddressFields:
    address_line_1: Mapped[str] = mapped_column(String(200))
    address_line_2: Mapped[str | None] = mapped_column(String(200))
    town: Mapped[str | None] = mapped_column(String(100))
    county: Mapped[str | None] = mapped_column(String(100))
    postcode: Mapped[str] = mapped_column(String(12))
    country: Mapped[str] = mapped_column(String(2), default="GB", server_default="GB")


class Customer(AddressFields, Versioned, Base):
    __tablename__ = "customer"
    __table_args__ = (
        CheckConstraint(_in("kind", CUSTOMER_KINDS), name="kind"),
        CheckConstraint(_in("customer_type", CUSTOMER_TYPES), name="customer_type"),
        CheckConstraint(_in("status", CUSTOMER_STATUSES), name="status"),
        CheckConstraint("creditor_days IS NULL OR creditor_days >= 0", name="creditor_days"),
        length_check("customer", "notes"),
        # The list's sort orders, over live (not merged) customers only: partial indexes
        # let page 10,000 be an index-only walk.
        # Only the tombstones: an index of a million NULLs would tempt SQLite (without
        # statistics) into sorting every live customer instead of walking the indexes below.
        Index(
            "ix_customer_merged_into_id",
            "merged_into_id",
            sqlite_where=text("merged_into_id IS NOT NULL"),
            postgresql_where=text("merged_into_id IS NOT NULL"),
        ),
        # The default order. Status rides along so that hiding archived customers (the
        # list's default) is still an index-only walk at page 10,000; so does merged_into_id
        # (always NULL here), without which SQLite does not count the index as covering.
        # Hidden customers (a spouse, a child) leave the default list like archived ones, so
        # the flag rides along too.
        _live_index("ix_customer_live_id", "id", "status", "hidden", "merged_into_id"),
        # The list sorted by loyalty score (crm.loyalty keeps it). Status and hidden ride
        # along so that leaving out archived and hidden customers (the default) does not
        # read every skipped row on a deep page; merged_into_id too, as above.
        _live_index("ix_customer_loyalty_score_id", "loyalty_score", "id", "status", "hidden",
                    "merged_into_id"),
        # The related people of a customer (its record page lists them).
        Index("ix_customer_related_to_id", "related_to_id",
              sqlite_where=text("related_to_id IS NOT NULL"),
              postgresql_where=text("related_to_id IS NOT NULL")),
        _live_index("ix_customer_balance_id", "balance", "id"),
        _live_index("ix_customer_overdue_amount_id", "overdue_amount", "id"),
        _live_index("ix_customer_account_credit_id", "account_credit", "id"),
        _live_index("ix_customer_oldest_overdue_on_id", "oldest_overdue_on", "id"),
        _live_index("ix_customer_surname_id", "surname", "id"),
        _live_index("ix_customer_status_id", "status", "id"),
        _live_index("ix_customer_postcode_id", "postcode", "id"),
        _live_index("ix_customer_reference_id", "reference", "id"),
        # The "same surname and postcode" key of the possible-duplicates list
        # (crm.actions.duplicates.name_postcode_key, the same text, or SQLite ignores it).
        Index(
            "ix_customer_name_postcode_key",
            text("(lower(surname) || '|' || replace(upper(postcode), ' ', ''))"),
            "id",
            sqlite_where=text(LIVE),
            postgresql_where=text(LIVE),
        ),
        # Only the flagged few: the "blocked e-mail" filter reads this, never a scan.
        Index(
            "ix_customer_email_blocked",
            "id",
            sqlite_where=text("email_blocked = 1"),
            postgresql_where=text("email_blocked"),
        ),
    )

    # A customer needs a name and one way to reach them, not always an address: an inquiry
    # or a gig booking brings a name and an e-mail. The billing address is asked for when an
    # invoice is issued (crm.actions.invoice).
    address_line_1: Mapped[str | None] = mapped_column(String(200))
    postcode: Mapped[str | None] = mapped_column(String(12))

    reference: Mapped[str] = mapped_column(String(20), unique=True)
    kind: Mapped[str] = mapped_column(String(10), default="client", server_default="client")
    # A related person who will never pay (a spouse, a child): kept off the default list,
    # linked to the customer they belong to.
    hidden: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    related_to_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"))
    # How likely the customer is to come back, 0-100, from the recency, frequency and value
    # of completed bookings: stored by crm.loyalty so the list sorts by it through an index.
    loyalty_score: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    customer_type: Mapped[str] = mapped_column(
        String(10), default="private", server_default="private"
    )
    title: Mapped[str | None] = mapped_column(String(20))
    first_name: Mapped[str | None] = mapped_column(String(100))
    surname: Mapped[str | None] = mapped_column(String(100))
    company_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    phone: Mapped[str | None] = mapped_column(String(20), index=True)
    status: Mapped[str] = mapped_column(String(10), default="active", server_default="active")
    advertising_source: Mapped[str | None] = mapped_column(String(100))
    price_book: Mapped[str | None] = mapped_column(String(100))
    creditor_days: Mapped[int | None] = mapped_column(Integer)
    third_party_reference: Mapped[str | None] = mapped_column(String(100))
    notes: Mapped[str | None] = mapped_column(**long_text("customer", "notes"))
    email_opt_in: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    sms_opt_in: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    post_opt_in: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # What the customer wants to hear about (the portal's preferences): statement e-mails
    # and service reminders unless they say no; marketing only if they say yes.
    wants_statements: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    wants_reminders: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    wants_marketing: Mapped[bool] = mapped_column(Boolean, default=False,
                                                  server_default=false())
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"))
    # Set while the customer's e-mail (or its domain) is on the blocklist; kept by
    # crm.actions.block_email and the session hooks, so the list can flag and filter it.
    email_blocked: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    redacted_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Lower-cased words the search index is built on; kept by crm.session_hooks.
    search_text: Mapped[str] = mapped_column(Text, default="", server_default="")

    # Redaction (crm.personal_data): kept invoices still read "Redacted customer C-000123".
    # The accounting reference is erased too: such codes are often built from the name, and
    # the kept invoice numbers reconcile with the accounting system on their own.
    __personal_data__ = {
        "reference": KEEP,
        "kind": KEEP,
        "customer_type": KEEP,
        "title": ERASE,
        "first_name": ERASE,
        "surname": placeholder("Redacted customer {reference}"),
        "company_name": ERASE,
        "email": ERASE,
        "phone": ERASE,
        "status": KEEP,
        "advertising_source": ERASE,  # free text: "referred by …" names people
        "price_book": KEEP,
        "third_party_reference": ERASE,
        "notes": ERASE,
        "search_text": DERIVED,
        **address_decisions(),
    }

    # The ledger: stored, indexed, and rewritten by crm.ledger in the same transaction as
    # every money write, so a million customers sort and filter by it through an index.
    balance: Mapped[Decimal] = mapped_column(Money, default=ZERO, server_default="0")
    account_credit: Mapped[Decimal] = mapped_column(Money, default=ZERO, server_default="0")
    overdue_amount: Mapped[Decimal] = mapped_column(Money, default=ZERO, server_default="0")
    oldest_overdue_on: Mapped[date | None] = mapped_column(Date)
    next_due_on: Mapped[date | None] = mapped_column(Date, index=True)
    ledger_as_of: Mapped[date | None] = mapped_column(Date)

    tags: Mapped[list[Tag]] = relationship(secondary=customer_tag, order_by=Tag.name)
    contacts: Mapped[list["Contact"]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", order_by="Contact.id"
    )
    branches: Mapped[list["Branch"]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", order_by="Branch.id"
    )
    merged_into: Mapped["Customer | None"] = relationship(
        remote_side="Customer.id", foreign_keys=[merged_into_id])
    related_to: Mapped["Customer | None"] = relationship(
        remote_side="Customer.id", foreign_keys=[related_to_id])

    @property
    def display_name(self) -> str:
        if self.customer_type == "company" and self.company_name:
            return self.company_name
        person = " ".join(p for p in (self.title, self.first_name, self.surname) if p)
        return person or self.company_name or self.reference or ""

    @property
    def overdue_days(self) -> int | None:
        if self.oldest_overdue_on is None:
            return None
        return (date.today() - self.oldest_overdue_on).days

    def __str__(self) -> str:
        return f"{self.reference} {self.display_name}".strip()


class Contact(Versioned, Base):
    __tablename__ = "contact"
    __table_args__ = (
        Index(
            "uq_contact_primary_per_customer",
            "customer_id",
            unique=True,
            sqlite_where=text("is_primary = 1"),
            postgresql_where=text("is_primary"),
        ),
    )

    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    title: Mapped[str | None] = mapped_column(String(20))
    first_name: Mapped[str | None] = mapped_column(String(100))
    surname: Mapped[str] = mapped_column(String(100))
    position: Mapped[str | None] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    phone: Mapped[str | None] = mapped_column(String(20))
    mobile: Mapped[str | None] = mapped_column(String(20))
    email_opt_in: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    sms_opt_in: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    __personal_data__ = {
        "title": ERASE,
        "first_name": ERASE,
        "surname": erase("Redacted contact"),
        "position": ERASE,
        "email": ERASE,
        "phone": ERASE,
        "mobile": ERASE,
    }

    customer: Mapped[Customer] = relationship(back_populates="contacts")

    def __str__(self) -> str:
        return " ".join(p for p in (self.title, self.first_name, self.surname) if p)


class Branch(AddressFields, Versioned, Base):
    __tablename__ = "branch"
    __table_args__ = (CheckConstraint(_in("status", ADDRESS_STATUSES), name="status"),)

    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(10), default="active", server_default="active")

    # A sole trader's branch is their home or shop: its name, address and phone go too.
    __personal_data__ = {
        "name": erase("Redacted branch"),
        "phone": ERASE,
        "status": KEEP,
        **address_decisions(),
    }

    customer: Mapped[Customer] = relationship(back_populates="branches")

    def __str__(self) -> str:
        return self.name
