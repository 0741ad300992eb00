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
from crm.audit_sentences import Ref, sentence
from crm.formatting import money
from crm.models import (
    AuditEvent,
    Booking,
    Branch,
    CreditNote,
    Customer,
    Invoice,
    Note,
    Payment,
    PortalAccount,
    User,
    WorkAddress,
)
from crm.permissions import can, hidden_verbs

SECTION_LIMIT = 50
TIMELINE_KINDS = ("all", "actions", "notes", "bookings", "money")
ONGOING = ("enquiry", "confirmed")
MONEY_MODELS = {"invoice": "Invoice", "credit note": "CreditNote", "payment": "Payment"}


@dataclass(frozen=True)
class Entry:
    """One line of the timeline. ``when`` is a stored time (shown to the minute) or, for a
    document that has only a date, a date (shown without a time); ``parts`` is its sentence
    (text and ``Ref``s, see ``crm.audit_sentences``)."""

    when: datetime | date
    kind: str  # actions / notes / bookings / money
    parts: tuple
    who: str = ""

    @property
    def text(self) -> str:
        return "".join(p if isinstance(p, str) else p.text for p in self.parts)

    @property
    def timed(self) -> bool:
        return isinstance(self.when, datetime)


def _at(value) -> datetime:
    return value if isinstance(value, datetime) else datetime.combine(value, datetime.max.time())


def _money_entry(m) -> Entry:
    number = m.number or ("payment" if m.kind == "payment" else f"draft #{m.id}")
    status = m.status if m.kind != "payment" else f"by {m.status.replace('_', ' ')}"
    return Entry(m.on, "money", (f"{m.kind} ", Ref(number, MONEY_MODELS[m.kind], m.id),
                                 f" {money(m.amount)} ({status})"))


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
    # Who did it by name where the actor is a colleague (one statement: joined, not looked up).
    rows = session.execute(
        select(AuditEvent, User.name).outerjoin(User, User.id == AuditEvent.actor_id)
        .where(AuditEvent.subject_type == "Customer", AuditEvent.subject_id == key,
               AuditEvent.verb.not_in(hidden_verbs(role)))
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc()).limit(SECTION_LIMIT)
    ).all()
    events = [event for event, _ in rows]
    described = ((e, name, sentence(e, role)) for e, name in rows)
    timeline = [Entry(e.created_at, "actions", tuple(parts), name or e.actor_label)
                for e, name, parts in described if parts is not None]
    timeline += [Entry(n.created_at, "notes", (f"{n.kind}: {n}",)) for n in notes]
    timeline += [Entry(b.created_at, "bookings",
                       ("booking ", Ref(b.reference, "Booking", b.id), f" {b.title} ({b.status})"))
                 for b in bookings]
    money = _money(session, key) if finance else []
    timeline += [_money_entry(m) for m in money]
    if timeline_kind != "all":
        timeline = [e for e in timeline if e.kind == timeline_kind]
    timeline.sort(key=lambda e: _at(e.when), reverse=True)
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
        "portal": _portal_account(session, key) if can(role, "portal_invite") else None,
        "open_questions": _open_questions(session, key) if finance else [],
        "do_not_work": any(n.do_not_work_with_again for n in pinned),
    }


def _money(session, key: int) -> list:
    """The customer's documents and payments, newest first, in one statement."""
    invoices = select(
        literal("invoice").label("kind"), Invoice.id.label("id"), Invoice.number.label("number"),
        Invoice.issue_date.label("on"), Invoice.total.label("amount"),
        Invoice.status.label("status"), Invoice.outstanding.label("outstanding"),
    ).where(Invoice.customer_id == key)
    notes = select(
        literal("credit note"), CreditNote.id, CreditNote.number, CreditNote.issue_date,
        CreditNote.total, CreditNote.status, literal(None),
    ).where(CreditNote.customer_id == key)
    payments = select(
        literal("payment"), Payment.id, Payment.reference, Payment.received_on, Payment.amount,
        Payment.method, literal(None),
    ).where(Payment.customer_id == key)
    union = union_all(invoices, notes, payments).subquery()
    return session.execute(
        select(union).order_by(union.c.on.desc(), union.c.id.desc()).limit(SECTION_LIMIT)
    ).all()


def _open_questions(session, key: int) -> list:
    """The customer's questions from the portal still waiting for an answer (about invoices:
    money, so for the roles that see it)."""
    return session.execute(
        select(Note.id, Note.created_at, Note.body, Invoice.number)
        .outerjoin(Invoice, Invoice.id == Note.invoice_id)
        .where(Note.customer_id == key, Note.kind == "portal", Note.answered_at.is_(None))
        .order_by(Note.created_at).limit(10)
    ).all()


def _portal_account(session, key: int) -> PortalAccount | None:
    return session.execute(
        select(PortalAccount).where(PortalAccount.customer_id == key)).scalar_one_or_none()


def _duplicates(session, key: int) -> list:
    return duplicates_of(session, customer_id=key, limit=10)


def pinned_notes(session: Session, customer_id: int, limit: int = 10) -> list[Note]:
    """The customer's pinned notes, newest first: the warning every screen of the customer
    shows (the record page takes them from ``record_context``, the edit form from here)."""
    return session.scalars(
        select(Note).where(Note.customer_id == customer_id, Note.important.is_(True))
        .order_by(Note.created_at.desc()).limit(limit)
    ).all()
