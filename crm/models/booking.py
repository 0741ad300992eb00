"""Leads (inquiries) and bookings (jobs, gigs)."""

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, Date, DateTime, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.models.base import Base, Money, Versioned, length_check, long_text
from crm.models.customer import Customer, _in
from crm.models.property import WorkAddress
from crm.personal_data import ERASE, KEEP, erase

# The pipeline: the open stages, then won (converted) or lost (with a reason).
LEAD_STATUSES = ("new", "contacted", "quoted", "won", "lost")
OPEN_LEAD_STATUSES = ("new", "contacted", "quoted")
# The conditions of the partial indexes below, as SQL text. Queries use the very same text
# (``open_lead``, ``to_review``): SQLite uses a partial index only when it can see that the
# query's WHERE implies the index's, which a bound parameter (status IN (?, ?, ?)) hides.
# Spelled with OR rather than IN: PostgreSQL prints an IN list back in a form that reads
# differently once re-made (the demo seeder re-creates indexes from their printed form).
OPEN_LEAD_SQL = "(" + " OR ".join(f"status = '{s}'" for s in OPEN_LEAD_STATUSES) + ")"
TO_REVIEW_SQL = "attribution = 'related' AND reviewed_at IS NULL"
BOOKING_STATUSES = ("enquiry", "confirmed", "completed", "cancelled")
ATTRIBUTIONS = ("exact", "related", "manual")


def open_lead():
    """The open stages, as the partial index says them (see ``OPEN_LEAD_SQL``)."""
    return text(OPEN_LEAD_SQL)


def awaiting_review():
    """Related bookings not reviewed yet, as the partial index says it."""
    return text(TO_REVIEW_SQL)


class Lead(Versioned, Base):
    __tablename__ = "lead"
    __table_args__ = (CheckConstraint(_in("status", LEAD_STATUSES), name="status"),
                      length_check("lead", "message"),
                      # The leads of one status, newest first (the dashboard counts new ones).
                      Index("ix_lead_status_created_at", "status", "created_at"),
                      CheckConstraint("status != 'lost' OR lost_reason IS NOT NULL",
                                      name="lost_reason"),
                      # Follow-ups due, over the open leads only (the board's top row).
                      Index("ix_lead_open_follow_up_on", "follow_up_on", "id",
                            sqlite_where=text(OPEN_LEAD_SQL),
                            postgresql_where=text(OPEN_LEAD_SQL)),
                      # A person's own leads by stage, newest first (the board's "Mine").
                      Index("ix_lead_owner_id_status_created_at", "owner_id", "status",
                            "created_at"))

    first_name: Mapped[str | None] = mapped_column(String(100))
    surname: Mapped[str] = mapped_column(String(100))
    company_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    phone: Mapped[str | None] = mapped_column(String(20))
    source: Mapped[str | None] = mapped_column(String(100))
    message: Mapped[str | None] = mapped_column(**long_text("lead", "message"))
    status: Mapped[str] = mapped_column(String(12), default="new", server_default="new")
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"), index=True)
    # What the inquiry is for ("wedding, 120 guests") and the day the person would like.
    purpose: Mapped[str | None] = mapped_column(String(200))
    preferred_date: Mapped[date | None] = mapped_column(Date)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    follow_up_on: Mapped[date | None] = mapped_column(Date)
    lost_reason: Mapped[str | None] = mapped_column(String(200))
    # What staff learn while working the lead ("called, wants the 3-piece line-up").
    notes: Mapped[str | None] = mapped_column(String(2000))

    # Redaction wipes the leads of the customer and those sent from its e-mail address.
    __personal_data__ = {
        "first_name": ERASE,
        "surname": erase("[redacted]"),
        "company_name": ERASE,
        "email": ERASE,
        "phone": ERASE,
        "source": ERASE,  # free text, like the customer's advertising source
        "message": ERASE,
        "status": KEEP,
        "purpose": ERASE,
        "lost_reason": ERASE,
        "notes": ERASE,
    }

    customer: Mapped[Customer | None] = relationship()
    owner = relationship("User")

    def __str__(self) -> str:
        return " ".join(p for p in (self.first_name, self.surname) if p)


class Booking(Versioned, Base):
    __tablename__ = "booking"
    __table_args__ = (
        CheckConstraint(_in("status", BOOKING_STATUSES), name="status"),
        CheckConstraint(_in("attribution", ATTRIBUTIONS), name="attribution"),
        CheckConstraint("ends_at IS NULL OR ends_at >= starts_at", name="dates"),
        CheckConstraint("value IS NULL OR value >= 0", name="value"),
        Index("ix_booking_customer_id_starts_at", "customer_id", "starts_at"),
        # What is coming up, across customers (the dashboard's next bookings).
        Index("ix_booking_starts_at", "starts_at"),
        # Related bookings still to review (a partial index: the few, never a scan).
        Index("ix_booking_to_review", "id",
              sqlite_where=text(TO_REVIEW_SQL), postgresql_where=text(TO_REVIEW_SQL)),
        # Bookings not attached to a customer yet, by e-mail (an enquiry waits for one).
        Index("ix_booking_unattached_email", "contact_email",
              sqlite_where=text("customer_id IS NULL"),
              postgresql_where=text("customer_id IS NULL")),
    )

    reference: Mapped[str] = mapped_column(String(20), unique=True)
    # Empty while an enquiry-status booking waits for a customer (crm.actions.attribution).
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"))
    work_address_id: Mapped[int | None] = mapped_column(ForeignKey("work_address.id"), index=True)
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("lead.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(12), default="enquiry", server_default="enquiry")
    starts_at: Mapped[datetime] = mapped_column(DateTime)
    ends_at: Mapped[datetime | None] = mapped_column(DateTime)
    value: Mapped[Decimal | None] = mapped_column(Money)
    contact_email: Mapped[str | None] = mapped_column(String(254), index=True)
    attribution: Mapped[str] = mapped_column(
        String(10), default="manual", server_default="manual"
    )
    # The person who booked, as they gave their name (attribution compares it with the
    # customer's), and when staff confirmed or detached a related attribution.
    contact_first_name: Mapped[str | None] = mapped_column(String(100))
    contact_surname: Mapped[str | None] = mapped_column(String(100))
    contact_phone: Mapped[str | None] = mapped_column(String(20))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime)

    # The title is free text ("Smith wedding"); the reference, dates and value are kept.
    __personal_data__ = {
        "reference": KEEP,
        "title": erase("[redacted]"),
        "status": KEEP,
        "contact_email": ERASE,
        "contact_first_name": ERASE,
        "contact_surname": ERASE,
        "contact_phone": ERASE,
        "attribution": KEEP,
    }

    customer: Mapped[Customer | None] = relationship()
    work_address: Mapped[WorkAddress | None] = relationship()
    lead: Mapped[Lead | None] = relationship()

    def __str__(self) -> str:
        return f"{self.reference} {self.title}"
