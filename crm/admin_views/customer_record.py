"""The customer's record page, the screen a coordinator lives in: status and the pinned notes
as a banner, contacts, branches, work addresses, bookings (ongoing and history), notes with
pinning, possible duplicates, and a timeline built from the audit trail and the records.
Money (balance, invoices, payments) only for owners and admins.

Each section is one query with a limit, so the page costs the same number of statements
whatever the customer has attached. A merged-away customer's old URL leads to its survivor.
"""

from dataclasses import dataclass
from datetime import date, datetime

from flask import abort, flash, redirect, request
from flask_admin import expose
from flask_admin.helpers import get_redirect_target
from sqlalchemy import literal, or_, select, union_all

from crm.admin_views.base import FINANCE, record_id, run_action
from crm.extensions import db
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


def record_context(session, customer: Customer, role: str, timeline_kind: str) -> dict:
    key = customer.id
    finance = role in FINANCE
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
        e for e in events if finance and e.verb == "merge" and (e.details or {}).get("merge_id")
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
    from crm.actions.duplicates import duplicates_of

    return duplicates_of(session, customer_id=key, limit=10)


class CustomerRecordMixin:
    details_template = "admin/customer/details.html"

    def _tombstone_redirect(self, page: str):
        """The old URL of a merged-away customer leads to the customer it was merged into."""
        key = request.args.get("id", type=record_id)
        if key is None:
            return None
        row = db.session.execute(
            select(Customer.reference, Customer.merged_into_id).where(Customer.id == key)
        ).first()
        if row is None or row.merged_into_id is None:
            return None
        from crm.actions.merge import live_customer_id

        survivor = live_customer_id(db.session, key)
        if survivor is None:
            return None
        target = db.session.get(Customer, survivor)
        flash(f"{row.reference} was merged into {target.reference}: showing {target.reference}.",
              "info")
        return redirect(self.get_url(page, id=survivor))

    @expose("/details/")
    def details_view(self):
        """Flask-Admin's details view, plus: a merged-away id leads to its survivor (looked
        up only when no live record has the id, so a normal page costs nothing extra)."""
        return_url = get_redirect_target() or self.get_url(".index_view")
        model = self.get_one(request.args.get("id", ""))
        if model is None:
            moved = self._tombstone_redirect(".details_view")
            if moved:
                return moved
            flash("Record does not exist.", "error")
            return redirect(return_url)
        return self.render(self.details_template, model=model,
                           details_columns=self._details_columns,
                           get_value=self.get_detail_value, return_url=return_url)

    @expose("/edit/", methods=("GET", "POST"))
    def edit_view(self):
        moved = self._tombstone_redirect(".edit_view")
        if moved:
            return moved
        key = request.args.get("id", type=record_id)
        customer = db.session.get(Customer, key) if key else None
        if customer is not None and customer.redacted_at is not None:
            flash(f"{customer.reference} has been redacted; it can no longer be edited.", "error")
            return redirect(self.get_url(".details_view", id=key))
        return super().edit_view()

    def render(self, template, **kwargs):
        model = kwargs.get("model")
        if template == self.details_template and isinstance(model, Customer):
            kind = request.args.get("timeline", "all")
            kwargs["record"] = record_context(
                db.session, model, self.role, kind if kind in TIMELINE_KINDS else "all"
            )
        elif template == self.edit_template and isinstance(model, Customer) and model.id:
            # The pinned warning shows on every screen of the customer, the form included.
            kwargs["pinned"] = db.session.scalars(
                select(Note).where(Note.customer_id == model.id, Note.important.is_(True))
                .order_by(Note.created_at.desc()).limit(10)
            ).all()
        return super().render(template, **kwargs)

    # --- record-page buttons ---------------------------------------------------------------
    def _back(self, key):
        return redirect(self.get_url(".details_view", id=key))

    def _report(self, result, error) -> None:
        if error:
            flash(error, "error")
        else:
            flash(result.message or "Done.", "success")
            for skip in result.skipped:
                flash(str(skip), "warning")

    @expose("/note/", methods=("POST",))
    def add_note_view(self):
        from crm.actions.notes import add_note

        key = request.form.get("customer_id", type=record_id)
        if key is None:
            abort(400)
        self._report(*run_action(
            add_note, customer_id=key, kind=request.form.get("kind", "note"),
            body=request.form.get("body", ""), important=request.form.get("important") == "1",
        ))
        return self._back(key)

    @expose("/note/pin/", methods=("POST",))
    def pin_note_view(self):
        from crm.actions.notes import pin_note

        note = db.session.get(Note, request.form.get("note_id", type=record_id) or 0)
        if note is None or note.customer_id is None:
            abort(404)
        key = note.customer_id
        self._report(*run_action(pin_note, note_id=note.id,
                                 pinned=request.form.get("pinned") == "1"))
        return self._back(key)

    @expose("/status/<verb>/", methods=("POST",))
    def status_view(self, verb):
        """Set dormant / reactivate one customer from its page: a single, reversible change,
        so no confirmation page (the bulk forms have one)."""
        from crm.actions import dormant

        actions = {"set_dormant": dormant.set_dormant, "reactivate": dormant.reactivate}
        if verb not in actions or not self.is_action_allowed(verb):
            abort(404 if verb not in actions else 403)
        key = request.form.get("id", type=record_id)
        if key is None:
            abort(400)
        self._report(*run_action(actions[verb], selection=[key]))
        return self._back(key)
