"""A customer's question about an invoice, asked in the portal ("I have a question about this
invoice"): a note of kind ``portal`` on the customer, linked to the invoice, on the staff
timeline and in Money → Portal queries until staff answer it; the reply shows on the
customer's invoice page."""

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm.actions import ActionError, ActionResult
from crm.actions.guards import live_customer
from crm.models import Invoice, Note, User
from crm.models.audit import PORTAL, record
from crm.models.base import utcnow

MAX_QUESTION = 2_000
MAX_REPLY = Note.__table__.c.reply.info["max_length"]
# A customer can have this many questions waiting for an answer at once.
MAX_OPEN = 10


def ask_about_invoice(session: Session, *, customer_id: int, invoice_id: int,
                      message: str | None) -> ActionResult:
    customer = live_customer(session, customer_id, doing="ask about an invoice")
    invoice = session.get(Invoice, invoice_id)
    if invoice is None or invoice.customer_id != customer.id or invoice.status == "draft":
        raise ActionError("That invoice is not on your account.")
    message = (message or "").strip()
    if not message:
        raise ActionError("Write your question; nothing was sent.")
    if len(message) > MAX_QUESTION:
        raise ActionError(f"Keep your question to {MAX_QUESTION:,} characters; nothing was sent.")
    waiting = session.scalar(select(func.count()).select_from(Note).where(
        Note.customer_id == customer.id, Note.kind == "portal", Note.answered_at.is_(None)))
    if waiting >= MAX_OPEN:
        raise ActionError(f"You have {waiting} questions waiting for an answer; we will reply "
                          "to those first.")
    note = Note(customer_id=customer.id, kind="portal", body=message, invoice_id=invoice.id)
    session.add(note)
    session.flush()
    record(session, actor=None, label=PORTAL, verb="portal_query", subject_type="Customer",
           subject_id=customer.id, details={"note_id": note.id, "invoice": invoice.number})
    return ActionResult("portal_query", changed=1, changed_refs=(invoice.number,),
                        message=f"Your question about {invoice.number} is sent; the answer "
                                "will show on this page.")


def answer_query(session: Session, *, note_id: int, reply: str | None,
                 actor: User | None) -> ActionResult:
    """Answer (or correct the answer to) a portal query: the customer sees the reply."""
    note = session.get(Note, note_id)
    if note is None or note.kind != "portal":
        raise ActionError("That portal query does not exist.")
    live_customer(session, note.customer_id, doing="answer queries")
    reply = (reply or "").strip()
    if not reply:
        raise ActionError("Write the answer the customer will read; nothing was saved.")
    if len(reply) > MAX_REPLY:
        raise ActionError(f"Keep the answer to {MAX_REPLY:,} characters; nothing was saved.")
    again = note.answered_at is not None
    note.reply, note.answered_at = reply, utcnow()
    note.answered_by_id = actor.id if actor is not None else None
    session.flush()
    record(session, actor=actor, verb="answer_query", subject_type="Customer",
           subject_id=note.customer_id, details={"note_id": note.id, "again": again})
    return ActionResult("answer_query", changed=1,
                        message="Answer saved; the customer sees it on the invoice page.")
