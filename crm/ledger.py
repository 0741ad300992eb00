"""Each customer's balance, account credit and overdue figures, kept in stored columns.

One definition, in SQL, used three ways:
- ``recompute(session, ids)`` rewrites the stored figures of some customers; the session
  hooks (``crm.session_hooks``) mark which customers' money rows changed and
  ``flush_ledger`` recomputes those in the same transaction, just before commit (actions
  call it earlier when they must read the figures of their own writes);
- ``refresh_stale(session, today)`` re-ages the customers whose figures changed with the
  calendar (an open invoice passed its due date) — nightly and on read;
- ``differences(session)`` compares every stored figure with the documents
  (``flask crm check-ledger``).

balance        = issued invoices - issued credit notes - payments
account credit = payments + issued credit notes - what of them is allocated to invoices
overdue        = what is still owed on issued invoices whose due date is before today

Only a *live* allocation counts: from a payment or an issued credit note, to an issued
invoice. Voiding an invoice gives back what was allocated to it as account credit; voiding a
credit note puts back what it had paid off. So balance = outstanding - account credit, always.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import and_, case, func, literal, or_, select, text, update
from sqlalchemy.orm import Session, aliased

from crm.formatting import money
from crm.models import Allocation, CreditNote, Customer, Invoice, Payment
from crm.validation import MONEY_MAX

CHUNK = 500


def _zero(expr):
    return func.coalesce(expr, literal(Decimal("0.00")))


# Made once: building aliased entities per statement costs more than running it.
_LIVE_INVOICE = aliased(Invoice, name="live_invoice")
_LIVE_NOTE = aliased(CreditNote, name="live_credit_note")


def live_allocations(*criteria, payments_of=None, credit_notes_of=None):
    """SUM of the live allocations meeting ``criteria`` (see the module docstring); or of
    those made from the payments, or the credit notes, of a customer (a column to correlate).

    The customer is matched through joins at this level (each driven by an index on
    ``customer_id``), never through a nested subquery, so that it correlates with the
    statement one level up."""
    invoice, note = _LIVE_INVOICE, _LIVE_NOTE
    stmt = (
        select(func.sum(Allocation.amount))
        .join(invoice, invoice.id == Allocation.invoice_id)
        .outerjoin(note, note.id == Allocation.credit_note_id)
        .where(
            invoice.status == "issued",
            or_(Allocation.credit_note_id.is_(None), note.status == "issued"),
            *criteria,
        )
    )
    if payments_of is not None:
        stmt = stmt.join(Payment, Payment.id == Allocation.payment_id).where(
            Payment.customer_id == payments_of
        )
    if credit_notes_of is not None:
        stmt = stmt.where(note.customer_id == credit_notes_of)
    return stmt


def _allocated_to(invoice_id_col):
    return _zero(live_allocations(Allocation.invoice_id == invoice_id_col).scalar_subquery())


def _cents(expr):
    """Round to the cent in SQL. SQLite keeps NUMERIC as binary floating point, where an
    invoice paid off in two parts can be left "owing" 7e-15; PostgreSQL is exact anyway."""
    return func.round(expr, 2)


def _expected_outstanding():
    return case(
        (Invoice.status == "issued", _cents(Invoice.total - _allocated_to(Invoice.id))),
        else_=literal(Decimal("0.00")),
    )


def _figures(customer_id_col, today: date) -> dict:
    """Correlated SQL expressions of every ledger figure of the customer ``customer_id_col``."""
    issued = and_(Invoice.customer_id == customer_id_col, Invoice.status == "issued")
    open_invoice = and_(issued, Invoice.outstanding > 0)
    invoiced = _zero(select(func.sum(Invoice.total)).where(issued).scalar_subquery())
    credited = _zero(
        select(func.sum(CreditNote.total))
        .where(CreditNote.customer_id == customer_id_col, CreditNote.status == "issued")
        .scalar_subquery()
    )
    paid = _zero(
        select(func.sum(Payment.amount))
        .where(Payment.customer_id == customer_id_col)
        .scalar_subquery()
    )
    allocated_from_payments = _zero(
        live_allocations(payments_of=customer_id_col).scalar_subquery()
    )
    allocated_from_credits = _zero(
        live_allocations(credit_notes_of=customer_id_col).scalar_subquery()
    )
    overdue = and_(open_invoice, Invoice.due_date < today)
    return {
        "balance": _cents(invoiced - credited - paid),
        "account_credit": _cents(
            paid + credited - allocated_from_payments - allocated_from_credits
        ),
        "overdue_amount": _cents(
            _zero(select(func.sum(Invoice.outstanding)).where(overdue).scalar_subquery())
        ),
        "oldest_overdue_on": select(func.min(Invoice.due_date)).where(overdue).scalar_subquery(),
        "next_due_on": select(func.min(Invoice.due_date))
        .where(open_invoice, Invoice.due_date >= today)
        .scalar_subquery(),
    }


def _chunks(ids: Iterable[int]) -> Iterable[list[int]]:
    ids = sorted(set(ids))
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def recompute(session: Session, customer_ids: Iterable[int], today: date | None = None) -> None:
    """Rewrite invoice outstanding amounts and the ledger figures of ``customer_ids``."""
    today = today or date.today()
    for chunk in _chunks(customer_ids):
        session.execute(
            update(Invoice)
            .where(Invoice.customer_id.in_(chunk))
            .values(outstanding=_expected_outstanding())
            .execution_options(synchronize_session=False)
        )
        session.execute(
            update(Customer)
            .where(Customer.id.in_(chunk))
            .values(ledger_as_of=today, **_figures(Customer.id, today))
            .execution_options(synchronize_session=False)
        )
    session.expire_all()


class LedgerError(ValueError):
    """A money write that would leave the ledger impossible; the transaction must not commit."""


def check_capacity(session: Session, customer_ids: Iterable[int]) -> None:
    """Refuse a write that would take a customer's balance, account credit or overdue amount
    past what the ledger's columns hold, before they are written (PostgreSQL would fail
    with a numeric overflow, SQLite would store a number nothing adds up to)."""
    today = date.today()
    figures = _figures(Customer.id, today)
    too_large = or_(*(func.abs(figures[name]) > MONEY_MAX
                      for name in ("balance", "account_credit", "overdue_amount")))
    for chunk in _chunks(customer_ids):
        found = session.execute(
            select(Customer.reference).where(Customer.id.in_(chunk), too_large).limit(1)
        ).first()
        if found:
            raise LedgerError(
                f"That would take the balance or account credit of {found.reference} past "
                f"{money(MONEY_MAX)}, the most an account holds; nothing was saved."
            )


def check_consistency(session: Session, customer_ids: Iterable[int]) -> None:
    """Refuse what no single form can see: a payment lowered, an invoice's lines cut or an
    invoice moved to another customer after money was allocated to it."""
    for chunk in _chunks(customer_ids):
        overpaid = session.execute(
            select(Invoice.number).where(Invoice.customer_id.in_(chunk), Invoice.outstanding < 0)
            .limit(1)
        ).first()
        if overpaid:
            raise LedgerError(
                f"Invoice {overpaid.number} would have more allocated to it than its total; "
                "remove or reduce its allocations first."
            )
        over_allocated = session.execute(
            select(Customer.reference).where(Customer.id.in_(chunk), Customer.account_credit < 0)
            .limit(1)
        ).first()
        if over_allocated:
            raise LedgerError(
                f"{over_allocated.reference}: more would be allocated than was paid or credited; "
                "reduce the allocations first."
            )
        crossed = session.execute(
            select(Allocation.id)
            .join(Invoice, Invoice.id == Allocation.invoice_id)
            .outerjoin(Payment, Payment.id == Allocation.payment_id)
            .outerjoin(CreditNote, CreditNote.id == Allocation.credit_note_id)
            .where(
                Invoice.customer_id.in_(chunk),
                func.coalesce(Payment.customer_id, CreditNote.customer_id) != Invoice.customer_id,
            )
            .limit(1)
        ).first()
        if crossed:
            raise LedgerError(
                "An allocation would link one customer's payment or credit note to another "
                "customer's invoice; remove the allocations before moving the document."
            )


# --- the figures of this transaction's writes --------------------------------------------
# The session hooks note the money rows a flush touches (by kind: customer, invoice, credit
# note, payment; an id or, for a row created in the same flush, the instance) in the
# session's ``info``; ``flush_ledger`` turns them into customers and recomputes those.
DIRTY_KEY = "ledger_dirty"


def mark_dirty(session: Session, kind: str, refs: Iterable) -> None:
    session.info.setdefault(DIRTY_KEY, {}).setdefault(kind, []).extend(refs)


def is_dirty(session: Session) -> bool:
    return bool(session.info.get(DIRTY_KEY))


def forget_dirty(session: Session) -> None:
    """After a rollback: nothing written is left to recompute."""
    session.info.pop(DIRTY_KEY, None)


def _ids(refs) -> set[int]:
    return {ref if isinstance(ref, int) else ref.id for ref in refs} - {None}


def _customers_of(session: Session, bucket: dict) -> set[int]:
    ids = _ids(bucket.get("customer", ()))
    for model, kind in ((Invoice, "invoice"), (CreditNote, "credit_note"), (Payment, "payment")):
        keys = _ids(bucket.get(kind, ()))
        if keys:
            ids.update(
                session.execute(select(model.customer_id).where(model.id.in_(keys))).scalars()
            )
    return ids


def flush_ledger(session: Session) -> None:
    """Recompute the ledger of every customer whose money rows changed since the last call,
    and refuse (``LedgerError``) what would leave it impossible."""
    session.flush()
    bucket = session.info.pop(DIRTY_KEY, None)
    if bucket:
        customers = _customers_of(session, bucket)
        check_capacity(session, customers)
        recompute(session, customers)
        check_consistency(session, customers)
        session.flush()


def refresh_stale(session: Session, today: date | None = None, within=None) -> int:
    """Re-age every customer with an open invoice that has fallen due since it was aged
    (only those meeting ``within``, a criterion on Customer, when given)."""
    today = today or date.today()
    result = session.execute(
        update(Customer)
        .where(Customer.next_due_on < today, *(() if within is None else (within,)))
        .values(ledger_as_of=today, **_figures(Customer.id, today))
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


@dataclass(frozen=True)
class Difference:
    customer_id: int
    reference: str
    field: str
    stored: object
    expected: object


FIELDS = ("balance", "account_credit", "overdue_amount", "oldest_overdue_on", "next_due_on")


def differences(
    session: Session,
    today: date | None = None,
    limit: int = 1000,
    batch: int = 20_000,
    customer_ids: Iterable[int] | None = None,
    progress: Callable[[int], object] | None = None,
) -> tuple[list[Difference], int]:
    """Compare the stored figures with the documents; return (first ``limit``, total count).

    Every customer and invoice, or only those of ``customer_ids``: a sample of a large
    database checks in seconds what the full comparison takes a minute or two to.
    ``progress(n)`` is told of each batch of ``n`` customers compared (a progress bar)."""
    today = today or date.today()
    if session.get_bind().dialect.name == "postgresql":
        # One large statement per batch of customers, which PostgreSQL's JIT compiles anew
        # each time: that doubled the check (17 s against 7 s at 100,000 customers). For the
        # rest of this (read-only) transaction only.
        session.execute(text("SET LOCAL jit = off"))
    figures = _figures(Customer.id, today)
    # None: one pass over everything; otherwise the ids in chunks, each an indexed IN list.
    scopes: list[list[int] | None] = (
        [None] if customer_ids is None else list(_chunks(customer_ids))
    )
    found: list[Difference] = []
    for scope in scopes:
        if len(found) >= limit:
            break
        drift = (
            select(Invoice.id, Invoice.customer_id, Invoice.outstanding)
            .where(Invoice.outstanding != _expected_outstanding())
            .limit(limit - len(found))
        )
        if scope is not None:
            drift = drift.where(Invoice.customer_id.in_(scope))
        found.extend(
            Difference(row.customer_id, f"invoice {row.id}", "outstanding", row.outstanding, "")
            for row in session.execute(drift)
        )
    total = len(found)
    for scope in scopes:
        last_id = 0
        while True:
            stmt = (
                select(
                    Customer.id,
                    Customer.reference,
                    *(getattr(Customer, name) for name in FIELDS),
                    *(figures[name].label(f"x_{name}") for name in FIELDS),
                )
                .where(Customer.id > last_id)
                .order_by(Customer.id)
                .limit(batch)
            )
            if scope is not None:
                stmt = stmt.where(Customer.id.in_(scope))
            rows = session.execute(stmt).all()
            if not rows:
                break
            last_id = rows[-1].id
            if progress is not None:
                progress(len(rows))
            for row in rows:
                for name in FIELDS:
                    stored, expected = getattr(row, name), getattr(row, f"x_{name}")
                    if _normal(stored) != _normal(expected):
                        total += 1
                        if len(found) < limit:
                            found.append(Difference(row.id, row.reference, name, stored,
                                                    expected))
            if scope is not None and len(rows) < batch:
                break  # a chunk is smaller than a batch: it was all there
    return found, total


def _normal(value):
    if value is None:
        return None
    if isinstance(value, Decimal | int | float) and not isinstance(value, bool):
        return Decimal(str(value)).quantize(Decimal("0.01"))
    if isinstance(value, str):
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return value
    return value


def check_allocation(session: Session, allocation: Allocation) -> None:
    """Refuse an allocation that would over-allocate or cross customers (raises ValueError)."""
    invoice = allocation.invoice
    sources = [s for s in (allocation.payment, allocation.credit_note) if s is not None]
    if invoice is None:
        raise ValueError("Choose the invoice to allocate to.")
    if len(sources) != 1:
        raise ValueError("Allocate either a payment or a credit note, not both or neither.")
    source = sources[0]
    if invoice.status != "issued":
        raise ValueError(f"Invoice {invoice} is {invoice.status}: only issued invoices take "
                         "allocations.")
    if isinstance(source, CreditNote) and source.status != "issued":
        raise ValueError("A void credit note cannot be allocated.")
    if source.customer_id != invoice.customer_id:
        raise ValueError("The invoice and the payment or credit note belong to different "
                         "customers.")
    others = Allocation.id != allocation.id if allocation.id else True
    to_invoice = session.execute(
        select(_zero(live_allocations(Allocation.invoice_id == invoice.id, others)
                     .scalar_subquery()))
    ).scalar_one()
    if allocation.amount > invoice.total - to_invoice:
        raise ValueError(f"Only {money(invoice.total - to_invoice)} is left to pay on {invoice}.")
    source_col = (
        Allocation.payment_id if isinstance(source, Payment) else Allocation.credit_note_id
    )
    from_source = session.execute(
        select(_zero(live_allocations(source_col == source.id, others).scalar_subquery()))
    ).scalar_one()
    available = (source.amount if isinstance(source, Payment) else source.total) - from_source
    if allocation.amount > available:
        raise ValueError(f"Only {money(available)} of that payment or credit note is unallocated.")


_aged_on: date | None = None


def refresh_daily(session: Session, today: date | None = None) -> None:
    """Re-age the stale rows once per process per day (the nightly job may not have run).

    Only a cache of "already done today"; every worker doing it once is harmless, since
    ``refresh_stale`` is idempotent.
    """
    global _aged_on
    today = today or date.today()
    if _aged_on == today:
        return
    if refresh_stale(session, today):
        session.commit()
    _aged_on = today
