"""Fuzz the customer portal as ``test_fuzz.py`` fuzzes the panel: the corpus of bad values
(NUL and control characters, numbers past every integer range, 100,000-character strings,
markup, other scripts' digits, impossible dates) into every query-string parameter and
every form field of every portal page, signed in as a customer and signed out; no answer is
a 500 and none shows the database's own text. ``test_fuzz.test_every_endpoint_has_a_fuzz_plan``
sends each portal endpoint here."""

from datetime import date, timedelta

import pytest

from crm.actions.portal_access import start_session
from crm.extensions import db
from crm.models import PortalAccount
from crm.portal.blueprint import COOKIE, _serializer
from crm.security import hash_password
from tests import factories as f
from tests.integration.test_fuzz import NUMBER, TEXT, Prober, fail_on

PASSWORD = "tangerine-harbour-lantern"

# Every GET page of the portal, with the parameters it reads.
PAGES = {
    "/portal/": ["kind", "start", "end"],
    "/portal/statement.pdf": ["kind", "start", "end"],
    "/portal/invoices": ["page"],
    "/portal/credit-notes": ["page"],
    "/portal/payments": ["page"],
    "/portal/bookings": [],
    "/portal/profile": [],
    "/portal/login": ["next"],
    "/portal/link": [],
    "/portal/forgot": [],
    "/portal/access": ["token"],
    "/portal/password": ["token"],
    "/portal/confirm-email": ["token"],
}
# Every POST form, with its fields (besides the CSRF token) and a valid-looking baseline.
FORMS = {
    "/portal/login": {"email": "someone@example.com", "password": "wrong-password-here",
                      "remember": "y"},
    "/portal/link": {"email": "someone@example.com"},
    "/portal/forgot": {"email": "someone@example.com"},
    "/portal/access": {"token": "x" * 43},
    "/portal/password": {"token": "x" * 43, "password": PASSWORD, "confirm": PASSWORD},
    "/portal/confirm-email": {"token": "x" * 43},
    "/portal/profile/details": {"version": "1", "phone": "07911 123456",
                                "address_line_1": "1 Road", "address_line_2": "",
                                "town": "Leeds", "county": "", "postcode": "LS1 1AA"},
    "/portal/profile/preferences": {"wants_statements": "y", "wants_reminders": "y",
                                    "wants_marketing": ""},
    "/portal/profile/password": {"current": PASSWORD, "password": "another-fine-long-phrase",
                                 "confirm": "another-fine-long-phrase"},
    "/portal/profile/email": {"email": "new.address@example.com"},
}


@pytest.fixture
def portal_world(app):
    with app.app_context():
        s = db.session
        me = f.make_customer(s, email="me@example.com")
        invoice = f.make_invoice(s, me, amount="120.00", days_overdue=5)
        note = f.make_credit_note(s, me, amount="10.00")
        f.make_payment(s, me, amount="30.00")
        f.make_booking(s, me, starts_at=date.today() + timedelta(days=3))
        account = PortalAccount(customer=me, email="me@example.com",
                                password_hash=hash_password(PASSWORD))
        s.add(account)
        s.flush()
        token = start_session(s, account=account)
        s.commit()
        return {"invoice": invoice.id, "credit_note": note.id, "token": token,
                "customer": me.id}


def _signed_in(app, client, world):
    with app.test_request_context():
        cookie = _serializer().dumps(world["token"])
    client.set_cookie(COOKIE, cookie, path="/portal")
    client.csrf_token = None
    client.fetch_csrf_token("/portal/profile")
    return client


def _values(name: str) -> dict:
    return NUMBER if name in ("start", "end", "page") else TEXT


@pytest.mark.parametrize("signed_in", [True, False], ids=["customer", "anonymous"])
def test_no_portal_query_string_gives_a_500(app, client, portal_world, signed_in):
    if signed_in:
        _signed_in(app, client, portal_world)
    p = Prober(client)
    pages = dict(PAGES)
    pages[f"/portal/invoices/{portal_world['invoice']}"] = []
    pages[f"/portal/invoices/{portal_world['invoice']}.pdf"] = []
    pages[f"/portal/credit-notes/{portal_world['credit_note']}"] = []
    for path, names in pages.items():
        p.get(path, {}, "(none)", "plain")
        p.fuzz_get(path, {}, names, _values)
    for bad in ("9" * 30, "-1", "0", "\uff11\uff12"):
        p.get(f"/portal/invoices/{bad}", {}, "id", bad)
    fail_on(p)
    assert p.sent > 200


@pytest.mark.parametrize("signed_in", [True, False], ids=["customer", "anonymous"])
def test_no_portal_form_field_gives_a_500(app, client, portal_world, signed_in):
    if signed_in:
        _signed_in(app, client, portal_world)
    else:
        client.fetch_csrf_token("/portal/login")
    p = Prober(client)
    forms = dict(FORMS)
    forms[f"/portal/invoices/{portal_world['invoice']}/question"] = {"message": "Why?"}
    for path, baseline in forms.items():
        if path == "/portal/profile/details" and signed_in:
            with app.app_context():
                from crm.models import Customer

                baseline = {**baseline,
                            "version": str(db.session.get(Customer,
                                                          portal_world["customer"]).version)}
        for name in baseline:
            for label, value in TEXT.items():
                p.post(path, {**baseline, name: value}, name, label)
    for path in ("/portal/my-data", "/portal/stop-viewing", "/portal/logout"):
        p.post(path, {}, "(none)", "plain")
    fail_on(p)
    assert p.sent > 300
