"""The record-a-payment and allocate-credit pages, and removing an allocation, end to end."""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from crm.extensions import db
from crm.formatting import day
from crm.models import Allocation, AuditEvent, Customer, Invoice, Payment
from tests import factories as f
from tests.integration.helpers import (
    by_testid,
    count_rows,
    flashes,
    form_values,
    input_names,
    load,
    text_of,
)

D = Decimal
RECORD = "/admin/owner/payment/record/"
ALLOCATE = "/admin/owner/payment/allocate/"


@pytest.fixture
def debtor(app):
    """A customer owing 100.00 (due 40 days ago) and 50.00 (due 10 days ago), plus a draft,
    a void invoice and another customer's invoice."""
    with app.app_context():
        s = db.session
        customer = f.make_customer(s, surname="Payer")
        old = f.make_invoice(s, customer, amount="100.00", days_overdue=40)
        new = f.make_invoice(s, customer, amount="50.00", days_overdue=10)
        draft = f.make_invoice(s, customer, status="draft")
        void = f.make_invoice(s, customer, status="void")
        stranger = f.make_invoice(s, f.make_customer(s), amount="70.00")
        s.commit()
        return {"customer": customer.id, "old": old.id, "new": new.id, "draft": draft.id,
                "void": void.id, "stranger": stranger.id}


def _form(debtor, **fields) -> dict:
    data = {"customer_id": str(debtor["customer"]), "received_on": "2026-05-01",
            "method": "card", "reference": "SHOP-7", "amount": "120.00", "confirm": "1"}
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


def _alloc(debtor, key: str) -> str:
    return f"alloc_{debtor[key]}"


def test_the_record_page_shows_the_customer_and_its_open_invoices(client, login, debtor):
    login("owner")

    page = text_of(client.get(f"{RECORD}?customer_id={debtor['customer']}"))

    summary = by_testid(page, "customer-summary")[0]
    assert "balance £150.00" in summary and "overdue £150.00 for 40 days" in summary
    assert "account credit £0.00" in summary
    rows = by_testid(page, "invoice-row")
    assert [r.split()[0] for r in rows] == ["INV-000001", "INV-000002"]  # oldest due first
    assert rows[0].endswith("40 £100.00") and rows[1].endswith("10 £50.00")
    assert {_alloc(debtor, "old"), _alloc(debtor, "new")} <= input_names(page)
    assert _alloc(debtor, "draft") not in input_names(page)


def test_a_payment_is_recorded_and_allocated_from_the_page(app, client, login, debtor):
    login("owner")

    response = client.post(RECORD, data=_form(debtor, **{_alloc(debtor, "old"): "100.00",
                                                         _alloc(debtor, "new"): "15.00"}))

    assert response.status_code == 302
    page = text_of(client.get(response.headers["Location"]))
    assert any("£115.00 allocated to INV-000001, INV-000002; £5.00 left as account credit" in m
               for m in flashes(page))
    assert load(app, Invoice, debtor["old"], "outstanding")["outstanding"] == D("0.00")
    assert load(app, Invoice, debtor["new"], "outstanding")["outstanding"] == D("35.00")
    assert load(app, Customer, debtor["customer"], "balance", "account_credit") == {
        "balance": D("30.00"), "account_credit": D("5.00")}
    assert count_rows(app, AuditEvent, AuditEvent.verb == "record_payment") == 1


def test_allocate_oldest_first_fills_in_the_suggestion_and_writes_nothing(app, client, login,
                                                                          debtor):
    login("owner")
    data = _form(debtor, amount="120.00", confirm=None, suggest="1")

    page = client.post(RECORD, data=data)

    assert page.status_code == 200
    values = form_values(text_of(page).replace('<form method="post"',
                                               '<form class="admin-form" method="post"'))
    assert values[_alloc(debtor, "old")] == "100.00"
    assert values[_alloc(debtor, "new")] == "20.00"
    assert (values["amount"], values["reference"]) == ("120.00", "SHOP-7")
    assert count_rows(app, Payment) == 0


@pytest.mark.parametrize(("fields", "message"), [
    ({"amount": "0"}, "The payment: The amount must be more than zero."),
    ({"amount": "-5"}, "The payment: The amount must not be negative."),
    ({"amount": "lots"}, "The payment: Enter an amount such as 120.50."),
    ({"method": "bitcoin"}, "A payment is made by one of"),
    ({"received_on": "31 Feb 2026"}, "Date received: type a date like 4 Dec 2026."),
    ({"received_on": "next tuesday"}, "Date received: type a date like 4 Dec 2026."),
    ({"received_on": "1850-01-01"}, "Enter a date between 1900 and 2100."),
    ({"old": "100.01"}, "Only £100.00 is left to pay on INV-000001"),
    ({"old": "0"}, "An allocation: The amount must be more than zero."),
    ({"old": "100.00", "new": "30.00"}, "add up to £130.00, more than the payment of £120.00"),
    ({"draft": "10.00"}, "is a draft: only issued invoices can be paid"),
    ({"void": "10.00"}, "is void: only issued invoices can be paid"),
    ({"stranger": "10.00"}, "belongs to another customer"),
])
def test_each_refusal_is_shown_on_the_page_with_the_inputs_kept(app, client, login, debtor,
                                                                fields, message):
    login("owner")
    fields = {(_alloc(debtor, k) if k in debtor else k): v for k, v in fields.items()}

    page = client.post(RECORD, data=_form(debtor, **fields))

    assert page.status_code == 400
    (error,) = by_testid(text_of(page), "action-error")
    assert message in error
    html = text_of(page)
    assert 'value="SHOP-7"' in html
    for name, value in fields.items():
        if name.startswith("alloc_") and name in input_names(html):
            assert f'name="{name}" value="{value}"' in html
    assert count_rows(app, Payment) == 0 and count_rows(app, Allocation) == 0


def test_record_a_payment_starts_from_the_payments_list_with_a_customer_search(client, login,
                                                                              debtor):
    login("owner")
    listing = text_of(client.get("/admin/owner/payment/"))
    assert "/admin/owner/payment/record/" in listing
    assert "/admin/owner/payment/new/" not in listing

    picker = text_of(client.get(RECORD))
    assert by_testid(picker, "pick-customer")
    found = text_of(client.get(f"{RECORD}?q=payer"))
    assert f"/admin/owner/payment/record/?customer_id={debtor['customer']}" in found


def test_a_merged_away_customer_leads_to_its_survivor(app, client, login, debtor):
    login("owner")
    with app.app_context():
        survivor = f.make_customer(db.session)
        db.session.get(Customer, debtor["customer"]).merged_into_id = survivor.id
        db.session.commit()
        survivor_id = survivor.id

    response = client.get(f"{RECORD}?customer_id={debtor['customer']}")

    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"customer_id={survivor_id}")


def test_the_plain_create_forms_are_switched_off(app, client, login, debtor):
    login("owner")
    for slug in ("payment", "allocation"):
        client.post(f"/admin/owner/{slug}/new/", data={"customer": str(debtor["customer"]),
                                                       "invoice": str(debtor["old"]),
                                                       "received_on": "2026-05-01",
                                                       "amount": "5.00"})
    assert count_rows(app, Payment) == 0 and count_rows(app, Allocation) == 0


# --- allocate account credit ---------------------------------------------------------------
@pytest.fixture
def in_credit(app, debtor):
    with app.app_context():
        f.make_payment(db.session, db.session.get(Customer, debtor["customer"]),
                       amount="120.00")
        db.session.commit()
    return debtor


def test_the_allocate_page_suggests_the_credit_oldest_first_and_allocates_it(app, client,
                                                                             login, in_credit):
    login("owner")
    url = f"{ALLOCATE}?customer_id={in_credit['customer']}"
    page = text_of(client.get(url))
    assert by_testid(page, "account-credit") == ["£120.00"]
    assert f'name="{_alloc(in_credit, "old")}" value="100.00"' in page
    assert f'name="{_alloc(in_credit, "new")}" value="20.00"' in page

    response = client.post(ALLOCATE, data={"customer_id": str(in_credit["customer"]),
                                           "confirm": "1", _alloc(in_credit, "old"): "100.00",
                                           _alloc(in_credit, "new"): "20.00"})

    assert response.status_code == 302
    after = text_of(client.get(response.headers["Location"]))
    assert any("£120.00 of account credit allocated" in m for m in flashes(after))
    assert load(app, Customer, in_credit["customer"], "account_credit", "balance") == {
        "account_credit": D("0.00"), "balance": D("30.00")}


def test_allocating_more_than_the_credit_is_refused_on_the_page(app, client, login, in_credit):
    login("owner")

    page = client.post(ALLOCATE, data={"customer_id": str(in_credit["customer"]),
                                       "confirm": "1", _alloc(in_credit, "old"): "100.00",
                                       _alloc(in_credit, "new"): "20.01"})

    assert page.status_code == 400
    assert "has £120.00 of account credit; £120.01 cannot be allocated" in by_testid(
        text_of(page), "action-error")[0]
    assert count_rows(app, Allocation) == 0


# --- removing an allocation ----------------------------------------------------------------
def test_remove_on_an_allocation_gives_the_money_back_as_credit(app, client, login, in_credit):
    login("owner")
    client.post(ALLOCATE, data={"customer_id": str(in_credit["customer"]), "confirm": "1",
                                _alloc(in_credit, "old"): "100.00"})
    with app.app_context():
        allocation_id = db.session.query(Allocation.id).scalar()
    details = text_of(client.get(f"/admin/owner/allocation/details/?id={allocation_id}"))
    assert by_testid(details, "remove-allocation") == ["Remove"]

    response = client.post("/admin/owner/allocation/remove/", data={"id": str(allocation_id)},
                           follow_redirects=True)

    assert any("is account credit again" in m for m in flashes(text_of(response)))
    assert count_rows(app, Allocation) == 0
    assert load(app, Customer, in_credit["customer"], "account_credit") == {
        "account_credit": D("120.00")}
    again = client.post("/admin/owner/allocation/remove/", data={"id": str(allocation_id)},
                        follow_redirects=True)
    assert any("does not exist" in m for m in flashes(text_of(again)))


# --- who may, and forged requests -----------------------------------------------------------
@pytest.mark.parametrize("path", ["payment/record/", "payment/allocate/", "allocation/remove/"])
def test_a_coordinator_is_refused_every_money_page(app, client, login, debtor, path):
    login("coordinator")
    query = f"?customer_id={debtor['customer']}"

    assert client.get(f"/admin/owner/{path}{query}").status_code in (403, 405)
    assert client.post(f"/admin/owner/{path}", data=_form(debtor)).status_code == 403
    assert client.get(f"/admin/coordinator/{path}{query}").status_code == 404
    assert count_rows(app, Payment) == 0


def test_a_post_without_the_csrf_token_is_refused(app, client, login, in_credit):
    login("owner")

    assert client.post(RECORD, data=_form(in_credit), csrf=False).status_code == 400
    assert client.post(ALLOCATE, data={"customer_id": str(in_credit["customer"]),
                                       "confirm": "1", _alloc(in_credit, "old"): "10.00"},
                       csrf=False).status_code == 400
    assert count_rows(app, Payment) == 1 and count_rows(app, Allocation) == 0


def test_allocate_oldest_first_without_a_valid_amount_says_so(app, client, login, debtor):
    login("owner")

    page = client.post(RECORD, data=_form(debtor, amount="12,50", confirm=None, suggest="1"))

    assert page.status_code == 400
    assert by_testid(text_of(page), "action-error") == ["Amount: Enter an amount such as 120.50."]
    assert count_rows(app, Payment) == 0


def test_the_record_page_has_one_heading_and_dates_in_the_one_style(client, login, debtor):
    login("owner")

    html = text_of(client.get(f"{RECORD}?customer_id={debtor['customer']}"))

    assert html.count("<h1") == 1 and '<h4 class="mb-4">' not in html
    assert "Record a payment" in html
    due = (date.today() - timedelta(days=40))
    assert f"<td>{day(due)}</td>" in html and due.isoformat() not in html
