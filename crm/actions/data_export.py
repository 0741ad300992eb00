"""Everything held about a customer, in one ZIP: the right of access and portability in one
click, from the portal ("Download my data") and the staff record page alike.

``data.json`` holds the customer, contacts, branches, work addresses, bookings, leads, the
customer's own questions and the answers (staff's internal notes are not included),
invoices and credit notes with their lines, payments and what each paid, communication
preferences and portal activity (from the audit trail); beside it the PDF of every invoice
and credit note and of the current statement. Nothing of any other customer: every row is
read by this customer's id. The export is audited (who asked, never what it held).
"""

import json
import zipfile
from datetime import date, datetime
from decimal import Decimal
from typing import BinaryIO

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from crm.actions import ActionResult
from crm.actions.guards import live_customer
from crm.documents import credit_note_pdf, document_filename, invoice_pdf, statement_pdf
from crm.models import (
    Allocation,
    AuditEvent,
    Booking,
    Branch,
    Contact,
    CreditNote,
    Invoice,
    Lead,
    Note,
    Payment,
    PortalAccount,
    User,
    WorkAddress,
)
from crm.models.audit import PORTAL, record
from crm.statements import build_statement

CUSTOMER_FIELDS = (
    "reference", "customer_type", "title", "first_name", "surname", "company_name", "email",
    "phone", "address_line_1", "address_line_2", "town", "county", "postcode", "country",
    "status", "email_opt_in", "sms_opt_in", "post_opt_in", "created_at",
)
PREFERENCES = ("wants_statements", "wants_reminders", "wants_marketing")


def export_customer_data(session: Session, *, customer_id: int, out: BinaryIO,
                         actor: User | None, by_customer: bool = False) -> ActionResult:
    """Write the customer's ZIP into ``out``."""
    customer = live_customer(session, customer_id, doing="export the data")
    data = {
        "exported_at": datetime.now().isoformat(timespec="seconds"),
        "customer": _row(customer, CUSTOMER_FIELDS),
        "preferences": _row(customer, PREFERENCES),
        "contacts": _rows(session, Contact, Contact.customer_id == customer.id,
                          ("title", "first_name", "surname", "position", "email", "phone",
                           "mobile", "is_primary", "email_opt_in", "sms_opt_in")),
        "branches": _rows(session, Branch, Branch.customer_id == customer.id,
                          ("name", "address_line_1", "address_line_2", "town", "county",
                           "postcode", "country", "phone", "status")),
        "work_addresses": _rows(session, WorkAddress, WorkAddress.customer_id == customer.id,
                                ("address_line_1", "address_line_2", "town", "county",
                                 "postcode", "country", "occupier_title",
                                 "occupier_first_name", "occupier_surname", "occupier_phone",
                                 "occupier_email", "status")),
        "bookings": _rows(session, Booking, Booking.customer_id == customer.id,
                          ("reference", "title", "status", "starts_at", "ends_at", "value",
                           "contact_email")),
        "enquiries": _rows(session, Lead, Lead.customer_id == customer.id,
                           ("first_name", "surname", "company_name", "email", "phone",
                            "message", "status", "created_at")),
        "questions": _questions(session, customer.id),
        "invoices": _invoices(session, customer.id),
        "credit_notes": _credit_notes(session, customer.id),
        "payments": _payments(session, customer.id),
        "portal": _portal(session, customer.id),
    }
    files = 0
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data.json", json.dumps(data, indent=2, default=_plain,
                                                 ensure_ascii=False))
        for invoice in session.scalars(select(Invoice).where(
                Invoice.customer_id == customer.id, Invoice.status != "draft")
                .order_by(Invoice.issue_date, Invoice.id)):
            archive.writestr(f"invoices/{document_filename(invoice)}", invoice_pdf(invoice))
            files += 1
        for note in session.scalars(select(CreditNote).where(
                CreditNote.customer_id == customer.id).order_by(CreditNote.issue_date)):
            archive.writestr(f"credit-notes/{document_filename(note)}", credit_note_pdf(note))
            files += 1
        statement = build_statement(session, customer_id=customer.id)
        archive.writestr(f"statement-{customer.reference}.pdf", statement_pdf(statement))
    record(session, actor=actor, label=PORTAL if by_customer else None, verb="data_export",
           subject_type="Customer", subject_id=customer.id, details={"documents": files})
    session.flush()
    return ActionResult("data_export", changed=1, changed_refs=(customer.reference,),
                        message=f"The data of {customer.reference} with {files} documents.")


def _plain(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _row(obj, fields) -> dict:
    return {name: getattr(obj, name) for name in fields}


def _rows(session, model, criterion, fields) -> list[dict]:
    return [_row(obj, fields) for obj in session.scalars(
        select(model).where(criterion).order_by(model.id))]


def _questions(session, customer_id: int) -> list[dict]:
    rows = session.execute(
        select(Note, Invoice.number).outerjoin(Invoice, Invoice.id == Note.invoice_id)
        .where(Note.customer_id == customer_id, Note.kind == "portal").order_by(Note.id)
    ).all()
    return [{"asked_at": n.created_at, "invoice": number, "question": n.body,
             "answer": n.reply, "answered_at": n.answered_at} for n, number in rows]


def _lines(document) -> list[dict]:
    return [_row(line, ("category", "description", "quantity", "unit_price", "tax_rate",
                        "net_amount", "tax_amount")) for line in document.lines]


def _invoices(session, customer_id: int) -> list[dict]:
    invoices = session.scalars(select(Invoice).where(
        Invoice.customer_id == customer_id, Invoice.status != "draft")
        .order_by(Invoice.issue_date, Invoice.id)).all()
    return [{**_row(i, ("number", "status", "issue_date", "due_date", "subtotal", "tax_total",
                        "total", "outstanding", "notes")), "lines": _lines(i)}
            for i in invoices]


def _credit_notes(session, customer_id: int) -> list[dict]:
    notes = session.scalars(select(CreditNote).where(CreditNote.customer_id == customer_id)
                            .order_by(CreditNote.issue_date, CreditNote.id)).all()
    return [{**_row(n, ("number", "status", "issue_date", "description", "total")),
             "invoice": n.invoice.number if n.invoice else None, "lines": _lines(n)}
            for n in notes]


def _payments(session, customer_id: int) -> list[dict]:
    payments = session.scalars(select(Payment).where(Payment.customer_id == customer_id)
                               .order_by(Payment.received_on, Payment.id)).all()
    paid = {}
    for payment_id, number, amount in session.execute(
            select(Allocation.payment_id, Invoice.number, Allocation.amount)
            .join(Invoice, Invoice.id == Allocation.invoice_id)
            .join(Payment, Payment.id == Allocation.payment_id)
            .where(Payment.customer_id == customer_id)):
        paid.setdefault(payment_id, []).append({"invoice": number, "amount": amount})
    return [{**_row(p, ("received_on", "method", "reference", "amount")),
             "paid": paid.get(p.id, [])} for p in payments]


def _portal(session, customer_id: int) -> dict:
    account = session.execute(select(PortalAccount).where(
        PortalAccount.customer_id == customer_id)).scalar_one_or_none()
    activity = session.execute(
        select(AuditEvent.created_at, AuditEvent.verb).where(
            AuditEvent.subject_type == "Customer", AuditEvent.subject_id == customer_id,
            or_(AuditEvent.actor_label == PORTAL, AuditEvent.verb.like("portal%")))
        .order_by(AuditEvent.created_at)).all()
    return {
        "account": None if account is None else _row(
            account, ("email", "status", "invited_at", "activated_at", "last_login_at")),
        "activity": [{"at": at, "what": verb.replace("_", " ")} for at, verb in activity],
    }
