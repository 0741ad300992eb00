"""Customer actions in a real browser: merge two customers from the list and undo it, redact
from the record page with the typed word, and a bulk "Set dormant" from the list's "With
selected" menu. Each ends on the page a person would look at to see it worked."""

import re

import pytest
from playwright.sync_api import Page, expect

from crm.extensions import db
from crm.models import Customer
from tests.factories import make_customer

pytestmark = pytest.mark.e2e


def seed(app, *people: dict) -> list[dict]:
    with app.app_context():
        rows = [make_customer(db.session, **person) for person in people]
        db.session.commit()
        return [{"id": r.id, "ref": r.reference} for r in rows]


def status_of(app, key: int) -> tuple:
    with app.app_context():
        row = db.session.get(Customer, key)
        return row.status, row.merged_into_id, row.redacted_at is not None


def row(page: Page, text: str):
    return page.locator("table.model-list tbody tr", has_text=text)


def select_rows(page: Page, *keys: int) -> None:
    for key in keys:
        page.locator(f'input.action-checkbox[value="{key}"]').check()


def with_selected(page: Page, action: str) -> None:
    """Pick ``action`` (its name, e.g. "merge") from the list's "With selected" menu."""
    page.get_by_role("button", name="With selected").click()
    page.locator(f'a.dropdown-item[data-action-name="{action}"]').click()


def test_owner_merges_two_customers_from_the_list_and_undoes_it(app, page, sign_in):
    keep, dup = seed(
        app,
        {"first_name": "Robin", "surname": "Loxley", "email": "robin@example.com",
         "town": "Nottingham"},
        {"first_name": "Robin", "surname": "Loxley", "email": "robin.l@example.com",
         "town": "Sherwood"},
    )
    sign_in("owner")
    page.goto("/admin/owner/customer/")
    select_rows(page, keep["id"], dup["id"])
    with_selected(page, "merge")

    expect(page.get_by_role("heading", name="Merge customers")).to_be_visible()
    table = page.get_by_test_id("merge-table")
    expect(table).to_contain_text(keep["ref"])
    expect(table).to_contain_text(dup["ref"])
    expect(page.get_by_test_id("merge-conflicts")).to_contain_text("different e-mail addresses")
    # the record entered first is offered as the survivor; the other could be made it
    expect(table.locator("th", has_text=keep["ref"]).get_by_test_id("survivor-badge")).to_be_visible()
    expect(table.locator("th", has_text=dup["ref"]).get_by_role("link", name="make survivor")
           ).to_be_visible()
    expect(page.get_by_test_id("confirm-merge")).to_have_text(
        f"Merge 1 record into {keep['ref']}")
    page.locator(f'input[name="field_town"][value="{dup["id"]}"]').check()
    page.get_by_test_id("confirm-merge").click()

    expect(page.get_by_test_id("result-message")).to_contain_text(
        f"Merged {dup['ref']} into {keep['ref']}")
    assert status_of(app, dup["id"])[1] == keep["id"]
    page.get_by_test_id("open-survivor").click()
    expect(page.get_by_test_id("customer-summary")).to_contain_text(keep["ref"])
    expect(page.locator("body")).to_contain_text("Sherwood")
    page.go_back()

    page.get_by_test_id("undo-link").click()
    expect(page.get_by_role("heading", name=re.compile(r"Undo merge #\d+"))).to_be_visible()
    page.get_by_test_id("confirm-undo").click()

    expect(page.locator(".alert-success")).to_contain_text("undone")
    expect(page.locator("body")).to_contain_text("Nottingham")
    page.goto("/admin/owner/customer/")
    expect(row(page, keep["ref"])).to_be_visible()
    expect(row(page, dup["ref"])).to_be_visible()
    assert status_of(app, dup["id"])[1] is None


def test_owner_redacts_from_the_record_page_typing_the_word(app, page, sign_in):
    [person] = seed(app, {"first_name": "Eve", "surname": "Forgetme",
                          "email": "eve@example.com"})
    sign_in("owner")
    page.goto(f"/admin/owner/customer/details/?id={person['id']}")
    expect(page.get_by_test_id("customer-summary")).to_contain_text("Eve Forgetme")
    expect(page.get_by_test_id("redact")).to_be_hidden()  # in the "More" menu
    page.get_by_test_id("more-actions").get_by_text("More").click()
    page.get_by_test_id("redact").click()

    expect(page.get_by_role("heading", name="Redact customers")).to_be_visible()
    expect(page.get_by_test_id("confirm-count")).to_contain_text("1 customer selected")
    page.locator("#word").fill("redact")
    page.get_by_test_id("confirm-button").click()
    expect(page.get_by_test_id("action-error")).to_have_text(
        "Type REDACT to confirm; nothing was changed.")
    assert status_of(app, person["id"])[2] is False

    page.locator("#word").fill("REDACT")
    page.get_by_test_id("confirm-button").click()
    expect(page.get_by_test_id("result-changed")).to_contain_text(f"1 changed: {person['ref']}")
    assert status_of(app, person["id"])[2] is True

    page.goto(f"/admin/owner/customer/details/?id={person['id']}")
    expect(page.get_by_test_id("redacted-badge")).to_be_visible()
    expect(page.get_by_test_id("customer-summary")).not_to_contain_text("Forgetme")
    expect(page.get_by_test_id("record-actions")).to_have_count(0)


def test_coordinator_sets_a_selection_dormant_from_the_list(app, page, sign_in):
    first, second, dormant, untouched = seed(
        app,
        {"surname": "Abbott"}, {"surname": "Brook"}, {"surname": "Cole", "status": "dormant"},
        {"surname": "Drake"},
    )
    sign_in("coordinator")
    page.goto("/admin/coordinator/customer/")
    select_rows(page, first["id"], second["id"], dormant["id"])
    with_selected(page, "set_dormant")

    expect(page.get_by_role("heading", name="Set customers dormant")).to_be_visible()
    expect(page.get_by_test_id("confirm-count")).to_contain_text("3 customers selected")
    assert status_of(app, first["id"])[0] == "active"
    page.get_by_test_id("confirm-button").click()

    expect(page.get_by_role("heading", name="Set customers dormant: done")).to_be_visible()
    expect(page.get_by_test_id("result-changed")).to_contain_text("2 changed")
    expect(page.get_by_test_id("skipped-list")).to_have_text(
        f"{dormant['ref']} skipped: already dormant")
    assert [status_of(app, c["id"])[0] for c in (first, second, dormant, untouched)] == [
        "dormant", "dormant", "dormant", "active"]
    page.get_by_role("link", name="Back to the list").click()
    expect(row(page, first["ref"]).locator("td.col-status")).to_have_text("dormant")


def test_the_record_page_opens_the_tab_in_the_address_and_keeps_it(app, page, sign_in):
    """A timeline filter reloads the page on its tab; a tab clicked shows in the address, so
    a reload or a shared link lands there too."""
    (person,) = seed(app, {"first_name": "Tess", "surname": "Tabber"})
    sign_in("coordinator")

    page.goto(f"/admin/coordinator/customer/details/?id={person['id']}")
    expect(page.locator("#tab-details")).to_be_visible()
    page.get_by_test_id("tab-timeline").click()
    expect(page).to_have_url(re.compile(r"#tab-timeline$"))
    page.get_by_role("link", name="notes", exact=True).click()

    expect(page).to_have_url(re.compile(r"timeline=notes#tab-timeline$"))
    expect(page.locator("#tab-timeline")).to_be_visible()
    expect(page.locator("#tab-details")).to_be_hidden()


def test_a_row_button_in_the_list_opens_the_confirmation_for_that_customer(app, page, sign_in):
    target, other = seed(app, {"surname": "Rowley"}, {"surname": "Stand"})
    sign_in("coordinator")
    page.goto("/admin/coordinator/customer/")

    row(page, target["ref"]).get_by_test_id("row-actions").click()
    menu = page.get_by_test_id("row-menu")  # one menu for the page, opened for that row
    expect(menu).to_be_visible()
    expect(menu.locator(".dropdown-header")).to_contain_text(target["ref"])
    menu.get_by_role("menuitem", name="Set dormant…").click()

    expect(page.get_by_test_id("confirm-count")).to_contain_text("1 customer selected")
    expect(page.get_by_test_id("confirm-page")).to_contain_text(target["ref"])
    page.get_by_test_id("confirm-button").click()
    expect(page.get_by_test_id("result-changed")).to_contain_text(f"1 changed: {target['ref']}")
    assert [status_of(app, c["id"])[0] for c in (target, other)] == ["dormant", "active"]
