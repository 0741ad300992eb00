"""The record page's buttons on a phone: two even columns inside the screen, the rarer ones
in a "More" menu that opens without leaving the screen and closes as a menu does; and the
bookings as cards."""

from datetime import datetime, timedelta

from playwright.sync_api import expect

from crm.extensions import db
from tests import factories as f
from tests.integration.helpers import customer


def test_the_record_buttons_fit_a_phone_in_two_columns(app, page, sign_in):
    with app.app_context():
        row = customer(db.session, first_name="Bea", surname="Whitfield")
        f.make_booking(db.session, row, title="Summer ball", status="confirmed",
                       starts_at=datetime.now() + timedelta(days=9))
        db.session.commit()
        key = row.id
    sign_in("owner")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"/admin/owner/customer/details/?id={key}")

    actions = page.get_by_test_id("record-actions")
    boxes = [el.bounding_box() for el in actions.locator(":scope > a, :scope > details > summary").all()]
    assert len(boxes) == 6  # Edit, New booking, Add contact, work address, branch, More
    lefts = sorted({round(b["x"]) for b in boxes})
    assert len(lefts) == 2, lefts  # two columns
    assert len({round(b["width"]) for b in boxes}) == 1  # of one width
    assert all(b["x"] >= 0 and b["x"] + b["width"] <= 390 for b in boxes)

    expect(page.get_by_test_id("redact")).to_be_hidden()
    page.get_by_test_id("more-actions").get_by_text("More").click()
    redact = page.get_by_test_id("redact")
    expect(redact).to_be_visible()
    box = redact.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    # it closes as a menu does: Escape, or a click elsewhere
    page.keyboard.press("Escape")
    expect(redact).to_be_hidden()
    page.get_by_test_id("more-actions").get_by_text("More").click()
    expect(redact).to_be_visible()
    page.get_by_test_id("customer-summary").locator("h1").click()
    expect(redact).to_be_hidden()

    page.goto(f"/admin/owner/customer/details/?id={key}&at=all#tab-bookings")
    card = page.get_by_test_id("booking-row").first
    expect(card).to_contain_text("Summer ball")
    box = card.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390
    # nothing in the tab scrolls sideways
    assert page.evaluate("document.getElementById('tab-bookings').scrollWidth") <= 390
    assert page.locator("#tab-bookings .table-responsive").evaluate_all(
        "els => els.every(e => e.scrollWidth <= e.clientWidth)")
