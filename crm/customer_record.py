"""The customer's record page as data (its read model): status and pinned notes, contacts,
branches, work addresses, bookings (ongoing and history), notes, possible duplicates, the
money (for roles that may see it) and a timeline built from the audit trail and the records.

Each section is one query with a limit, so the page costs the same number of statements
whatever the customer has attached (``tests/integration/test_record_page.py`` counts them).
The admin's record page renders it; it reads only, and imports no view.
"""

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import literal, or_, select, union_all
from sqlalchemy.orm import Session

from crm.actions.duplicates import duplicates_of
from crm.models import (
    AuditEvent,
    Booking,
    Branch,
    CreditNote,
    Customer,
    Invoice,
    Note,
    Payment,
    WorkAddress,
)
from crm.permissions import can

SECTION_LIMIT = 50
TIMELINE_KINDS = ("all", "actions", "notes", "bookings", "money")
ONGOING = ("enquiry", "confirmed")


@dataclass(frozen=True)
class Entry:
    when: datetime
    kind: str  # actions / notes / bookings / money
    text: str
    who: str = ""


def _at(value) -> datetime:
    return value if isinstance(value, datetime) else datetime.combine(value, datetime.min.time())


def _describe(event: AuditEvent) -> str:
    verb = event.verb.replace("_", " ")
    details = event.details or {}
    if event.verb == "merge":
        merged = ", ".join(details.get("duplicates", []))
        return f"merged {merged} into this customer" if merged else "merge"
    if event.verb == "update" and details.get("fields"):
        return "edited " + ", ".join(details["fields"])
    return verb


def record_context(session: Session, customer: Customer, role: str, timeline_kind: str) -> dict:
    """Everything the record page shows of ``customer`` to ``role``: one query per section,
    each with a limit, so the page costs the same whatever the customer has attached."""
    key = customer.id
    finance = can(role, "see_money")
    # Pinned notes first, so that old pinned notes are never cut off by the limit.
    notes = session.scalars(
        select(Note).where(Note.customer_id == key)
        .order_by(Note.important.desc(), Note.created_at.desc(), Note.id.desc())
        .limit(SECTION_LIMIT)
    ).all()
    pinned = [n for n in notes if n.important]
    notes = sorted(notes, key=lambda n: (n.created_at, n.id), reverse=True)
    bookings = session.scalars(
        select(Booking).where(Booking.customer_id == key)
        .order_by(Booking.starts_at.desc()).limit(SECTION_LIMIT)
    ).all()
    today = datetime.combine(date.today(), datetime.min.time())
    ongoing = [b for b in bookings if b.status in ONGOING and (b.ends_at or b.starts_at) >= today]
    history = [b for b in bookings if b not in ongoing]
    branches = session.scalars(
        select(Branch).where(Branch.customer_id == key).order_by(Branch.id).limit(SECTION_LIMIT)
    ).all()
    addresses = session.scalars(
        select(WorkAddress).where(or_(WorkAddress.customer_id == key, WorkAddress.landlord_id == key))
        .order_by(WorkAddress.id).limit(SECTION_LIMIT)
    ).all()
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.subject_type == "Customer", AuditEvent.subject_id == key)
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc()).limit(SECTION_LIMIT)
    ).all()
    timeline = [Entry(e.created_at, "actions", _describe(e), e.actor_label) for e in events]
    timeline += [Entry(n.created_at, "notes", f"{n.kind}: {n}") for n in notes]
    timeline += [Entry(b.created_at, "bookings", f"booking {b.reference} {b.title} ({b.status})")
                 for b in bookings]
    money = _money(session, key) if finance else []
    timeline += [Entry(_at(m.on), "money", f"{m.kind} {m.number or ''} {m.amount:,.2f} ({m.status})")
                 for m in money]
    if timeline_kind != "all":
        timeline = [e for e in timeline if e.kind == timeline_kind]
    timeline.sort(key=lambda e: e.when, reverse=True)
    merges = [
        e for e in events
        if can(role, "merge") and e.verb == "merge" and (e.details or {}).get("merge_id")
    ]
    return {
        "pinned": pinned, "notes": notes, "ongoing": ongoing, "history": history,
        "branches": branches, "addresses": addresses, "timeline": timeline[:SECTION_LIMIT],
        "timeline_kind": timeline_kind, "timeline_kinds": TIMELINE_KINDS if finance else
        tuple(k for k in TIMELINE_KINDS if k != "money"),
        "duplicates": _duplicates(session, key) if customer.redacted_at is None else [],
        "merges": merges, "money": money, "finance": finance,
        "do_not_work": any(n.do_not_work_with_again for n in pinned),
    }


def _money(session, key: int) -> list:
    """The customer's documents and payments, newest first, in one statement."""
    invoices = select(
        literal("invoice").label("kind"), Invoice.number.label("number"),
        Invoice.issue_date.label("on"), Invoice.total.label("amount"),
        Invoice.status.label("status"), Invoice.outstanding.label("outstanding"),
    ).where(Invoice.customer_id == key)
    notes = select(
        literal("credit note"), CreditNote.number, CreditNote.issue_date, CreditNote.total,
        CreditNote.status, literal(None),
    ).where(CreditNote.customer_id == key)
    payments = select(
        literal("payment"), Payment.reference, Payment.received_on, Payment.amount,
        Payment.method, literal(None),
    ).where(Payment.customer_id == key)
    union = union_all(invoices, notes, payments).subquery()
    return session.execute(
        select(union).order_by(union.c.on.desc()).limit(SECTION_LIMIT)
    ).all()


def _duplicates(session, key: int) -> list:
    return duplicates_of(session, customer_id=key, limit=10)


def pinned_notes(session: Session, customer_id: int, limit: int = 10) -> list[Note]:
    """The customer's pinned notes, newest first: the warning every screen of the customer
    shows (the record page takes them from ``record_context``, the edit form from here)."""
    return session.scalars(
        select(Note).where(Note.customer_id == customer_id, Note.important.is_(True))
        .order_by(Note.created_at.desc()).limit(limit)
    ).all()
