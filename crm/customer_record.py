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
    PortalAccount,
    WorkAddress,
)
from crm.permissions import can, hidden_verbs, visible_fields

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


FIELD_LABELS = {
    "email": "e-mail",
    "email_opt_in": "e-mail consent",
    "sms_opt_in": "text-message consent",
    "post_opt_in": "post consent",
    "customer_type": "type",
    "third_party_reference": "accounts reference",
    "creditor_days": "credit days",
    "is_primary": "primary contact",
}
RELATED_MODELS = {"contacts": "Contact"}


def _label(name: str) -> str:
    return FIELD_LABELS.get(name, name.replace("_", " "))


def _edit_text(event: AuditEvent, role: str) -> str | None:
    """"edited county, postcode; contacts: 1 added, e-mail changed", naming only the fields
    ``role`` may see; None when nothing it may see changed."""
    details = event.details or {}
    parts = []
    fields = visible_fields(event.subject_type, details.get("fields", []), role)
    if fields:
        parts.append(", ".join(_label(f) for f in fields))
    for name, change in (details.get("related") or {}).items():
        said = [f"{change[k]} {k}" for k in ("added", "removed") if change.get(k)]
        seen = visible_fields(RELATED_MODELS.get(name, name), change.get("fields", []), role)
        if seen:
            said.append(", ".join(_label(f) for f in seen) + " changed")
        if said:
            parts.append(f"{name}: " + ", ".join(said))
    if not parts:
        return None
    return ("created with " if event.verb == "create" else "edited ") + "; ".join(parts)


def _describe(event: AuditEvent, role: str) -> str | None:
    """The timeline's sentence for ``event`` as ``role`` may read it (None: nothing)."""
    details = event.details or {}
    if event.verb == "merge":
        merged = ", ".join(details.get("duplicates", []))
        return f"merged {merged} into this customer" if merged else "merge"
    if event.verb in ("create", "update") and ("fields" in details or "related" in details):
        text = _edit_text(event, role)
        if text is None and event.verb == "update":
            return None  # only fields the role may not see changed
        return text or "created"
    return event.verb.replace("_", " ")


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
        select(AuditEvent).where(AuditEvent.subject_type == "Customer", AuditEvent.subject_id == key,
                                 AuditEvent.verb.not_in(hidden_verbs(role)))
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc()).limit(SECTION_LIMIT)
    ).all()
    described = ((e, _describe(e, role)) for e in events)
    timeline = [Entry(e.created_at, "actions", text, e.actor_label)
                for e, text in described if text is not None]
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
        "portal": _portal_account(session, key) if can(role, "portal_invite") else None,
        "open_questions": _open_questions(session, key) if finance else [],
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
