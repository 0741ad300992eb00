"""Customers without an address: a name and one way to reach them are enough; an address
begun needs line 1 and the postcode; an invoice is refused until there is a billing address
(and the draft stays a draft); everything that shows or searches a customer's address copes
with none (statements and their PDF, invoice addressing, search text, possible duplicates,
the portal's own details)."""

import pytest
from sqlalchemy import select

from crm.actions import ActionError
from crm.actions.duplicates import duplicates_of
from crm.actions.invoice import issue_invoice, issue_invoices
from crm.actions.portal_profile import Details, FieldErrors, update_details
from crm.addressing import customer_address, format_invoice_address
from crm.documents import invoice_pdf, statement_pdf
from crm.models import AuditEvent, Customer, Invoice
from crm.statements import build_statement
from crm.validation import (
    LINE_1_NEEDED,
    NO_WAY_TO_REACH,
    POSTCODE_NEEDED,
    address_problems,
    unreachable,
)
from tests.factories import make_customer, make_invoice
from tests.unit.test_pdf import text_of as pdf_text

NO_ADDRESS = dict(address_line_1=None, address_line_2=None, town=None, county=None,
                  postcode=None)


def addressless(session, **overrides):
    return make_customer(session, **{**NO_ADDRESS, **overrides})


# --- the rules ------------------------------------------------------------------------------
@pytest.mark.parametrize("values, problems", [
    ({}, {}),
    ({"address_line_1": "  ", "postcode": ""}, {}),
    ({"address_line_1": "1 High St", "postcode": "LS1 1AA"}, {}),
    ({"town": "Leeds"}, {"address_line_1": LINE_1_NEEDED, "postcode": POSTCODE_NEEDED}),
    ({"address_line_1": "1 High St"}, {"postcode": POSTCODE_NEEDED}),
    ({"postcode": "LS1 1AA", "county": "West Yorkshire"}, {"address_line_1": LINE_1_NEEDED}),
])
def test_an_address_is_optional_but_one_begun_needs_line_1_and_postcode(values, problems):
    assert address_problems(values) == problems


def test_a_customer_needs_an_email_a_phone_or_an_address():
    assert unreachable(None, "", "  ")
    assert not unreachable("a@example.com", None, None)
    assert not unreachable(None, "+447700900123", None)
    assert not unreachable(None, None, "1 High Street")
    assert NO_WAY_TO_REACH == "Give an e-mail, a phone number or an address so we can reach them."


# --- invoices ------------------------------------------------------------------------------
def test_issuing_to_a_customer_without_a_billing_address_is_refused_and_stays_a_draft(session,
                                                                                      owner):
    customer = addressless(session)
    draft = make_invoice(session, customer, status="draft", number=None)
    session.commit()

    with pytest.raises(ActionError) as refused:
        issue_invoice(session, invoice_id=draft.id, actor=owner)
    session.rollback()

    assert str(refused.value) == (f"{customer.reference} has no billing address: add one "
                                  "before issuing an invoice.")
    stored = session.execute(select(Invoice.status, Invoice.number)
                             .where(Invoice.id == draft.id)).one()
    assert tuple(stored) == ("draft", None)
    assert session.scalars(select(AuditEvent)).all() == []


def test_issuing_in_bulk_skips_the_drafts_of_customers_without_an_address(session, owner):
    housed, homeless = make_customer(session), addressless(session)
    ready = make_invoice(session, housed, status="draft", number=None)
    waiting = make_invoice(session, homeless, status="draft", number=None)
    session.commit()

    result = issue_invoices(session, selection=[ready.id, waiting.id], actor=owner)

    assert result.changed == 1
    assert [str(s) for s in result.skipped] == [
        f"Draft #{waiting.id} skipped: {homeless.reference} has no billing address"]


def test_an_address_added_later_lets_the_invoice_be_issued(session, owner):
    customer = addressless(session)
    draft = make_invoice(session, customer, status="draft", number=None)
    customer.address_line_1, customer.postcode = "1 Mill Lane", "LS2 7AB"
    session.commit()

    assert issue_invoice(session, invoice_id=draft.id, actor=owner).changed == 1


# --- what shows an address -----------------------------------------------------------------
def test_statements_and_documents_of_a_customer_without_an_address(session):
    customer = addressless(session, surname="Nomad", email="nomad@example.com")
    invoice = make_invoice(session, customer, amount="25.00")
    session.commit()

    assert customer_address(customer) == ["Alex Nomad"]
    assert format_invoice_address(invoice) == ["Alex Nomad"]
    statement = build_statement(session, customer_id=customer.id)
    text = pdf_text(statement_pdf(statement))
    assert "Alex Nomad" in text and "None" not in text
    assert "None" not in pdf_text(invoice_pdf(invoice))


def test_search_text_and_duplicates_of_a_customer_without_an_address(session):
    one = addressless(session, surname="Drifter", email="d1@example.com", phone=None)
    other = addressless(session, surname="Drifter", email="d2@example.com", phone=None)
    session.commit()

    stored = session.scalar(select(Customer.search_text).where(Customer.id == one.id))
    assert "drifter" in stored and "none" not in stored
    # the same surname and no postcode on either is not a match
    assert duplicates_of(session, customer_id=one.id) == []
    assert duplicates_of(session, customer_id=other.id) == []


# --- the portal's own details --------------------------------------------------------------
def _details(**values) -> Details:
    return Details(**{"phone": None, **NO_ADDRESS, **values})


def test_a_portal_customer_may_clear_their_address(session):
    customer = make_customer(session)
    session.commit()

    result = update_details(session, customer_id=customer.id, details=_details(),
                            version=customer.version, region="GB")

    assert result.changed == 1
    assert (customer.address_line_1, customer.postcode) == (None, None)


def test_a_portal_address_begun_needs_line_1_and_postcode(session):
    customer = addressless(session)
    session.commit()

    with pytest.raises(FieldErrors) as refused:
        update_details(session, customer_id=customer.id, details=_details(town="Leeds"),
                       version=customer.version, region="GB")

    assert refused.value.errors == {
        "address_line_1": "Enter the first line of your address, or leave the address empty.",
        "postcode": "Enter your postcode, or leave the address empty."}
    assert session.scalar(select(Customer.town).where(Customer.id == customer.id)) is None
