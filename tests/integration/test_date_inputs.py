"""Every date a person types is typed in the one style the pages show ("4 Dec 2026"; ISO
still read): the invoice form, the record-a-payment page, raising a credit note, the service
reminder form (any date column of a model form) and the portal's activity statement. A
saved date comes back as "4 Dec 2026"; what is not a date is refused with one sentence and
nothing is saved; no page offers the browser's date box (it shows mm/dd/yyyy)."""

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from crm.admin_views.filters import DayBetween, DayEqual
from crm.extensions import db
from crm.formatting import day
from crm.models import Invoice, Payment, ServiceReminder
from tests import factories as f
from tests.integration.helpers import (
    by_testid,
    count_rows,
    customer,
    field_errors,
    form_values,
    list_row_ids,
    submit,
    text_of,
    view_for,
)
from tests.integration.test_portal import people, portal_client  # noqa: F401 (fixture)

HINT = "Type a date like 4 Dec 2026."
TYPED = [("4 Dec 2026", date(2026, 12, 4)), ("2026-12-04", date(2026, 12, 4)),
         ("4 December 2026", date(2026, 12, 4)), ("04/12/2026", date(2026, 12, 4))]
NOT_DATES = ["31 Feb 2026", "next tuesday", "2026-02-30", "4 Dec"]


def no_date_box(html: str) -> None:
    assert 'type="date"' not in html
    assert "datepicker" not in html


@pytest.fixture
def payer(app):
    with app.app_context():
        s = db.session
        person = customer(s, surname="Payer")
        address = f.make_work_address(s, person)
        owing = f.make_invoice(s, person, amount="100.00", days_overdue=5)
        s.commit()
        return {"customer": person.id, "address": address.id, "invoice": owing.id}


# --- the invoice form (a model form: its date columns are DayFields) -----------------------

def _invoice_form(payer, **changes) -> dict:
    data = {"customer": str(payer["customer"]), "issue_date": "4 Dec 2026", "due_date": "",
            "lines-0-position": "0", "lines-0-category": "labour",
            "lines-0-description": "Call-out", "lines-0-quantity": "1",
            "lines-0-unit_price": "60.00", "lines-0-tax_rate": "20"}
    data.update(changes)
    return data


@pytest.mark.parametrize(("typed", "meant"), TYPED)
def test_the_invoice_form_reads_a_typed_date_and_shows_it_back(app, client, login, payer,
                                                               typed, meant):
    login("owner")

    response = submit(client, "/admin/owner/invoice/new/",
                      _invoice_form(payer, issue_date=typed, due_date="18 Dec 2026"))

    assert response.status_code == 302, field_errors(text_of(response), "issue_date")
    with app.app_context():
        invoice = db.session.scalars(select(Invoice).order_by(Invoice.id.desc())).first()
        invoice_id = invoice.id
        assert (invoice.issue_date, invoice.due_date) == (meant, date(2026, 12, 18))
    html = text_of(client.get(f"/admin/owner/invoice/edit/?id={invoice_id}"))
    values = form_values(html)
    assert values["issue_date"] == "4 Dec 2026"
    assert values["due_date"] == "18 Dec 2026"
    no_date_box(html)


@pytest.mark.parametrize("typed", NOT_DATES)
def test_the_invoice_form_refuses_what_is_not_a_date_by_the_field(app, client, login, payer,
                                                                  typed):
    login("owner")

    response = submit(client, "/admin/owner/invoice/new/", _invoice_form(payer, issue_date=typed))

    html = text_of(response)
    assert response.status_code == 200
    assert HINT in html
    assert f'value="{typed}"' in html  # what was typed is kept, to be corrected
    assert count_rows(app, Invoice) == 1  # only the fixture's
    no_date_box(html)


def test_a_new_invoice_offers_today_in_the_one_style(client, login, payer):
    login("owner")

    html = text_of(client.get(f"/admin/owner/invoice/new/?customer={payer['customer']}"))

    assert f'value="{day(date.today())}"' in html
    assert 'placeholder="e.g. 4 Dec 2026"' in html
    no_date_box(html)


# --- a model form: the service reminder's due date ------------------------------------------

def test_a_reminder_due_date_is_typed_as_4_dec_2026(app, client, login, payer):
    login("owner")

    response = submit(client, "/admin/owner/service_reminder/new/",
                      {"work_address": str(payer["address"]), "due_on": "4 Dec 2026",
                       "description": "Boiler service", "status": "due"})

    assert response.status_code == 302
    with app.app_context():
        reminder = db.session.scalars(select(ServiceReminder)).one()
        reminder_id = reminder.id
        assert reminder.due_on == date(2026, 12, 4)
    html = text_of(client.get(f"/admin/owner/service_reminder/edit/?id={reminder_id}"))
    assert form_values(html)["due_on"] == "4 Dec 2026"
    assert 'placeholder="e.g. 4 Dec 2026"' in html and 'autocomplete="off"' in html
    no_date_box(html)

    response = submit(client, f"/admin/owner/service_reminder/edit/?id={reminder_id}",
                      {"due_on": "2027-01-15"})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(ServiceReminder, reminder_id).due_on == date(2027, 1, 15)


@pytest.mark.parametrize("typed", NOT_DATES)
def test_a_reminder_refuses_what_is_not_a_date(app, client, login, payer, typed):
    login("owner")

    response = submit(client, "/admin/owner/service_reminder/new/",
                      {"work_address": str(payer["address"]), "due_on": typed,
                       "description": "Boiler service", "status": "due"})

    html = text_of(response)
    assert response.status_code == 200
    assert field_errors(html, "due_on") == [HINT]
    assert count_rows(app, ServiceReminder) == 0


# --- a booking's start and end: a date and a time, in the same style ------------------------

MOMENT_HINT = "Type a date and time like 4 Dec 2026, 20:00."


@pytest.mark.parametrize("typed", ["4 Dec 2026, 20:00", "2026-12-04 20:00", "4/12/2026 8:00 pm"])
def test_a_booking_start_is_typed_as_the_pages_show_it(app, client, login, payer, typed):
    from datetime import datetime

    from crm.models import Booking

    login("owner")
    response = submit(client, "/admin/owner/booking/new/",
                      {"customer": str(payer["customer"]), "title": "Wedding set",
                       "status": "confirmed", "starts_at": typed,
                       "ends_at": "4 Dec 2026, 23:30"})

    assert response.status_code == 302, field_errors(text_of(response), "starts_at")
    with app.app_context():
        booking = db.session.scalars(select(Booking)).one()
        key = booking.id
        # as the clock reads it: no time-zone conversion
        assert (booking.starts_at, booking.ends_at) == (datetime(2026, 12, 4, 20, 0),
                                                         datetime(2026, 12, 4, 23, 30))
    html = text_of(client.get(f"/admin/owner/booking/edit/?id={key}"))
    assert form_values(html)["starts_at"] == "4 Dec 2026, 20:00"
    # the pickers say what to type, not Flask-Admin's "Please select model"
    assert "Please select model" not in html
    assert 'data-placeholder="Search by name, reference, e-mail or phone"' in html
    assert 'placeholder="e.g. 4 Dec 2026, 20:00"' in html
    no_date_box(html)


@pytest.mark.parametrize("typed", ["4 Dec 2026", "next friday 8pm", "4 Dec 2026, 25:00",
                                   "31 Feb 2026, 10:00"])
def test_a_booking_start_that_is_not_a_date_and_time_is_one_sentence(app, client, login,
                                                                      payer, typed):
    from crm.models import Booking

    login("owner")
    response = submit(client, "/admin/owner/booking/new/",
                      {"customer": str(payer["customer"]), "title": "Wedding set",
                       "status": "confirmed", "starts_at": typed})

    assert response.status_code == 200
    assert field_errors(text_of(response), "starts_at") == [MOMENT_HINT]
    assert count_rows(app, Booking) == 0


# --- the record-a-payment page --------------------------------------------------------------

def _payment(payer, received_on: str) -> dict:
    return {"customer_id": str(payer["customer"]), "received_on": received_on,
            "method": "card", "reference": "SHOP-7", "amount": "20.00", "confirm": "1"}


@pytest.mark.parametrize(("typed", "meant"), TYPED)
def test_a_payment_date_is_typed_as_4_dec_2026(app, client, login, payer, typed, meant):
    login("owner")

    response = client.post("/admin/owner/payment/record/", data=_payment(payer, typed))

    assert response.status_code == 302
    with app.app_context():
        payment = db.session.scalars(select(Payment)).one()
        assert (payment.received_on, payment.amount) == (meant, Decimal("20.00"))


def test_the_payment_page_offers_today_in_the_one_style(client, login, payer):
    login("owner")

    html = text_of(client.get(f"/admin/owner/payment/record/?customer_id={payer['customer']}"))

    assert f'value="{day(date.today())}"' in html
    no_date_box(html)


@pytest.mark.parametrize("typed", NOT_DATES)
def test_a_payment_date_that_is_not_a_date_is_one_sentence(app, client, login, payer, typed):
    login("owner")

    response = client.post("/admin/owner/payment/record/", data=_payment(payer, typed))

    html = text_of(response)
    assert response.status_code == 400
    assert by_testid(html, "action-error") == ["Date received: type a date like 4 Dec 2026."]
    assert f'value="{typed}"' in html
    assert count_rows(app, Payment) == 0


# --- the customer portal's activity statement ------------------------------------------------

def test_the_portal_reads_a_period_typed_as_4_dec_2026(app, people):  # noqa: F811
    browser = portal_client(app)

    response = browser.get("/portal/?kind=activity&start=1 Sept 2026&end=2026-12-04")

    html = text_of(response)
    assert response.status_code == 200
    assert "1 Sept 2026" in by_testid(html, "statement-period")[0]
    assert "4 Dec 2026" in by_testid(html, "statement-period")[0]
    assert 'value="1 Sept 2026"' in html and 'value="4 Dec 2026"' in html
    no_date_box(html)


@pytest.mark.parametrize("typed", NOT_DATES)
def test_the_portal_refuses_a_period_that_is_not_a_date(app, people, typed):  # noqa: F811
    response = portal_client(app).get(f"/portal/?kind=activity&start={typed}")

    html = text_of(response)
    assert response.status_code == 400
    assert by_testid(html, "statement-error") == ["From: type a date like 4 Dec 2026."]
    assert f'value="{typed}"' in html


# --- a list filter on a date column ------------------------------------------------------------

def filter_definitions(html: str) -> str:
    """The filters' definitions the list page hands its script (a text box each)."""
    return html.split('id="filter-groups-data"', 1)[1].split("</div>", 1)[0]


def _filter_arg(app, slug: str, column: str, kind) -> str:
    view = view_for(app, slug, "owner")
    for arg, (_index, flt) in view._filter_args.items():
        if str(flt.column).endswith(column) and type(flt) is kind:
            return arg
    raise AssertionError(f"no {kind.__name__} filter on {slug}.{column}")


@pytest.fixture
def dated(app):
    with app.app_context():
        s = db.session
        person = customer(s, surname="Dated")
        ids = [f.make_invoice(s, person, issue_date=d, due_date=d).id
               for d in (date(2026, 11, 30), date(2026, 12, 4), date(2026, 12, 20))]
        s.commit()
        return ids


@pytest.mark.parametrize("typed", ["4 Dec 2026", "2026-12-04", "4/12/2026"])
def test_a_date_filter_reads_a_day_typed_as_the_pages_show_it(app, client, login, dated,
                                                               typed):
    login("owner")
    on = _filter_arg(app, "invoice", "issue_date", DayEqual)
    between = _filter_arg(app, "invoice", "issue_date", DayBetween)

    html = text_of(client.get("/admin/owner/invoice/", query_string={f"flt0_{on}": typed}))
    assert list_row_ids(html) == [dated[1]]
    filters = filter_definitions(html)
    assert '"type": "datepicker"' not in filters and '"type": "daterangepicker"' not in filters

    html = text_of(client.get("/admin/owner/invoice/", query_string={
        f"flt0_{between}": f"1 Dec 2026 to {typed}"}))
    assert list_row_ids(html) == [dated[1]]


def test_a_date_filter_ignores_what_is_not_a_date(app, client, login, dated):
    login("owner")
    on = _filter_arg(app, "invoice", "issue_date", DayEqual)

    for typed in ("31 Feb 2026", "next tuesday", "20 Dec 2026 to 1 Dec 2026"):
        response = client.get("/admin/owner/invoice/", query_string={f"flt0_{on}": typed})
        assert response.status_code == 200
        assert sorted(list_row_ids(text_of(response))) == sorted(dated)
