"""The home page dashboard in a real browser: the owner's figures and charts, a bar of the
aging chart opening the customers of that age, a count opening its list; the coordinator's
page without money; on a phone, nothing wider than the screen."""

import re
from datetime import datetime, timedelta

import pytest
from playwright.sync_api import expect

from crm.extensions import db
from tests.factories import make_booking, make_customer, make_invoice

pytestmark = pytest.mark.e2e


def seed(app) -> dict:
    with app.app_context():
        s = db.session
        old = make_customer(s, first_name="Olive", surname="Oldham")
        make_invoice(s, old, amount="900.00", days_overdue=120)
        fresh = make_customer(s, first_name="Fred", surname="Freshwater")
        make_invoice(s, fresh, amount="50.00", days_overdue=5)
        make_invoice(s, fresh, amount="10.00", status="draft")
        s.commit()
        return {"old": old.reference, "fresh": fresh.reference}


def test_an_aging_bar_opens_the_customers_of_that_age(app, page, sign_in):
    refs = seed(app)
    sign_in("owner")
    page.goto("/admin/")

    expect(page.get_by_test_id("kpi-overdue")).to_contain_text("£950.00")
    page.get_by_label("Over 90 days: £900.00: open these customers").click()

    expect(page).to_have_url(re.compile(r"/admin/owner/customer/\?flt0_"))
    table = page.locator("table.model-list tbody")
    expect(table).to_contain_text(refs["old"])
    expect(table).not_to_contain_text(refs["fresh"])


def test_a_count_opens_its_list(app, page, sign_in):
    seed(app)
    sign_in("owner")
    page.goto("/admin/")

    page.get_by_test_id("tile-draft_invoices").get_by_role("link").click()

    expect(page).to_have_url(re.compile(r"/admin/owner/invoice/"))
    expect(page.locator("table.model-list tbody tr")).to_have_count(1)


def test_a_coordinator_sees_no_money_on_the_dashboard(app, page, sign_in):
    seed(app)
    sign_in("coordinator")
    page.goto("/admin/")

    expect(page.get_by_test_id("attention")).to_be_visible()
    expect(page.get_by_test_id("aging")).to_have_count(0)
    assert "£" not in page.locator("body").inner_text()


def test_on_a_phone_the_dashboard_fits_the_screen(app, page, sign_in):
    seed(app)
    with app.app_context():
        customer = make_customer(db.session, first_name="Wilhelmina", surname="Featherstonehaugh")
        make_booking(db.session, customer, title="Wedding reception with a very long title",
                     status="confirmed", starts_at=datetime.now() + timedelta(days=2))
        db.session.commit()
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in("owner")
    page.goto("/admin/")

    expect(page.get_by_test_id("aging")).to_be_visible()
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    # What needs someone comes before the charts on a phone.
    attention = page.get_by_test_id("attention").bounding_box()
    aging = page.get_by_test_id("aging").bounding_box()
    assert attention["y"] < aging["y"]
    # What is coming up reads whole on the screen, its status included (no scrolling box).
    status = page.get_by_test_id("upcoming").get_by_text("Confirmed")
    box = status.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
