"""What the home page shows, read in a handful of indexed or stored reads whatever the size
of the database (every figure is index-backed or stored; see ``crm.ledger_totals`` for the
money and ``crm.actions.stored_counts`` for the costly counts).

- money (owner and admin): what is owed, overdue and held as account credit, aging by due
  date, invoiced and received for twelve months, the ten largest overdue balances;
- attention: counts of the lists that need someone (draft invoices, reminders due, open
  portal questions, possible duplicates), each counted up to ``CAP`` ("1,000+") or, for the
  duplicates, as last stored.

Which parts a role gets is the caller's choice (the screen knows the role's capabilities);
this module reads only what it is asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm.actions.attribution import to_review
from crm.actions.dormant import due_reminders_query
from crm.actions.stored_counts import stored_counts
from crm.ledger_totals import BusinessFigures, business_figures
from crm.models import Booking, Customer, Invoice, Lead, Note, ServiceReminder
from crm.models.booking import open_lead

CAP = 1000  # counts above this read "1,000+"
TOP = 10
UPCOMING = 8
OPEN_BOOKINGS = ("enquiry", "confirmed")


@dataclass(frozen=True)
class Count:
    key: str
    value: int
    capped: bool = False  # there are more than ``value``
    counted_at: datetime | None = None  # stored counts: when it was made


@dataclass(frozen=True)
class Overdue:
    id: int
    reference: str
    name: str
    status: str
    overdue_amount: Decimal
    oldest_overdue_on: date | None
    balance: Decimal


@dataclass(frozen=True)
class Upcoming:
    id: int
    reference: str
    title: str
    status: str
    starts_at: datetime
    customer_id: int
    customer_reference: str
    customer_name: str


@dataclass(frozen=True)
class Dashboard:
    today: date
    figures: BusinessFigures | None
    largest_overdue: list[Overdue] | None
    counts: dict[str, Count]
    upcoming: list[Upcoming]


def _capped(session: Session, ids) -> tuple[int, bool]:
    """COUNT of a subquery of ids, stopping after ``CAP`` + 1 rows."""
    found = session.execute(select(func.count()).select_from(ids.limit(CAP + 1).subquery()))
    value = found.scalar_one()
    return min(value, CAP), value > CAP


def _draft_invoices(session: Session, today: date) -> Count:
    # The partial index of drafts (ix_invoice_draft_issue_date_id) answers it.
    return Count("draft_invoices", *_capped(
        session, select(Invoice.id).where(Invoice.status == "draft")))


def _due_reminders(session: Session, today: date) -> Count:
    due = due_reminders_query(until=today).with_only_columns(ServiceReminder.id).order_by(None)
    return Count("due_reminders", *_capped(session, due))


def _open_questions(session: Session, today: date) -> Count:
    # ix_note_kind_answered_at_created_at answers it.
    return Count("portal_questions", *_capped(
        session, select(Note.id).where(Note.kind == "portal", Note.answered_at.is_(None))))


def _new_leads(session: Session, today: date) -> Count:
    # ix_lead_status_created_at answers it.
    return Count("new_leads", *_capped(session, select(Lead.id).where(Lead.status == "new")))


def _follow_ups(session: Session, today: date) -> Count:
    # ix_lead_open_follow_up_on (partial on the open stages) answers it.
    return Count("follow_ups", *_capped(session, select(Lead.id).where(
        open_lead(), Lead.follow_up_on <= today)))


def _related_bookings(session: Session, today: date) -> Count:
    # ix_booking_to_review (partial on related bookings not reviewed) answers it.
    return Count("related_bookings", *_capped(session, to_review().with_only_columns(
        Booking.id).order_by(None)))


def _week_start(today: date) -> datetime:
    return datetime.combine(today, time.min)


def _bookings_this_week(session: Session, today: date) -> Count:
    """Open bookings starting today or in the six days after (ix_booking_starts_at)."""
    start = _week_start(today)
    return Count("bookings_this_week", *_capped(session, select(Booking.id).where(
        Booking.starts_at >= start, Booking.starts_at < start + timedelta(days=7),
        Booking.status.in_(OPEN_BOOKINGS))))


def _duplicate_groups(session: Session, today: date) -> Count | None:
    counted = stored_counts(session).get("duplicate_groups")
    if counted is None:
        return None  # never counted: the page says how to count them
    return Count("duplicate_groups", counted.value, counted_at=counted.counted_at)


COUNTS = {
    "new_leads": _new_leads,
    "follow_ups": _follow_ups,
    "related_bookings": _related_bookings,
    "bookings_this_week": _bookings_this_week,
    "draft_invoices": _draft_invoices,
    "due_reminders": _due_reminders,
    "portal_questions": _open_questions,
    "duplicate_groups": _duplicate_groups,
}


def largest_overdue(session: Session, limit: int = TOP) -> list[Overdue]:
    """The customers owing the most overdue, largest first: the backward end of
    ``ix_customer_overdue_amount_id`` (partial on live, unmerged customers)."""
    rows = session.execute(
        select(Customer)
        .where(Customer.merged_into_id.is_(None), Customer.overdue_amount > 0)
        .order_by(Customer.overdue_amount.desc(), Customer.id.desc())
        .limit(limit)
    ).scalars()
    return [Overdue(c.id, c.reference, c.display_name, c.status, c.overdue_amount,
                    c.oldest_overdue_on, c.balance) for c in rows]


def upcoming_bookings(session: Session, today: date, limit: int = UPCOMING) -> list[Upcoming]:
    """The next open bookings from the start of today, soonest first (ix_booking_starts_at),
    with their customers in the same statement."""
    rows = session.execute(
        select(Booking.id, Booking.reference, Booking.title, Booking.status, Booking.starts_at,
               Customer.id.label("customer_id"), Customer.reference.label("customer_reference"),
               Customer)
        .join(Customer, Customer.id == Booking.customer_id)
        .where(Booking.starts_at >= _week_start(today), Booking.status.in_(OPEN_BOOKINGS))
        .order_by(Booking.starts_at, Booking.id)
        .limit(limit)
    )
    return [Upcoming(r.id, r.reference, r.title, r.status, r.starts_at, r.customer_id,
                     r.customer_reference, r.Customer.display_name) for r in rows]


def dashboard(session: Session, *, money: bool, counts: tuple[str, ...],
              today: date | None = None) -> Dashboard:
    """The home page's figures: the money ones when ``money``, and the ``counts`` named
    (keys of ``COUNTS``) in that order."""
    today = today or date.today()
    made = {}
    for key in counts:
        count = COUNTS[key](session, today)
        if count is not None:
            made[key] = count
    return Dashboard(
        today=today,
        figures=business_figures(session, today) if money else None,
        largest_overdue=largest_overdue(session) if money else None,
        counts=made,
        upcoming=upcoming_bookings(session, today),
    )
