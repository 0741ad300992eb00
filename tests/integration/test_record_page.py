"""The customer's record page: the summary and its badges, the pinned-notes banner ("do not
work with again" above all), money for owners and admins only, notes added and pinned from
the page, the set dormant / reactivate buttons, the timeline of what happened, the possible
duplicates, and escaping of everything a customer typed."""

import re
from datetime import datetime, timedelta
from html import unescape

import pytest

from crm.extensions import db
from crm.models import AuditEvent, Booking, Customer, Invoice, Note
from tests import factories as f
from tests.integration.helpers import (
    by_testid,
    count_rows,
    customer,
    flashes,
    load,
    text_of,
)

SCRIPT = "<script>alert(1)</script>"


def details(role: str, key: int, **query) -> str:
    extra = "".join(f"&{k}={v}" for k, v in query.items())
    return f"/admin/{role}/customer/details/?id={key}{extra}"


def page_of(client, role: str, key: int, **query) -> str:
    response = client.get(details(role, key, **query))
    assert response.status_code == 200, response.status_code
    return text_of(response)


@pytest.fixture
def person(app):
    """A customer with an invoice (money), a booking and an ordinary note."""
    with app.app_context():
        row = customer(db.session, first_name="Bea", surname="Whitfield")
        f.make_invoice(db.session, row, amount="1234.56", days_overdue=5)
        f.make_booking(db.session, row, title="Summer ball",
                       starts_at=datetime.now() + timedelta(days=30), status="confirmed")
        f.make_note(db.session, row, body="Asked for a quote.")
        db.session.commit()
        return {"id": row.id, "ref": row.reference}


# --- summary and banner ----------------------------------------------------------------------
def test_the_summary_shows_the_name_status_and_for_an_owner_the_money(client, login, person):
    login("owner")
    html = page_of(client, "owner", person["id"])

    summary = by_testid(html, "customer-summary")[0]
    assert f"Bea Whitfield {person['ref']}" in summary
    # the phone as people write it (stored as +447911123456), as in the list
    assert "07911 123456" in summary and "+447911123456</a>" not in html
    assert by_testid(html, "status-badge") == ["active"]
    money = by_testid(html, "money-indicators")[0]
    assert "Balance £1,234.56" in money and "Overdue £1,234.56 for 5 days" in money
    assert by_testid(html, "tab-money") == ["Money"]
    assert "1,234.56" in by_testid(html, "money-tab")[0]
    assert by_testid(html, "pinned-banner") == []


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_the_money_tab_leads_to_the_statement_and_the_money_actions(client, login, person,
                                                                      role):
    login(role)
    html = page_of(client, role, person["id"])

    key = person["id"]
    assert f'href="/admin/{role}/customer/statement/?id={key}" data-testid="tab-statement"' \
        in html
    actions = html.split('data-testid="money-actions"', 1)[1].split("</p>", 1)[0]
    for target in (f"/admin/{role}/payment/record/?customer_id={key}",
                   f"/admin/{role}/payment/allocate/?customer_id={key}",
                   f"/admin/{role}/credit_note/raise/?customer_id={key}",
                   f"/admin/{role}/invoice/new/?customer_id={key}"):
        assert f'href="{target}"' in actions, target
    # and each leads somewhere real
    statement = client.get(f"/admin/{role}/customer/statement/?id={key}")
    assert statement.status_code == 200 and "1,234.56" in text_of(statement)
    assert client.get(f"/admin/{role}/payment/record/?customer_id={key}").status_code == 200
    assert client.get(f"/admin/{role}/invoice/new/?customer_id={key}").status_code == 200


def test_a_coordinator_sees_no_balance_and_no_money_tab(client, login, person):
    login("coordinator")
    html = page_of(client, "coordinator", person["id"])

    assert "Bea Whitfield" in by_testid(html, "customer-summary")[0]
    assert by_testid(html, "money-indicators") == []
    assert by_testid(html, "tab-money") == [] and by_testid(html, "money-tab") == []
    assert by_testid(html, "tab-statement") == [] and "/statement/" not in html
    assert "1,234.56" not in html and "Balance" not in html
    assert "timeline=money" not in html
    # the booking is there, without its value
    assert "Summer ball" in html and "250.00" not in html
    # forging the timeline's money filter shows nothing more
    forged = page_of(client, "coordinator", person["id"], timeline="money")
    assert "1,234.56" not in forged and "invoice" not in by_testid(forged, "timeline")[0]


def test_pinned_notes_show_as_a_banner(app, client, login, person):
    login("coordinator")
    with app.app_context():
        f.make_note(db.session, db.session.get(Customer, person["id"]), important=True,
                    body="Gate code 4321.")
        db.session.commit()

    banner = by_testid(page_of(client, "coordinator", person["id"]), "pinned-banner")
    assert len(banner) == 1
    assert "Gate code 4321." in banner[0]
    assert "Asked for a quote." not in banner[0]
    assert "Do not work with again" not in banner[0]


def test_do_not_work_with_again_heads_the_banner_in_red(app, client, login, person):
    login("coordinator")
    with app.app_context():
        f.make_note(db.session, db.session.get(Customer, person["id"]), important=True,
                    do_not_work_with_again=True, body="Did not pay for two gigs.")
        db.session.commit()

    html = page_of(client, "coordinator", person["id"])
    banner = by_testid(html, "pinned-banner")[0]
    assert banner.startswith("Do not work with again.")
    assert "Did not pay for two gigs." in banner
    assert re.search(r'class="alert alert-danger" data-testid="pinned-banner"', html)


def test_the_pinned_warning_also_heads_the_edit_form(app, client, login, person):
    login("coordinator")
    with app.app_context():
        f.make_note(db.session, db.session.get(Customer, person["id"]), important=True,
                    do_not_work_with_again=True, body="Did not pay for two gigs.")
        db.session.commit()

    response = client.get(f"/admin/coordinator/customer/edit/?id={person['id']}")
    banner = by_testid(text_of(response), "pinned-banner")[0]
    assert banner.startswith("Do not work with again.")
    assert "Did not pay for two gigs." in banner


# --- notes -------------------------------------------------------------------------------------
def test_adding_a_note_from_the_page(app, client, login, person):
    login("coordinator")
    response = client.post("/admin/coordinator/customer/note/",
                           data={"customer_id": str(person["id"]), "kind": "call",
                                 "body": "Rang about the deposit."})

    assert response.status_code == 302
    assert response.headers["Location"].endswith(details("coordinator", person["id"]))
    html = text_of(client.get(response.headers["Location"]))
    assert f"Note added to {person['ref']}." in flashes(html)
    assert "Rang about the deposit." in html
    assert count_rows(app, Note, Note.customer_id == person["id"],
                      Note.kind == "call", Note.important.is_(False)) == 1
    assert by_testid(html, "pinned-banner") == []


def test_a_note_added_pinned_shows_in_the_banner(app, client, login, person):
    login("coordinator")
    client.post("/admin/coordinator/customer/note/",
                data={"customer_id": str(person["id"]), "kind": "note",
                      "body": "Dog on site.", "important": "1"})

    html = page_of(client, "coordinator", person["id"])
    assert "Dog on site." in by_testid(html, "pinned-banner")[0]


def test_an_empty_note_is_refused_with_a_message(app, client, login, person):
    login("coordinator")
    response = client.post("/admin/coordinator/customer/note/",
                           data={"customer_id": str(person["id"]), "kind": "note",
                                 "body": "   "})

    html = text_of(client.get(response.headers["Location"]))
    assert "Write something in the note; nothing was saved." in flashes(html)
    assert count_rows(app, Note, Note.customer_id == person["id"]) == 1


def test_a_note_without_the_csrf_token_is_refused(app, client, login, person):
    login("coordinator")
    response = client.post("/admin/coordinator/customer/note/", csrf=False,
                           data={"customer_id": str(person["id"]), "kind": "note",
                                 "body": "Forged"})

    assert response.status_code == 400
    assert count_rows(app, Note, Note.customer_id == person["id"]) == 1


def note_id(app, key: int, body: str) -> int:
    with app.app_context():
        return db.session.query(Note.id).filter_by(customer_id=key, body=body).scalar()


def test_pin_and_unpin_a_note(app, client, login, person):
    login("coordinator")
    key = note_id(app, person["id"], "Asked for a quote.")

    pinned = client.post("/admin/coordinator/customer/note/pin/",
                         data={"note_id": str(key), "pinned": "1"})
    html = text_of(client.get(pinned.headers["Location"]))
    assert "Note pinned." in flashes(html)
    assert "Asked for a quote." in by_testid(html, "pinned-banner")[0]
    assert load(app, Note, key, "important") == {"important": True}

    unpinned = client.post("/admin/coordinator/customer/note/pin/",
                           data={"note_id": str(key), "pinned": "0"})
    html = text_of(client.get(unpinned.headers["Location"]))
    assert "Note unpinned." in flashes(html)
    assert by_testid(html, "pinned-banner") == []
    assert load(app, Note, key, "important") == {"important": False}


def test_the_page_offers_pin_buttons_that_post_with_the_token(client, login, person):
    login("coordinator")
    html = page_of(client, "coordinator", person["id"])
    form = re.search(r'<form method="post" action="/admin/coordinator/customer/note/pin/".*?</form>',
                     html, re.S)
    assert form and 'name="csrf_token"' in form.group(0) and ">Pin</button>" in form.group(0)


def test_pinning_an_unknown_note_is_not_found(client, login):
    login("coordinator")
    response = client.post("/admin/coordinator/customer/note/pin/",
                           data={"note_id": "999999", "pinned": "1"})
    assert response.status_code == 404


# --- timeline and duplicates ------------------------------------------------------------------
def test_the_timeline_shows_what_was_done_and_by_whom(app, client, login, person):
    login("owner")
    client.post("/admin/owner/customer/note/",
                data={"customer_id": str(person["id"]), "kind": "note", "body": "Met at fair."})

    html = page_of(client, "owner", person["id"])
    timeline = by_testid(html, "timeline")[0]
    # what was done, then who did it (the colleague's name, not an e-mail address)
    assert "added a note Owner" in timeline
    assert "note: Met at fair." in timeline
    assert "Summer ball (confirmed)" in timeline
    assert "invoice INV-000001 £1,234.56 (issued)" in timeline
    # one date style; an invoice has a date, not a time, so no "00:00" is made up for it
    assert re.search(r"\b\d{1,2} [A-Z][a-z]{2} \d{4} money invoice INV-000001", timeline)
    assert not re.search(r"\d\d:\d\d money", timeline)
    assert re.search(r"\d{1,2} [A-Z][a-z]{2} \d{4}, \d\d:\d\d notes note: Met at fair\.", timeline)
    # the documents it names open their own pages
    with app.app_context():
        invoice_id = db.session.query(Invoice.id).filter_by(number="INV-000001").scalar()
        booking_id = db.session.query(Booking.id).filter_by(customer_id=person["id"]).scalar()
    assert f'<a href="/admin/owner/invoice/details/?id={invoice_id}">INV-000001</a>' in html
    assert f'<a href="/admin/owner/booking/details/?id={booking_id}">B-' in html

    notes_only = by_testid(page_of(client, "owner", person["id"], timeline="notes"), "timeline")[0]
    assert "Met at fair." in notes_only
    assert "Summer ball" not in notes_only and "added a note" not in notes_only


def test_the_duplicates_tab_lists_a_customer_with_the_same_email(app, client, login,
                                                                 other_client, person):
    with app.app_context():
        email = db.session.get(Customer, person["id"]).email
        twin = customer(db.session, first_name="B.", surname="Whitfield-Jones", email=email,
                        postcode="YO1 7HH", phone=None)
        other = customer(db.session, surname="Nobody", email="nobody@example.com",
                         postcode="EX1 1AA", phone=None)
        db.session.commit()
        twin_id, twin_ref, other_ref = twin.id, twin.reference, other.reference

    login("owner")
    html = page_of(client, "owner", person["id"])
    listed = by_testid(html, "duplicates")[0]
    assert twin_ref in listed and "same email" in listed
    assert other_ref not in listed
    assert f"/admin/owner/customer/merge/?ids={person['id']}&amp;ids={twin_id}" in html

    html = page_of(other_client("coordinator"), "coordinator", person["id"])
    assert twin_ref in by_testid(html, "duplicates")[0]
    assert "/merge/" not in html


# --- access ------------------------------------------------------------------------------------
def test_signed_out_the_page_and_its_buttons_lead_to_sign_in(app, client, person):
    for response in (client.get(details("owner", person["id"])),
                     client.post("/admin/owner/customer/note/", csrf=False,
                                 data={"customer_id": str(person["id"]), "body": "x"})):
        assert response.status_code in (302, 400)
    response = client.get(details("owner", person["id"]))
    assert "/login" in response.headers["Location"]
    assert count_rows(app, Note, Note.customer_id == person["id"]) == 1


def test_an_unknown_id_says_the_record_does_not_exist(client, login):
    login("owner")
    response = client.get(details("owner", 999999))
    assert response.status_code == 302
    assert "Record does not exist." in flashes(text_of(client.get(response.headers["Location"])))


# --- escaping ----------------------------------------------------------------------------------
def test_what_a_customer_typed_is_escaped_on_the_record_page(app, client, login, other_client):
    with app.app_context():
        row = customer(db.session, first_name=SCRIPT, surname=SCRIPT, town=SCRIPT)
        twin = customer(db.session, surname=SCRIPT, email=row.email)
        f.make_note(db.session, row, body=SCRIPT, important=True, do_not_work_with_again=True)
        f.make_booking(db.session, row, title=SCRIPT)
        f.make_contact(db.session, row, surname=SCRIPT, position=SCRIPT)
        db.session.commit()
        key = row.id
        assert twin.id

    login("owner")
    for role, browser in (("owner", client), ("coordinator", other_client("coordinator"))):
        html = page_of(browser, role, key)
        assert SCRIPT not in html
        assert "&lt;script&gt;" in html
        assert unescape(SCRIPT) in unescape(by_testid(html, "pinned-banner")[0])


# --- status buttons (crm.actions.dormant) ------------------------------------------------------
def set_dormant_from_the_page(client, role: str, key: int) -> str:
    """Press "Set dormant…" on the record page, read the confirmation, confirm it; the
    results page, whose link leads back to the customer."""
    asked = client.post(f"/admin/{role}/customer/status/set_dormant/", data={"id": str(key)})
    assert asked.status_code == 200
    page = text_of(asked)
    assert by_testid(page, "confirm-button") == ["Set dormant: 1 customer"]
    assert f'href="{details(role, key)}" data-testid="confirm-cancel"' in page
    form = page.split('data-testid="confirm-form"', 1)[1].split("</form>", 1)[0]
    assert f'name="ids" value="{key}"' in form and f'name="back" value="{key}"' in form
    done = client.post(f"/admin/{role}/customer/bulk/set_dormant/",
                       data={"ids": str(key), "back": str(key), "confirm": "1"})
    assert done.status_code == 200
    html = text_of(done)
    assert by_testid(html, "results-back") == ["Back to the customer"]
    assert f'href="{details(role, key)}" data-testid="results-back"' in html
    return html


def test_set_dormant_and_reactivate_from_the_page(app, client, login, person):
    login("coordinator")
    html = page_of(client, "coordinator", person["id"])
    assert by_testid(html, "set-dormant") == ["Set dormant…"]

    # asking is not doing: the button leads to a confirmation, nothing changes yet
    client.post("/admin/coordinator/customer/status/set_dormant/", data={"id": str(person["id"])})
    assert load(app, Customer, person["id"], "status") == {"status": "active"}

    done = set_dormant_from_the_page(client, "coordinator", person["id"])
    assert by_testid(done, "result-changed")[0].startswith(f"1 changed: {person['ref']}")
    html = page_of(client, "coordinator", person["id"])
    assert load(app, Customer, person["id"], "status") == {"status": "dormant"}
    assert by_testid(html, "status-badge") == ["dormant"]
    assert by_testid(html, "reactivate") == ["Reactivate"] and by_testid(html, "set-dormant") == []
    assert "set dormant Coordinator" in by_testid(html, "timeline")[0]

    response = client.post("/admin/coordinator/customer/status/reactivate/",
                           data={"id": str(person["id"])})
    assert response.headers["Location"].endswith(details("coordinator", person["id"]))
    html = text_of(client.get(response.headers["Location"]))
    assert load(app, Customer, person["id"], "status") == {"status": "active"}
    assert by_testid(html, "status-badge") == ["active"]
    assert any("reactivated" in message.lower() for message in flashes(html))


def test_set_dormant_twice_says_it_already_was(app, client, login, person):
    login("owner")
    set_dormant_from_the_page(client, "owner", person["id"])
    html = set_dormant_from_the_page(client, "owner", person["id"])

    assert "already dormant" in html
    assert by_testid(html, "result-changed")[0].startswith("0 changed")
    assert count_rows(app, AuditEvent, AuditEvent.verb.like("%dormant%")) == 1


def test_status_buttons_refuse_a_forged_request(app, client, login, person):
    login("owner")
    assert client.post("/admin/owner/customer/status/delete/",
                       data={"id": str(person["id"])}).status_code == 404
    assert client.post("/admin/owner/customer/status/set_dormant/", csrf=False,
                       data={"id": str(person["id"])}).status_code == 400
    # a form without its customer, or with a mangled one: a message, nothing changed
    for data in ({}, {"id": "abc"}, {"id": "99999999999"}):
        for verb in ("set_dormant", "reactivate"):
            response = client.post(f"/admin/owner/customer/status/{verb}/", data=data)
            assert response.status_code == 302, (verb, data)
            html = text_of(client.get(response.headers["Location"]))
            assert "No customer was given, so nothing was changed." in " ".join(flashes(html))
    # confirming without the customer chosen says so too
    refused = client.post("/admin/owner/customer/bulk/set_dormant/",
                          data={"back": str(person["id"]), "confirm": "1"})
    assert refused.status_code == 400 and "Nothing was changed." in text_of(refused)
    assert load(app, Customer, person["id"], "status") == {"status": "active"}


# --- the timeline after a bulk action on several customers -------------------------------------
BULK_TIMELINE = {  # what the timeline says, then who did it
    "set_dormant": "set dormant",
    "deactivate": "deactivated (do not work with again)",
    "block_email": "blocked the e-mail address",
    "redact": "redacted (personal data erased)",
    "delete": "archived",
}


@pytest.mark.parametrize("verb", BULK_TIMELINE)
def test_a_bulk_action_on_several_customers_shows_on_each_timeline(app, client, login, verb):
    """The same action from the list on two customers must show on each one's page, as it
    does when it is run on one."""
    with app.app_context():
        rows = [customer(db.session, surname=f"Bulk{i}") for i in range(2)]
        for row in rows:
            f.make_note(db.session, row, body="Keeps the customer from being deleted.")
        db.session.commit()
        keys = [row.id for row in rows]
    login("owner")
    done = client.post(f"/admin/owner/customer/bulk/{verb}/",
                       data={"ids": [str(k) for k in keys], "confirm": "1",
                             "reason": "Because", "block_reason": "spam", "word": "REDACT"})
    assert by_testid(text_of(done), "result-changed")[0].startswith("2 changed")

    for key in keys:
        timeline = by_testid(page_of(client, "owner", key, timeline="actions"), "timeline")[0]
        assert f"{BULK_TIMELINE[verb]} Owner" in timeline, (key, timeline)


# --- references that open their records -------------------------------------------------------
def test_a_reference_opens_its_record_in_the_viewers_own_panel(app, client, login,
                                                               other_client, person):
    with app.app_context():
        invoice_id = db.session.query(Invoice.id).filter_by(number="INV-000001").scalar()
        booking = db.session.query(Booking).filter_by(customer_id=person["id"]).one()
        booking_id, booking_ref = booking.id, booking.reference
    login("owner")
    for ref, target in ((person["ref"], details("owner", person["id"])),
                        ("INV-000001", f"/admin/owner/invoice/details/?id={invoice_id}"),
                        (booking_ref, f"/admin/owner/booking/details/?id={booking_id}")):
        response = client.get(f"/admin/owner/customer/ref/{ref}/")
        assert response.status_code == 302, ref
        assert response.headers["Location"].endswith(target), ref
        assert client.get(response.headers["Location"]).status_code == 200

    # a coordinator has no invoice screen: the reference opens nothing (and says nothing)
    coordinator = other_client("coordinator")
    assert coordinator.get("/admin/coordinator/customer/ref/INV-000001/").status_code == 404
    moved = coordinator.get(f"/admin/coordinator/customer/ref/{booking_ref}/")
    assert moved.headers["Location"].endswith(f"/admin/coordinator/booking/details/?id={booking_id}")
    # unknown numbers and what is not a reference at all
    for ref in ("INV-999999", "C-999999", "X-1", "INV-000001x", "../../etc", "C-a%00b",
                "INV-%D9%A1", "C-" + "9" * 30):
        assert client.get(f"/admin/owner/customer/ref/{ref}/").status_code == 404, ref


def test_a_coordinators_record_page_links_what_it_may_open_and_no_money(client, login, person):
    login("coordinator")
    html = page_of(client, "coordinator", person["id"])

    assert "/admin/coordinator/booking/details/?id=" in html  # the booking opens
    assert "/invoice/" not in html and "INV-000001" not in html
    assert "/admin/owner/" not in html


def test_a_payment_reads_its_method_in_words(app, client, login, person):
    with app.app_context():
        f.make_payment(db.session, db.session.get(Customer, person["id"]), amount="40.00",
                       method="bank_transfer", reference="HV-0042")
        db.session.commit()
    login("owner")
    html = page_of(client, "owner", person["id"])

    assert "payment HV-0042 £40.00 (by bank transfer)" in by_testid(html, "timeline")[0]
    assert "bank transfer" in by_testid(html, "money-tab")[0]
    assert "bank_transfer" not in html.split('data-testid="customer-summary"', 1)[1].replace(
        'value="bank_transfer"', "")
