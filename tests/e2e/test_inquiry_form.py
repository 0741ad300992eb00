"""The public inquiry form in a real browser, at a desktop's and a phone's width: a person
fills it in, gets their mistakes next to the boxes, corrects them and is thanked; the lead is
there. Nothing scrolls sideways, the browser refuses nothing under the Content-Security-Policy,
and axe finds no serious or critical accessibility problem on any of the three pages."""

import pytest
from sqlalchemy import select

from crm.extensions import db
from crm.models import BusinessProfile, Lead
from tests.e2e.test_accessibility import severe_violations

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("width", [1366, 390], ids=["desktop", "phone"])
def test_a_person_asks_for_a_booking_corrects_a_mistake_and_is_thanked(app, page, width):
    with app.app_context():
        db.session.add(BusinessProfile(id=1, name="Riverside Wedding Band",
                                       phone="0113 496 0000"))
        db.session.commit()
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text)
            if "Content Security Policy" in m.text else None)
    page.set_viewport_size({"width": width, "height": 900})

    page.goto("/inquiry")
    assert page.title() == "Ask about a booking · Riverside Wedding Band"
    found = {"form": severe_violations(page)}
    assert not page.locator("#website").is_visible() or \
        page.locator("#website").bounding_box()["x"] < 0  # the honeypot is out of sight
    page.get_by_label("First name").fill("Sam")
    page.get_by_label("E-mail").fill("sam@example")
    page.get_by_label("Preferred date (optional)").fill("1 Jan 2020")
    page.get_by_role("button", name="Send inquiry").click()

    assert page.get_by_test_id("error-surname").inner_text() == "Enter your surname."
    assert "Check your e-mail address" in page.get_by_test_id("error-email").inner_text()
    assert "onwards" in page.get_by_test_id("error-preferred_date").inner_text()
    found["errors"] = severe_violations(page)
    overflow = [page.evaluate("document.documentElement.scrollWidth - window.innerWidth")]

    page.get_by_label("Surname").fill("Lee")
    page.get_by_label("E-mail").fill("sam.lee@example.com")
    page.get_by_label("Preferred date (optional)").fill("12 Jun 2030")
    page.get_by_label("Message (optional)").fill("Evening set at the Old Mill, Otley.")
    page.get_by_role("button", name="Send inquiry").click()

    page.wait_for_url("**/inquiry/thanks")
    assert page.get_by_role("heading", level=1).inner_text() == "Thank you, Sam"
    found["thanks"] = severe_violations(page)
    overflow.append(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))
    with app.app_context():
        [lead] = db.session.scalars(select(Lead)).all()
        assert (lead.surname, lead.email) == ("Lee", "sam.lee@example.com")
    assert {page_: v for page_, v in found.items() if v} == {}
    assert max(overflow) <= 0
    assert refused == []
