"""The customer's record page as data (its read model): status and pinned notes, contacts,
branches, work addresses, bookings (ongoing and history, paged, at one address or all), notes,
possible duplicates, the money (for roles that may see it) and a timeline built from the
audit trail and the records. Also a work address's own page (``work_address_context``): its
bookings, notes and service reminders.

Each section is one query with a limit, so the page costs the same number of statements
whatever the customer has attached (``tests/integration/test_record_page.py`` counts them).
The admin's record page renders it; it reads only, and imports no view.
"""

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import case, func, literal, or_, select, union_all
from sqlalchemy.orm import Session, joinedload

from crm.actions.duplicates import duplicates_of
from crm.audit_sentences import Ref, sentence
from crm.formatting import local_now, money
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
    ServiceReminder,
    User,
    WorkAddress,
)
from crm.permissions import can, hidden_verbs

SECTION_LIMIT = 50
TIMELINE_KINDS = ("all", "actions", "notes", "bookings", "money")
ONGOING = ("enquiry", "confirmed")
BOOKING_PAGE = 100  # bookings per page, in each of the two parts of the bookings tab
MAX_PAGE = 10_000  # a page number past this is read as this (an offset the database can take)
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


@dataclass
class BookingPart:
    """One part of a bookings tab ("Ongoing" or "History"): the rows of its page, the page
    number and whether there is a next one."""

    rows: list = field(default_factory=list)
    page: int = 1
    more: bool = False


@dataclass
class Bookings:
    """The bookings tab: where they are (``at``: "all", "own" for the customer's own address,
    or a work address's id as text), its two parts, and, for the timeline, the customer's
    newest bookings whatever is chosen."""

    at: str
    ongoing: BookingPart
    history: BookingPart
    recent: list = field(default_factory=list)

    @property
    def shown(self) -> int:
        return len(self.ongoing.rows) + len(self.history.rows)

    @property
    def more(self) -> bool:
        return self.ongoing.more or self.history.more or self.ongoing.page > 1 or \
            self.history.page > 1


def page_number(value) -> int:
    """A page number from a request: digits from 1 to ``MAX_PAGE``, anything else 1."""
    text = str(value or "").strip()
    if not (text.isascii() and text.isdigit()):
        return 1
    return min(max(int(text[:6]), 1), MAX_PAGE)


def booking_place(value) -> str:
    """Where the bookings tab looks, from a request: "all", "own" or a work address's id."""
    text = str(value or "").strip()
    if text in ("all", "own"):
        return text
    if text.isascii() and text.isdigit() and len(text) <= 10 and 0 < int(text) < 2**31:
        return str(int(text))
    return "all"


def bookings(session: Session, *, customer_id: int | None = None,
             work_address_id: int | None = None, at: str = "all", ongoing_page: int = 1,
             history_page: int = 1, recent: int = 0, today: date | None = None) -> Bookings:
    """The bookings of a customer (``customer_id``) or of a work address
    (``work_address_id``), in two parts: ongoing (not completed or cancelled, and ending
    today or later; soonest first) and history (the rest, newest first), each a page of up
    to ``BOOKING_PAGE`` rows. ``at`` narrows a customer's to its own address ("own") or to
    one work address (its id). With ``recent``, also the customer's ``recent`` newest
    bookings, for the timeline.

    One statement whatever is asked: the parts are limited subqueries joined by UNION ALL,
    so the page costs the same with three bookings or three thousand."""
    today = today or local_now().date()
    start_of_today = datetime.combine(today, datetime.min.time())
    where = []
    if customer_id is not None:
        where.append(Booking.customer_id == customer_id)
    if work_address_id is not None:
        where.append(Booking.work_address_id == work_address_id)
    if at == "own":
        where.append(Booking.work_address_id.is_(None))
    elif at != "all":
        where.append(Booking.work_address_id == int(at))
    ongoing = Booking.status.in_(ONGOING) & (
        func.coalesce(Booking.ends_at, Booking.starts_at) >= start_of_today)

    def part(n, *criteria, order, page=1, size=BOOKING_PAGE + 1):
        rows = (select(Booking.id.label("id"), literal(n).label("part")).where(*criteria)
                .order_by(*order).limit(size).offset((page - 1) * BOOKING_PAGE))
        return select(rows.subquery())

    soonest = (Booking.starts_at.asc(), Booking.id.asc())
    newest = (Booking.starts_at.desc(), Booking.id.desc())
    parts = [part(0, *where, ongoing, order=soonest, page=ongoing_page),
             part(1, *where, ~ongoing, order=newest, page=history_page)]
    if recent and customer_id is not None:
        parts.append(part(2, Booking.customer_id == customer_id, size=recent,
                          order=(Booking.created_at.desc(), Booking.id.desc())))
    chosen = union_all(*parts).subquery()
    query = select(Booking, chosen.c.part).join(chosen, chosen.c.id == Booking.id)
    if work_address_id is None:  # each row says where it is: joined, not looked up per row
        query = query.options(joinedload(Booking.work_address))
    rows = session.execute(query).all()
    found: dict[int, list] = {0: [], 1: [], 2: []}
    for booking, n in rows:
        found[n].append(booking)
    found[0].sort(key=lambda b: (b.starts_at, b.id))
    found[1].sort(key=lambda b: (b.starts_at, b.id), reverse=True)
    found[2].sort(key=lambda b: (b.created_at, b.id), reverse=True)
    return Bookings(
        at=at,
        ongoing=BookingPart(found[0][:BOOKING_PAGE], ongoing_page, len(found[0]) > BOOKING_PAGE),
        history=BookingPart(found[1][:BOOKING_PAGE], history_page, len(found[1]) > BOOKING_PAGE),
        recent=found[2],
    )


def record_context(session: Session, customer: Customer, role: str, timeline_kind: str,
                   at: str = "all", ongoing_page: int = 1, history_page: int = 1) -> dict:
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
    booked = bookings(session, customer_id=key, at=at, ongoing_page=ongoing_page,
                      history_page=history_page, recent=SECTION_LIMIT)
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
                 for b in booked.recent]
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
        "pinned": pinned, "notes": notes, "bookings": booked,
        "branches": branches, "addresses": addresses, "timeline": timeline[:SECTION_LIMIT],
        "timeline_kind": timeline_kind, "timeline_kinds": TIMELINE_KINDS if finance else
        tuple(k for k in TIMELINE_KINDS if k != "money"),
        "duplicates": _duplicates(session, key) if customer.redacted_at is None else [],
        "merges": merges, "money": money, "finance": finance,
        "portal": _portal_account(session, key) if can(role, "portal_invite") else None,
        "open_questions": _open_questions(session, key) if finance else [],
        "do_not_work": any(n.do_not_work_with_again for n in pinned),
    }


def work_address_context(session: Session, address: WorkAddress, role: str, *,
                         ongoing_page: int = 1, history_page: int = 1) -> dict:
    """What a work address's page shows to ``role``: its customer and landlord, its bookings
    (ongoing and history, paged as on the record page; values only for roles that see
    money), its notes (newest first, with their authors) and its service reminders (those
    still due first, soonest first). A statement per section, whatever the address has; the
    customer and landlord come loaded with the address (the details view's ``get_one``)."""
    notes = session.execute(
        select(Note, User.name).outerjoin(User, User.id == Note.author_id)
        .where(Note.work_address_id == address.id)
        .order_by(Note.created_at.desc(), Note.id.desc()).limit(SECTION_LIMIT)
    ).all()
    reminders = session.scalars(
        select(ServiceReminder).where(ServiceReminder.work_address_id == address.id)
        .order_by(case((ServiceReminder.status == "due", 0), else_=1),
                  ServiceReminder.due_on, ServiceReminder.id).limit(SECTION_LIMIT)
    ).all()
    return {
        "customer": address.customer, "landlord": address.landlord,
        "bookings": bookings(session, work_address_id=address.id, ongoing_page=ongoing_page,
                             history_page=history_page),
        "notes": notes, "reminders": reminders, "finance": can(role, "see_money"),
        "limit": SECTION_LIMIT,
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
