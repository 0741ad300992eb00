"""The service-reminder round in the browser, as a coordinator: tick reminders on the due
list, choose a decision from "With selected", answer its question on the confirmation page
and read the results; at a desk's width and a phone's, with nothing refused by the
Content-Security-Policy, no sideways scrolling on the phone and no serious accessibility
finding on the three pages."""

from datetime import date, timedelta

import pytest

from crm.extensions import db
from tests.e2e.test_accessibility import severe_violations
from tests.factories import make_customer, make_reminder, make_work_address

pytestmark = pytest.mark.e2e
TODAY = date.today()


@pytest.fixture
def due(app):
    with app.app_context():
        made = []
        for n, (name, keen) in enumerate((("Whitfield", True), ("Patel", True),
                                          ("O'Connor", False))):
            person = make_customer(db.session, surname=name, wants_reminders=keen)
            site = make_work_address(db.session, person, address_line_1=f"{n + 1} Mill Lane")
            made.append(make_reminder(db.session, site, description=f"{name} boiler service",
                                      due_on=TODAY - timedelta(days=30 * n),
                                      interval_months=12).id)
        db.session.commit()
        return made


@pytest.mark.parametrize("width", [1366, 390])
def test_a_coordinator_postpones_reminders_from_the_due_list(app, page, sign_in, due, width):
    refused = []
    page.on("console", lambda m: refused.append(m.text)
            if "Content Security Policy" in m.text else None)
    page.set_viewport_size({"width": width, "height": 900})
    sign_in("coordinator")
    page.goto("/admin/coordinator/due_reminder/")
    found = {"due list": severe_violations(page)}
    assert page.get_by_text("opted out").count() == 1
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width

    boxes = page.locator("input.action-checkbox")
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.get_by_text("With selected").click()
    page.get_by_text("Postpone to a date").click()
    page.get_by_test_id("confirm-page").wait_for()
    found["confirmation"] = severe_violations(page)
    until = TODAY + timedelta(days=14)
    page.get_by_label("Due again on").fill(f"{until:%-d %b %Y}")
    page.get_by_test_id("confirm-button").click()
    page.get_by_test_id("results-page").wait_for()
    found["results"] = severe_violations(page)

    assert page.get_by_test_id("result-message").inner_text() == (
        f"Postponed 2 reminders to {until:%-d %b %Y}.")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width
    assert found == {"due list": [], "confirmation": [], "results": []}
    assert refused == []
