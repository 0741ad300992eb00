"""The business's own identity and each staff user's remembered list settings.

``BusinessProfile`` is a single row (id 1): the name, address, tax and company numbers,
bank details, payment terms, logo and e-mail sender printed on documents and used by the
e-mails customers receive. ``ListPreference`` remembers the columns a user chose for a
list; ``SavedFilter`` a named list query ("my overdue over 60 days") of one user.
"""

from datetime import datetime

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from crm.models.base import Base, Versioned, utcnow
from crm.personal_data import KEEP

LOGO_MAX_BYTES = 512 * 1024


class BusinessProfile(Versioned, Base):
    """The business as customers see it on documents and e-mails: one row, id 1."""

    __tablename__ = "business_profile"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(500))  # lines separated by newlines
    email: Mapped[str | None] = mapped_column(String(254))  # printed on documents
    phone: Mapped[str | None] = mapped_column(String(50))
    website: Mapped[str | None] = mapped_column(String(200))
    vat_number: Mapped[str | None] = mapped_column(String(30))
    company_number: Mapped[str | None] = mapped_column(String(30))
    bank_details: Mapped[str | None] = mapped_column(String(500))
    payment_terms_days: Mapped[int] = mapped_column(Integer, default=30, server_default="30")
    payment_terms: Mapped[str | None] = mapped_column(String(500))  # wording on invoices
    email_from: Mapped[str | None] = mapped_column(String(254))  # sender of customer e-mails
    reply_to: Mapped[str | None] = mapped_column(String(254))
    logo: Mapped[bytes | None] = mapped_column(LargeBinary)
    logo_mime: Mapped[str | None] = mapped_column(String(40))
    logo_updated_at: Mapped[datetime | None] = mapped_column(DateTime)

    # The business's own details, not a customer's: erasure leaves them alone.
    __personal_data__ = {
        name: KEEP
        for name in ("name", "address", "email", "phone", "website", "vat_number",
                     "company_number", "bank_details", "payment_terms", "email_from",
                     "reply_to", "logo_mime")
    }


class ListPreference(Base):
    """The columns one staff user chose for one list (by the list's slug), in order."""

    __tablename__ = "list_preference"
    __table_args__ = (UniqueConstraint("user_id", "view"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    view: Mapped[str] = mapped_column(String(40))
    columns: Mapped[list] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    __personal_data__ = {"view": KEEP, "columns": KEEP}


class SavedFilter(Base):
    """A named list query of one staff user: the list's slug and its query string."""

    __tablename__ = "saved_filter"
    __table_args__ = (UniqueConstraint("user_id", "view", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    view: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(80))
    query: Mapped[str] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    # Staff's own filters; a search term in one is staff's working note, not a record of
    # the customer, and is not linked to any customer row.
    __personal_data__ = {"view": KEEP, "name": KEEP, "query": KEEP}


class StoredCount(Base):
    """A count too costly to make on every page view (the possible-duplicate groups of a
    million customers: a full grouping scan), made by ``flask crm count-figures`` (nightly)
    and shown with the time it was made."""

    __tablename__ = "stored_count"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)
    counted_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __personal_data__ = {"name": KEEP}
