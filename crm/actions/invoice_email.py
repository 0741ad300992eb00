"""E-mail an issued invoice to its customer, the PDF attached.

The message goes to the invoice's contact when that contact has an address (an accounts
department, a tenant's agent), else to the customer's own address. It is refused, with the
reason, for a draft or a void invoice, for a customer merged away, redacted, dormant or
archived, for a missing address and for a blocked one. Staff send it on purpose, so the
customer's choice about automated messages (statement runs, reminders) does not stop it.

What was sent is logged twice, like the statement e-mails: a ``sent_message`` row (where the
message is kept, so erasing the customer deletes it) and one audit event on the customer,
``email_invoice`` with the invoice's id and number (never the address), which the
customer's timeline shows. A message cannot be unsent: when the sending itself fails nothing
is logged and the error says why.
"""

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from crm import mail
from crm.actions import ActionError, ActionResult
from crm.actions.guards import ensure_not_redacted
from crm.actions.sent_messages import index_sent
from crm.blocklist import is_email_blocked
from crm.documents import document_filename, invoice_pdf
from crm.formatting import money
from crm.models import Invoice, User
from crm.models.audit import record
from crm.pdf import PdfError

VERB = "email_invoice"


def email_invoice(session: Session, *, invoice_id: int, actor: User | None,
                  send=mail.send) -> ActionResult:
    """Send ``invoice_id`` to its customer as a PDF attachment, through ``send``
    (``crm.mail.send`` by default); log it on the customer's timeline."""
    invoice = _load(session, invoice_id)
    address = _address(session, invoice)
    message = _message(invoice, address)
    try:
        sent = send(message)
    except mail.MailError as exc:
        raise ActionError(f"{invoice.number} was not sent: {exc}") from exc
    index_sent(session, customer_id=invoice.customer_id, kind="invoice", sent=sent)
    record(session, actor=actor, verb=VERB, subject_type="Customer",
           subject_id=invoice.customer_id,
           details={"invoice_id": invoice.id, "number": invoice.number})
    session.flush()
    return ActionResult(VERB, changed=1, changed_refs=(invoice.number,),
                        message=f"{invoice.number} e-mailed to {address}, the PDF attached.",
                        details={"to": address})


def _load(session: Session, invoice_id: int) -> Invoice:
    invoice = session.scalars(
        select(Invoice).where(Invoice.id == invoice_id)
        .options(selectinload(Invoice.lines), selectinload(Invoice.customer),
                 selectinload(Invoice.contact))
    ).one_or_none()
    if invoice is None:
        raise ActionError("That invoice does not exist.")
    if invoice.status == "draft":
        raise ActionError(f"Draft #{invoice.id} is not issued yet: issue it before "
                          "e-mailing it.")
    if invoice.status == "void":
        raise ActionError(f"{invoice.number} is void; a void invoice is not sent.")
    customer = invoice.customer
    if customer.merged_into_id is not None:
        raise ActionError(f"{customer.reference} was merged into another customer; "
                          f"{invoice.number} was not sent.")
    ensure_not_redacted(customer, doing="e-mail an invoice")
    if customer.status in ("dormant", "archived"):
        raise ActionError(f"{customer.reference} is {customer.status}: reactivate it before "
                          f"e-mailing it {invoice.number}.")
    return invoice


def _address(session: Session, invoice: Invoice) -> str:
    """The contact's address when it has one, else the customer's; refused when missing or
    blocked (the customer's flag covers an address blocked by its domain too)."""
    contact = invoice.contact
    address = ((contact.email if contact is not None else None) or invoice.customer.email
               or "").strip()
    if not address:
        raise ActionError(f"{invoice.customer.reference} has no e-mail address: add one to "
                          f"the customer (or to the invoice's contact) to send "
                          f"{invoice.number}.")
    customer_address = (invoice.customer.email or "").strip()
    if is_email_blocked(session, address) or (
            invoice.customer.email_blocked and address == customer_address):
        raise ActionError(f"The e-mail address {address} is blocked; {invoice.number} was "
                          "not sent.")
    return address


def _message(invoice: Invoice, address: str) -> mail.Message:
    customer = invoice.customer
    contact = invoice.contact
    if contact is not None and contact.email:
        name = " ".join(part for part in (contact.first_name, contact.surname) if part)
    else:
        name = customer.display_name
    try:
        pdf = invoice_pdf(invoice)
    except PdfError as exc:
        raise ActionError(f"The PDF of {invoice.number} could not be made ({exc}); nothing "
                          "was sent.") from exc
    try:
        return mail.compose(
            address, f"Invoice {invoice.number} from {mail.business_name()}", "invoice",
            name=name, invoice=invoice, total=money(invoice.total),
            outstanding=money(invoice.outstanding),
            attachments=[(document_filename(invoice), pdf, "application/pdf")],
        )
    except mail.MailError as exc:
        raise ActionError(f"{invoice.number} was not sent: {exc}") from exc
