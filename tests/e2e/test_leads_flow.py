"""From an inquiry to a customer with a booking, in real browsers: a person sends the public
inquiry form in a fresh context; a coordinator finds it on the Leads board and converts it;
the customer, its primary contact and the booking exist and link to each other. Then two
related bookings: one confirmed where it is, one detached to a new customer."""

from datetime import date, datetime, timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from crm.extensions import db
from crm.models import Booking, Contact, Customer, Lead
from crm.models.sequence import next_number
from tests.factories import make_customer

pytestmark = pytest.mark.e2e


def test_an_inquiry_becomes_a_client_with_a_booking(app, browser, live_server, page, sign_in):
    wanted = date.today() + timedelta(days=60)
    public = browser.new_context(base_url=live_server.url)  # the person: no staff cookie
    form = public.new_page()
    form.goto("/inquiry")
    form.get_by_label("First name").fill("Jordan")
    form.get_by_label("Surname").fill("Mayfield")
    form.get_by_label("E-mail").fill("Jordan.Mayfield@example.com")
    form.get_by_label("What is it for? (optional)").fill("Ruby wedding party")
    form.get_by_label("Preferred date (optional)").fill(wanted.strftime("%d %b %Y"))
    form.get_by_role("button", name="Send inquiry").click()
    form.wait_for_url("**/inquiry/thanks")
    public.close()

    sign_in("coordinator")
    page.goto("/admin/coordinator/leads_board/")
    column = page.get_by_test_id("stage-new")
    expect(column.get_by_test_id("count-new")).to_have_text("1")
    card = column.get_by_test_id("lead-card").filter(has_text="Jordan Mayfield")
    expect(card).to_contain_text("Ruby wedding party")
    card.get_by_test_id("convert-link").click()

    panel = page.get_by_test_id("convert-panel")
    expect(panel.get_by_label("Starts")).to_have_value(f"{wanted.day} {wanted:%b %Y}, 09:00")
    panel.get_by_label("Starts").fill(f"{wanted.day} {wanted:%b %Y}, 19:30")
    panel.get_by_test_id("convert").click()
    page.wait_for_url("**/admin/coordinator/customer/details/?id=*")
    expect(page.locator("body")).to_contain_text("Converted 1 lead: 1 new client")

    with app.app_context():
        lead = db.session.scalars(select(Lead)).one()
        customer = db.session.get(Customer, lead.customer_id)
        contact = db.session.scalars(select(Contact).where(
            Contact.customer_id == customer.id)).one()
        booking = db.session.scalars(select(Booking).where(Booking.lead_id == lead.id)).one()
        assert lead.status == "won"
        assert (customer.kind, customer.email) == ("client", "jordan.mayfield@example.com")
        assert (contact.is_primary, contact.surname) == (True, "Mayfield")
        assert booking.customer_id == customer.id
        assert booking.starts_at == datetime.combine(wanted, datetime.min.time()).replace(
            hour=19, minute=30)
        reference = booking.reference
    assert f"id={customer.id}" in page.url
    expect(page.locator("body")).to_contain_text(reference)  # the booking on the record page


def test_related_bookings_are_confirmed_and_detached(app, page, sign_in):
    with app.app_context():
        alex = make_customer(db.session, first_name="Alex", surname="Stone",
                             email="stone.family@example.com")
        for first in ("Sam", "Kit"):
            db.session.add(Booking(
                reference=next_number(db.session, "booking"), customer=alex,
                title=f"{first}'s party", starts_at=datetime(2027, 5, 1, 19), status="confirmed",
                contact_email="stone.family@example.com", contact_first_name=first,
                contact_surname="Rivers", attribution="related"))
        db.session.commit()
        alex_id = alex.id

    sign_in("coordinator")
    page.goto("/admin/coordinator/related_bookings/")
    expect(page.get_by_test_id("review-count")).to_have_text("2")
    sam = page.get_by_test_id("review-row").filter(has_text="Sam's party")
    expect(sam).to_contain_text("Booked as Sam Rivers; the customer with that e-mail is "
                                "Alex Stone.")
    sam.get_by_test_id("confirm-one").click()
    expect(page.get_by_test_id("review-count")).to_have_text("1")

    page.get_by_test_id("review-row").filter(has_text="Kit's party") \
        .get_by_test_id("detach-link").click()
    page.get_by_test_id("detach-new").click()
    expect(page.get_by_test_id("nothing-to-review")).to_be_visible()

    with app.app_context():
        sam_booking, kit_booking = db.session.scalars(
            select(Booking).order_by(Booking.id)).all()
        assert sam_booking.customer_id == alex_id and sam_booking.reviewed_at is not None
        kit = db.session.get(Customer, kit_booking.customer_id)
        assert kit.id != alex_id and (kit.first_name, kit.surname) == ("Kit", "Rivers")
