"""The invoice screens: a draft is made with its lines on the admin form, issued from its
page (or in bulk from the list) and voided with a reason; an issued invoice's edit page
changes nothing; a coordinator gets 403 everywhere; every POST needs the CSRF token."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from crm.extensions import db
from crm.models import AuditEvent, Invoice
from tests import factories as f
from tests.integration.helpers import (
    by_testid,
    count_rows,
    customer,
    field_errors,
    flashes,
    input_names,
    load,
    submit,
    text_of,
)

D = Decimal
TODAY = date.today()
BASE = "/admin/owner/invoice/"


@pytest.fixture(autouse=True)
def owner(login):
    """Every test starts signed in as the owner (the role tests switch with ``as_role``)."""
    return login("owner")


def as_role(client, login, role: str):
    client.get("/logout")
    client.csrf_token = None
    return login(role)


@pytest.fixture
def people(app, owner):
    """A customer (14 creditor days) with a contact, another customer with a contact, a
    work address of the customer, one it is the landlord of, and someone else's."""
    with app.app_context():
        s = db.session
        client_ = customer(s, surname="Payer", creditor_days=14)
        other = customer(s, surname="Stranger")
        tenant = customer(s, surname="Tenant")
        made = {
            "customer": client_.id,
            "contact": f.make_contact(s, client_, surname="Accounts").id,
            "foreign_contact": f.make_contact(s, other, surname="Elsewhere").id,
            "address": f.make_work_address(s, client_).id,
            "let_address": f.make_work_address(s, tenant, landlord=client_).id,
            "foreign_address": f.make_work_address(s, other).id,
        }
        s.commit()
        return made


def _lines(*rows) -> dict:
    data = {}
    for i, (description, quantity, price) in enumerate(rows):
        data.update({f"lines-{i}-position": str(i), f"lines-{i}-category": "labour",
                     f"lines-{i}-description": description, f"lines-{i}-quantity": quantity,
                     f"lines-{i}-unit_price": price, f"lines-{i}-tax_rate": "20"})
    return data


def _create(client, people, **changes):
    form = {"customer": str(people["customer"]), "issue_date": "2026-05-01", "due_date": "",
            **_lines(("Call-out", "1", "60.00"), ("Parts", "2", "12.50"))}
    form.update(changes)
    return submit(client, BASE + "new/", form)


def _only_invoice(app) -> Invoice:
    with app.app_context():
        invoice = db.session.scalars(select(Invoice)).one()
        invoice.lines  # noqa: B018  (loaded before the session closes)
        return invoice


def _draft(app, amount="100.00", lines=True) -> int:
    with app.app_context():
        invoice = f.make_invoice(db.session, customer(db.session), amount=amount,
                                 status="draft")
        if not lines:
            db.session.delete(invoice.lines[0])
        db.session.commit()
        return invoice.id


def _issued(app, amount="100.00") -> int:
    with app.app_context():
        invoice = f.make_invoice(db.session, customer(db.session), amount=amount)
        db.session.commit()
        return invoice.id


# --- the draft form -----------------------------------------------------------------------

def test_the_form_makes_a_draft_with_its_lines_and_the_customers_terms(app, client, people):
    page = text_of(client.get(BASE + "new/"))
    assert {"customer", "contact", "work_address", "issue_date", "due_date", "notes",
            "address_format"} <= input_names(page)
    assert not {"status", "number"} & input_names(page)
    assert "[landlord_name]" in page and "[customer_postcode]" in page  # the tags, listed

    saved = _create(client, people, contact=str(people["contact"]),
                    work_address=str(people["address"]))

    assert saved.status_code == 302, flashes(text_of(saved)) + field_errors(
        text_of(saved), "lines-0-description")
    invoice = _only_invoice(app)
    assert (invoice.status, invoice.number) == ("draft", None)
    assert (invoice.issue_date, invoice.due_date) == (date(2026, 5, 1), date(2026, 5, 15))
    assert [(line.description, line.net_amount) for line in invoice.lines] == [
        ("Call-out", D("60.00")), ("Parts", D("25.00"))]
    assert (invoice.subtotal, invoice.tax_total, invoice.total) == (
        D("85.00"), D("17.00"), D("102.00"))
    assert (invoice.contact_id, invoice.work_address_id) == (people["contact"],
                                                             people["address"])


def test_a_work_address_the_customer_is_landlord_of_is_accepted(app, client, people):
    saved = _create(client, people, work_address=str(people["let_address"]),
                    address_format="[landlord_name] c/o [occupier_name]\r\n\r\n"
                                   "[work_address_postcode]")

    assert saved.status_code == 302, flashes(text_of(saved))
    invoice = _only_invoice(app)
    assert invoice.work_address_id == people["let_address"]
    assert invoice.address_format == "[landlord_name] c/o [occupier_name]\n[work_address_postcode]"


@pytest.mark.parametrize(("field", "key", "message"), [
    ("contact", "foreign_contact", "That contact belongs to another customer."),
    ("work_address", "foreign_address", "neither the customer's nor one it is the landlord"),
])
def test_someone_elses_contact_or_work_address_is_refused(app, client, people, field, key,
                                                          message):
    page = _create(client, people, **{field: str(people[key])})

    assert page.status_code == 200
    assert any(message in error for error in field_errors(text_of(page), field))
    assert count_rows(app, Invoice) == 0


def test_an_unknown_address_tag_is_refused_by_name(app, client, people):
    page = _create(client, people, address_format="[customer_name]\n[customer_shoe_size]")

    assert page.status_code == 200
    assert any("[customer_shoe_size]" in e for e in field_errors(text_of(page),
                                                                  "address_format"))
    assert count_rows(app, Invoice) == 0


def test_a_draft_can_be_edited(app, client):
    key = _draft(app)

    saved = submit(client, BASE + f"edit/?id={key}", {"notes": "PO 77", "due_date": "2099-01-01"})

    assert saved.status_code == 302, flashes(text_of(saved))
    assert load(app, Invoice, key, "notes", "status") == {"notes": "PO 77", "status": "draft"}


# --- issue --------------------------------------------------------------------------------

def test_a_draft_is_issued_from_its_page(app, client):
    key = _draft(app, amount="75.00")
    page = text_of(client.get(BASE + f"details/?id={key}"))
    assert by_testid(page, "status-badge") == ["draft"]
    assert by_testid(page, "issue-invoice") == ["Issue"]
    assert not by_testid(page, "void-invoice")

    response = client.post(BASE + "issue/", data={"id": str(key)}, follow_redirects=True)

    page = text_of(response)
    assert any("INV-000001 issued: £75.00 due on" in m for m in flashes(page))
    assert by_testid(page, "status-badge") == ["issued"]
    assert f"/admin/owner/invoice/pdf/?id={key}" in page
    assert f"/admin/owner/credit_note/raise/?invoice_id={key}" in page
    assert load(app, Invoice, key, "number", "issue_date") == {"number": "INV-000001",
                                                               "issue_date": TODAY}
    assert count_rows(app, AuditEvent, AuditEvent.verb == "issue_invoice") == 1


def test_a_draft_without_lines_is_not_issued(app, client):
    key = _draft(app, lines=False)

    response = client.post(BASE + "issue/", data={"id": str(key)}, follow_redirects=True)

    assert any("has no lines" in m for m in flashes(text_of(response)))
    assert load(app, Invoice, key, "status", "number") == {"status": "draft", "number": None}


def test_issuing_an_unknown_invoice_is_not_found(client, owner):
    assert client.post(BASE + "issue/", data={"id": "abc"}).status_code == 404
    response = client.post(BASE + "issue/", data={"id": "999999"}, follow_redirects=True)
    assert "That invoice does not exist." in flashes(text_of(response))


def test_issuing_is_a_post_only(client, owner):
    assert client.get(BASE + "issue/?id=1").status_code == 405


# --- void ---------------------------------------------------------------------------------

def test_an_issued_invoice_is_voided_with_a_reason(app, client):
    key = _issued(app, amount="40.00")

    ask = client.post(BASE + "void/", data={"id": str(key)})
    assert ask.status_code == 200
    assert by_testid(text_of(ask), "confirm-button") == ["Void INV-000001"]
    assert load(app, Invoice, key, "status") == {"status": "issued"}

    done = client.post(BASE + "void/", data={"id": str(key), "confirm": "1",
                                             "reason": "Raised twice"}, follow_redirects=True)

    assert "INV-000001 is void." in flashes(text_of(done))
    assert by_testid(text_of(done), "status-badge") == ["void"]
    assert not by_testid(text_of(done), "raise-credit-note")
    assert load(app, Invoice, key, "status", "notes") == {
        "status": "void", "notes": f"Void on {TODAY.isoformat()}: Raised twice"}


def test_voiding_without_a_reason_is_refused(app, client):
    key = _issued(app)

    page = client.post(BASE + "void/", data={"id": str(key), "confirm": "1", "reason": " "})

    assert page.status_code == 400
    assert by_testid(text_of(page), "action-error") == [
        "Say why INV-000001 is being voided; nothing was changed."]
    assert load(app, Invoice, key, "status", "notes") == {"status": "issued", "notes": None}


def test_a_draft_is_not_voided(app, client):
    key = _draft(app)

    page = client.post(BASE + "void/", data={"id": str(key), "confirm": "1", "reason": "x"})

    assert page.status_code == 400
    assert "delete it instead" in by_testid(text_of(page), "action-error")[0]
    assert load(app, Invoice, key, "status") == {"status": "draft"}


def test_voiding_an_unknown_invoice_is_not_found(client, owner):
    assert client.get(BASE + "void/?id=999999").status_code == 404


# --- issued invoices are not edited -------------------------------------------------------

def test_the_edit_page_of_an_issued_invoice_sends_the_user_to_its_details(app, client):
    key = _issued(app)

    response = client.get(BASE + f"edit/?id={key}", follow_redirects=True)

    assert response.request.path == BASE + "details/"
    assert "INV-000001 is issued; raise a credit note to change what is owed." in flashes(
        text_of(response))


def test_a_forged_edit_of_an_issued_invoice_changes_nothing(app, client):
    key = _issued(app)

    response = client.post(BASE + f"edit/?id={key}", data={
        "customer": "1", "issue_date": "2020-01-01", "due_date": "2020-01-02",
        "notes": "Forged", **_lines(("Free", "1", "0.00"))})

    assert response.status_code == 302
    assert "/details/" in response.headers["Location"]
    assert load(app, Invoice, key, "notes", "total", "issue_date") == {
        "notes": None, "total": D("100.00"),
        "issue_date": TODAY + timedelta(days=14) - timedelta(days=30)}


def test_an_issued_invoice_cannot_be_deleted(app, client):
    key = _issued(app)

    response = client.post(BASE + "delete/", data={"id": str(key)}, follow_redirects=True)

    assert any("cannot be deleted; void it instead" in m for m in flashes(text_of(response)))
    assert count_rows(app, Invoice) == 1


def test_a_draft_can_be_deleted_from_its_page(app, client):
    key = _draft(app)
    assert by_testid(text_of(client.get(BASE + f"details/?id={key}")), "delete-draft")

    client.post(BASE + "delete/", data={"id": str(key)})

    assert count_rows(app, Invoice) == 0


# --- bulk ---------------------------------------------------------------------------------

def test_bulk_issue_shows_what_was_issued_and_what_was_skipped(app, client):
    issued = _issued(app)  # INV-000001
    drafts = [_draft(app), _draft(app, amount="20.00")]
    empty = _draft(app, lines=False)

    page = client.post(BASE + "action/", data={"action": "issue",
                                              "rowid": [str(i) for i in (*drafts, empty,
                                                                         issued)]})

    assert page.status_code == 200
    html = text_of(page)
    assert by_testid(html, "result-changed") == ["2 issued: INV-000002, INV-000003"]
    assert "INV-000001 skipped: already issued" in html
    assert f"Draft #{empty} skipped: no lines" in html
    assert [load(app, Invoice, k, "number")["number"] for k in drafts] == [
        "INV-000002", "INV-000003"]


def test_the_list_offers_the_bulk_issue(client, owner):
    assert "Issue selected drafts" in text_of(client.get(BASE))


# --- roles and CSRF -----------------------------------------------------------------------

ENDPOINTS = [
    ("get", "", None), ("get", "new/", None), ("get", "details/?id={id}", None),
    ("get", "edit/?id={id}", None), ("post", "issue/", {"id": "{id}"}),
    ("get", "void/?id={id}", None),
    ("post", "void/", {"id": "{id}", "confirm": "1", "reason": "x"}),
    ("post", "action/", {"action": "issue", "rowid": "{id}"}),
]


@pytest.mark.parametrize(("method", "page", "data"), ENDPOINTS,
                         ids=[f"{m}-{p.split('?')[0] or 'list'}" for m, p, _ in ENDPOINTS])
def test_a_coordinator_gets_403_on_every_invoice_endpoint(app, client, login, method, page,
                                                           data):
    key = _draft(app)
    as_role(client, login, "coordinator")
    target = BASE + page.format(id=key)
    if method == "get":
        response = client.get(target)
    else:
        response = client.post(target, data={k: v.format(id=key) for k, v in data.items()})

    assert response.status_code == 403
    assert load(app, Invoice, key, "status") == {"status": "draft"}
    assert client.get(f"/admin/coordinator/invoice/{page.format(id=key)}").status_code == 404


def test_an_admin_issues_and_voids_too(app, client, login):
    as_role(client, login, "admin")
    key = _draft(app)

    client.post("/admin/admin/invoice/issue/", data={"id": str(key)})
    client.post("/admin/admin/invoice/void/", data={"id": str(key), "confirm": "1",
                                                    "reason": "Wrong customer"})

    assert load(app, Invoice, key, "status") == {"status": "void"}


@pytest.mark.parametrize(("page", "data"), [
    ("issue/", {"id": "{id}"}),
    ("void/", {"id": "{id}", "confirm": "1", "reason": "x"}),
    ("action/", {"action": "issue", "rowid": "{id}"}),
], ids=["issue", "void", "bulk"])
@pytest.mark.parametrize("token", [{}, {"csrf_token": "forged"}], ids=["missing", "forged"])
def test_a_post_without_the_csrf_token_is_refused(app, client, owner, page, data, token):
    key = _issued(app) if page == "void/" else _draft(app)
    before = load(app, Invoice, key, "status", "number")

    response = client.post(BASE + page, csrf=False,
                           data={**{k: v.format(id=key) for k, v in data.items()}, **token})

    assert response.status_code == 400
    assert load(app, Invoice, key, "status", "number") == before


# --- amounts within what the columns hold -------------------------------------------------

@pytest.mark.parametrize(("field", "value", "message"), [
    ("lines-0-quantity", "1e5", "Enter a quantity such as 2.5"),
    ("lines-0-quantity", "100000000", "That quantity is too large"),
    ("lines-0-unit_price", "1_000", "Enter an amount such as 120.50"),
    ("lines-0-unit_price", "\uff11\uff12", "Enter an amount such as 120.50"),
    ("lines-0-tax_rate", "5000", "Enter a tax rate between 0 and 100"),
], ids=["exponent", "huge-quantity", "underscore", "full-width", "tax-5000"])
def test_a_line_past_what_its_columns_hold_is_refused_next_to_the_field(
        app, client, people, field, value, message):
    saved = _create(client, people, **{field: value})

    assert saved.status_code == 200
    assert any(message in error for error in field_errors(text_of(saved), field)), \
        field_errors(text_of(saved), field)
    assert count_rows(app, Invoice) == 0


def test_the_attack_line_is_refused_at_the_form(app, client, people):
    """9,999,999,999.99 x 9,999,999,999.99 was once issued as 99,999,999,999,800,000,000.00."""
    saved = _create(client, people, **{"lines-0-quantity": "99999999.99",
                                       "lines-0-unit_price": "9999999999.99"})

    assert saved.status_code == 200
    assert any("a line holds at most £9,999,999,999.99" in error
               for error in field_errors(text_of(saved), "lines-0-unit_price"))
    assert count_rows(app, Invoice) == 0


def test_lines_that_each_fit_but_add_up_past_an_invoice_are_refused(app, client, people):
    saved = _create(client, people, **_lines(("One", "1", "6000000000.00"),
                                             ("Two", "1", "6000000000.00")))

    assert saved.status_code == 200
    assert any("an invoice holds at most £9,999,999,999.99" in error
               for error in field_errors(text_of(saved), "lines-1-unit_price"))
    assert count_rows(app, Invoice) == 0


def test_each_invoice_page_has_one_heading_its_own(app, client, people):
    """No "Invoices" heading above the page's own title (the list's name, repeated)."""
    draft, issued = _draft(app), _issued(app)
    for page in (f"new/?customer={people['customer']}", f"edit/?id={draft}",
                 f"details/?id={draft}", f"details/?id={issued}"):
        html = text_of(client.get(BASE + page))
        assert html.count("<h1") == 1, page
        assert '<h4 class="mb-4">' not in html, page
