"""Session hooks that keep derived columns true whatever code path writes the rows:
customer references and search text, document totals, and the stored ledger figures
(recomputed in the same transaction, just before commit).

Set-based UPDATEs bypass these hooks: an action that moves money rows in bulk calls
``crm.ledger.recompute`` for the customers it touched.
"""

from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session

from crm.models import (
    Allocation,
    CreditNote,
    CreditNoteLine,
    Customer,
    Invoice,
    InvoiceLine,
    Payment,
)
from crm.models.sequence import next_number
from crm.validation import customer_search_text

LEDGER_KEY = "ledger_dirty"
MONEY_TYPES = (Invoice, InvoiceLine, CreditNote, CreditNoteLine, Payment, Allocation)


def _old_and_new(obj, attr: str) -> set[int]:
    history = inspect(obj).attrs[attr].history
    values = {v for v in (*history.added, *history.deleted, *history.unchanged) if v is not None}
    if not values and getattr(obj, attr, None) is not None:
        values.add(getattr(obj, attr))
    return values


def _mark(session: Session, kind: str, ids: set[int]) -> None:
    bucket = session.info.setdefault(LEDGER_KEY, {})
    bucket.setdefault(kind, set()).update(i for i in ids if i is not None)


def _touch_money(session: Session, obj) -> None:
    if isinstance(obj, Invoice | CreditNote | Payment):
        _mark(session, "customer", _old_and_new(obj, "customer_id"))
    if isinstance(obj, InvoiceLine):
        _mark(session, "invoice", _old_and_new(obj, "invoice_id"))
    if isinstance(obj, CreditNoteLine):
        _mark(session, "credit_note", _old_and_new(obj, "credit_note_id"))
    if isinstance(obj, Allocation):
        _mark(session, "invoice", _old_and_new(obj, "invoice_id"))
        _mark(session, "payment", _old_and_new(obj, "payment_id"))
        _mark(session, "credit_note", _old_and_new(obj, "credit_note_id"))


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, flush_context, instances) -> None:
    with session.no_autoflush:
        for obj in list(session.new) + list(session.dirty):
            if isinstance(obj, Customer):
                if not obj.reference:
                    obj.reference = next_number(session, "customer")
                obj.search_text = customer_search_text(
                    obj.reference, obj.first_name, obj.surname, obj.company_name,
                    obj.email, obj.phone, obj.postcode,
                )
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
        for document in documents:
            if document not in session.deleted:
                document.compute_totals()


def _customers_of(session: Session, bucket: dict) -> set[int]:
    ids = set(bucket.get("customer", ()))
    lookups = (
        (Invoice, bucket.get("invoice")),
        (CreditNote, bucket.get("credit_note")),
        (Payment, bucket.get("payment")),
    )
    for model, keys in lookups:
        if keys:
            ids.update(
                session.execute(select(model.customer_id).where(model.id.in_(keys))).scalars()
            )
    return ids


def flush_ledger(session: Session) -> None:
    """Recompute the ledger of every customer whose money rows changed since the last call."""
    from crm import ledger

    session.flush()
    bucket = session.info.pop(LEDGER_KEY, None)
    if bucket:
        ledger.recompute(session, _customers_of(session, bucket))
        session.flush()


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    if session.info.get(LEDGER_KEY) or session.new or session.dirty or session.deleted:
        flush_ledger(session)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(LEDGER_KEY, None)
