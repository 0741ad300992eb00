"""The invoice editor in a real browser: from the customer's money tab to an issued invoice.

The owner opens New invoice on a customer's record (the customer is already filled in),
types two lines, watches the line nets and the totals follow as they type (the script's
rounding is the server's: 1.5 x 33.33 = 49.995 shows and saves as 50.00), saves (the draft's
own page opens), issues it, and the PDF a customer receives reads the same figures.
"""

import io
import re
from datetime import date

import pytest
from playwright.sync_api import Page, expect
from pypdf import PdfReader

from crm import mail
from crm.extensions import db
from crm.formatting import day
from crm.models import BusinessProfile, Invoice
from tests.factories import make_customer

pytestmark = pytest.mark.e2e


@pytest.fixture
def customer_id(app) -> int:
    with app.app_context():
        # A VAT-registered business: a new line starts at 20%.
        db.session.add(BusinessProfile(id=1, name="Acme Heating", vat_number="GB123456789",
                                       payment_terms_days=14))
        customer = make_customer(db.session, first_name="Dana", surname="Okafor")
        db.session.commit()
        return customer.id


def _line(page: Page, n: int):
    return page.locator("[data-testid=invoice-lines-editor] tbody tr.invoice-line").nth(n)


def test_owner_writes_saves_and_issues_an_invoice(app, page: Page, sign_in, customer_id,
                                                   tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "MAIL_BACKEND", "outbox")
    monkeypatch.setitem(app.config, "MAIL_OUTBOX_DIR", str(tmp_path / "outbox"))
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text)
            if "Content Security Policy" in message.text else None)
    sign_in("owner")

    page.goto(f"/admin/owner/customer/details/?id={customer_id}")
    page.get_by_test_id("tab-money").click()
    page.get_by_role("link", name="New invoice", exact=True).click()

    expect(page.get_by_role("heading", name="New invoice")).to_be_visible()
    expect(page.locator("#customer")).to_have_value(str(customer_id))
    expect(page.locator("#select2-chosen-1, .select2-chosen").first).to_contain_text("Okafor")
    # Dates are typed as every page shows them (a text box, never mm/dd/yyyy).
    expect(page.locator("#issue_date")).to_have_value(day(date.today()))
    expect(page.locator("#issue_date")).to_have_attribute("type", "text")
    expect(page.locator("#due_date")).to_have_attribute("placeholder", "e.g. 4 Dec 2026")
    expect(page.get_by_test_id("total-total")).to_have_text("£0.00")

    first = _line(page, 0)
    first.get_by_label("Description").fill("Boiler service")
    first.get_by_label("Quantity").fill("2")
    first.get_by_label("Unit price").fill("85.50")
    expect(first.get_by_label("Tax")).to_have_value("20")
    expect(first.get_by_test_id("line-net")).to_have_text("£171.00")
    expect(page.get_by_test_id("total-total")).to_have_text("£205.20")

    page.get_by_role("button", name="Add a line").click()
    second = _line(page, 1)
    expect(second.get_by_label("Description")).to_be_focused()
    second.get_by_label("Description").fill("Radiator valves")
    second.get_by_label("Quantity").fill("1.5")
    second.get_by_label("Unit price").fill("33.33")

    expect(second.get_by_test_id("line-net")).to_have_text("£50.00")
    expect(page.get_by_test_id("total-subtotal")).to_have_text("£221.00")
    expect(page.get_by_test_id("total-tax")).to_have_text("£44.20")
    expect(page.get_by_test_id("total-total")).to_have_text("£265.20")

    page.get_by_test_id("save-draft").click()

    expect(page).to_have_url(re.compile(r"/admin/owner/invoice/details/\?id=\d+"))
    expect(page.get_by_test_id("status-badge")).to_have_text("draft")
    expect(page.get_by_text("Draft saved (£265.20)")).to_be_visible()
    lines = page.get_by_test_id("invoice-lines").locator("tbody tr")
    expect(lines).to_have_count(2)
    expect(lines.nth(0)).to_contain_text("Boiler service")
    expect(lines.nth(1)).to_contain_text("Radiator valves")
    expect(page.get_by_test_id("sum-total")).to_have_text("£265.20")

    page.get_by_test_id("issue-invoice").click()

    expect(page.get_by_test_id("status-badge")).to_have_text("issued")
    expect(page.get_by_role("heading", name=re.compile(r"Invoice INV-\d+"))).to_be_visible()
    expect(page.get_by_test_id("record-actions").get_by_role("link", name="Edit", exact=True)).to_have_count(0)
    expect(page.get_by_test_id("invoice-outstanding")).to_have_text("£265.20")
    with app.app_context():
        invoice = db.session.scalars(db.select(Invoice)).one()
        number, total = invoice.number, invoice.total
        assert [line.position for line in sorted(invoice.lines, key=lambda x: x.position)] \
            == [1, 2]
    assert str(total) == "265.20"

    pdf_url = page.get_by_test_id("invoice-pdf").get_attribute("href")
    response = page.request.get(pdf_url)
    assert response.ok and response.headers["content-type"] == "application/pdf"
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(response.body())).pages)
    assert number in text
    assert "20%" in text
    assert "£265.20" in text
    assert "Radiator valves" in text

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="E-mail to customer").click()

    expect(page.get_by_text(f"{number} e-mailed to ")).to_be_visible()
    [sent] = mail.Outbox(tmp_path / "outbox").names()
    message = mail.Outbox(tmp_path / "outbox").read(sent)
    assert [p.get_filename() for p in message.iter_attachments()] == [f"{number}.pdf"]
    assert "£265.20" in message.get_body(("plain",)).get_content()
    assert errors == []


def test_editing_a_draft_removes_a_line_and_the_totals_follow(app, page: Page, sign_in,
                                                              customer_id):
    from tests.factories import make_invoice_with_lines

    with app.app_context():
        from crm.models import Customer

        draft = make_invoice_with_lines(
            db.session, db.session.get(Customer, customer_id), [
                {"description": "Labour", "quantity": "3", "unit_price": "40.00",
                 "tax_rate": "20", "position": 1},
                {"description": "Skip hire", "quantity": "1", "unit_price": "150.00",
                 "tax_rate": "20", "position": 2},
                {"description": "Disposal", "quantity": "1", "unit_price": "10.00",
                 "tax_rate": "0", "position": 3}], status="draft")
        db.session.commit()
        key = draft.id
    sign_in("owner")
    page.goto(f"/admin/owner/invoice/details/?id={key}")
    page.get_by_test_id("edit-draft").click()

    expect(page.get_by_role("heading", name=f"Edit draft invoice #{key}")).to_be_visible()
    rows = page.locator("[data-testid=invoice-lines-editor] tbody tr.invoice-line:visible")
    expect(rows).to_have_count(3)  # no blank rows once there are lines
    expect(page.get_by_test_id("total-total")).to_have_text("£334.00")

    rows.nth(1).get_by_role("button", name="Remove this line").click()
    expect(rows).to_have_count(2)
    expect(page.get_by_test_id("total-total")).to_have_text("£154.00")
    rows.nth(0).get_by_label("Quantity").fill("2.5")
    expect(page.get_by_test_id("total-total")).to_have_text("£130.00")

    page.get_by_test_id("save-draft").click()

    expect(page).to_have_url(re.compile(rf"/admin/owner/invoice/details/\?id={key}$"))
    lines = page.get_by_test_id("invoice-lines").locator("tbody tr")
    expect(lines).to_have_count(2)
    expect(lines.nth(0)).to_contain_text("Labour")
    expect(lines.nth(1)).to_contain_text("Disposal")
    expect(page.get_by_test_id("sum-total")).to_have_text("£130.00")
    with app.app_context():
        saved = db.session.get(Invoice, key)
        assert [(line.position, line.description) for line in saved.lines] == [
            (1, "Labour"), (2, "Disposal")]
        assert str(saved.total) == "130.00"


def test_choosing_the_customer_offers_only_its_contacts(app, page: Page, sign_in):
    from tests.factories import make_contact

    with app.app_context():
        dana = make_customer(db.session, first_name="Dana", surname="Okafor")
        sam = make_customer(db.session, first_name="Sam", surname="Quigley")
        make_contact(db.session, dana, first_name="Priya", surname="Shah", is_primary=True)
        make_contact(db.session, sam, first_name="Lee", surname="Brook")
        db.session.commit()
    sign_in("owner")
    page.goto("/admin/owner/invoice/new/")
    expect(page.locator("#contact")).to_be_hidden()  # nothing to choose before a customer

    def choose(surname: str) -> None:
        page.locator(".select2-choice").first.click()
        page.keyboard.type(surname)
        page.locator(".select2-result-selectable", has_text=surname).first.click()

    choose("Okafor")
    expect(page.locator("#contact option")).to_have_text(
        ["Choose a contact (optional)", "Priya Shah (primary)"])
    page.locator("#contact").select_option(label="Priya Shah (primary)")

    choose("Quigley")
    expect(page.locator("#contact option")).to_have_text(
        ["Choose a contact (optional)", "Lee Brook"])
    expect(page.locator("#contact")).to_have_value("")  # the other customer's choice is gone
    expect(page.get_by_text("Please select model")).to_have_count(0)
