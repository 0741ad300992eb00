"""The leads screens: the board (stages with counts, follow-ups due, duplicates), a lead's
page (stage buttons, lost with a reason, convert), the bulk conversion, the booking form's
attribution by e-mail, the related-bookings review (confirm, detach), and the gating."""

import re
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from crm.extensions import db
from crm.models import Booking, Contact, Customer, Lead
from crm.models.sequence import next_number
from tests import factories as f
from tests.integration.helpers import flashes, statements, text_of

ROLES = ("owner", "admin", "coordinator")


def board(role):
    return f"/admin/{role}/leads_board/"


def lead_page(role, lead_id):
    return f"/admin/{role}/lead/details/?id={lead_id}"


def review(role, path=""):
    return f"/admin/{role}/related_bookings/{path}"


def _lead(**overrides):
    values = dict(first_name="Robin", surname="Hart", email="robin.hart@example.com",
                  purpose="Wedding reception", preferred_date=date(2027, 6, 12))
    values.update(overrides)
    return f.make_lead(db.session, **values)


def _count(model, *where):
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _related_booking(customer, **overrides):
    values = dict(reference=next_number(db.session, "booking"), title="Party",
                  starts_at=datetime(2027, 7, 1, 19, 0), status="confirmed", customer=customer,
                  attribution="related", contact_email=customer.email,
                  contact_first_name="Sam", contact_surname="Other")
    values.update(overrides)
    booking = Booking(**values)
    db.session.add(booking)
    db.session.flush()
    return booking


@pytest.mark.parametrize("role", ROLES)
def test_the_board_shows_open_stages_with_counts_and_follow_ups_due(client, login, app, role):
    with app.app_context():
        today = date.today()
        _lead(surname="Newone", email="a@example.com")
        _lead(surname="Chased", status="contacted", email="b@example.com",
              follow_up_on=today - timedelta(days=1))
        _lead(surname="Later", status="quoted", email="c@example.com",
              follow_up_on=today + timedelta(days=3))
        _lead(surname="Gone", status="lost", lost_reason="Too dear", email="d@example.com")
        _lead(surname="Twin", email="a@example.com")
        db.session.commit()
    login(role)
    html = text_of(client.get(board(role)))
    counts = dict(re.findall(r'data-testid="count-(\w+)">(\d+)<', html))
    assert counts == {"new": "2", "contacted": "1", "quoted": "1"}
    due = html.split('data-testid="follow-ups"')[1].split("board-columns")[0]
    assert "Chased" in due and "Later" not in due and "Newone" not in due
    assert re.search(r'data-testid="due-count">1<', html)
    assert "Gone" not in html  # lost leads leave the board
    assert html.count('data-testid="duplicate-flag"') == 2  # Newone and Twin share an e-mail


def test_the_board_costs_the_same_statements_with_many_leads(client, login, app):
    login("owner")
    with app.app_context():
        _lead(email="x0@example.com")
        db.session.commit()
    few = statements(client.get(board("owner")))
    with app.app_context():
        for n in range(60):
            _lead(email=f"x{n + 1}@example.com", status=("new", "contacted", "quoted")[n % 3],
                  follow_up_on=date.today())
        db.session.commit()
    assert statements(client.get(board("owner"))) == few


def test_a_card_moves_a_lead_to_the_next_stage(client, login, app):
    with app.app_context():
        lead_id = _lead().id
        db.session.commit()
    login("coordinator")
    response = client.post("/admin/coordinator/lead/move/",
                           data={"id": lead_id, "stage": "contacted",
                                 "next": board("coordinator")})
    assert response.status_code == 302 and response.location.endswith(board("coordinator"))
    with app.app_context():
        assert db.session.get(Lead, lead_id).status == "contacted"


def test_marking_lost_without_a_reason_is_refused_and_changes_nothing(client, login, app):
    with app.app_context():
        lead_id = _lead().id
        db.session.commit()
    login("coordinator")
    response = client.post("/admin/coordinator/lead/move/",
                           data={"id": lead_id, "stage": "lost", "lost_reason": ""},
                           follow_redirects=True)
    assert any("why the lead was lost" in m for m in flashes(text_of(response)))
    with app.app_context():
        assert db.session.get(Lead, lead_id).status == "new"
    client.post("/admin/coordinator/lead/move/",
                data={"id": lead_id, "stage": "lost", "lost_reason": "Date taken"})
    with app.app_context():
        lead = db.session.get(Lead, lead_id)
        assert (lead.status, lead.lost_reason) == ("lost", "Date taken")


def test_a_move_without_the_csrf_token_is_refused(client, login, app):
    with app.app_context():
        lead_id = _lead().id
        db.session.commit()
    login("owner")
    response = client.post("/admin/owner/lead/move/", data={"id": lead_id, "stage": "quoted"},
                           csrf=False)
    assert response.status_code == 400
    with app.app_context():
        assert db.session.get(Lead, lead_id).status == "new"


def test_a_coordinator_converts_a_lead_from_its_page(client, login, app):
    with app.app_context():
        lead_id = _lead(phone="+447700900123").id
        db.session.commit()
    login("coordinator")
    page = text_of(client.get(lead_page("coordinator", lead_id)))
    assert 'data-testid="convert-panel"' in page
    assert 'value="12 Jun 2027, 09:00"' in page  # the preferred date, as pages show it
    response = client.post("/admin/coordinator/lead/convert/",
                           data={"id": lead_id, "title": "Hart wedding",
                                 "starts_at": "12 Jun 2027, 19:30", "status": "confirmed"})
    assert response.status_code == 302
    assert "/admin/coordinator/customer/details/?id=" in response.location
    with app.app_context():
        lead = db.session.get(Lead, lead_id)
        customer = lead.customer
        booking = db.session.scalars(select(Booking).where(Booking.lead_id == lead_id)).one()
        assert lead.status == "won" and customer.kind == "client"
        assert (booking.customer_id, booking.title, booking.starts_at) == (
            customer.id, "Hart wedding", datetime(2027, 6, 12, 19, 30))
        assert _count(Contact, Contact.customer_id == customer.id, Contact.is_primary) == 1
    page = text_of(client.get(lead_page("coordinator", lead_id)))
    assert 'data-testid="converted"' in page and booking.reference in page


def test_a_bad_start_is_refused_with_a_sentence_and_nothing_is_made(client, login, app):
    with app.app_context():
        lead_id = _lead().id
        db.session.commit()
    login("owner")
    response = client.post("/admin/owner/lead/convert/",
                           data={"id": lead_id, "starts_at": "next tuesday"},
                           follow_redirects=True)
    assert any("like 4 Dec 2026, 20:00" in m for m in flashes(text_of(response)))
    with app.app_context():
        assert _count(Customer) == 0 and _count(Booking) == 0
        assert db.session.get(Lead, lead_id).status == "new"


def test_bulk_convert_from_the_list_says_what_it_did_and_skipped(client, login, app):
    with app.app_context():
        first = _lead().id
        second = _lead(purpose="Party").id
        undated = _lead(email="other@example.com", preferred_date=None).id
        db.session.commit()
    login("coordinator")
    response = client.post("/admin/coordinator/lead/action/",
                           data={"action": "convert", "rowid": [first, second, undated]},
                           follow_redirects=True)
    messages = flashes(text_of(response))
    assert any("Converted 2 leads: 1 new client, 1 matched by e-mail" in m for m in messages)
    assert any("no preferred date" in m for m in messages)
    with app.app_context():
        assert _count(Customer) == 1 and _count(Booking) == 2
        assert db.session.get(Lead, undated).status == "new"


def test_the_lead_page_flags_another_open_lead_with_the_same_email(client, login, app):
    with app.app_context():
        lead_id = _lead().id
        _lead(first_name="R.")
        db.session.commit()
    login("owner")
    assert 'data-testid="duplicate-warning"' in text_of(client.get(lead_page("owner", lead_id)))


# -- the booking form: attribution by e-mail ------------------------------------------------

def _new_booking(client, role, **fields):
    data = {"title": "Gig", "status": "confirmed", "starts_at": "1 Jul 2027, 19:00"}
    data.update(fields)
    return client.post(f"/admin/{role}/booking/new/", data=data, follow_redirects=True)


def test_a_booking_made_with_only_an_email_finds_its_customer(client, login, app):
    with app.app_context():
        customer = f.make_customer(db.session, first_name="Robin", surname="Hart",
                                   email="robin.hart@example.com")
        customer_id = customer.id
        db.session.commit()
    login("coordinator")
    response = _new_booking(client, "coordinator", contact_email="Robin.Hart@example.com",
                            contact_first_name="Robin", contact_surname="Hart")
    assert any("whose e-mail and name match" in m for m in flashes(text_of(response)))
    with app.app_context():
        booking = db.session.scalars(select(Booking)).one()
        assert (booking.customer_id, booking.attribution) == (customer_id, "exact")


def test_a_confirmed_booking_with_an_unknown_email_makes_a_client(client, login, app):
    login("owner")
    response = _new_booking(client, "owner", contact_email="new.person@example.com",
                            contact_first_name="New", contact_surname="Person")
    assert any("made a new client" in m for m in flashes(text_of(response)))
    with app.app_context():
        customer = db.session.scalars(select(Customer)).one()
        assert (customer.surname, customer.email, customer.kind) == (
            "Person", "new.person@example.com", "client")


def test_an_enquiry_waits_and_the_customer_made_later_picks_it_up(client, login, app):
    login("owner")
    response = _new_booking(client, "owner", status="enquiry",
                            contact_email="later@example.com", contact_surname="Later")
    assert any("waits for its customer" in m for m in flashes(text_of(response)))
    with app.app_context():
        assert _count(Customer) == 0
        assert db.session.scalars(select(Booking)).one().customer_id is None
    response = client.post("/admin/owner/customer/new/",
                           data={"customer_type": "private", "kind": "client",
                                 "status": "active", "surname": "Later",
                                 "email": "later@example.com", "country": "GB",
                                 "address_line_1": "1 Mill Lane", "postcode": "LS1 1AA"},
                           follow_redirects=True)
    assert any("Attached 1 booking made earlier" in m for m in flashes(text_of(response)))
    with app.app_context():
        customer = db.session.scalars(select(Customer)).one()
        assert db.session.scalars(select(Booking)).one().customer_id == customer.id


def test_a_booking_with_neither_customer_nor_email_is_refused(client, login, app):
    login("owner")
    response = _new_booking(client, "owner")
    assert "Choose the customer, or give the contact" in text_of(response)
    with app.app_context():
        assert _count(Booking) == 0


# -- related bookings to review ----------------------------------------------------------------

@pytest.fixture
def related(app):
    with app.app_context():
        alex = f.make_customer(db.session, first_name="Alex", surname="Stone",
                               email="stone@example.com")
        other = f.make_customer(db.session, first_name="Jo", surname="Elsewhere",
                                email="jo@example.com")
        first, second = _related_booking(alex), _related_booking(alex)
        db.session.commit()
        return {"alex": alex.id, "other": other.id, "first": first.id, "second": second.id,
                "other_ref": other.reference}


def test_the_review_list_says_why_and_confirming_takes_a_booking_off(client, login, app, related):
    login("coordinator")
    html = text_of(client.get(review("coordinator")))
    assert re.search(r'data-testid="review-count">2<', html)
    assert "Booked as Sam Other; the customer with that e-mail is Alex Stone." in html
    client.post(review("coordinator", "confirm/"), data={"id": related["first"]})
    html = text_of(client.get(review("coordinator")))
    assert re.search(r'data-testid="review-count">1<', html)
    with app.app_context():
        booking = db.session.get(Booking, related["first"])
        assert booking.reviewed_at is not None and booking.customer_id == related["alex"]


def test_detaching_to_a_new_customer_and_to_one_found_by_search(client, login, app, related):
    login("owner")
    response = client.post(review("owner", f"detach/{related['first']}/"), data={"new": "1"})
    assert response.status_code == 302
    page = text_of(client.get(review("owner", f"detach/{related['second']}/?q=Elsewhere")))
    assert related["other_ref"] in page and 'data-testid="detach-to"' in page
    client.post(review("owner", f"detach/{related['second']}/"),
                data={"customer_id": related["other"]})
    with app.app_context():
        first = db.session.get(Booking, related["first"])
        second = db.session.get(Booking, related["second"])
        assert first.customer.surname == "Other" and first.customer_id != related["alex"]
        assert second.customer_id == related["other"]
        assert (first.attribution, second.attribution) == ("manual", "manual")
    assert 'data-testid="nothing-to-review"' in text_of(client.get(review("owner")))


def test_detaching_without_the_csrf_token_changes_nothing(client, login, app, related):
    login("owner")
    response = client.post(review("owner", f"detach/{related['first']}/"), csrf=False)
    assert response.status_code == 400
    with app.app_context():
        assert db.session.get(Booking, related["first"]).customer_id == related["alex"]


def test_booking_values_are_absent_for_a_coordinator(client, login, other_client, app,
                                                     related):
    with app.app_context():
        db.session.get(Booking, related["first"]).value = 4321
        db.session.commit()
    login("coordinator")
    for url in ("/admin/coordinator/booking/",
                f"/admin/coordinator/booking/details/?id={related['first']}",
                f"/admin/coordinator/booking/edit/?id={related['first']}",
                "/admin/coordinator/booking/export/csv/"):
        body = text_of(client.get(url))
        assert "4,321" not in body and "4321" not in body, url
    owner = other_client("owner")
    assert "4,321.00" in text_of(owner.get(
        f"/admin/owner/booking/details/?id={related['first']}"))


def test_the_dashboard_counts_follow_ups_due_and_related_bookings(client, login, app, related):
    with app.app_context():
        _lead(follow_up_on=date.today())
        _lead(email="later@example.com", follow_up_on=date.today() + timedelta(days=2))
        db.session.commit()
    login("coordinator")
    html = text_of(client.get("/admin/"))
    follow = html.split('data-testid="tile-follow_ups"')[1].split("</li>")[0]
    review_tile = html.split('data-testid="tile-related_bookings"')[1].split("</li>")[0]
    assert 'href="/admin/coordinator/leads_board/"' in follow
    assert re.search(r'tile-value">1<', follow)
    assert 'href="/admin/coordinator/related_bookings/"' in review_tile
    assert re.search(r'tile-value">2<', review_tile)


def test_the_review_list_costs_the_same_statements_with_many_bookings(client, login, app,
                                                                      related):
    login("coordinator")
    few = statements(client.get(review("coordinator")))
    with app.app_context():
        alex = db.session.get(Customer, related["alex"])
        for _ in range(40):
            _related_booking(alex)
        db.session.commit()
    assert statements(client.get(review("coordinator"))) == few
