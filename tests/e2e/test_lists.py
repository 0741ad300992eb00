"""The lists in a real browser: the one row menu opens beside its row and is never clipped by
the table (every entry can be reached, even on the last row of a long page), and on a phone
the customer list reads as cards without the page scrolling sideways."""

import pytest
from playwright.sync_api import Page, expect

from crm.extensions import db
from tests.factories import make_customer

pytestmark = pytest.mark.e2e


def seed(app, count: int) -> list[dict]:
    with app.app_context():
        rows = [make_customer(db.session, surname=f"Listwell{n:02d}", phone="0113 496 0000")
                for n in range(count)]
        db.session.commit()
        return [{"id": r.id, "ref": r.reference} for r in rows]


def entirely_visible(page: Page, locator) -> bool:
    """Inside the viewport, and the element itself is what is at its centre (not covered
    or cut off by a scrolling container)."""
    return page.evaluate(
        """el => {
            const box = el.getBoundingClientRect();
            const inside = box.top >= 0 && box.left >= 0 && box.bottom <= innerHeight
                && box.right <= document.documentElement.clientWidth;
            const hit = document.elementFromPoint(box.left + box.width / 2,
                                                  box.top + box.height / 2);
            return inside && (hit === el || el.contains(hit));
        }""", locator.element_handle())


def test_the_last_rows_menu_is_never_clipped_and_every_entry_is_reachable(app, page, sign_in):
    people = seed(app, 30)
    page.set_viewport_size({"width": 1366, "height": 700})
    sign_in("owner")
    page.goto("/admin/owner/customer/?page_size=50&sort=1&desc=1")  # Listwell00 last

    last = page.locator("table.model-list tbody tr").last
    expect(last).to_contain_text(people[0]["ref"])
    last.scroll_into_view_if_needed()
    last.get_by_test_id("row-actions").click()

    menu = page.get_by_test_id("row-menu")
    expect(menu).to_be_visible()
    expect(menu.locator(".dropdown-header")).to_contain_text(people[0]["ref"])
    entries = menu.get_by_role("menuitem")
    assert entries.count() >= 10  # open, edit and every verb of an owner
    for n in range(entries.count()):
        entries.nth(n).scroll_into_view_if_needed()
        assert entirely_visible(page, entries.nth(n)), entries.nth(n).inner_text()

    # the keyboard reaches the last entry too, and Escape gives the focus back
    page.keyboard.press("End")
    expect(entries.last).to_be_focused()
    page.keyboard.press("Escape")
    expect(menu).to_be_hidden()
    expect(last.get_by_test_id("row-actions")).to_be_focused()

    last.get_by_test_id("row-actions").click()
    menu.get_by_role("menuitem", name="Redact (erase personal data)…").click()
    expect(page.get_by_test_id("confirm-count")).to_contain_text("1 customer selected")
    expect(page.get_by_test_id("confirm-page")).to_contain_text(people[0]["ref"])


def test_on_a_phone_the_customer_list_reads_as_cards_without_sideways_scroll(app, page,
                                                                              sign_in):
    people = seed(app, 5)
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in("owner")
    page.goto("/admin/owner/customer/")

    expect(page.get_by_test_id("match-count")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    expect(page.locator("table.model-list thead")).to_be_hidden()
    card = page.locator("table.model-list tbody tr", has_text=people[0]["ref"])
    assert card.evaluate("el => getComputedStyle(el).display") == "grid"
    card.scroll_into_view_if_needed()
    for cell in ("col-display_name", "col-balance", "col-status", "col-contact"):
        assert entirely_visible(page, card.locator(f"td.{cell}")), cell

    card.get_by_test_id("row-actions").click()
    menu = page.get_by_test_id("row-menu")
    expect(menu).to_be_visible()
    box = menu.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390


def test_the_columns_chosen_are_remembered_in_a_new_session(app, page, sign_in):
    """An owner adds "Account credit" and takes "Tags" away in the Columns menu: the list
    shows just that, and still does in a new session later (kept on the server, per user)."""
    seed(app, 3)
    page.set_viewport_size({"width": 1366, "height": 850})
    sign_in("owner")
    page.goto("/admin/owner/customer/")
    table = page.locator("table.model-list")
    expect(table.get_by_role("columnheader", name="Tags")).to_be_visible()
    expect(table.get_by_role("columnheader", name="Account credit")).to_have_count(0)

    page.get_by_test_id("columns-menu").click()
    page.get_by_label("Account credit").check()
    page.get_by_label("Tags").uncheck()
    page.get_by_test_id("columns-apply").click()

    expect(table.get_by_role("columnheader", name="Account credit")).to_be_visible()
    expect(table.get_by_role("columnheader", name="Tags")).to_have_count(0)
    page.context.clear_cookies()  # another day, another browser session
    sign_in("owner")
    page.goto("/admin/owner/customer/")
    expect(table.get_by_role("columnheader", name="Account credit")).to_be_visible()
    expect(table.get_by_role("columnheader", name="Tags")).to_have_count(0)
