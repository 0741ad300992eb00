"""Issue and void invoices. A draft has no number; issuing gives it the next
one of the gap-free ``invoice`` sequence and, from then on, its lines and amounts are fixed
(``crm.session_hooks`` refuses any change): what is owed changes through a credit note, or the
whole invoice is voided.

Dates at issue. The draft's issue date becomes the day it is issued (today unless given) and
its due date moves with it, keeping the draft's own gap: the terms were chosen on the draft,
where a blank due date already meant the customer's creditor days, else the business's
payment terms (``default_due_date``).

Concurrency. Every issue first takes the sequence's row lock (the write lock on SQLite), then
reads the invoices afresh: two people issuing at once queue, the second sees what the first
did, so no number is shared, none is skipped, and no invoice is numbered twice. A rollback
gives the number back.

Voiding keeps every allocation row: the ledger counts only allocations to issued invoices
(``crm.ledger``), so what was paid or credited against a voided invoice becomes account
credit by definition. The reason may name people ("customer disputed, Mr Smith moved out"),
so it is kept on the invoice's notes, which redaction erases, and never in the audit trail.
"""

from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.orm import Session, object_session, selectinload

from crm.actions import SAMPLE, ActionError, ActionResult, Selection, Skip, ids_select
from crm.formatting import day, money
from crm.ledger import flush_ledger
from crm.models import BusinessProfile, Invoice, User
from crm.models.audit import record
from crm.models.customer import Customer
from crm.models.sequence import DocumentSequence, next_number

DEFAULT_TERMS_DAYS = 30
MAX_REASON = 500


def default_due_date(customer: Customer | None, issue_date: date,
                     session: Session | None = None) -> date:
    """The due date of a draft left without one: the customer's creditor days, else the
    business's payment terms (Settings, Business), else 30 days."""
    days = customer.creditor_days if customer is not None else None
    if days is None:
        days = business_terms_days(session or (object_session(customer) if customer else None))
    return issue_date + timedelta(days=days)


def business_terms_days(session: Session | None) -> int:
    """The business's payment terms in days: its profile's, or 30 while none is set up."""
    if session is None:
        return DEFAULT_TERMS_DAYS
    with session.no_autoflush:  # a draft being saved must not be flushed half-made
        profile = session.get(BusinessProfile, 1)
    days = getattr(profile, "payment_terms_days", None)
    return DEFAULT_TERMS_DAYS if days is None or days < 0 else days


def draft_problems(*, customer, contact, work_address, address_format: str | None
                   ) -> tuple[dict[str, str], str | None]:
    """What is wrong with a draft's addressing, by field, and its address format as it is
    stored (None: the customer's own address). A draft's contact is one of the customer's;
    its work address is the customer's own or one the customer is the landlord of."""
    from crm.addressing import validate_address_format

    problems: dict[str, str] = {}
    if customer is not None and contact is not None and contact.customer_id != customer.id:
        problems["contact"] = "That contact belongs to another customer."
    if customer is not None and work_address is not None and customer.id not in (
        work_address.customer_id, work_address.landlord_id
    ):
        problems["work_address"] = ("That work address is neither the customer's nor one it "
                                    "is the landlord of.")
    stored = None
    try:
        stored = validate_address_format(address_format) or None
    except ValueError as exc:
        problems["address_format"] = str(exc)
    return problems, stored


def _lock_numbers(session: Session) -> None:
    """Take the invoice sequence's lock without taking a number, so that everything read
    afterwards is what the previous issuer committed (see the module docstring)."""
    session.execute(
        update(DocumentSequence)
        .where(DocumentSequence.name == "invoice")
        .values(next_value=DocumentSequence.next_value)
        .execution_options(synchronize_session=False)
    )


def _fresh_invoices(session: Session, ids) -> list[Invoice]:
    return list(session.scalars(
        select(Invoice).where(Invoice.id.in_(ids)).order_by(Invoice.id)
        .options(selectinload(Invoice.lines), selectinload(Invoice.customer))
        .execution_options(populate_existing=True)
    ))


def _label(invoice: Invoice) -> str:
    return invoice.number or f"Draft #{invoice.id}"


NO_ADDRESS = "has no billing address"


def _why_not_issuable(invoice: Invoice) -> str | None:
    """Why ``invoice`` cannot be issued (a short reason), or None."""
    if invoice.status == "issued":
        return "already issued"
    if invoice.status == "void":
        return "void"
    if not invoice.lines:
        return "no lines"
    customer = invoice.customer
    if customer.merged_into_id is not None:
        return "its customer was merged into another"
    if customer.redacted_at is not None:
        return "its customer has been redacted"
    if not has_billing_address(customer):
        return f"{customer.reference} {NO_ADDRESS}"
    return None



def has_billing_address(customer) -> bool:
    """Whether an invoice can be addressed to ``customer``: a customer may be kept without an
    address (a name and an e-mail or phone are enough), but an invoice needs line 1 and the
    postcode."""
    return bool((customer.address_line_1 or "").strip() and (customer.postcode or "").strip())


def no_billing_address(customer) -> str:
    return f"{customer.reference} {NO_ADDRESS}: add one before issuing an invoice."


def _issue(session: Session, invoice: Invoice, issue_date: date) -> None:
    gap = max(invoice.due_date - invoice.issue_date, timedelta(0))
    invoice.number = next_number(session, "invoice")
    invoice.status = "issued"
    invoice.issue_date = issue_date
    invoice.due_date = issue_date + gap


def issue_invoice(session: Session, *, invoice_id: int, actor: User | None,
                  issue_date: date | None = None) -> ActionResult:
    """Give a draft with lines its number and make it owed from ``issue_date`` (today)."""
    issue_date = issue_date or date.today()
    _lock_numbers(session)
    found = _fresh_invoices(session, [invoice_id])
    if not found:
        raise ActionError("That invoice does not exist.")
    invoice = found[0]
    reason = _why_not_issuable(invoice)
    if reason == "already issued":
        raise ActionError(f"{invoice.number} is already issued.")
    if reason == "void":
        raise ActionError(f"{_label(invoice)} is void; it cannot be issued.")
    if reason == "no lines":
        raise ActionError(f"{_label(invoice)} has no lines; add at least one before issuing it.")
    if reason and reason.endswith(NO_ADDRESS):
        raise ActionError(no_billing_address(invoice.customer))
    if reason:
        raise ActionError(f"{_label(invoice)} cannot be issued: {reason}.")
    _issue(session, invoice, issue_date)
    session.flush()
    record(session, actor=actor, verb="issue_invoice", subject_type="Invoice",
           subject_id=invoice.id, details=_facts(invoice))
    return ActionResult("issue_invoice", changed=1, changed_refs=(invoice.number,),
                        message=f"{invoice.number} issued: {money(invoice.total)} due on "
                                f"{day(invoice.due_date)}.",
                        details={"number": invoice.number})


def issue_invoices(session: Session, *, selection: Selection, actor: User | None,
                   issue_date: date | None = None) -> ActionResult:
    """Issue every issuable draft of ``selection``, numbered in id order; skip the rest and
    say why. One audit event for the run, with the numbers given."""
    issue_date = issue_date or date.today()
    _lock_numbers(session)
    ids = ids_select(selection, Invoice.id)
    issued: list[Invoice] = []
    skipped: list[Skip] = []
    for invoice in _fresh_invoices(session, ids):
        reason = _why_not_issuable(invoice)
        if reason:
            skipped.append(Skip(_label(invoice), reason))
            continue
        _issue(session, invoice, issue_date)
        issued.append(invoice)
    session.flush()
    numbers = [invoice.number for invoice in issued]
    if issued:
        record(session, actor=actor, verb="issue_invoices", subject_type="Invoice",
               subject_id=issued[0].id if len(issued) == 1 else None,
               details={"invoice_ids": [i.id for i in issued], "numbers": numbers,
                        "skipped": len(skipped),
                        "total": str(sum((i.total for i in issued), Decimal("0.00")))})
    message = f"{len(issued)} invoice{'' if len(issued) == 1 else 's'} issued"
    if numbers:
        message += f" ({numbers[0]}" + (f" to {numbers[-1]})" if len(numbers) > 1 else ")")
    return ActionResult("issue_invoices", changed=len(issued),
                        changed_refs=tuple(numbers[:SAMPLE]), skipped=tuple(skipped[:SAMPLE]),
                        skipped_count=len(skipped), message=message + ".")


def void_invoice(session: Session, *, invoice_id: int, actor: User | None,
                 reason: str) -> ActionResult:
    """Void an issued invoice: it no longer counts as owed, and what was paid or credited
    against it becomes the customer's account credit. The reason goes on its notes."""
    reason = " ".join((reason or "").split())
    invoice = session.scalars(
        select(Invoice).where(Invoice.id == invoice_id)
        .execution_options(populate_existing=True).with_for_update()
    ).one_or_none()
    if invoice is None:
        raise ActionError("That invoice does not exist.")
    if invoice.status == "draft":
        raise ActionError(f"{_label(invoice)} is a draft: delete it instead of voiding it.")
    if invoice.status == "void":
        raise ActionError(f"{invoice.number} is already void.")
    if not reason:
        raise ActionError(f"Say why {invoice.number} is being voided; nothing was changed.")
    if len(reason) > MAX_REASON:
        raise ActionError(f"Keep the reason to {MAX_REASON} characters; nothing was changed.")
    flush_ledger(session)  # the stored outstanding must include this transaction's writes
    released = invoice.total - invoice.outstanding
    invoice.status = "void"
    stamp = f"Void on {date.today().isoformat()}: {reason}"
    invoice.notes = f"{invoice.notes.rstrip()}\n{stamp}" if invoice.notes else stamp
    session.flush()
    record(session, actor=actor, verb="void_invoice", subject_type="Invoice",
           subject_id=invoice.id,
           details={**_facts(invoice), "to_account_credit": str(released)})
    message = f"{invoice.number} is void."
    if released:
        message += f" {money(released)} paid or credited against it is now account credit."
    return ActionResult("void_invoice", changed=1, changed_refs=(invoice.number,),
                        message=message, details={"to_account_credit": released})


def _facts(invoice: Invoice) -> dict:
    return {"number": invoice.number, "customer_id": invoice.customer_id,
            "total": str(invoice.total), "issue_date": invoice.issue_date.isoformat(),
            "due_date": invoice.due_date.isoformat()}

