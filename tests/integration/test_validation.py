"""Bad input: a clear message next to the field, nothing changed, never a 500.
And what is stored is normalized: e-mail in lower case, phone in E.164, postcode in capitals."""

from decimal import Decimal

import pytest

from crm.admin_views import MODEL_VIEWS
from crm.extensions import db
from crm.models import Booking, Branch, Customer, Invoice, Note, Payment, Tag
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
    ({"address_line_1": ""}, "address_line_1", "an address needs its first line"),
    ({"postcode": ""}, "postcode", "an address needs its postcode"),
    ({"address_line_1": "", "postcode": "", "town": "Leeds"}, "address_line_1", "first line"),
    ({"address_line_1": "", "postcode": "", "email": "", "phone": ""}, "email",
     "Give an e-mail, a phone number or an address so we can reach them."),
    ({"email": "jo.example.com"}, "email", "not a valid e-mail"),
    ({"email": "jo@@example.com"}, "email", "not a valid e-mail"),
    ({"phone": "12345"}, "phone", "phone"),
    ({"phone": "call me"}, "phone", "phone"),
    ({"creditor_days": "-1"}, "creditor_days", "0"),
], ids=["no-surname", "company-without-name", "no-address-line-1", "no-postcode",
         "only-a-town", "no-way-to-reach", "email-no-at",
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


# --- one primary contact --------------------------------------------------------------------

def test_two_primary_contacts_on_the_customer_form_name_the_rule(app, client, login):
    from crm.models import Contact

    with app.app_context():
        row = customer(db.session, surname="Twice")
        f.make_contact(db.session, row, surname="First", is_primary=True)
        f.make_contact(db.session, row, surname="Second")
        db.session.commit()
        key = row.id
    login("owner")

    page = submit(client, url("owner", "customer", f"edit/?id={key}"),
                  {"contacts-1-is_primary": "y"})

    assert page.status_code == 200
    assert field_errors(text_of(page), "contacts-1-is_primary") == [
        "A customer has one primary contact: untick Primary here or on the other contact."]
    with app.app_context():
        assert db.session.query(Contact).filter_by(customer_id=key, is_primary=True).count() == 1


def test_a_second_primary_contact_from_the_contact_form_names_the_rule(app, client, login):
    with app.app_context():
        row = customer(db.session, surname="Twice")
        f.make_contact(db.session, row, surname="First", is_primary=True)
        second = f.make_contact(db.session, row, surname="Second")
        db.session.commit()
        key = second.id
    login("owner")

    page = submit(client, url("owner", "contact", f"edit/?id={key}"), {"is_primary": "y"})

    assert page.status_code == 200
    assert ("A customer has one primary contact: untick Primary on the other contact first."
            in flashes(text_of(page)))


# --- inputs that used to give a 500 ---------------------------------------------------------

@pytest.mark.parametrize("path", [
    "/admin/owner/customer/?search=smi%00th",
    "/admin/owner/customer/export/csv/?search=%00",
    "/admin/owner/customer/ajax/update/?x=%01",
    "/admin/owner/payment/record/?search=ab%00c",
])
def test_a_control_character_in_a_query_string_is_refused_with_a_sentence(client, login, path):
    login("owner")

    response = client.get(path)

    assert response.status_code == 400
    assert "contains a control character (such as NUL)" in text_of(response)


def test_a_nul_byte_in_a_form_field_saves_nothing(app, client, login):
    login("owner")

    response = client.post(url("owner", "tag", "new/"), data={"name": "VIP\x00"})

    assert response.status_code == 400
    assert "“name” contains a control character" in text_of(response)
    assert count_rows(app, Tag) == 0


def test_tabs_and_line_breaks_are_text(app, client, login):
    login("owner")
    with app.app_context():
        row = customer(db.session, surname="Lines")
        db.session.commit()
        key = row.id

    response = submit(client, url("owner", "customer", f"edit/?id={key}"),
                      {"notes": "First line\r\nSecond\tline"})

    assert response.status_code == 302
    assert load(app, Customer, key, "notes")["notes"] == "First line\r\nSecond\tline"


@pytest.mark.parametrize("page", ["99999999999999999999", "-5", "9223372036854775808"])
def test_a_page_number_out_of_range_shows_a_page(client, login, page):
    login("owner")

    response = client.get(url("owner", "customer", f"?page={page}"))

    assert response.status_code == 200


@pytest.mark.parametrize(("offset", "limit"), [("99999999999999999999", "10"),
                                               ("0", "99999999999999999999"), ("-3", "-3")])
def test_a_look_up_with_offset_or_limit_out_of_range_answers(app, client, login, offset, limit):
    with app.app_context():
        customer(db.session, surname="Lookup")
        db.session.commit()
    login("owner")

    response = client.get(url("owner", "contact", "ajax/lookup/"),
                          query_string={"name": "customer", "query": "lookup",
                                        "offset": offset, "limit": limit})

    assert response.status_code == 200
    assert isinstance(response.get_json(), list)


# --- one length limit for long text ----------------------------------------------------------

@pytest.mark.parametrize(("slug", "changes", "field", "limit"), [
    ("customer", NEW_CUSTOMER, "notes", 10_000),
    ("lead", {"surname": "Lead"}, "message", 5_000),
])
def test_a_long_text_past_its_limit_is_refused_at_the_form(app, client, login, slug, changes,
                                                          field, limit):
    login("owner")
    form = url("owner", slug, "new/")
    page = text_of(client.get(form))
    assert f'maxlength="{limit}"' in page  # the browser knows the limit too

    refused = submit(client, form, {**changes, field: "x" * (limit + 1)})

    assert refused.status_code == 200
    assert field_errors(text_of(refused), field) == [
        f"Field cannot be longer than {limit} characters."]


def test_a_note_past_its_limit_is_refused_on_the_record_page_too(app, client, login):
    with app.app_context():
        row = customer(db.session, surname="Noted")
        db.session.commit()
        key = row.id
    login("owner")

    response = client.post("/admin/owner/customer/note/", data={
        "customer_id": str(key), "kind": "note", "body": "x" * 20_001})

    assert response.status_code == 302
    page = text_of(client.get(response.headers["Location"]))
    assert "A note holds at most 20,000 characters; nothing was saved." in flashes(page)
    with app.app_context():
        assert db.session.query(Note).count() == 0


@pytest.mark.parametrize("reach", [{"email": "nomad@example.com"}, {"phone": "07911 123456"}],
                         ids=["e-mail", "phone"])
def test_a_customer_without_an_address_is_saved_with_an_email_or_a_phone(app, client, owner,
                                                                         reach):
    saved = submit(client, url("owner", "customer", "new/"),
                   {**NEW_CUSTOMER, "surname": "Nomad", "address_line_1": "", "postcode": "",
                    "email": "", "phone": "", **reach})

    assert saved.status_code == 302, flashes(text_of(saved))
    with app.app_context():
        row = db.session.query(Customer).filter_by(surname="Nomad").one()
        assert (row.address_line_1, row.postcode) == (None, None)
    page = text_of(client.get(url("owner", "customer", f"details/?id={row.id}")))
    assert "No address." in page and "None" not in page


def test_a_branch_still_needs_its_address(app, client, owner):
    page = submit(client, url("owner", "branch", "new/"),
                  {"customer": str(owner), "name": "Depot", "address_line_1": "",
                   "postcode": ""})

    assert count_rows(app, Branch) == 0
    assert "This field is required." in field_errors(text_of(page), "address_line_1")
    assert "This field is required." in field_errors(text_of(page), "postcode")
