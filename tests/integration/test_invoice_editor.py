"""The invoice editor and the invoice's page, as a bookkeeper uses them: customer first (the
record page's *New invoice* fills it in, the pickers list only that customer's records),
lines as a grid (blank rows ignored, removed rows gone, positions in the order shown), the
issue date today and the due date optional, saving lands on the draft, which is issued (and
e-mailed) from its page; an issued invoice offers no *Edit* but *Record payment*,
*E-mail to customer* and what was paid and credited against it. Also the standalone credit
note, which no longer complains before anything is typed."""

import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from crm import mail, models
from crm.extensions import db
from crm.formatting import day
from crm.models import (
    AuditEvent,
    BlockedEmail,
    Contact,
    Customer,
    Invoice,
)
from tests import factories as f
from tests.integration.helpers import (
    by_testid,
    count_rows,
    customer,
    field_errors,
    flashes,
    form_values,
    load,
    submit,
    text_of,
)

D = Decimal
TODAY = date.today()
BASE = "/admin/owner/invoice/"


@pytest.fixture(autouse=True)
def owner(login):
    return login("owner")


@pytest.fixture
def outbox(app, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "MAIL_BACKEND", "outbox")
    monkeypatch.setitem(app.config, "MAIL_OUTBOX_DIR", str(tmp_path / "outbox"))
    return mail.Outbox(tmp_path / "outbox")


@pytest.fixture
def people(app):
    """A customer with two contacts and a work address, and a stranger with the same."""
    with app.app_context():
        s = db.session
        payer = customer(s, surname="Payer", email="payer@example.com")
        stranger = customer(s, surname="Stranger")
        made = {
            "customer": payer.id, "stranger": stranger.id,
            "contact": f.make_contact(s, payer, surname="Accounts", is_primary=True).id,
            "contact2": f.make_contact(s, payer, surname="Site").id,
            "address": f.make_work_address(s, payer, address_line_1="1 Payer Row").id,
            "foreign_contact": f.make_contact(s, stranger, surname="Elsewhere").id,
            "foreign_address": f.make_work_address(s, stranger,
                                                   address_line_1="9 Other Road").id,
        }
        s.commit()
        return made


def _options(html: str, name: str) -> list[str]:
    """The values a select offers (the blank choice left out)."""
    match = re.search(rf'<select[^>]*name="{name}"[^>]*>(.*?)</select>', html, re.S)
    assert match, f"no select {name}"
    return [v for v in re.findall(r'<option value="([^"]*)"', match.group(1)) if v]


def _input_tag(html: str, name: str) -> str:
    match = re.search(rf'<input[^>]*\bname="{name}"[^>]*>', html)
    assert match, f"no input {name}"
    return match.group(0)


def _rows(*lines) -> dict:
    """Grid rows as the browser posts them: (description, quantity, price, tax) at the
    row numbers given by their place (a None is a row left blank)."""
    data = {}
    for i, line in enumerate(lines):
        description, quantity, price, tax = line or ("", "1", "", "20")
        data.update({f"lines-{i}-category": "labour", f"lines-{i}-description": description,
                     f"lines-{i}-quantity": quantity, f"lines-{i}-unit_price": price,
                     f"lines-{i}-tax_rate": tax})
    return data


def _new(client, people, *lines, **fields):
    data = {"customer": str(people["customer"]), "issue_date": TODAY.isoformat(),
            "due_date": "", "notes": "", "address_format": "", **_rows(*lines), **fields}
    return client.post(BASE + "new/", data=data)


def _invoice(app) -> Invoice:
    with app.app_context():
        invoice = db.session.scalars(select(Invoice)).one()
        invoice.lines  # noqa: B018  (loaded before the session closes)
        return invoice


def _issued(app, people, amount="100.00", **overrides) -> int:
    with app.app_context():
        payer = db.session.get(Customer, people["customer"])
        invoice = f.make_invoice(db.session, payer, amount=amount, tax_rate="20", **overrides)
        db.session.commit()
        return invoice.id


# --- defect 3: the create form ------------------------------------------------------------

def test_the_due_date_is_optional_and_the_issue_date_is_today(client, people):
    page = text_of(client.get(BASE + f"new/?customer_id={people['customer']}"))

    assert "required" not in _input_tag(page, "due_date")
    assert f'value="{day(TODAY)}"' in _input_tag(page, "issue_date")  # "5 Dec 2026"
    assert 'type="text"' in _input_tag(page, "issue_date")
    assert "Leave blank" in page


def test_the_pickers_offer_only_the_chosen_customers_records(client, people):
    page = text_of(client.get(BASE + f"new/?customer_id={people['customer']}"))

    assert _options(page, "contact") == [str(people["contact"]), str(people["contact2"])]
    assert _options(page, "work_address") == [str(people["address"])]
    assert "Elsewhere" not in page and "9 Other Road" not in page


def test_the_lookup_for_a_customer_lists_only_its_records(client, people):
    contacts = client.get(BASE + "ajax/lookup/", query_string={
        "name": "contact", "customer_id": people["customer"], "query": ""}).get_json()
    addresses = client.get(BASE + "ajax/lookup/", query_string={
        "name": "work_address", "customer_id": people["customer"]}).get_json()

    assert [c[0] for c in contacts] == [people["contact"], people["contact2"]]
    assert "(primary)" in contacts[0][1]
    assert [a[0] for a in addresses] == [people["address"]]
    assert client.get(BASE + "ajax/lookup/", query_string={
        "name": "contact", "customer_id": "x"}).get_json() == []


def test_someone_elses_contact_is_still_refused_by_the_server(app, client, people):
    page = _new(client, people, ("Call-out", "1", "60.00", "20"),
                contact=str(people["foreign_contact"]))

    assert page.status_code == 200
    assert "That contact belongs to another customer." in field_errors(text_of(page),
                                                                        "contact")
    assert count_rows(app, Invoice) == 0


def test_new_lines_keep_the_order_shown(app, client, people):
    """They were all saved at position 0 (and then read back in any order)."""
    saved = _new(client, people, ("First", "1", "10.00", "20"),
                 ("Second", "2", "5.00", "0"), ("Third", "1", "1.00", "5"))

    assert saved.status_code == 302, flashes(text_of(saved))
    invoice = _invoice(app)
    assert [(line.position, line.description) for line in invoice.lines] == [
        (1, "First"), (2, "Second"), (3, "Third")]


def test_saving_lands_on_the_new_draft(app, client, people):
    saved = _new(client, people, ("Call-out", "1", "60.00", "20"))

    invoice = _invoice(app)
    assert saved.headers["Location"].endswith(f"/admin/owner/invoice/details/?id={invoice.id}")
    page = text_of(client.get(saved.headers["Location"]))
    assert "Draft saved (£72.00)" in " ".join(flashes(page))
    assert by_testid(page, "issue-invoice") == ["Issue"]
    assert by_testid(page, "issue-and-email") == ["Issue and e-mail"]
    assert by_testid(page, "edit-draft") == ["Edit"]
    assert by_testid(page, "delete-draft") == ["Delete draft"]


# --- the grid -----------------------------------------------------------------------------

def test_blank_rows_are_ignored_and_the_totals_are_the_servers(app, client, people):
    saved = _new(client, people, None, ("Labour", "1.5", "40.00", "20"), None,
                 ("Parts", "3", "2.99", "5"), None)

    assert saved.status_code == 302, flashes(text_of(saved))
    invoice = _invoice(app)
    assert [line.description for line in invoice.lines] == ["Labour", "Parts"]
    assert (invoice.subtotal, invoice.tax_total, invoice.total) == (
        D("68.97"), D("12.45"), D("81.42"))


def test_a_row_with_a_price_but_no_description_is_refused_next_to_it(app, client, people):
    page = _new(client, people, ("", "1", "10.00", "20"))

    assert page.status_code == 200
    assert "This field is required." in field_errors(text_of(page), "lines-0-description")
    assert flashes(text_of(page)) == [
        "The draft was not saved: correct what is marked in red below."]
    assert count_rows(app, Invoice) == 0


def test_a_new_row_marked_for_removal_is_not_saved(app, client, people):
    saved = _new(client, people, ("Keep", "1", "10.00", "20"), ("Drop", "1", "5.00", "20"),
                 **{"del-lines-1": "y"})

    assert saved.status_code == 302, flashes(text_of(saved))
    assert [line.description for line in _invoice(app).lines] == ["Keep"]


def test_editing_removes_and_renumbers_lines(app, client, people):
    _new(client, people, ("One", "1", "1.00", "0"), ("Two", "1", "2.00", "0"),
         ("Three", "1", "3.00", "0"))
    key = _invoice(app).id
    form_url = BASE + f"edit/?id={key}"
    values = form_values(text_of(client.get(form_url)))
    assert [values[f"lines-{i}-description"] for i in range(3)] == ["One", "Two", "Three"]

    saved = submit(client, form_url, {"del-lines-1": "y", "lines-2-unit_price": "4.00",
                                      "lines-3-description": "Four",
                                      "lines-3-unit_price": "5.00"})

    assert saved.status_code == 302, flashes(text_of(saved))
    assert saved.headers["Location"].endswith(f"details/?id={key}")
    invoice = _invoice(app)
    assert [(line.position, line.description, line.unit_price) for line in invoice.lines] == [
        (1, "One", D("1.00")), (2, "Three", D("4.00")), (3, "Four", D("5.00"))]
    assert invoice.total == D("10.00")


def test_an_existing_line_emptied_is_removed(app, client, people):
    _new(client, people, ("One", "1", "1.00", "0"), ("Two", "1", "2.00", "0"))
    key = _invoice(app).id

    saved = submit(client, BASE + f"edit/?id={key}", {"lines-0-description": "",
                                                       "lines-0-unit_price": ""})

    assert saved.status_code == 302, flashes(text_of(saved))
    assert [line.description for line in _invoice(app).lines] == ["Two"]


def test_the_grid_shows_each_lines_net_and_the_totals(app, client, people):
    _new(client, people, ("Labour", "2", "45.50", "20"), ("Parts", "1", "1234.5", "0"))
    key = _invoice(app).id

    page = text_of(client.get(BASE + f"edit/?id={key}"))

    assert by_testid(page, "line-net")[:2] == ["£91.00", "£1,234.50"]
    assert (by_testid(page, "total-subtotal"), by_testid(page, "total-tax"),
            by_testid(page, "total-total")) == (["£1,325.50"], ["£18.20"], ["£1,343.70"])
    assert 'src="/static/js/invoices.js"' in page
    assert "<script>" not in page


def test_more_lines_than_an_invoice_holds_are_refused(app, client, people):
    lines = [(f"Line {i}", "1", "1.00", "0") for i in range(201)]

    page = _new(client, people, *lines)

    assert page.status_code == 200
    assert any("at most 200 lines" in m for m in flashes(text_of(page)))
    assert count_rows(app, Invoice) == 0


# --- due dates ----------------------------------------------------------------------------

def test_a_blank_due_date_follows_the_business_payment_terms(app, client, people):
    from crm.models import BusinessProfile

    with app.app_context():
        db.session.add(BusinessProfile(id=1, name="Acme", payment_terms_days=21))
        db.session.commit()
    form = text_of(client.get(BASE + "new/"))
    assert "payment terms (21 days)" in form  # the help says which terms

    _new(client, people, ("Call-out", "1", "60.00", "20"))

    assert _invoice(app).due_date == TODAY + timedelta(days=21)


def test_a_blank_due_date_is_30_days_without_a_profile(app, client, people):
    _new(client, people, ("Call-out", "1", "60.00", "20"))

    assert _invoice(app).due_date == TODAY + timedelta(days=30)


def test_the_customers_own_credit_days_come_first(app, client, people):
    from crm.models import BusinessProfile

    with app.app_context():
        db.session.add(BusinessProfile(id=1, name="Acme", payment_terms_days=21))
        db.session.get(Customer, people["customer"]).creditor_days = 7
        db.session.commit()

    _new(client, people, ("Call-out", "1", "60.00", "20"))

    assert _invoice(app).due_date == TODAY + timedelta(days=7)


# --- defect 8: from the customer's money tab ----------------------------------------------

def test_new_invoice_from_the_money_tab_has_the_customer_filled_in(client, people):
    record = text_of(client.get(f"/admin/owner/customer/details/?id={people['customer']}"))
    link = re.search(r'href="([^"]*/invoice/new/[^"]*)">New invoice<', record)
    assert link, "no New invoice link"

    page = text_of(client.get(link.group(1).replace("&amp;", "&")))

    assert f'value="{people["customer"]}"' in _input_tag(page, "customer")
    assert "Please select model" not in page
    assert "Choose a contact" in page


def test_no_please_select_model_on_a_blank_form(client, people):
    page = text_of(client.get(BASE + "new/"))

    assert "Please select model" not in page
    assert 'data-party="contact" hidden' in page  # no customer yet: nothing to choose


def test_issued_invoices_offer_no_edit(app, client, people):
    issued = _issued(app, people)
    with app.app_context():
        draft = f.make_invoice(db.session, db.session.get(Customer, people["customer"]),
                               status="draft").id
        db.session.commit()

    listing = text_of(client.get(BASE))
    page = text_of(client.get(BASE + f"details/?id={issued}"))

    assert f"edit/?id={draft}" in listing
    assert f"edit/?id={issued}" not in listing
    assert f"edit/?id={issued}" not in page
    assert not by_testid(page, "edit-draft")


# --- the issued invoice's page ------------------------------------------------------------

def test_the_page_shows_what_was_paid_and_credited_and_what_is_owed(app, client, people):
    key = _issued(app, people, amount="100.00")  # 120.00 with tax
    with app.app_context():
        s = db.session
        invoice, payer = s.get(Invoice, key), s.get(Customer, people["customer"])
        payment = f.make_payment(s, payer, amount="50.00", reference="BACS 77")
        f.make_allocation(s, invoice, payment=payment, amount="50.00")
        note = f.make_credit_note(s, payer, invoice=invoice, amount="20.00")
        f.make_allocation(s, invoice, credit_note=note, amount="20.00")
        gone = f.make_credit_note(s, payer, invoice=invoice, amount="5.00", status="void")
        f.make_allocation(s, invoice, credit_note=gone, amount="5.00")
        s.commit()
        ids = payment.id, note.id, note.number

    page = text_of(client.get(BASE + f"details/?id={key}"))

    assert by_testid(page, "invoice-total") == ["£120.00"]
    assert by_testid(page, "sum-paid") == ["−£50.00"]
    assert by_testid(page, "sum-credited") == ["−£20.00"]
    assert by_testid(page, "invoice-outstanding") == ["£50.00"]
    rows = by_testid(page, "settlement")
    assert len(rows) == 3
    assert any("BACS 77" in r and "£50.00" in r for r in rows)
    assert any("no longer counts: the credit note is void" in r for r in rows)
    assert f"/admin/owner/payment/details/?id={ids[0]}" in page
    assert f"/admin/owner/credit_note/details/?id={ids[1]}" in page
    assert by_testid(page, "invoice-lines") and "20%" in page


def test_record_payment_from_the_invoice_prefills_and_comes_back(app, client, people):
    key = _issued(app, people, amount="100.00")
    page = text_of(client.get(BASE + f"details/?id={key}"))
    [href] = re.findall(r'href="([^"]*/payment/record/[^"]*)" ?', page) or [None]
    assert href, "no Record payment link"

    form = text_of(client.get(href.replace("&amp;", "&")))
    assert by_testid(form, "paying-invoice")
    assert 'name="amount" value="120.00"' in form
    assert f'name="alloc_{key}" value="120.00"' in form

    done = client.post("/admin/owner/payment/record/", data={
        "customer_id": str(people["customer"]), "invoice_id": str(key), "confirm": "1",
        "received_on": TODAY.isoformat(), "method": "card", "reference": "",
        "amount": "120.00", f"alloc_{key}": "120.00"})

    assert done.status_code == 302
    assert done.headers["Location"].endswith(f"/admin/owner/invoice/details/?id={key}")
    assert load(app, Invoice, key, "outstanding") == {"outstanding": D("0.00")}


# --- issue and e-mail, e-mail to customer -------------------------------------------------

def test_issue_and_email_issues_then_sends_the_pdf(app, client, people, outbox):
    _new(client, people, ("Call-out", "1", "60.00", "20"))
    key = _invoice(app).id

    done = client.post(BASE + "issue/", data={"id": str(key), "email": "1"},
                       follow_redirects=True)

    said = " ".join(flashes(text_of(done)))
    assert "INV-000001 issued: £72.00" in said
    assert "INV-000001 e-mailed to payer@example.com" in said
    [name] = outbox.names()
    message = outbox.read(name)
    assert str(message["To"]) == "payer@example.com"
    assert "INV-000001" in str(message["Subject"])
    assert [p.get_filename() for p in message.iter_attachments()] == ["INV-000001.pdf"]
    assert "£72.00" in message.get_body(("plain",)).get_content()
    assert count_rows(app, models.SentMessage, models.SentMessage.kind == "invoice") == 1


def test_email_to_customer_is_logged_on_the_timeline_for_money_roles_only(
        app, client, login, people, outbox):
    key = _issued(app, people)

    done = client.post(BASE + "email/", data={"id": str(key)}, follow_redirects=True)

    assert any("e-mailed to payer@example.com" in m for m in flashes(text_of(done)))
    assert count_rows(app, AuditEvent, AuditEvent.verb == "email_invoice",
                      AuditEvent.subject_type == "Customer",
                      AuditEvent.subject_id == people["customer"]) == 1
    record = f"customer/details/?id={people['customer']}"
    said = re.compile(r"e-?mail(ed)? (invoice|INV-000001)")
    assert said.search(" ".join(by_testid(text_of(client.get("/admin/owner/" + record)),
                                          "timeline")))
    client.get("/logout")
    client.csrf_token = None
    login("coordinator")
    timeline = by_testid(text_of(client.get("/admin/coordinator/" + record)), "timeline")
    assert timeline and not said.search(" ".join(timeline))


def test_the_invoice_goes_to_its_contact_when_the_contact_has_an_address(app, client,
                                                                          people, outbox):
    with app.app_context():
        db.session.get(Contact, people["contact"]).email = "accounts@example.com"
        db.session.commit()
    key = _issued(app, people, contact_id=people["contact"])

    client.post(BASE + "email/", data={"id": str(key)})

    [name] = outbox.names()
    assert str(outbox.read(name)["To"]) == "accounts@example.com"


@pytest.mark.parametrize(("setup", "message"), [
    ({"email": None}, "has no e-mail address"),
    ({"status": "dormant"}, "is dormant: reactivate it"),
    ({"email": "payer@blocked.example"}, "is blocked"),
], ids=["no-address", "dormant", "blocked"])
def test_email_is_refused_with_the_reason_and_nothing_sent(app, client, people, outbox,
                                                           setup, message):
    key = _issued(app, people)
    with app.app_context():
        db.session.add(BlockedEmail(kind="domain", domain="blocked.example", reason="spam"))
        payer = db.session.get(Customer, people["customer"])
        for name, value in setup.items():
            setattr(payer, name, value)
        db.session.commit()

    done = client.post(BASE + "email/", data={"id": str(key)}, follow_redirects=True)

    assert any(message in m for m in flashes(text_of(done))), flashes(text_of(done))
    assert outbox.names() == []
    assert count_rows(app, AuditEvent, AuditEvent.verb == "email_invoice") == 0


def test_a_draft_is_not_emailed(app, client, people, outbox):
    _new(client, people, ("Call-out", "1", "60.00", "20"))
    key = _invoice(app).id

    done = client.post(BASE + "email/", data={"id": str(key)}, follow_redirects=True)

    assert any("issue it before e-mailing it" in m for m in flashes(text_of(done)))
    assert outbox.names() == []


def test_email_needs_the_csrf_token_and_the_invoice_capability(app, client, login, people,
                                                               outbox):
    key = _issued(app, people)

    assert client.post(BASE + "email/", data={"id": str(key)}, csrf=False).status_code == 400
    assert client.post(BASE + "email/", data={"id": "x"}).status_code == 404
    client.get("/logout")
    client.csrf_token = None
    login("coordinator")
    assert client.post(BASE + "email/", data={"id": str(key)}).status_code == 403
    assert outbox.names() == []


# --- defect 6: the standalone credit note -------------------------------------------------

def test_the_standalone_credit_note_does_not_complain_before_anything_is_typed(client,
                                                                              people):
    page = text_of(client.get("/admin/owner/credit_note/raise/",
                              query_string={"customer_id": people["customer"]}))

    assert "Add at least one line" not in page
    assert not by_testid(page, "preview-error")


def test_the_standalone_credit_note_still_asks_for_a_line_when_submitted_empty(client,
                                                                              people):
    page = client.post("/admin/owner/credit_note/raise/", data={
        "customer_id": str(people["customer"]), "issue_date": TODAY.isoformat(),
        "description": "", "breakdown_style": "none", "confirm": "0",
        "line-0-description": "", "line-0-unit_price": "", "line-0-quantity": "1",
        "line-0-tax_rate": "0", "line-0-category": "labour"})

    assert "Add at least one line" in " ".join(by_testid(text_of(page), "preview-error"))

