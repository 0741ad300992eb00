"""`flask crm convert-lead | attach-waiting-bookings`: leads and bookings from a terminal,
through the same actions as the screens."""

from datetime import date, datetime

import pytest
from sqlalchemy import select

from crm.models import Booking, Customer, Lead
from crm.models.sequence import next_number
from tests import factories as f


@pytest.fixture
def crm(app):
    runner = app.test_cli_runner()
    return lambda *args: runner.invoke(args=["crm", *args])


def test_convert_lead_makes_the_client_and_the_booking(crm, session):
    lead = f.make_lead(session, surname="Hart", email="hart@example.com",
                       preferred_date=date(2027, 6, 12))
    undated = f.make_lead(session, surname="Moss", email="moss@example.com")
    session.commit()
    ids = (lead.id, undated.id)

    result = crm("convert-lead", *map(str, ids))

    assert result.exit_code == 0, result.output
    assert "Converted 1 lead: 1 new client" in result.output
    assert "no preferred date" in result.output
    session.expire_all()
    converted = session.get(Lead, ids[0])
    booking = session.scalars(select(Booking).where(Booking.lead_id == ids[0])).one()
    assert converted.status == "won" and booking.customer_id == converted.customer_id
    assert session.get(Lead, ids[1]).status == "new"


def test_convert_lead_with_a_start_and_a_bad_start(crm, session):
    lead = f.make_lead(session, surname="Hart", email="hart@example.com")
    session.commit()
    lead_id = lead.id
    bad = crm("convert-lead", str(lead_id), "--starts", "soon")
    assert bad.exit_code != 0 and "4 Dec 2026, 20:00" in bad.output
    good = crm("convert-lead", str(lead_id), "--starts", "1 Aug 2027, 18:30")
    assert good.exit_code == 0, good.output
    booking = session.scalars(select(Booking).where(Booking.lead_id == lead_id)).one()
    assert booking.starts_at == datetime(2027, 8, 1, 18, 30)


def test_convert_lead_to_prospects(crm, session):
    lead = f.make_lead(session, surname="Hart", email="hart@example.com")
    session.commit()
    result = crm("convert-lead", str(lead.id), "--prospect")
    assert result.exit_code == 0 and "1 new prospect" in result.output
    assert session.scalars(select(Customer)).one().kind == "prospect"


def test_attach_waiting_bookings_after_customers_arrive(crm, session):
    session.add(Booking(reference=next_number(session, "booking"), title="Gig",
                        starts_at=datetime(2027, 1, 1, 20), status="enquiry",
                        contact_email="later@example.com", contact_surname="Later"))
    session.commit()
    f.make_customer(session, surname="Later", email="later@example.com")
    session.commit()  # arrived without the form (an import, a script): nothing attached yet
    result = crm("attach-waiting-bookings")
    assert result.exit_code == 0 and "Attached 1 waiting booking" in result.output
    assert session.scalars(select(Booking)).one().customer_id is not None
