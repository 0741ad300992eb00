"""Bookings on the customer's record page (ongoing and history, at one address or all, a
hundred a page, values only for roles that see money), the record page's add buttons (each
form comes with the customer filled in and leads back to the record), and a work address's
own page (its customer and landlord, bookings, notes and service reminders)."""

import re
from datetime import date, datetime, timedelta
from decimal import Decimal
from html import unescape

import pytest

from crm.extensions import db
from crm.models import Booking, Branch, Contact, Customer, Note, ServiceReminder, WorkAddress
from tests import factories as f
from tests.conftest import login_client
from tests.integration.helpers import (
    by_testid,
    count_rows,
    customer,
    form_values,
    statements,
    submit,
    text_of,
)

TODAY = datetime.combine(date.today(), datetime.min.time())


def details(role: str, key: int, **query) -> str:
    extra = "".join(f"&{k}={v}" for k, v in query.items())
    return f"/admin/{role}/customer/details/?id={key}{extra}"


def get(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return text_of(response)


def refs(html: str, testid: str) -> list[str]:
    """The booking references of one part of a bookings tab, top to bottom."""
    found = by_testid(html, testid)
    return re.findall(r"B-\d+", found[0]) if found else []


def href(html: str, testid: str) -> str:
    match = re.search(rf'<a [^>]*href="([^"]+)"[^>]*data-testid="{testid}"', html)
    assert match, f"no link {testid}"
    return unescape(match.group(1))


@pytest.fixture
def booked(app):
    """A customer with a work address and bookings of every kind: ongoing ones (one that
    started yesterday and ends tomorrow), and history (done, cancelled, or over)."""
    with app.app_context():
        owner = customer(db.session, first_name="Bea", surname="Whitfield")
        flat = f.make_work_address(db.session, owner, address_line_1="12 High Street",
                                   postcode="LS6 2AB")

        def book(title, days, status="confirmed", ends=None, at=None, value="250.00"):
            return f.make_booking(
                db.session, owner, title=title, status=status, work_address=at,
                starts_at=TODAY + timedelta(days=days, hours=19),
                ends_at=TODAY + timedelta(days=ends, hours=23) if ends is not None else None,
                value=Decimal(value))

        rows = {
            "later": book("Later gig", 10, at=flat, value="1234.50"),
            "soon": book("Soon enquiry", 2, status="enquiry"),
            "running": book("Festival", -1, ends=1),
            "done_early": book("Done early", 5, status="completed"),
            "called_off": book("Called off", 20, status="cancelled", at=flat),
            "over": book("Last month", -30),
            "past": book("Past show", -10, status="completed"),
        }
        db.session.commit()
        return {"id": owner.id, "flat": flat.id,
                **{name: row.reference for name, row in rows.items()}}


# --- the bookings tab ------------------------------------------------------------------------
def test_ongoing_bookings_come_soonest_first_and_the_rest_newest_first(client, login, booked):
    login("coordinator")
    html = get(client, details("coordinator", booked["id"]))

    assert refs(html, "bookings-ongoing") == [booked["running"], booked["soon"], booked["later"]]
    assert refs(html, "bookings-history") == [booked["called_off"], booked["done_early"],
                                              booked["past"], booked["over"]]
    ongoing = by_testid(html, "bookings-ongoing")[0]
    assert "Ongoing" in ongoing and "Festival" in ongoing and "confirmed" in ongoing
    assert 'class="badge rec-status rec-status-enquiry">enquiry</span>' in html
    # each booking opens its own page; the one at the flat says so, with a link
    assert re.search(r'<a href="/admin/coordinator/booking/details/\?id=\d+">' + booked["later"],
                     html)
    assert "12 High Street, LS6 2AB" in ongoing
    assert f'<a href="/admin/coordinator/work_address/details/?id={booked["flat"]}">12 High ' \
        'Street, LS6 2AB</a>' in html
    assert "their own address" in ongoing


def test_the_chooser_shows_the_bookings_at_one_place(client, login, booked):
    login("owner")
    key = booked["id"]
    everywhere = get(client, details("owner", key))
    chooser = by_testid(everywhere, "booking-place")[0]
    assert "everywhere" in chooser and "at their own address" in chooser
    assert "at 12 High Street, LS6 2AB" in chooser

    own = get(client, details("owner", key, at="own"))
    flat = get(client, details("owner", key, at=booked["flat"]))
    nonsense = get(client, details("owner", key, at="'; drop table booking"))

    assert refs(own, "bookings-ongoing") == [booked["running"], booked["soon"]]
    assert refs(own, "bookings-history") == [booked["done_early"], booked["past"], booked["over"]]
    assert refs(flat, "bookings-ongoing") == [booked["later"]]
    assert refs(flat, "bookings-history") == [booked["called_off"]]
    assert f'<option value="{booked["flat"]}" selected>' in flat
    # anything else shows everything
    assert refs(nonsense, "bookings-ongoing") == refs(everywhere, "bookings-ongoing")


def test_a_chosen_place_without_bookings_says_so(app, client, login, booked):
    with app.app_context():
        other = f.make_work_address(db.session, db.session.get(Customer, booked["id"]),
                                    address_line_1="Empty Barn")
        db.session.commit()
        empty = other.id
    login("owner")

    html = get(client, details("owner", booked["id"], at=empty))

    assert by_testid(html, "bookings-empty") == ["No bookings here."]


def test_bookings_come_a_hundred_a_page_at_the_same_cost(app, client, login):
    with app.app_context():
        few, many = customer(db.session), customer(db.session)
        for n, row in ((3, few), (205, many)):
            for i in range(n):
                f.make_booking(db.session, row, title=f"Old{i}", status="completed",
                               starts_at=TODAY - timedelta(days=i + 1))
        f.make_booking(db.session, many, title="Next", starts_at=TODAY + timedelta(days=3))
        db.session.commit()
        few, many = few.id, many.id
    login("owner")

    small = client.get(details("owner", few))
    first = client.get(details("owner", many))
    html = text_of(first)
    assert len(refs(html, "bookings-history")) == 100
    assert "Old0" in html and "Old99" in html and "Old100" not in html
    assert by_testid(html, "history-previous") == [] and by_testid(html, "history-next")
    assert by_testid(html, "ongoing-pager") == []  # one ongoing booking: no pages
    assert by_testid(html, "tab-bookings") == ["Bookings 101+"]

    second = client.get(href(html, "history-next").replace("#tab-bookings", ""))
    page2 = text_of(second)
    assert "Old100" in page2 and "Old199" in page2 and "Old99" not in page2
    assert "Next" in by_testid(page2, "bookings-ongoing")[0]  # the other part stays
    third = client.get(href(page2, "history-next").replace("#tab-bookings", ""))
    page3 = text_of(third)
    assert len(refs(page3, "bookings-history")) == 5 and "Old204" in page3
    assert by_testid(page3, "history-next") == [] and by_testid(page3, "history-previous")
    # a mangled page number is the first page
    again = text_of(client.get(details("owner", many, history="-4")))
    assert refs(again, "bookings-history") == refs(html, "bookings-history")
    assert statements(small) == statements(first) == statements(second) == statements(third)


def test_the_value_column_is_only_there_for_roles_that_see_money(app, client, login, booked):
    login("coordinator")
    hidden = get(client, details("coordinator", booked["id"]))
    assert by_testid(hidden, "value-heading") == []
    assert 'data-label="Value"' not in hidden
    assert "1,234.50" not in hidden and "250.00" not in hidden

    shown = get(login_client(app, "owner"), details("owner", booked["id"]))
    assert by_testid(shown, "value-heading") == ["Value", "Value"]
    assert "£1,234.50" in by_testid(shown, "bookings-ongoing")[0]


def test_a_customer_without_bookings_is_told_how_to_add_one(app, client, login):
    with app.app_context():
        key = customer(db.session).id
        db.session.commit()
    login("coordinator")

    html = get(client, details("coordinator", key))

    assert by_testid(html, "bookings-empty") == ["No bookings yet — New booking"]
    assert by_testid(html, "booking-place") == []  # no work address: nothing to choose


# --- the add buttons -------------------------------------------------------------------------
ADDED = {
    # button -> (model, what to type, the tab it comes back to)
    "add-booking": (Booking, {"title": "Spring fair", "starts_at": "4 May 2027, 18:00"},
                    "tab-bookings"),
    "add-contact": (Contact, {"surname": "Okafor", "first_name": "Ada"}, "tab-contacts"),
    "add-work-address": (WorkAddress, {"address_line_1": "3 Mill Lane", "postcode": "LS2 7EW"},
                         "tab-addresses"),
    "add-branch": (Branch, {"name": "North", "address_line_1": "9 Dock St",
                            "postcode": "LS10 1JF"}, "tab-branches"),
}


@pytest.mark.parametrize("button", ADDED)
def test_an_add_button_opens_its_form_for_the_customer_and_comes_back(app, client, login, button):
    model, typed, tab = ADDED[button]
    with app.app_context():
        key = customer(db.session, surname="Whitfield").id
        db.session.commit()
    login("coordinator")
    record = get(client, details("coordinator", key))

    form_url = href(record, button)
    form = get(client, form_url)
    assert form_values(form)["customer"] == str(key)  # chosen, as if picked from the list
    assert "Whitfield" in form
    response = submit(client, form_url, typed)

    assert response.status_code == 302, text_of(response)[:2000]
    assert response.headers["Location"].endswith(
        f"/admin/coordinator/customer/details/?id={key}#{tab}")
    assert count_rows(app, model, model.customer_id == key) == 1
    back = get(client, details("coordinator", key))
    assert next(iter(typed.values())) in back


def test_a_redacted_customer_has_no_add_buttons_and_forms_do_not_take_it(app, client, login):
    with app.app_context():
        key = customer(db.session, redacted_at=datetime.now()).id
        db.session.commit()
    login("owner")

    html = get(client, details("owner", key))
    assert by_testid(html, "record-actions") == []
    for button in ADDED:
        assert f'data-testid="{button}"' not in html
    assert "New booking</a>" not in html and "Add contact</a>" not in html
    # forging the address leaves the customer for the user to choose
    assert form_values(get(client, f"/admin/owner/booking/new/?customer_id={key}")).get(
        "customer", "") == ""


def test_the_more_menu_holds_the_rarer_buttons(client, login, booked):
    login("owner")
    html = get(client, details("owner", booked["id"]))
    more = html.split('data-testid="more-actions"', 1)[1].split("</details>", 1)[0]
    for testid in ("set-dormant", "merge-with", "deactivate", "redact", "delete"):
        assert f'data-testid="{testid}"' in more, testid
    assert 'data-testid="edit-record"' not in more and 'data-testid="add-booking"' not in more


# --- a work address's page ---------------------------------------------------------------------
@pytest.fixture
def flat(app, booked):
    with app.app_context():
        address = db.session.get(WorkAddress, booked["flat"])
        landlord = customer(db.session, first_name="Ravi", surname="Patel",
                            customer_type="landlord")
        address.landlord = landlord
        address.occupier_first_name, address.occupier_surname = "Tom", "Hughes"
        address.occupier_phone = "+447911123456"
        f.make_note(db.session, None, work_address=address, body="Gate code 4321.",
                    created_at=datetime(2026, 1, 5, 9, 0), important=True)
        f.make_note(db.session, None, work_address=address, body="Tenant prefers mornings.",
                    created_at=datetime(2026, 3, 1, 9, 0), kind="call")
        f.make_reminder(db.session, address, description="Annual boiler service",
                        interval_months=12, due_on=date(2027, 1, 14))
        f.make_reminder(db.session, address, description="Gas certificate", status="done",
                        due_on=date(2026, 2, 8))
        db.session.commit()
        return {**booked, "landlord": landlord.id}


def test_a_work_address_page_shows_its_people_bookings_notes_and_reminders(client, login, flat):
    login("owner")
    html = get(client, f"/admin/owner/work_address/details/?id={flat['flat']}")

    summary = by_testid(html, "work-address-summary")[0]
    assert "12 High Street LS6 2AB" in summary and "For Bea Whitfield" in summary
    assert "landlord Ravi Patel" in summary
    assert f'href="/admin/owner/customer/details/?id={flat["id"]}"' in html
    assert f'href="/admin/owner/customer/details/?id={flat["landlord"]}"' in html
    occupier = by_testid(html, "occupier")[0]
    assert "Tom Hughes" in occupier and "07911 123456" in occupier
    assert refs(html, "bookings-ongoing") == [flat["later"]]
    assert refs(html, "bookings-history") == [flat["called_off"]]
    assert "£1,234.50" in html
    notes = by_testid(html, "note-row")
    assert len(notes) == 2 and "Tenant prefers mornings." in notes[0]
    assert "Gate code 4321." in notes[1] and "pinned" in notes[1]
    reminders = by_testid(html, "reminder-row")
    assert reminders[0].startswith("14 Jan 2027 Annual boiler service every 12 months due")
    assert reminders[1].startswith("8 Feb 2026 Gas certificate once done")


def test_a_work_address_page_hides_values_from_a_coordinator(client, login, flat):
    login("coordinator")
    html = get(client, f"/admin/coordinator/work_address/details/?id={flat['flat']}")

    assert refs(html, "bookings-ongoing") == [flat["later"]]
    assert by_testid(html, "value-heading") == [] and "1,234.50" not in html


def test_the_work_address_buttons_fill_in_the_address_and_come_back(app, client, login, flat):
    login("coordinator")
    page = f"/admin/coordinator/work_address/details/?id={flat['flat']}"
    html = get(client, page)

    booking_form = href(html, "add-booking")
    values = form_values(get(client, booking_form))
    assert values["customer"] == str(flat["id"]) and values["work_address"] == str(flat["flat"])
    response = submit(client, booking_form, {"title": "Boiler swap",
                                             "starts_at": "6 Jun 2027, 09:00"})
    assert response.headers["Location"].endswith(page + "#bookings")
    assert count_rows(app, Booking, Booking.title == "Boiler swap",
                      Booking.work_address_id == flat["flat"],
                      Booking.customer_id == flat["id"]) == 1

    reminder_form = href(html, "add-reminder")
    assert form_values(get(client, reminder_form))["work_address"] == str(flat["flat"])
    response = submit(client, reminder_form, {"description": "Chimney sweep",
                                              "due_on": "3 Mar 2027"})
    assert response.headers["Location"].endswith(page + "#reminders")
    assert count_rows(app, ServiceReminder, ServiceReminder.description == "Chimney sweep",
                      ServiceReminder.work_address_id == flat["flat"]) == 1

    note_form = href(html, "add-note")
    response = submit(client, note_form, {"body": "Dog in the garden."})
    assert response.headers["Location"].endswith(page + "#notes")
    assert count_rows(app, Note, Note.body == "Dog in the garden.",
                      Note.work_address_id == flat["flat"]) == 1
    after = get(client, page)
    assert "Boiler swap" in after and "Chimney sweep" in after and "Dog in the garden." in after


def test_the_work_address_list_and_the_record_page_link_to_the_address_page(client, login,
                                                                            booked):
    login("coordinator")
    target = f'href="/admin/coordinator/work_address/details/?id={booked["flat"]}"'

    record = get(client, details("coordinator", booked["id"]))
    listing = get(client, "/admin/coordinator/work_address/")

    assert target in record
    assert f'<a href="details/?id={booked["flat"]}">12 High Street</a>' in listing


def test_a_redacted_customers_work_address_page_offers_nothing_to_add(app, client, login):
    with app.app_context():
        gone = customer(db.session, redacted_at=datetime.now())
        address = f.make_work_address(db.session, gone)
        db.session.commit()
        key = address.id
    login("owner")

    html = get(client, f"/admin/owner/work_address/details/?id={key}")

    assert by_testid(html, "work-address-summary")
    assert by_testid(html, "work-address-actions") == []
    assert "/booking/new/" not in html and "/note/new/" not in html
    assert "/service_reminder/new/" not in html
    assert form_values(get(client, f"/admin/owner/booking/new/?work_address_id={key}")).get(
        "work_address", "") == ""
