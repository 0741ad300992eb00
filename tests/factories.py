"""Factories: ``make_x(session, **overrides)`` adds a valid row and flushes it."""

import itertools
from datetime import date, datetime, timedelta
from decimal import Decimal

from crm.models import (
    Allocation,
    Booking,
    Branch,
    Contact,
    CreditNote,
    CreditNoteLine,
    Customer,
    Invoice,
    InvoiceLine,
    Lead,
    Note,
    Payment,
    ServiceReminder,
    Tag,
    WorkAddress,
)
from crm.models.sequence import next_number

_counter = itertools.count(1)


def _add(session, obj):
    session.add(obj)
    session.flush()
    return obj


def make_customer(session, **overrides) -> Customer:
    n = next(_counter)
    values = dict(
        first_name="Alex", surname=f"Tester{n}", email=f"alex{n}@example.com",
        phone="+447911123456", address_line_1=f"{n} High Street", town="Leeds",
        postcode="LS1 1AA",
    )
    values.update(overrides)
    return _add(session, Customer(**values))


def make_contact(session, customer, **overrides) -> Contact:
    values = dict(customer=customer, surname="Contact", first_name="Sam")
    values.update(overrides)
    return _add(session, Contact(**values))


def make_branch(session, customer, **overrides) -> Branch:
    values = dict(customer=customer, name="Head office", address_line_1="1 Branch Road",
                  postcode="M1 1AA")
    values.update(overrides)
    return _add(session, Branch(**values))


def make_tag(session, **overrides) -> Tag:
    values = dict(name=f"tag{next(_counter)}")
    values.update(overrides)
    return _add(session, Tag(**values))


def make_work_address(session, customer, **overrides) -> WorkAddress:
    values = dict(customer=customer, address_line_1="2 Work Lane", postcode="B1 1AA")
    values.update(overrides)
    return _add(session, WorkAddress(**values))


def make_reminder(session, work_address, **overrides) -> ServiceReminder:
    values = dict(work_address=work_address, due_on=date.today(), description="Annual service")
    values.update(overrides)
    return _add(session, ServiceReminder(**values))


def make_lead(session, **overrides) -> Lead:
    values = dict(surname="Enquirer", email=f"lead{next(_counter)}@example.com")
    values.update(overrides)
    return _add(session, Lead(**values))


def make_booking(session, customer, **overrides) -> Booking:
    values = dict(customer=customer, reference=next_number(session, "booking"), title="Gig",
                  starts_at=datetime(2026, 6, 1, 19, 0), value=Decimal("250.00"))
    values.update(overrides)
    return _add(session, Booking(**values))


def make_note(session, customer, **overrides) -> Note:
    values = dict(customer=customer, body="Called about the quote.")
    values.update(overrides)
    return _add(session, Note(**values))


def make_invoice(session, customer, *, amount="100.00", tax_rate="0", status="issued",
                 days_overdue=None, **overrides) -> Invoice:
    due = date.today() + timedelta(days=14)
    if days_overdue is not None:
        due = date.today() - timedelta(days=days_overdue)
    values = dict(customer=customer, status=status, issue_date=due - timedelta(days=30),
                  due_date=due)
    if status != "draft":
        values["number"] = next_number(session, "invoice")
    values.update(overrides)
    invoice = Invoice(**values)
    invoice.lines.append(InvoiceLine(description="Work", quantity=Decimal("1"),
                                     unit_price=Decimal(amount), tax_rate=Decimal(tax_rate)))
    return _add(session, invoice)


def make_payment(session, customer, *, amount="50.00", **overrides) -> Payment:
    values = dict(customer=customer, received_on=date.today(), amount=Decimal(amount),
                  method="bank_transfer", reference="REF")
    values.update(overrides)
    return _add(session, Payment(**values))


def make_credit_note(session, customer, *, amount="10.00", **overrides) -> CreditNote:
    values = dict(customer=customer, number=next_number(session, "credit_note"),
                  issue_date=date.today())
    values.update(overrides)
    note = CreditNote(**values)
    note.lines.append(CreditNoteLine(description="Credit", quantity=Decimal("1"),
                                     unit_price=Decimal(amount)))
    return _add(session, note)


def make_allocation(session, invoice, *, payment=None, credit_note=None, amount="10.00"):
    return _add(session, Allocation(invoice=invoice, payment=payment, credit_note=credit_note,
                                    amount=Decimal(amount)))


def make_portal_account(session, customer, **overrides):
    from crm.models import PortalAccount

    values = dict(customer=customer, email=f"portal{next(_counter)}@example.com")
    values.update(overrides)
    return _add(session, PortalAccount(**values))


def make_invoice_with_lines(session, customer, lines, *, status="issued", **overrides):
    """An invoice with ``lines`` (dicts of InvoiceLine fields: description, quantity,
    unit_price, ...) in place before its first flush: once issued, lines cannot change."""
    due = date.today() + timedelta(days=14)
    values = dict(customer=customer, status=status, issue_date=due - timedelta(days=30),
                  due_date=due)
    if status != "draft":
        values["number"] = next_number(session, "invoice")
    values.update(overrides)
    invoice = Invoice(**values)
    for position, line in enumerate(lines):
        fields = {"description": "Work", "quantity": Decimal("1"), "position": position, **line}
        fields = {k: Decimal(v) if k in ("quantity", "unit_price", "tax_rate") else v
                  for k, v in fields.items()}
        invoice.lines.append(InvoiceLine(**fields))
    return _add(session, invoice)
