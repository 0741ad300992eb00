"""The customer's record page: the summary and its badges, the pinned-notes banner ("do not
work with again" above all), money for owners and admins only, notes added and pinned from
the page, the set dormant / reactivate buttons, the timeline of what happened, the possible
duplicates, and escaping of everything a customer typed."""

import re
from datetime import datetime, timedelta
from html import unescape

import pytest

from crm.extensions import db
from crm.models import AuditEvent, Customer, Note
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
    assert f"{person['ref']} · Bea Whitfield" in summary
    assert by_testid(html, "status-badge") == ["active"]
    money = by_testid(html, "money-indicators")[0]
    assert "Balance 1,234.56" in money and "Overdue 1,234.56 for 5 days" in money
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
                   f"/admin/{role}/invoice/new/"):
        assert f'href="{target}"' in actions, target
    # and each leads somewhere real
    statement = client.get(f"/admin/{role}/customer/statement/?id={key}")
    assert statement.status_code == 200 and "1,234.56" in text_of(statement)
    assert client.get(f"/admin/{role}/payment/record/?customer_id={key}").status_code == 200


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

    timeline = by_testid(page_of(client, "owner", person["id"]), "timeline")[0]
    assert "add note owner@example.com" in timeline
    assert "note: Met at fair." in timeline
    assert "Summer ball (confirmed)" in timeline
    assert "invoice" in timeline and "1,234.56" in timeline

    notes_only = by_testid(page_of(client, "owner", person["id"], timeline="notes"), "timeline")[0]
    assert "Met at fair." in notes_only
    assert "Summer ball" not in notes_only and "add note" not in notes_only


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
def test_set_dormant_and_reactivate_from_the_page(app, client, login, person):
    login("coordinator")
    html = page_of(client, "coordinator", person["id"])
    assert by_testid(html, "set-dormant") == ["Set dormant"]

    response = client.post("/admin/coordinator/customer/status/set_dormant/",
                           data={"id": str(person["id"])})
    assert response.status_code == 302
    html = text_of(client.get(response.headers["Location"]))
    assert load(app, Customer, person["id"], "status") == {"status": "dormant"}
    assert by_testid(html, "status-badge") == ["dormant"]
    assert by_testid(html, "reactivate") == ["Reactivate"] and by_testid(html, "set-dormant") == []
    assert any("dormant" in message.lower() for message in flashes(html))
    assert "dormant" in by_testid(html, "timeline")[0]

    response = client.post("/admin/coordinator/customer/status/reactivate/",
                           data={"id": str(person["id"])})
    html = text_of(client.get(response.headers["Location"]))
    assert load(app, Customer, person["id"], "status") == {"status": "active"}
    assert by_testid(html, "status-badge") == ["active"]


def test_set_dormant_twice_says_it_already_was(app, client, login, person):
    login("owner")
    client.post("/admin/owner/customer/status/set_dormant/", data={"id": str(person["id"])})
    response = client.post("/admin/owner/customer/status/set_dormant/",
                           data={"id": str(person["id"])})

    html = text_of(client.get(response.headers["Location"]))
    assert any("already dormant" in message for message in flashes(html))
    assert count_rows(app, AuditEvent, AuditEvent.verb.like("%dormant%")) == 1


def test_status_buttons_refuse_a_forged_request(app, client, login, person):
    login("owner")
    assert client.post("/admin/owner/customer/status/delete/",
                       data={"id": str(person["id"])}).status_code == 404
    assert client.post("/admin/owner/customer/status/set_dormant/", csrf=False,
                       data={"id": str(person["id"])}).status_code == 400
    assert client.post("/admin/owner/customer/status/set_dormant/", data={}).status_code == 400
    assert load(app, Customer, person["id"], "status") == {"status": "active"}


# --- the timeline after a bulk action on several customers -------------------------------------
BULK_TIMELINE = {
    "set_dormant": "set dormant",
    "deactivate": "deactivate",
    "block_email": "block email",
    "redact": "redact",
    "delete": "archive",
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
        assert f"{BULK_TIMELINE[verb]} owner@example.com" in timeline, (key, timeline)
