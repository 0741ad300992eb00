"""Session hooks that keep derived columns true whatever code path writes the rows:
customer references, search text and blocked-e-mail flag, document totals, the stored
ledger figures (``crm.ledger``: marked dirty here, recomputed in the same transaction just
before commit), the loyalty scores (``crm.loyalty``, the same way, also after set-based
statements on bookings), and the rule that an issued invoice never changes.

They sit above the models, the ledger and the blocklist, and are registered by importing
this module (``create_app`` does). Set-based UPDATEs bypass them: an action that moves money
rows in bulk calls ``crm.ledger.recompute`` for the customers it touched.
"""

from decimal import Decimal

from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session

from crm import ledger, loyalty
from crm.blocklist import blocked_addresses, canonical
from crm.formatting import money
from crm.ledger import LedgerError
from crm.models import (
    Allocation,
    Booking,
    CreditNote,
    CreditNoteLine,
    Customer,
    Invoice,
    InvoiceLine,
    Payment,
)
from crm.models.sequence import next_number
from crm.validation import MONEY_MAX, QUANTITY_MAX, TAX_RATE_MAX, customer_search_text

MONEY_TYPES = (Invoice, InvoiceLine, CreditNote, CreditNoteLine, Payment, Allocation)


def _refs(obj, fk: str, relation: str) -> set:
    """Old and new parents of ``obj``: ids from the foreign key column, instances from the
    relationship (a parent created in the same flush has no id yet; it is resolved later)."""
    state = inspect(obj)
    refs: set = set()
    changed = False
    for attr in (fk, relation):
        history = state.attrs[attr].history
        changed = changed or history.has_changes()
        refs.update(v for v in (*history.added, *history.deleted, *history.unchanged) if v is not None)
    fk_history = state.attrs[fk].history
    if changed and state.has_identity and not (fk_history.deleted or fk_history.unchanged):
        # Re-parented while its old parent was never loaded (e.g. expired by a commit): the
        # row still holds the old parent until this flush writes the new one.
        refs.add(_stored_value(state, fk))
    if not refs and getattr(obj, fk, None) is not None:
        refs.add(getattr(obj, fk))
    return refs


def _stored_value(state, attr: str):
    model = state.class_
    return state.session.execute(
        select(getattr(model, attr)).where(model.id == state.identity[0])
    ).scalar_one_or_none()


def _touch_money(session: Session, obj) -> None:
    if isinstance(obj, Invoice | CreditNote | Payment):
        ledger.mark_dirty(session, "customer", _refs(obj, "customer_id", "customer"))
    if isinstance(obj, InvoiceLine):
        ledger.mark_dirty(session, "invoice", _refs(obj, "invoice_id", "invoice"))
    if isinstance(obj, CreditNoteLine):
        ledger.mark_dirty(session, "credit_note", _refs(obj, "credit_note_id", "credit_note"))
    if isinstance(obj, Allocation):
        ledger.mark_dirty(session, "invoice", _refs(obj, "invoice_id", "invoice"))
        ledger.mark_dirty(session, "payment", _refs(obj, "payment_id", "payment"))
        ledger.mark_dirty(session, "credit_note", _refs(obj, "credit_note_id", "credit_note"))


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, flush_context, instances) -> None:
    with session.no_autoflush:
        new_emails = []
        for obj in list(session.new) + list(session.dirty):
            if isinstance(obj, Customer):
                if not obj.reference:
                    obj.reference = next_number(session, "customer")
                obj.search_text = customer_search_text(
                    obj.reference, obj.first_name, obj.surname, obj.company_name,
                    obj.email, obj.phone, obj.postcode,
                )
                if obj in session.new or inspect(obj).attrs.email.history.has_changes():
                    new_emails.append(obj)
        _flag_blocked(session, new_emails)
        documents = set()
        for obj in list(session.new) + list(session.dirty) + list(session.deleted):
            if isinstance(obj, MONEY_TYPES):
                _touch_money(session, obj)
            if isinstance(obj, Invoice | CreditNote):
                documents.add(obj)
            elif isinstance(obj, InvoiceLine) and obj.invoice is not None:
                documents.add(obj.invoice)
            elif isinstance(obj, CreditNoteLine) and obj.credit_note is not None:
                documents.add(obj.credit_note)
        for obj in session.deleted:
            # A line deleted on its own is still in its document's collection until the
            # flush; take it out so that the totals below leave it out.
            if isinstance(obj, InvoiceLine | CreditNoteLine):
                document = obj.invoice if isinstance(obj, InvoiceLine) else obj.credit_note
                if document is not None and obj in document.lines:
                    document.lines.remove(obj)
        for document in documents:
            if document not in session.deleted:
                _check_fits(document)


def _check_fits(document: Invoice | CreditNote) -> None:
    """Work out the document's totals, refusing (LedgerError, a sentence) lines and totals
    that the money columns cannot hold: on SQLite nothing else would (it stores 1e20 in a
    NUMERIC(12, 2) column), PostgreSQL would fail with its own error. Whatever path wrote
    the document, the ledger stays within what it can add up."""
    name = document.number or ("the draft invoice" if isinstance(document, Invoice)
                                else "the credit note")
    for position, line in enumerate(document.lines, 1):
        quantity, rate = Decimal(line.quantity or 0), Decimal(line.tax_rate or 0)
        if not quantity.is_finite() or quantity.copy_abs() > QUANTITY_MAX:
            raise LedgerError(f"Line {position} of {name}: a quantity is at most "
                              f"{QUANTITY_MAX:,}.")
        if not Decimal(line.unit_price or 0).copy_abs() <= MONEY_MAX:
            raise LedgerError(f"Line {position} of {name}: a unit price is at most "
                              f"{money(MONEY_MAX)}.")
        if not (rate.is_finite() and 0 <= rate <= TAX_RATE_MAX):
            raise LedgerError(f"Line {position} of {name}: a tax rate is between 0 and 100.")
    document.compute_totals()
    for position, line in enumerate(document.lines, 1):
        if line.net_amount + line.tax_amount > MONEY_MAX:
            raise LedgerError(f"Line {position} of {name} comes to "
                              f"{money(line.net_amount + line.tax_amount)}; a line holds at most "
                              f"{money(MONEY_MAX)}.")
    if document.total > MONEY_MAX:
        raise LedgerError(f"{name[:1].upper()}{name[1:]} would come to {money(document.total)}; "
                          f"a document holds at most {money(MONEY_MAX)}.")


def _flag_blocked(session: Session, customers: list[Customer]) -> None:
    """Set ``email_blocked`` of customers created or given a new e-mail in this flush: one
    look-up for all of them. Refusing a blocked address is the caller's job
    (``crm.actions.block_email.ensure_not_blocked``); keeping the flag true is the data's."""
    if not customers:
        return
    blocked = blocked_addresses(session, [c.email for c in customers if c.email])
    for customer in customers:
        value = bool(customer.email and customer.email.strip()) and (
            canonical(customer.email) in blocked
        )
        if customer.email_blocked != value:
            customer.email_blocked = value


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    if ledger.is_dirty(session) or session.new or session.dirty or session.deleted:
        ledger.flush_ledger(session)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    ledger.forget_dirty(session)


# --- issued invoices are fixed ------------------------------------------------------------
# What an issued or void invoice may still change through the ORM: the stored ledger figure,
# bookkeeping columns, its internal notes, and its customer (merge and moves; the ledger
# checks the allocations). Anything else is what the customer was sent.
INVOICE_UNLOCKED = frozenset({"outstanding", "notes", "customer_id", "customer", "version",
                              "updated_at", "created_at"})


def _stored_status(invoice: Invoice) -> str | None:
    """The invoice's status before this flush (None for one not yet in the database)."""
    state = inspect(invoice)
    if not state.has_identity:
        return None
    history = state.attrs.status.history
    if history.deleted:
        return history.deleted[0]
    if history.unchanged:
        return history.unchanged[0]
    return _stored_value(state, "status")


def _locked(invoice: Invoice | None) -> bool:
    return invoice is not None and _stored_status(invoice) in ("issued", "void")


def _refuse_invoice_change(invoice: Invoice, what: str) -> None:
    name = invoice.number or f"Invoice #{invoice.id}"
    status = _stored_status(invoice)
    if what == "delete":
        raise LedgerError(f"{name} is {status}: it is kept for the records and cannot be "
                          "deleted" + ("; void it instead." if status == "issued" else "."))
    raise LedgerError(f"{name} is {status}: its {what} cannot change; raise a credit note to "
                      "change what is owed.")


def _invoice_changes(invoice: Invoice) -> list[str]:
    """The locked attributes this flush would really change (a form saving the same value
    into an attribute that was never loaded is no change)."""
    state = inspect(invoice)
    columns = {prop.key for prop in state.mapper.column_attrs}
    changed = []
    for attr in state.attrs:
        history = attr.history
        if attr.key in INVOICE_UNLOCKED or not history.has_changes():
            continue
        if attr.key in columns and not (history.deleted or history.unchanged):
            if history.added and history.added[0] == _stored_value(state, attr.key):
                continue
        changed.append(attr.key)
    if changed == ["status"] and invoice.status == "void" and _stored_status(invoice) == "issued":
        return []  # issued -> void is the one move allowed
    return changed


def _line_invoices(session: Session, line: InvoiceLine) -> list[Invoice]:
    found = []
    for ref in _refs(line, "invoice_id", "invoice"):
        invoice = session.get(Invoice, ref) if isinstance(ref, int) else ref
        if invoice is not None:
            found.append(invoice)
    return found


@event.listens_for(Session, "before_flush")
def _keep_issued_invoices_fixed(session: Session, flush_context, instances) -> None:
    """Refuse (LedgerError) any ORM change to the lines, amounts, number, dates or addressing
    of an issued or void invoice, and its deletion. Lines are checked first: the totals hook
    above has already recomputed the amounts of an invoice whose lines changed. Set-based
    UPDATEs (the ledger's outstanding, redaction wiping descriptions) do not pass through
    here, by design."""
    with session.no_autoflush:
        for obj in session.deleted:
            if isinstance(obj, Invoice) and _locked(obj):
                _refuse_invoice_change(obj, "delete")
        for obj in (*session.new, *session.dirty, *session.deleted):
            if not isinstance(obj, InvoiceLine):
                continue
            if obj in session.dirty and not session.is_modified(obj):
                continue
            for invoice in _line_invoices(session, obj):
                if _locked(invoice):
                    _refuse_invoice_change(invoice, "lines")
        for obj in session.dirty:
            if isinstance(obj, Invoice) and session.is_modified(obj) and _locked(obj):
                changed = _invoice_changes(obj)
                if changed:
                    fields = sorted({key.removesuffix("_id").replace("_", " ") for key in changed})
                    _refuse_invoice_change(obj, ", ".join(fields))


# --- loyalty scores follow the bookings -----------------------------------------------------
# A booking's customer (old and new), status, value or start date changing, or a booking
# added or deleted, changes its customer's loyalty score (crm.loyalty): the customers are
# noted here and their scores refreshed just before the commit. Set-based statements on the
# booking table (a merge moving bookings, its undo putting them back) are seen too, in
# ``_booking_statements``.
LOYALTY_FIELDS = ("customer_id", "customer", "status", "value", "starts_at")


@event.listens_for(Session, "before_flush")
def _note_booking_customers(session: Session, flush_context, instances) -> None:
    with session.no_autoflush:
        for obj in (*session.new, *session.dirty, *session.deleted):
            if not isinstance(obj, Booking):
                continue
            if obj in session.dirty and obj not in session.deleted:
                state = inspect(obj)
                if not any(state.attrs[name].history.has_changes() for name in LOYALTY_FIELDS):
                    continue
            loyalty.mark_dirty(session, _refs(obj, "customer_id", "customer"))


@event.listens_for(Session, "do_orm_execute")
def _booking_statements(state) -> None:
    """An INSERT, UPDATE or DELETE sent to the booking table as one statement: note the
    customers of the rows it touches, before (the old owners) and after (the new ones)."""
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    statement = state.statement
    table = getattr(statement, "table", None)
    if getattr(table, "name", None) != Booking.__tablename__:
        return
    session = state.session
    bookings = Booking.__table__
    if state.is_insert:
        params = state.parameters
        rows = params if isinstance(params, list) else [params or {}]
        values = getattr(statement, "_values", None) or {}
        named = {getattr(key, "key", key): value for key, value in values.items()}
        rows = [*rows, named] if named else rows
        loyalty.mark_dirty(session, {
            getattr(value, "value", value) for row in rows
            for key, value in (row or {}).items() if key == "customer_id"
        })
        return
    where = statement.whereclause
    params = state.parameters
    if where is None and isinstance(params, list):  # ORM bulk UPDATE by primary key
        ids = [row["id"] for row in params if "id" in row]
        found = session.execute(
            select(bookings.c.id, bookings.c.customer_id).where(bookings.c.id.in_(ids))
        ).all() if ids else []
    else:
        query = select(bookings.c.id, bookings.c.customer_id)
        if where is not None:
            query = query.where(where)
        found = session.execute(query, params if isinstance(params, dict) else None).all()
    loyalty.mark_dirty(session, {row.customer_id for row in found})
    if state.is_update and found:
        result = state.invoke_statement()
        ids = [row.id for row in found]
        for start in range(0, len(ids), loyalty.CHUNK):
            loyalty.mark_dirty(session, session.execute(
                select(bookings.c.customer_id)
                .where(bookings.c.id.in_(ids[start : start + loyalty.CHUNK]))
            ).scalars())
        return result


@event.listens_for(Session, "before_commit")
def _refresh_loyalty(session: Session) -> None:
    if loyalty.is_dirty(session) or session.new or session.dirty or session.deleted:
        session.flush()
        loyalty.flush_loyalty(session)


@event.listens_for(Session, "after_rollback")
def _forget_loyalty(session: Session) -> None:
    loyalty.forget_dirty(session)
