"""The public inquiry form (/inquiry, crm/inquiry.py): anyone may ask for a booking without
signing in; a good inquiry becomes one lead, a bad one is sent back with a sentence by each
field, and spam (a filled honeypot, a blocked address, too many from one address) is thanked
or slowed down without storing anything. Also the fuzz plan of its two endpoints
(test_fuzz.test_every_endpoint_has_a_fuzz_plan sends them here)."""

import re
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from crm.actions.block_email import block_email
from crm.extensions import db
from crm.formatting import day
from crm.models import AuditEvent, BusinessProfile, Lead
from tests.factories import make_customer
from tests.integration.helpers import text_of
from tests.integration.test_fuzz import TEXT, Prober, fail_on
from tests.integration.test_security_headers import HEADERS, inline_script

IN_A_MONTH = date.today() + timedelta(days=30)
GOOD = {"first_name": "Sam", "surname": "Lee", "email": "Sam.Lee@Example.COM",
        "phone": "07911 123456", "purpose": "Wedding, 120 guests",
        "preferred_date": day(IN_A_MONTH), "message": "Evening reception, 7pm to midnight.",
        "website": ""}


@pytest.fixture
def public(client):
    """A visitor who is not signed in, with the CSRF token of the form they opened."""
    client.fetch_csrf_token("/inquiry")
    return client


def send(client, **changes):
    return client.post("/inquiry", data={**GOOD, **changes})


def leads(app) -> list[Lead]:
    with app.app_context():
        rows = db.session.scalars(select(Lead).order_by(Lead.id)).all()
        db.session.expunge_all()
        return rows


def audit_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(AuditEvent))


def error_by(html: str, name: str) -> str | None:
    """The sentence shown next to the field ``name``, or None."""
    block = re.search(rf'<div class="field[^"]*" data-field="{name}">(.*?)</div>', html, re.S)
    assert block, f"no field {name} on the page"
    found = re.search(r'<p class="error"[^>]*>(.*?)</p>', block.group(1), re.S)
    return found.group(1).strip() if found else None


def test_anyone_can_open_the_form_without_signing_in(app, client):
    response = client.get("/inquiry")
    html = text_of(response)

    assert response.status_code == 200
    assert "<h1>Ask about a booking</h1>" in html
    for name in ("first_name", "surname", "email", "phone", "purpose", "preferred_date",
                 "message"):
        assert f'name="{name}"' in html
    assert "So that we can reply to you." in html  # why the e-mail address is needed
    assert 'name="csrf_token"' in html


def test_a_good_inquiry_makes_exactly_one_lead_with_address_and_number_normalized(app,
                                                                                 public):
    response = send(public)

    assert response.status_code == 302
    assert response.headers["Location"].endswith("/inquiry/thanks")
    [lead] = leads(app)
    assert (lead.first_name, lead.surname) == ("Sam", "Lee")
    assert lead.email == "sam.lee@example.com"
    assert lead.phone == "+447911123456"
    assert (lead.purpose, lead.preferred_date) == ("Wedding, 120 guests", IN_A_MONTH)
    assert (lead.status, lead.source) == ("new", "Website form")
    assert lead.follow_up_on > date.today() - timedelta(days=1)

    thanks = text_of(public.get("/inquiry/thanks"))
    assert "Thank you, Sam" in thanks
    assert "sam.lee@example.com" in thanks.lower()


def test_sending_the_same_form_twice_makes_one_lead(app, public):
    send(public)
    send(public)

    assert len(leads(app)) == 1


def test_the_page_wears_the_business_name_and_shows_no_customer(app, client):
    with app.app_context():
        db.session.add(BusinessProfile(id=1, name="Riverside Wedding Band",
                                       phone="0113 496 0000", email="hello@riverside.example"))
        make_customer(db.session, surname="Hargreaves", email="known@example.com")
        db.session.commit()

    form = text_of(client.get("/inquiry"))
    client.fetch_csrf_token("/inquiry")
    send(client, email="known@example.com")
    thanks = text_of(client.get("/inquiry/thanks"))

    assert "<title>Ask about a booking · Riverside Wedding Band</title>" in form
    assert re.search(r'data-testid="business-name">\s*<span>Riverside Wedding Band</span>', form)
    assert "Hargreaves" not in form and "Hargreaves" not in thanks
    assert "0113 496 0000" in thanks and "hello@riverside.example" in thanks


def test_a_post_without_the_csrf_token_is_refused_and_stores_nothing(app, public):
    response = public.post("/inquiry", data=GOOD, csrf=False)

    assert response.status_code == 400
    assert "Your inquiry has not been sent yet." in text_of(response)
    assert leads(app) == [] and audit_count(app) == 0


def test_a_stale_form_comes_back_with_what_was_typed_and_can_be_sent_again(app, client):
    """The token is in the session cookie, which a browser restart loses: the person
    should not have to type a long message again."""
    stale = client.post("/inquiry", data={**GOOD, "website": "bot",
                                          "csrf_token": "from-a-lost-session"}, csrf=False)
    html = text_of(stale)

    assert stale.status_code == 400 and leads(app) == []
    assert 'value="Sam"' in html and "Evening reception, 7pm to midnight.</textarea>" in html
    assert 'value="bot"' not in html  # the honeypot is not shown back
    client.csrf_token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"',
                                  html).group(1)
    assert send(client).status_code == 302
    assert len(leads(app)) == 1


def test_a_filled_honeypot_is_thanked_and_stores_nothing(app, public):
    response = send(public, website="http://cheap-pills.example")

    assert response.status_code == 302
    assert response.headers["Location"].endswith("/inquiry/thanks")
    assert "Thank you, Sam" in text_of(public.get("/inquiry/thanks"))
    assert leads(app) == [] and audit_count(app) == 0


def test_the_honeypot_is_hidden_by_a_stylesheet_and_skipped_by_the_keyboard(client):
    html = text_of(client.get("/inquiry"))
    css = text_of(client.get("/static/css/inquiry.css"))

    honeypot = re.search(r'<div class="hp">(.*?)</div>', html, re.S).group(1)
    assert "Leave this empty" in honeypot
    assert 'tabindex="-1"' in honeypot and 'name="website"' in honeypot
    assert re.search(r"\.hp \{[^}]*left: -10000px", css)


@pytest.mark.parametrize("blocked", ["sam.lee@example.com", "@example.com"],
                         ids=["address", "domain"])
def test_a_blocked_address_is_thanked_like_anyone_and_nothing_is_stored(app, public,
                                                                        blocked):
    with app.app_context():
        block_email(db.session, value=blocked, reason="spam", actor=None)
        db.session.commit()
    before = audit_count(app)

    response = send(public)
    thanks = text_of(public.get("/inquiry/thanks"))

    assert response.status_code == 302
    assert "Thank you, Sam" in thanks and "Sam.Lee@Example.COM" in thanks
    assert leads(app) == []
    assert audit_count(app) == before  # not even an audit row


def test_the_thanks_for_a_blocked_address_reads_exactly_as_any_other(app, client):
    with app.app_context():
        block_email(db.session, value="@blocked.example", reason="spam", actor=None)
        db.session.commit()
    pages = []
    for address in ("ann@blocked.example", "ann@fine.example"):
        client.fetch_csrf_token("/inquiry")
        send(client, email=address, first_name="Ann")
        pages.append(text_of(client.get("/inquiry/thanks")).replace(address, "ADDRESS"))

    assert pages[0] == pages[1]
    assert [lead.email for lead in leads(app)] == ["ann@fine.example"]


def test_too_many_inquiries_from_one_address_get_a_polite_429(app, public, monkeypatch):
    monkeypatch.setitem(app.config, "CRM_INQUIRY_LIMIT_PER_ADDRESS", "2/hour")

    first = send(public, message="Inquiry 0").status_code
    corrected = send(public, message="Inquiry 1", surname="").status_code  # not counted
    second = send(public, message="Inquiry 1").status_code
    refused = send(public, message="Inquiry 2")

    assert (first, corrected, second) == (302, 400, 302)
    assert refused.status_code == 429
    html = text_of(refused)
    assert "You have sent several inquiries in a short time" in html
    assert "Back to the form" in html
    assert [lead.message for lead in leads(app)] == ["Inquiry 0", "Inquiry 1"]
    assert public.get("/inquiry").status_code == 200  # the form still opens


@pytest.mark.parametrize(("changes", "field", "sentence"), [
    ({"surname": "  "}, "surname", "Enter your surname."),
    ({"email": ""}, "email", "Enter your e-mail address, so that we can reply."),
    ({"email": "sam.example.com"}, "email",
     "Check your e-mail address: an email address must have an @-sign."),
    ({"email": "sam@localhost"}, "email", "Check your e-mail address:"),
    ({"phone": "12345"}, "phone", "Check your phone number: write it in digits, with the "
                                  "country code (such as +33) if it is from abroad."),
    ({"phone": "call me"}, "phone", "Check your phone number:"),
    ({"preferred_date": "next Tuesday"}, "preferred_date", "Type a date like 4 Dec 2026."),
    ({"preferred_date": "31 Feb 2027"}, "preferred_date", "Type a date like 4 Dec 2026."),
    ({"preferred_date": day(date.today() - timedelta(days=1))}, "preferred_date",
     f"Choose a date from today ({day(date.today())}) onwards."),
    ({"preferred_date": "1 Jan 2999"}, "preferred_date", "we cannot book further ahead."),
    ({"message": "x" * 5_001}, "message", "Keep your message to 5,000 characters or fewer."),
    ({"purpose": "p" * 201}, "purpose", "Keep what it is for to 200 characters or fewer."),
    ({"first_name": "f" * 101}, "first_name", "Keep your first name to 100 characters or fewer."),
])
def test_each_bad_field_gets_its_sentence_next_to_it_and_nothing_is_stored(app, public,
                                                                          changes, field,
                                                                          sentence):
    response = send(public, **changes)
    html = text_of(response)

    assert response.status_code == 400
    assert sentence in (error_by(html, field) or "")
    assert 'data-testid="problems"' in html  # and in the summary at the top
    assert [name for name in GOOD if name != "website" and error_by(html, name)] == [field]
    assert leads(app) == [] and audit_count(app) == 0


def test_what_was_typed_is_kept_when_the_form_comes_back(public):
    html = text_of(send(public, surname="", message="Evening <reception>"))

    assert 'value="Sam"' in html and 'value="Sam.Lee@Example.COM"' in html
    assert "Evening &lt;reception&gt;</textarea>" in html
    assert 'aria-invalid="true"' in html


def test_control_characters_are_refused_with_a_sentence(app, public):
    response = send(public, surname="Le\x00e")

    assert response.status_code == 400
    html = text_of(response)
    assert "contains a control character" in html
    assert "Back to the form" in html  # the form's own page, not the staff panel's
    assert leads(app) == []


def test_markup_in_the_name_is_escaped_on_the_thank_you_page(app, public):
    send(public, first_name='<script>alert("x")</script>')
    html = text_of(public.get("/inquiry/thanks"))

    assert "Thank you, &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "<script>alert" not in html
    assert leads(app)[0].first_name == '<script>alert("x")</script>'


@pytest.mark.parametrize("path", ["/inquiry", "/inquiry/thanks"])
def test_the_pages_have_the_security_headers_and_no_inline_script_or_style(client, path):
    response = client.get(path)
    html = text_of(response)

    assert {key: response.headers.get(key) for key in HEADERS} == HEADERS
    assert response.headers["Cache-Control"] == "no-store"
    assert inline_script(html) == []
    assert "<script" not in html and "style=" not in html and "<style" not in html


def test_the_thanks_page_alone_says_thank_you_without_naming_anyone(client):
    html = text_of(client.get("/inquiry/thanks"))

    assert "<h1>Thank you</h1>" in html and "We will reply by e-mail." in html


# --- fuzz ---------------------------------------------------------------------------------
def test_no_inquiry_value_gives_a_500(app, public, monkeypatch):
    """The fuzz corpus into every field of the form and the query string of both pages."""
    monkeypatch.setitem(app.config, "CRM_INQUIRY_LIMIT_PER_ADDRESS", "100000/hour")
    p = Prober(public)
    for name in GOOD:
        for label, value in TEXT.items():
            p.post("/inquiry", {**GOOD, "message": f"{name} {label}", name: value}, name, label)
    for path in ("/inquiry", "/inquiry/thanks"):
        p.fuzz_get(path, {}, ["x"], lambda _name: TEXT)
    fail_on(p)
    assert p.sent > 100
