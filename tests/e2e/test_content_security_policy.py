"""The pages work in a real browser under the Content-Security-Policy (crm/security_headers.py),
which runs no inline script: every control that used an inline handler or a javascript: link
still does its job through static/js/crm.js, and Chromium reports no violation of the policy
on the way. The first two tests are the controls: the browser does enforce the policy, reports
what it refuses where these tests listen, and refuses to show our pages in a frame."""

import re

import pytest
from playwright.sync_api import Page, expect

from crm.extensions import db
from crm.models import Contact, Tag
from tests.factories import make_contact, make_customer, make_tag

pytestmark = pytest.mark.e2e

REPORT = "Content Security Policy"


@pytest.fixture
def reports(page: Page) -> list[str]:
    """What Chromium says it refused because of the policy, and any uncaught script error
    (a static script that failed would leave its controls dead without a CSP report)."""
    found: list[str] = []
    page.on("console", lambda message: found.append(message.text)
            if REPORT in message.text else None)
    page.on("pageerror", lambda error: found.append(f"uncaught: {error}"))
    return found


def seed_customers(app, *surnames: str) -> list[int]:
    with app.app_context():
        rows = [make_customer(db.session, surname=surname) for surname in surnames]
        make_contact(db.session, rows[0], surname="Firstcontact", is_primary=True)
        db.session.commit()
        return [row.id for row in rows]


def test_the_browser_refuses_inline_script_and_reports_it(app, page, sign_in, reports):
    sign_in("owner")
    response = page.goto("/admin/owner/customer/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "frame-ancestors 'none'" in policy

    with page.expect_console_message(lambda message: REPORT in message.text):
        page.evaluate("""() => {
            const script = document.createElement('script');
            script.textContent = 'window.inlineRan = true';
            document.body.appendChild(script);
        }""")

    assert page.evaluate("() => window.inlineRan === undefined")
    assert len(reports) == 1 and "inline script" in reports[0]


def test_another_page_cannot_frame_ours(page, live_server):
    """The finding: a one-click POST button must not be clickable through another site's
    frame. Chromium refuses to show the page (frame-ancestors 'none') and says so."""
    with page.expect_console_message(lambda message: "frame-ancestors" in message.text):
        page.set_content(f'<iframe src="{live_server.url}/login"></iframe>')

    expect(page.frame_locator("iframe").get_by_role("button", name="Sign in")).to_have_count(0)


def test_the_customer_list_and_its_with_selected_menu(app, page, sign_in, reports):
    first, second, _ = seed_customers(app, "Abbot", "Brook", "Cole")
    sign_in("owner")
    page.goto("/admin/owner/customer/")
    expect(page.locator("table.model-list tbody tr")).to_have_count(3)

    for key in (first, second):
        page.locator(f'input.action-checkbox[value="{key}"]').check()
    page.get_by_role("button", name="With selected").click()
    page.locator(".dropdown-menu").get_by_role("link", name="Set dormant").click()

    expect(page.get_by_role("heading", name="Set customers dormant")).to_be_visible()
    expect(page.get_by_test_id("confirm-count")).to_contain_text("2 customers selected")
    page.goto("/no-such-page")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    assert reports == []


def test_the_filter_menu_and_the_pager_stay_on_the_page(app, page, sign_in, reports):
    """Their entries were javascript:void(0) links: now "#" links that go nowhere."""
    with app.app_context():
        for i in range(25):
            make_tag(db.session, name=f"tag-{i:02}")
        db.session.commit()
    sign_in("owner")
    page.goto("/admin/owner/tag/")
    address = page.url

    page.get_by_role("link", name="Add Filter").click()
    page.locator(".field-filters").get_by_role("link", name="Name").click()
    expect(page.locator("#filter_form .filters tr")).to_have_count(1)
    page.locator(".pagination .page-item.active a").click()
    page.locator(".nav-tabs").get_by_role("link", name=re.compile(r"^List")).click()

    assert page.url == address
    page.locator("#filter_form input.filter-val").fill("tag-0")
    page.locator("#filter_form").get_by_role("button", name="Apply").click()
    expect(page.locator("table.model-list tbody tr")).to_have_count(10)
    assert reports == []


def test_the_record_page_tabs_follow_the_address(app, page, sign_in, reports):
    (person,) = seed_customers(app, "Tabber")
    sign_in("owner")
    page.goto(f"/admin/owner/customer/details/?id={person}")
    expect(page.locator("#tab-details")).to_be_visible()

    page.get_by_test_id("tab-contacts").click()
    expect(page).to_have_url(re.compile(r"#tab-contacts$"))
    expect(page.locator("#tab-contacts")).to_contain_text("Firstcontact")
    page.reload()
    expect(page.locator("#tab-contacts")).to_be_visible()
    expect(page.locator("#tab-details")).to_be_hidden()
    assert reports == []


def test_the_customer_form_adds_and_removes_contact_rows(app, page, sign_in, reports):
    (person,) = seed_customers(app, "Formby")
    sign_in("owner")
    page.goto(f"/admin/owner/customer/edit/?id={person}")
    rows = page.locator("#contacts > .inline-field-list > .inline-field")
    expect(rows).to_have_count(1)

    page.get_by_role("button", name="Add Contacts").click()
    page.get_by_role("button", name="Add Contacts").click()
    expect(rows).to_have_count(3)
    page.once("dialog", lambda dialog: dialog.accept())
    rows.nth(2).locator(".inline-remove-field").click()
    expect(rows).to_have_count(2)
    page.locator("#contacts-1-surname").fill("Newcontact")
    page.get_by_role("button", name="Save", exact=True).click()

    expect(page.locator(".alert")).to_contain_text("successfully saved")
    with app.app_context():
        surnames = db.session.scalars(db.select(Contact.surname)
                                      .where(Contact.customer_id == person)).all()
    assert sorted(surnames) == ["Firstcontact", "Newcontact"]
    assert reports == []


def test_the_invoice_form_adds_a_line(app, page, sign_in, reports):
    seed_customers(app, "Invoiced")
    sign_in("owner")
    page.goto("/admin/owner/invoice/new/")
    rows = page.locator("[data-testid=invoice-lines-editor] tbody tr.invoice-line")
    expect(rows).to_have_count(1)  # a new invoice starts with one blank line

    page.get_by_role("button", name="Add a line").click()

    expect(rows).to_have_count(2)
    added = rows.nth(1).get_by_label("Description")
    expect(added).to_be_visible()
    expect(added).to_be_focused()
    added.fill("Second visit")
    rows.nth(1).get_by_label("Unit price").fill("40")
    expect(page.get_by_test_id("total-subtotal")).to_have_text("£40.00")
    assert reports == []


def test_delete_asks_first_and_cancel_keeps_the_record(app, page, sign_in, reports):
    with app.app_context():
        tag_id = make_tag(db.session, name="doomed").id
        db.session.commit()
    sign_in("owner")
    page.goto(f"/admin/owner/tag/details/?id={tag_id}")
    asked: list[str] = []
    posted: list[str] = []
    page.on("request", lambda request: posted.append(request.url)
            if request.method == "POST" else None)

    def answer(accept: bool):
        def handle(dialog):
            asked.append(dialog.message)
            dialog.accept() if accept else dialog.dismiss()
        return handle

    page.once("dialog", answer(False))
    page.get_by_role("button", name="Delete").click()
    page.once("dialog", answer(True))
    page.get_by_role("button", name="Delete").click()

    expect(page.locator(".alert")).to_contain_text("successfully deleted")
    assert asked == ["Delete this record? This cannot be undone."] * 2
    # Requests go out in order: had the first answer not stopped the form, its POST would
    # be here before the second one.
    assert [re.sub(r"\?.*", "", u) for u in posted] == [
        f"{page.url.split('/admin/')[0]}/admin/owner/tag/delete/"]
    with app.app_context():
        assert db.session.get(Tag, tag_id) is None
    assert reports == []
