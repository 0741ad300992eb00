"""Payments, their allocations to invoices, and account credit.

A payment is recorded and, in the same transaction, set against one or several of the
customer's issued invoices; what is not allocated is account credit, which can be allocated
later (drawn from the oldest payment or credit note first) and which grows again when an
allocation is removed.

Every figure is the ledger's (crm.ledger): what an invoice still owes is its stored
``outstanding``, what a customer holds on account its stored ``account_credit``, and what is
left of one payment or credit note is worked out with the ledger's own SQL for a *live*
allocation. The session hooks recompute the stored figures; these actions ask for that
explicitly (``flush_ledger``) before reading them, so money written earlier in the same
transaction counts, and again after writing, so the ledger's consistency check refuses
anything impossible before the caller commits.

Two payments must not over-allocate one invoice at the same moment. Each action first locks
the customer's invoices (``lock_invoices``: SELECT ... FOR UPDATE on PostgreSQL, in id order):
the second transaction waits there and then reads the first one's committed figures. SQLite
has no row locks but lets one writer at a time: whatever a stale read let through there is
refused by the ledger's check after the writes, which runs inside that write lock.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import func, literal, select
from sqlalchemy.orm import Session

from crm.actions import ActionError, ActionResult
from crm.actions.guards import live_customer
from crm.formatting import money as shown
from crm.ledger import LedgerError, flush_ledger, live_allocations
from crm.models import Allocation, CreditNote, Customer, Invoice, Payment, User
from crm.models.audit import record
from crm.models.base import ZERO
from crm.models.finance import PAYMENT_METHODS, round_money
from crm.validation import money, sane_date

MAX_REFERENCE = 100  # the column's length


@dataclass(frozen=True)
class CreditSource:
    """What is left unallocated of one payment or issued credit note."""

    kind: str  # "payment" or "credit_note"
    id: int
    dated: date
    left: Decimal


# --- shared steps ------------------------------------------------------------------------
def lock_invoices(session: Session, customer_id: int) -> None:
    """Lock every invoice of the customer until the transaction ends, then forget what the
    session read before: figures read from here on are the latest committed ones (on
    PostgreSQL every statement of a READ COMMITTED transaction sees the latest commits).

    Any action that allocates to a customer's invoices should take this lock first."""
    flush_ledger(session)
    session.execute(
        select(Invoice.id)
        .where(Invoice.customer_id == customer_id)
        .order_by(Invoice.id)
        .with_for_update()
    ).all()
    session.expire_all()


def _settle(session: Session) -> None:
    """Recompute the stored figures now (not only at commit) and let the ledger refuse a
    write that would leave it impossible, as a message for the user."""
    try:
        flush_ledger(session)
    except LedgerError as exc:
        raise ActionError(str(exc)) from None


def _amount(value, what: str) -> Decimal:
    try:
        return money(value)
    except ValueError as exc:
        raise ActionError(f"{what}: {exc}") from None


def _requested(allocations: Iterable[tuple[int, Decimal]]) -> dict[int, Decimal]:
    """Invoice id -> amount, parsed; the same invoice named twice gets the sum."""
    wanted: dict[int, Decimal] = {}
    for invoice_id, amount in allocations:
        if not isinstance(invoice_id, int) or isinstance(invoice_id, bool):
            raise ActionError("An allocation names no invoice.")
        value = _amount(amount, "An allocation")
        wanted[invoice_id] = wanted.get(invoice_id, ZERO) + value
    return wanted


def _allocatable(session: Session, customer: Customer, wanted: dict[int, Decimal]) -> list:
    """The invoices of ``wanted`` (read after the lock), refused unless each is an issued
    invoice of this customer that still owes at least what is asked of it."""
    found = {
        invoice.id: invoice
        for invoice in session.scalars(select(Invoice).where(Invoice.id.in_(list(wanted))))
    }
    invoices = []
    for invoice_id, amount in wanted.items():
        invoice = found.get(invoice_id)
        if invoice is None:
            raise ActionError(f"There is no invoice #{invoice_id}.")
        if invoice.customer_id != customer.id:
            raise ActionError(f"Invoice {invoice} belongs to another customer.")
        if invoice.status != "issued":
            state = "a draft" if invoice.status == "draft" else invoice.status
            raise ActionError(f"Invoice {invoice} is {state}: only issued invoices can be "
                              "paid.")
        if amount > invoice.outstanding:
            raise ActionError(f"Only {shown(invoice.outstanding)} is left to pay on {invoice}; "
                              f"{shown(amount)} cannot be allocated to it.")
        invoices.append(invoice)
    return invoices


def _numbers(invoices: list[Invoice]) -> str:
    return ", ".join(str(invoice) for invoice in invoices)


# --- reading -----------------------------------------------------------------------------
def open_invoices(session: Session, customer_id: int) -> list[Invoice]:
    """The customer's issued invoices that still owe something, oldest due date first."""
    return list(session.scalars(
        select(Invoice)
        .where(Invoice.customer_id == customer_id, Invoice.status == "issued",
               Invoice.outstanding > 0)
        .order_by(Invoice.due_date, Invoice.id)
    ))


def suggest_allocations(session: Session, *, customer_id: int,
                        amount: Decimal) -> list[tuple[Invoice, Decimal]]:
    """How ``amount`` would pay off the open invoices, the oldest due first: the default of
    the screens' "allocate oldest first"."""
    left = Decimal(amount)
    suggestion = []
    for invoice in open_invoices(session, customer_id):
        if left <= 0:
            break
        take = min(left, invoice.outstanding)
        suggestion.append((invoice, take))
        left -= take
    return suggestion


def credit_sources(session: Session, customer_id: int) -> list[CreditSource]:
    """The customer's payments and issued credit notes with something left unallocated,
    oldest first. Their sum is the ledger's account credit."""
    left_of_payment = Payment.amount - func.coalesce(
        live_allocations(Allocation.payment_id == Payment.id).scalar_subquery(), 0)
    left_of_note = CreditNote.total - func.coalesce(
        live_allocations(Allocation.credit_note_id == CreditNote.id).scalar_subquery(), 0)
    rows = [
        *session.execute(
            select(literal("payment"), Payment.id, Payment.received_on, left_of_payment)
            .where(Payment.customer_id == customer_id)
        ),
        *session.execute(
            select(literal("credit_note"), CreditNote.id, CreditNote.issue_date, left_of_note)
            .where(CreditNote.customer_id == customer_id, CreditNote.status == "issued")
        ),
    ]
    sources = [CreditSource(kind, key, dated, round_money(left))
               for kind, key, dated, left in rows]
    return sorted((s for s in sources if s.left > 0), key=lambda s: (s.dated, s.kind, s.id))


# --- the actions -------------------------------------------------------------------------
def record_payment(session: Session, *, customer_id: int, received_on: date, method: str,
                   reference: str | None, amount, allocations: Iterable[tuple[int, Decimal]] = (),
                   actor: User | None) -> ActionResult:
    customer = live_customer(session, customer_id, doing="record money", allow_redacted=True)
    amount = _amount(amount, "The payment")
    if method not in PAYMENT_METHODS:
        raise ActionError(f"A payment is made by one of: {', '.join(PAYMENT_METHODS)}.")
    if not isinstance(received_on, date):
        raise ActionError("Enter the date the payment was received.")
    try:
        sane_date(received_on)
    except ValueError as exc:
        raise ActionError(f"The date received: {exc}") from None
    reference = (reference or "").strip() or None
    if reference and len(reference) > MAX_REFERENCE:
        raise ActionError(f"A reference holds at most {MAX_REFERENCE} characters.")
    wanted = _requested(allocations)
    allocated = sum(wanted.values(), ZERO)
    if allocated > amount:
        raise ActionError(f"The allocations add up to {shown(allocated)}, more than the payment "
                          f"of {shown(amount)}.")
    reference_label = customer.reference
    lock_invoices(session, customer.id)
    invoices = _allocatable(session, customer, wanted)
    payment = Payment(customer_id=customer.id, received_on=received_on, method=method,
                      reference=reference, amount=amount)
    session.add(payment)
    session.flush()
    session.add_all(Allocation(invoice_id=invoice.id, payment_id=payment.id,
                               amount=wanted[invoice.id]) for invoice in invoices)
    _settle(session)
    left = amount - allocated
    record(session, actor=actor, verb="record_payment", subject_type="Customer",
           subject_id=customer.id,
           details={"payment_id": payment.id, "amount": str(amount), "method": method,
                    "allocated": str(allocated), "left_as_credit": str(left),
                    "invoices": [str(invoice) for invoice in invoices]})
    session.flush()
    message = f"Payment of {shown(amount)} recorded for {reference_label}"
    if invoices:
        message += f": {shown(allocated)} allocated to {_numbers(invoices)}"
    message += f"; {shown(left)} left as account credit." if left else "."
    return ActionResult("record_payment", changed=1, changed_refs=(reference_label,),
                        message=message,
                        details={"payment_id": payment.id, "allocated": allocated,
                                 "left_as_credit": left})


def allocate_credit(session: Session, *, customer_id: int,
                    allocations: Iterable[tuple[int, Decimal]], actor: User | None
                    ) -> ActionResult:
    customer = live_customer(session, customer_id, doing="record money", allow_redacted=True)
    wanted = _requested(allocations)
    if not wanted:
        raise ActionError("Enter an amount against at least one invoice.")
    total = sum(wanted.values(), ZERO)
    lock_invoices(session, customer.id)
    invoices = _allocatable(session, customer, wanted)
    if total > customer.account_credit:
        raise ActionError(f"{customer.reference} has {shown(customer.account_credit)} of account "
                          f"credit; {shown(total)} cannot be allocated.")
    made = _draw(session, credit_sources(session, customer.id), invoices, wanted)
    _settle(session)
    credit_left = customer.account_credit
    record(session, actor=actor, verb="allocate_credit", subject_type="Customer",
           subject_id=customer.id,
           details={"allocation_ids": [a.id for a in made], "allocated": str(total),
                    "invoices": [str(invoice) for invoice in invoices],
                    "credit_left": str(credit_left)})
    session.flush()
    return ActionResult(
        "allocate_credit", changed=len(made), changed_refs=(customer.reference,),
        message=(f"{shown(total)} of account credit allocated to {_numbers(invoices)}; "
                 f"{shown(credit_left)} of account credit left."),
        details={"allocated": total, "credit_left": credit_left,
                 "allocation_ids": [a.id for a in made]},
    )


def _draw(session: Session, sources: list[CreditSource], invoices: list[Invoice],
          wanted: dict[int, Decimal]) -> list[Allocation]:
    """Allocations paying each invoice its amount from the sources, oldest first."""
    made: list[Allocation] = []
    sources = list(sources)
    for invoice in invoices:
        need = wanted[invoice.id]
        while need > 0:
            if not sources:
                raise ActionError("There is not enough account credit for that.")
            source = sources[0]
            take = min(need, source.left)
            made.append(Allocation(invoice_id=invoice.id, amount=take,
                                   **{f"{source.kind}_id": source.id}))
            need -= take
            if take == source.left:
                sources.pop(0)
            else:
                sources[0] = CreditSource(source.kind, source.id, source.dated,
                                          source.left - take)
    session.add_all(made)
    session.flush()
    return made


def remove_allocation(session: Session, *, allocation_id: int,
                      actor: User | None) -> ActionResult:
    allocation = session.get(Allocation, allocation_id) if isinstance(allocation_id, int) else None
    if allocation is None:
        raise ActionError("That allocation does not exist (it may have been removed already).")
    customer_id = allocation.invoice.customer_id
    lock_invoices(session, customer_id)
    allocation = session.get(Allocation, allocation_id)  # a concurrent removal went first
    if allocation is None:
        raise ActionError("That allocation has just been removed by someone else.")
    invoice, amount = allocation.invoice, allocation.amount
    details = {"allocation_id": allocation.id, "invoice": str(invoice), "amount": str(amount),
               "payment_id": allocation.payment_id, "credit_note_id": allocation.credit_note_id}
    session.delete(allocation)
    _settle(session)
    record(session, actor=actor, verb="remove_allocation", subject_type="Customer",
           subject_id=customer_id, details=details)
    session.flush()
    return ActionResult(
        "remove_allocation", changed=1,
        message=f"Allocation of {shown(amount)} to {invoice} removed: it is account credit again.",
        details={"invoice_id": invoice.id, "amount": amount, "customer_id": customer_id},
    )
