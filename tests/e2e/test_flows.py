"""Staff flows in a real browser against a live server: sign-in, the customer list and its
money columns, create and edit, role gating, wrong password and sign-out."""

import re

import pytest
from playwright.sync_api import Page, expect

from crm.extensions import db
from tests.factories import make_customer, make_invoice

pytestmark = pytest.mark.e2e

MONEY = re.compile(r"1,?234\.56")


def seed_customer_with_balance(app) -> int:
    with app.app_context():
        customer = make_customer(db.session, first_name="Bea", surname="Whitfield")
        make_invoice(db.session, customer, amount="1234.56")
        db.session.commit()
        return customer.id


def open_menu(page: Page, category: str, item: str) -> None:
    page.locator(".navbar .dropdown-toggle", has_text=category).click()
    page.locator(".navbar .dropdown-menu").get_by_role("link", name=item, exact=True).click()


def row(page: Page, text: str):
    return page.locator("table.model-list tbody tr", has_text=text)


def test_owner_sees_balances_creates_and_edits_a_customer(app, page, sign_in):
    seed_customer_with_balance(app)
    sign_in("owner")

    open_menu(page, "Customers", "Customers")
    expect(page).to_have_url(re.compile(r"/admin/owner/customer/"))
    expect(page.get_by_role("columnheader", name="Balance", exact=True)).to_be_visible()
    expect(row(page, "Bea Whitfield").locator("td.col-balance")).to_have_text(MONEY)

    page.locator(".nav-tabs").get_by_role("link", name="Create").click()
    page.locator("#surname").fill("Fresh")
    page.locator("#first_name").fill("Dana")
    page.locator("#email").fill("  Dana.Fresh@Example.COM ")
    page.locator("#address_line_1").fill("7 Station Road")
    page.locator("#postcode").fill("ls2 7ab")
    page.get_by_role("button", name="Save", exact=True).click()

    expect(page.locator(".alert")).to_contain_text("successfully created")
    created = row(page, "Dana Fresh")
    expect(created.locator("td.col-contact")).to_have_text("dana.fresh@example.com")
    expect(created.locator("td.col-postcode")).to_have_text("LS2 7AB")

    # The name opens the record page; its Edit button leads back to it after saving.
    created.get_by_role("link", name="Dana Fresh").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Dana Fresh")
    page.get_by_test_id("edit-record").click()
    expect(page.locator("#town")).to_be_visible()
    page.locator("#town").fill("York")
    page.get_by_role("button", name="Save", exact=True).click()

    expect(page.locator(".alert")).to_contain_text("successfully saved")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Dana Fresh")
    expect(page.get_by_test_id("address")).to_contain_text("York")
    expect(page.get_by_test_id("address")).to_contain_text("LS2 7AB")
    # the timeline says what was changed, and who did it
    page.get_by_test_id("tab-timeline").click()
    expect(page.get_by_test_id("timeline")).to_contain_text("changed Town")
    expect(page.get_by_test_id("timeline")).to_contain_text("Owner")


def test_coordinator_never_sees_money(app, page, sign_in):
    customer_id = seed_customer_with_balance(app)
    sign_in("coordinator")

    expect(page.locator(".navbar .dropdown-toggle", has_text="Money")).to_have_count(0)
    open_menu(page, "Customers", "Customers")
    expect(page).to_have_url(re.compile(r"/admin/coordinator/customer/"))
    expect(row(page, "Bea Whitfield")).to_be_visible()
    headers = page.locator("table.model-list thead th")
    expect(headers.filter(has_text=re.compile("Balance|Overdue|Credit", re.I))).to_have_count(0)
    assert "Balance" not in page.content()
    assert not MONEY.search(page.content())

    row(page, "Bea Whitfield").get_by_role("link", name="Bea Whitfield").click()
    expect(page.get_by_test_id("customer-summary")).to_contain_text("Whitfield")
    details = page.locator("main").inner_text()
    assert not re.search("Balance|Overdue|Account credit", details, re.I)
    assert not MONEY.search(page.content())
    expect(page.get_by_test_id("money-indicators")).to_have_count(0)
    expect(page.get_by_test_id("tab-money")).to_have_count(0)
    expect(page.locator(".navbar .dropdown-toggle", has_text="Money")).to_have_count(0)

    # A link copied from an owner opens the coordinator's own, gated view.
    page.goto("/admin/owner/customer/")
    expect(page).to_have_url(re.compile(r"/admin/coordinator/customer/$"))
    page.goto(f"/admin/owner/customer/details/?id={customer_id}")
    expect(page).to_have_url(re.compile(rf"/admin/coordinator/customer/details/\?id={customer_id}"))
    assert not MONEY.search(page.content())


def test_wrong_password_is_refused_and_sign_out_returns_to_sign_in(app, page, sign_in):
    sign_in("owner")  # creates the account, then signs out below
    page.get_by_role("link", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("alert")).to_contain_text("signed out")

    page.get_by_label("E-mail").fill("owner@example.com")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Wrong e-mail or password")
    expect(page).to_have_url(re.compile(r"/login"))

    page.goto("/admin/owner/customer/")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_the_edit_form_in_two_columns_with_its_problems_first_and_save_in_view(app, page,
                                                                               sign_in):
    customer_id = seed_customer_with_balance(app)
    sign_in("owner")
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(f"/admin/owner/customer/edit/?id={customer_id}")

    # two columns on a desktop: the surname and the first name side by side
    surname, first = page.locator("#surname").bounding_box(), page.locator("#first_name")
    assert abs(surname["y"] - first.bounding_box()["y"]) < 5
    assert abs(surname["x"] - first.bounding_box()["x"]) > 300
    # the Save bar is in view at the top of a form longer than the window
    save = page.get_by_role("button", name="Save", exact=True)
    assert page.evaluate("() => document.documentElement.scrollHeight > window.innerHeight")
    expect(save).to_be_in_viewport()
    box = save.bounding_box()
    assert box["y"] + box["height"] <= 768

    page.locator("#surname").fill("")
    page.locator("#email").fill("not an address")
    save.click()

    problems = page.get_by_test_id("form-errors")
    expect(problems).to_be_focused()
    expect(problems).to_contain_text("Nothing was saved: 2 things to put right")
    expect(problems.get_by_role("link", name="Surname")).to_have_attribute("href", "#surname")
    expect(problems.get_by_role("link", name=re.compile("^E-?mail$"))).to_have_attribute(
        "href", "#email")

    # and on a phone: one column, nothing wider than the screen
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"/admin/owner/customer/edit/?id={customer_id}")
    assert page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth") <= 0
    expect(page.get_by_role("button", name="Save", exact=True)).to_be_in_viewport()


def test_the_record_page_and_the_audit_log_fit_a_phone(app, page, sign_in):
    customer_id = seed_customer_with_balance(app)
    sign_in("owner")
    page.set_viewport_size({"width": 390, "height": 844})

    def overflow() -> int:
        return page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")

    page.goto(f"/admin/owner/customer/details/?id={customer_id}")
    assert overflow() <= 0
    # the tabs are a menu: choosing a section shows it, and the tab bar is not drawn
    expect(page.get_by_test_id("tab-timeline")).to_be_hidden()
    page.get_by_label("Section").select_option("#tab-money")
    expect(page.get_by_test_id("money-tab")).to_be_visible()
    expect(page.get_by_test_id("money-tab")).to_contain_text(MONEY)
    page.get_by_label("Section").select_option("#tab-timeline")
    expect(page.get_by_test_id("timeline")).to_be_visible()
    expect(page.get_by_test_id("money-tab")).to_be_hidden()
    assert overflow() <= 0

    page.goto("/admin/owner/audit_event/")
    assert overflow() <= 0
