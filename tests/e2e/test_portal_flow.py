"""The customer portal in a real browser, as the people who use it would go through it: an
owner invites a customer from the record page; the customer opens the e-mailed link, chooses
a password (a weak one is refused first), reads the statement (the figures the ledger holds,
and the same balance in the PDF), cannot open another customer's invoice, asks about an
invoice; the owner answers from Money → Portal queries; the customer reads the answer and
signs out. Then the main pages at a phone's width: nothing wider than the screen, and no
Content-Security-Policy violation or script error on the way."""

import re
from datetime import datetime, timedelta
from io import BytesIO

import pytest
from playwright.sync_api import Page, expect
from pypdf import PdfReader

from crm import mail
from crm.extensions import db
from crm.models import Customer
from crm.security import hash_password
from tests.e2e.conftest import TIMEOUT_MS
from tests.factories import (
    make_allocation,
    make_booking,
    make_credit_note,
    make_customer,
    make_invoice,
    make_note,
    make_payment,
    make_portal_account,
)

pytestmark = pytest.mark.e2e

STRONG = "tangerine-harbour-lantern-42"
REPORT = "Content Security Policy"
LINK_RE = re.compile(r"https?://\S+/portal/password\?token=[\w%.~-]+")


@pytest.fixture
def outbox(app, tmp_path, monkeypatch, live_server) -> mail.Outbox:
    """Mail to a folder; the e-mailed links lead to the live server."""
    monkeypatch.setitem(app.config, "MAIL_BACKEND", "outbox")
    monkeypatch.setitem(app.config, "MAIL_OUTBOX_DIR", str(tmp_path / "outbox"))
    monkeypatch.setitem(app.config, "CRM_PUBLIC_URL", live_server.url)
    return mail.Outbox(tmp_path / "outbox")


def money(value) -> str:
    return f"{value:,.2f}"


def seed_ledger(app) -> dict:
    """A customer owing on two issued invoices (one overdue, part paid by a payment that left
    some on account) and another customer with an invoice of their own."""
    with app.app_context():
        person = make_customer(db.session, first_name="Harriet", surname="Vane",
                               email="harriet.vane@example.com")
        overdue = make_invoice(db.session, person, amount="1250.00", days_overdue=10)
        current = make_invoice(db.session, person, amount="2067.08", tax_rate="20")
        payment = make_payment(db.session, person, amount="1500.00", reference="HV-0042")
        make_allocation(db.session, overdue, payment=payment, amount="1000.00")
        stranger = make_customer(db.session, surname="Stranger")
        theirs = make_invoice(db.session, stranger, amount="75.00")
        db.session.commit()
        return {"id": person.id, "ref": person.reference, "overdue": overdue.id,
                "overdue_number": overdue.number, "current": current.id,
                "theirs": theirs.id}


def ledger_figures(app, customer_id: int) -> dict:
    with app.app_context():
        row = db.session.get(Customer, customer_id)
        return {"balance": money(row.balance), "overdue": money(row.overdue_amount),
                "credit": money(row.account_credit)}


def customer_page(browser, live_server, **options) -> Page:
    """The customer's own browser: no staff cookie."""
    context = browser.new_context(base_url=live_server.url, **options)
    context.set_default_timeout(TIMEOUT_MS)
    return context.new_page()


def test_invite_password_statement_question_answer_and_sign_out(
        app, page, sign_in, browser, live_server, outbox):
    data = seed_ledger(app)
    figures = ledger_figures(app, data["id"])
    assert figures == {"balance": "2,230.50", "overdue": "250.00", "credit": "500.00"}

    # 1. The owner sends the invitation from the customer's record page.
    staff = sign_in("owner")
    staff.goto(f"/admin/owner/customer/details/?id={data['id']}")
    expect(staff.get_by_test_id("portal-status")).to_have_text("not invited")
    staff.get_by_test_id("portal-invite").click()
    expect(staff.get_by_role("heading", name="Send portal invitations")).to_be_visible()
    expect(staff.get_by_test_id("confirm-count")).to_contain_text("1 customer selected")
    staff.get_by_test_id("confirm-button").click()
    expect(staff.get_by_test_id("result-changed")).to_contain_text(f"1 changed: {data['ref']}")

    # 2. The customer opens the e-mailed link and chooses a password.
    (name,) = outbox.names()
    message = outbox.read(name)
    assert message["To"] == "harriet.vane@example.com"
    link = LINK_RE.search(message.get_body(("plain",)).get_content()).group(0)
    customer = customer_page(browser, live_server)
    customer.goto(link)
    expect(customer.get_by_role("heading", name="Choose your password")).to_be_visible()
    expect(customer.locator("main")).to_contain_text("For harriet.vane@example.com.")

    def choose(password: str) -> None:
        customer.get_by_label("New password").fill(password)
        customer.get_by_label("The same again").fill(password)
        customer.get_by_role("button", name="Save and sign in").click()

    choose("password12345")
    expect(customer.get_by_test_id("password-error")).to_contain_text("too easy to guess")
    assert "/portal/password" in customer.url
    choose(STRONG)
    customer.wait_for_url(re.compile(r"/portal/$"))
    expect(customer.get_by_role("status")).to_contain_text("Your password is set")
    expect(customer.get_by_test_id("sign-out")).to_be_visible()

    # 3. The statement's figures are the ledger's.
    expect(customer.get_by_test_id("figure-balance")).to_have_text(figures["balance"])
    expect(customer.get_by_test_id("figure-overdue")).to_have_text(figures["overdue"])
    expect(customer.get_by_test_id("figure-credit")).to_have_text(figures["credit"])

    # 4. The statement PDF holds the same balance.
    with customer.expect_download() as download:
        customer.get_by_test_id("statement-pdf").click()
    assert download.value.suggested_filename.endswith(".pdf")
    pdf = PdfReader(BytesIO(download.value.path().read_bytes()))
    assert figures["balance"] in "\n".join(p.extract_text() for p in pdf.pages)

    # 5. Another customer's invoice is not found, on a page that leads back to their own.
    assert customer.goto(f"/portal/invoices/{data['theirs']}").status == 404
    expect(customer.get_by_test_id("portal-error")).to_contain_text("Not found")
    customer.get_by_test_id("portal-error").get_by_role("link").click()
    expect(customer.get_by_test_id("figure-balance")).to_have_text(figures["balance"])

    # 6. A question about one of their own invoices waits for an answer.
    customer.goto("/portal/invoices")
    customer.get_by_test_id("invoice-list").get_by_role(
        "link", name=data["overdue_number"]).click()
    expect(customer.get_by_role("heading", name=f"Invoice {data['overdue_number']}")
           ).to_be_visible()
    form = customer.get_by_test_id("question-form")
    form.get_by_label("Your question").fill("Is the 1,000.00 paid on this one already counted?")
    form.get_by_role("button", name="Send my question").click()
    question = customer.get_by_test_id("question")
    expect(question).to_contain_text("Is the 1,000.00 paid on this one already counted?")
    expect(question).to_contain_text("Waiting for an answer")

    # 7. The owner answers it from Money → Portal queries.
    staff.get_by_role("link", name="Money").click()
    staff.get_by_role("link", name="Portal queries").click()
    staff.wait_for_url("**/admin/owner/portal_query/")
    row = staff.locator("table.model-list tbody tr", has_text="already counted")
    expect(row).to_contain_text(data["overdue_number"])
    expect(row).to_contain_text("open")
    row.locator("a[title='View Record']").click()
    answer = staff.get_by_test_id("answer-form")
    answer.locator("textarea").fill("Yes: 1,000.00 is set against it; 250.00 remains.")
    answer.get_by_test_id("answer").click()
    expect(staff.locator(".alert-success")).to_be_visible()
    staff.goto("/admin/owner/portal_query/")
    expect(staff.locator("table.model-list tbody tr", has_text="already counted")
           ).to_contain_text("answered")

    customer.reload()
    expect(customer.get_by_test_id("answer")).to_contain_text(
        "Yes: 1,000.00 is set against it; 250.00 remains.")
    expect(customer.get_by_test_id("question")).not_to_contain_text("Waiting for an answer")

    # 8. Signing out ends it.
    customer.get_by_test_id("sign-out").click()
    customer.wait_for_url(re.compile(r"/portal/login"))
    customer.goto("/portal/")
    expect(customer).to_have_url(re.compile(r"/portal/login\?next=/portal/"))
    customer.context.close()


# One word wider than a phone: it must break, not widen the page (My details shows it).
LONG_EMAIL = "bartholomew.fotheringay-phipps.accounts-payable@fotheringayholdings.example.co.uk"
PHONE_PAGES = ["/portal/", "/portal/?kind=activity", "/portal/invoices", "invoice",
               "/portal/credit-notes", "/portal/payments", "/portal/bookings", "/portal/profile"]


def test_the_pages_fit_a_phone_and_break_no_rule(app, browser, live_server):
    with app.app_context():
        person = make_customer(db.session, first_name="Bartholomew", surname="Fotheringay-Phipps",
                               email=LONG_EMAIL,
                               address_line_1="Flat 12, Worthington Court, 141 Longbridge Road")
        make_portal_account(db.session, person, email=LONG_EMAIL,
                            password_hash=hash_password(STRONG))
        invoice = make_invoice(db.session, person, amount="123456.78", tax_rate="20",
                               days_overdue=45)
        make_invoice(db.session, person, amount="980.00")
        payment = make_payment(db.session, person, amount="25000.00",
                               reference="BACS FOTHERINGAY-PHIPPS 2025-11 DEPOSIT")
        make_allocation(db.session, invoice, payment=payment, amount="25000.00")
        note = make_credit_note(db.session, person, amount="1200.00", invoice=invoice)
        make_allocation(db.session, invoice, credit_note=note, amount="1200.00")
        make_note(db.session, person, kind="portal", invoice=invoice,
                  body="Could the 25,000.00 deposit be shown on the invoice itself, please?",
                  reply="It is: see 'Paid against it' below the lines.",
                  answered_at=datetime.now())
        make_booking(db.session, person, title="Wedding reception, evening set",
                     starts_at=datetime.now() + timedelta(days=30))
        make_booking(db.session, person, title="Anniversary dinner",
                     starts_at=datetime.now() - timedelta(days=60), status="completed")
        db.session.commit()
        invoice_url = f"/portal/invoices/{invoice.id}"

    phone = customer_page(browser, live_server, viewport={"width": 390, "height": 844})
    problems: list[str] = []
    phone.on("console", lambda m: problems.append(f"{phone.url}: {m.text}")
             if REPORT in m.text or m.type == "error" else None)
    phone.on("pageerror", lambda error: problems.append(f"{phone.url}: uncaught {error}"))
    too_wide: dict[str, int] = {}

    def check(url: str) -> None:
        response = phone.goto(url)
        assert response.status == 200, url
        width = phone.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        if width > 0:
            too_wide[url] = width

    check("/portal/login")
    phone.get_by_label("E-mail").fill(LONG_EMAIL)
    phone.get_by_label("Password").fill(STRONG)
    phone.get_by_role("button", name="Sign in").click()
    phone.wait_for_url(re.compile(r"/portal/$"))
    for url in PHONE_PAGES:
        check(invoice_url if url == "invoice" else url)
    expect(phone.get_by_test_id("details-form")).to_be_visible()

    assert too_wide == {}, f"wider than the screen (by px): {too_wide}"
    assert problems == []
    phone.context.close()
