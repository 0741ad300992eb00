"""Bad input: a clear message next to the field, nothing changed, never a 500.
And what is stored is normalized: e-mail in lower case, phone in E.164, postcode in capitals."""

from decimal import Decimal

import pytest

from crm.admin_views import MODEL_VIEWS
from crm.extensions import db
from crm.models import Booking, Customer, Invoice, Payment, Tag
from tests import factories as f
from tests.integration.helpers import (
    count_rows,
    customer,
    field_errors,
    flashes,
    load,
    submit,
    text_of,
    url,
)

NEW_CUSTOMER = {"customer_type": "private", "surname": "Valid", "address_line_1": "1 Main St",
                "postcode": "LS1 1AA"}


@pytest.fixture
def owner(app, login):
    login("owner")
    with app.app_context():
        row = customer(db.session, surname="Existing")
        db.session.commit()
        return row.id


def _refused(page, field: str, words: str) -> None:
    assert page.status_code == 200
    errors = field_errors(text_of(page), field)
    assert any(words.lower() in error.lower() for error in errors), (field, errors,
                                                                      flashes(text_of(page)))


@pytest.mark.parametrize(("changes", "field", "words"), [
    ({"surname": ""}, "surname", "surname is required"),
    ({"customer_type": "company", "company_name": "", "surname": "Smith"}, "company_name",
     "company name"),
    ({"address_line_1": ""}, "address_line_1", "required"),
    ({"postcode": ""}, "postcode", "required"),
    ({"email": "jo.example.com"}, "email", "not a valid e-mail"),
    ({"email": "jo@@example.com"}, "email", "not a valid e-mail"),
    ({"phone": "12345"}, "phone", "phone"),
    ({"phone": "call me"}, "phone", "phone"),
    ({"creditor_days": "-1"}, "creditor_days", "0"),
], ids=["no-surname", "company-without-name", "no-address", "no-postcode", "email-no-at",
        "email-two-ats", "phone-short", "phone-words", "creditor-days-negative"])
def test_customer_form_refuses_bad_input_next_to_the_field(app, client, owner, changes, field,
                                                           words):
    page = submit(client, url("owner", "customer", "new/"), {**NEW_CUSTOMER, **changes})

    _refused(page, field, words)
    assert count_rows(app, Customer) == 1


def test_an_invalid_edit_changes_nothing(app, client, owner):
    before = load(app, Customer, owner, "surname", "email", "version")

    page = submit(client, url("owner", "customer", f"edit/?id={owner}"),
                  {"surname": "Changed", "email": "not-an-address"})

    _refused(page, "email", "not a valid e-mail")
    assert load(app, Customer, owner, "surname", "email", "version") == before


def test_the_customer_is_stored_normalized(app, client, owner):
    saved = submit(client, url("owner", "customer", "new/"),
                   {**NEW_CUSTOMER, "surname": "Bloggs", "email": "  Jo.Bloggs@Example.COM ",
                    "phone": "07911 123456", "postcode": "ls1  1aa"})

    assert saved.status_code == 302, flashes(text_of(saved))
    with app.app_context():
        row = db.session.query(Customer).filter_by(surname="Bloggs").one()
        assert (row.email, row.phone, row.postcode) == (
            "jo.bloggs@example.com", "+447911123456", "LS1 1AA")


def test_a_phone_typed_in_international_form_is_stored_in_e164(app, client, owner):
    submit(client, url("owner", "customer", f"edit/?id={owner}"), {"phone": "+44 20 7946 0000"})

    assert load(app, Customer, owner, "phone") == {"phone": "+442079460000"}


@pytest.fixture
def debtor(app, owner):
    """The owner signed in; a customer with an issued 100.00 invoice and a 150.00 payment."""
    with app.app_context():
        row = customer(db.session, surname="Debtor")
        invoice = f.make_invoice(db.session, row, amount="100.00")
        payment = f.make_payment(db.session, row, amount="150.00")
        db.session.commit()
        return {"customer": row.id, "invoice": invoice.id, "payment": payment.id}


# Payment amounts and allocations are entered on the record-payment page, through
# crm.actions.payment: tests/integration/test_payment_screens.py and tests/unit/test_payment.py.


def test_a_booking_cannot_end_before_it_starts(app, client, debtor):
    page = submit(client, url("owner", "booking", "new/"),
                  {"customer": str(debtor["customer"]), "title": "Backwards",
                   "starts_at": "2026-07-01 19:00:00", "ends_at": "2026-07-01 18:00:00"})

    _refused(page, "ends_at", "cannot end before it starts")
    assert count_rows(app, Booking) == 0


def test_an_invoice_cannot_fall_due_before_it_is_issued(app, client, debtor):
    page = submit(client, url("owner", "invoice", "new/"),
                  {"customer": str(debtor["customer"]), "issue_date": "2026-05-31",
                   "due_date": "2026-05-01"})

    _refused(page, "due_date", "due date cannot be before the issue date")
    assert count_rows(app, Invoice) == 1


OWNER_SLUGS = [slug for _, _, _, slug in MODEL_VIEWS]


@pytest.mark.parametrize("slug", OWNER_SLUGS)
def test_an_unknown_or_malformed_id_is_not_found_never_an_error(client, owner, slug):
    for page in ("details/", "edit/"):
        for key in ("999999", "abc", "1.5", "-1", ""):
            response = client.get(url("owner", slug, f"{page}?id={key}"))

            assert response.status_code in (302, 404), (page, key, response.status_code)
            if response.status_code == 302:
                assert "/admin/owner/" in response.headers["Location"]


def test_lowering_an_allocated_payment_is_refused_with_a_message(app, client, login):
    login("owner")
    with app.app_context():
        customer = f.make_customer(db.session)
        invoice = f.make_invoice(db.session, customer, amount="100.00")
        payment = f.make_payment(db.session, customer, amount="60.00")
        f.make_allocation(db.session, invoice, payment=payment, amount="60.00")
        db.session.commit()
        key = payment.id
    response = submit(client, f"/admin/owner/payment/edit/?id={key}", {"amount": "50.00"},
                      follow_redirects=True)
    assert response.status_code == 200
    assert any("more would be allocated" in m for m in flashes(text_of(response)))
    with app.app_context():
        assert db.session.get(Payment, key).amount == Decimal("60.00")


@pytest.mark.parametrize("rowids", [["{tag}"], ["{tag}", "x", "-1", "99999999999"], ["9999999"]])
def test_the_list_menus_delete_takes_only_real_ids(app, client, login, rowids):
    """With selected → Delete posts the ids as text: a forged or unknown one changes nothing
    and a real one is deleted, never a 500 (PostgreSQL refuses integer = text)."""
    login("owner")
    with app.app_context():
        tag = f.make_tag(db.session, name="Doomed")
        db.session.commit()
        tag = tag.id
    posted = [value.format(tag=tag) for value in rowids]

    response = client.post(url("owner", "tag", "action/"),
                           data={"action": "delete", "rowid": posted})

    assert response.status_code == 302
    assert count_rows(app, Tag, Tag.id == tag) == (0 if str(tag) in posted else 1)
