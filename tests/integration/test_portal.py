"""The customer portal through its pages: isolation (another customer's id is a 404 on
every route, exactly like a missing one; signed out, the sign-in page; a staff session is
not a portal session), separate sign-outs, enumeration-safe link requests, CSRF, rate
limits, the staff view-as (read-only, audited), the statement agreeing with the admin and the
PDF, preferences honoured, the data export, and a constant number of SQL statements per page."""

import io
import json
import re
import zipfile
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from argon2 import PasswordHasher
from pypdf import PdfReader

from crm.extensions import db, limiter
from crm.formatting import day
from crm.models import AuditEvent, Customer, Invoice, Note, PortalAccount
from crm.portal_links import PATHS
from tests import factories as f
from tests.conftest import CrmClient
from tests.integration.helpers import by_testid, csrf_token_in, statements, text_of

PASSWORD = "tangerine-harbour-lantern"
HASH = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)


def _person(s, email: str, surname: str) -> dict:
    customer = f.make_customer(s, email=email, surname=surname)
    invoice = f.make_invoice(s, customer, amount="240.00", days_overdue=40)
    f.make_invoice(s, customer, amount="60.00", days_overdue=-10)
    draft = f.make_invoice(s, customer, amount="99.00", status="draft")
    note = f.make_credit_note(s, customer, amount="15.00")
    f.make_payment(s, customer, amount="50.00")
    f.make_booking(s, customer, title=f"{surname} party",
                   starts_at=datetime.now() + timedelta(days=5))
    s.add(PortalAccount(customer=customer, email=email, password_hash=HASH))
    s.flush()
    return {"customer": customer.id, "invoice": invoice.id, "draft": draft.id,
            "credit_note": note.id, "email": email}


@pytest.fixture
def people(app):
    with app.app_context():
        s = db.session
        made = {"a": _person(s, "ann@example.com", "Ashdown"),
                "b": _person(s, "bob@example.com", "Bellweather")}
        s.commit()
        return made


def portal_client(app, email: str = "ann@example.com") -> CrmClient:
    app.test_client_class = CrmClient
    browser = app.test_client()
    token = csrf_token_in(text_of(browser.get("/portal/login")))
    response = browser.post("/portal/login", data={"email": email, "password": PASSWORD,
                                                   "csrf_token": token})
    assert response.status_code == 302, text_of(response)[:400]
    browser.csrf_token = csrf_token_in(text_of(browser.get("/portal/profile")))
    return browser


def routes(ids: dict) -> list[str]:
    """Every portal URL that names a document."""
    return [f"/portal/invoices/{ids['invoice']}", f"/portal/invoices/{ids['invoice']}.pdf",
            f"/portal/credit-notes/{ids['credit_note']}",
            f"/portal/credit-notes/{ids['credit_note']}.pdf"]


def pages() -> list[str]:
    return ["/portal/", "/portal/statement.pdf", "/portal/invoices", "/portal/credit-notes",
            "/portal/payments", "/portal/bookings", "/portal/profile"]


# --- isolation --------------------------------------------------------------------------------

def _unsigned(page: str) -> str:
    return re.sub(r'(name="csrf_token"[^>]*value=")[^"]+"', r'\1…"', page)


def test_each_customer_gets_a_404_for_the_others_documents_exactly_as_for_none(app, people):
    ann, bob = portal_client(app, "ann@example.com"), portal_client(app, "bob@example.com")
    missing = {"invoice": 999_999, "credit_note": 999_999}

    for me, mine, theirs in ((ann, people["a"], people["b"]), (bob, people["b"], people["a"])):
        for url in routes(mine):
            assert me.get(url).status_code == 200, url
        for url, none in zip(routes(theirs), routes(missing), strict=True):
            other, absent = me.get(url), me.get(none)
            assert other.status_code == absent.status_code == 404, url
            # The same page, byte for byte, but for the CSRF token of the sign-out form: it
            # carries the second it was signed in, and two requests can straddle a second.
            assert _unsigned(text_of(other)) == _unsigned(text_of(absent))
        question = me.post(f"/portal/invoices/{theirs['invoice']}/question",
                           data={"message": "Whose is this?"})
        assert question.status_code == 404
        # A draft of one's own is not one's to see either.
        assert me.get(f"/portal/invoices/{mine['draft']}").status_code == 404
    with app.app_context():
        assert db.session.query(Note).filter_by(kind="portal").count() == 0


def test_signed_out_every_page_leads_to_the_sign_in(app, client, people):
    for url in pages() + routes(people["a"]):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.headers["Location"].startswith("/portal/login?next=")


def test_a_staff_session_is_not_a_portal_session(app, client, login, people):
    login("owner")

    response = client.get("/portal/")

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/portal/login")


def test_a_portal_session_never_opens_the_admin(app, people):
    ann = portal_client(app)

    for url in ("/admin/", "/admin/owner/customer/", "/admin/coordinator/customer/"):
        response = ann.get(url)
        assert response.status_code in (302, 403), url
        assert "/login" in response.headers.get("Location", "/login")


def test_signing_out_of_one_side_leaves_the_other(app, client, login, people):
    login("owner")
    token = csrf_token_in(text_of(client.get("/portal/login")))
    client.post("/portal/login", data={"email": "ann@example.com", "password": PASSWORD,
                                       "csrf_token": token})
    assert client.get("/portal/").status_code == 200
    assert client.get("/admin/owner/customer/").status_code == 200

    client.get("/logout")  # staff sign-out
    assert client.get("/portal/").status_code == 200
    assert client.get("/admin/owner/customer/").status_code == 302

    client.csrf_token = None  # the staff sign-out cleared the session, and its token
    login("owner")
    client.post("/portal/logout", data={"csrf_token": csrf_token_in(
        text_of(client.get("/portal/profile")))})
    assert client.get("/portal/").status_code == 302
    assert client.get("/admin/owner/customer/").status_code == 200


def test_a_copied_portal_cookie_opens_nothing_after_sign_out(app, people):
    ann = portal_client(app)
    app.test_client_class = CrmClient
    thief = app.test_client()
    thief.set_cookie("crm_portal", ann.get_cookie("crm_portal", path="/portal").value,
                     path="/portal")
    assert thief.get("/portal/").status_code == 200

    ann.post("/portal/logout", data={})

    assert thief.get("/portal/").status_code == 302


# --- signing in -------------------------------------------------------------------------------

def test_asking_for_a_link_answers_the_same_for_a_known_and_an_unknown_address(app, client,
                                                                               people, tmp_path,
                                                                               monkeypatch):
    monkeypatch.setitem(app.config, "MAIL_OUTBOX_DIR", str(tmp_path))
    answers = []
    for email in ("ann@example.com", "nobody@example.com"):
        for path in ("/portal/link", "/portal/forgot"):
            response = client.post(path, data={"email": email})
            answers.append((path, response.status_code, text_of(response)))

    known = [a for a in answers[:2]]
    unknown = [a for a in answers[2:]]
    assert known == unknown
    assert all(status == 200 for _, status, _ in answers)
    assert len(list(tmp_path.glob("*.eml"))) == 2  # only the known address got mail


def test_a_wrong_password_gets_one_sentence_whatever_the_reason(app, client, people):
    with app.app_context():
        account = db.session.query(PortalAccount).filter_by(email="bob@example.com").one()
        account.disabled = True
        db.session.commit()
    answers = set()
    for email, password in (("ann@example.com", "not-the-password"),
                            ("nobody@example.com", PASSWORD), ("bob@example.com", PASSWORD)):
        page = client.post("/portal/login", data={"email": email, "password": password})
        assert page.status_code == 401
        answers.add(by_testid(text_of(page), "login-error")[0])
    assert answers == {"That e-mail and password do not open an account here, or the "
                       "account is closed."}


def test_a_post_without_the_csrf_token_is_refused(app, client, people):
    response = client.post("/portal/login", data={"email": "ann@example.com",
                                                  "password": PASSWORD}, csrf=False)

    assert response.status_code == 400
    assert client.get("/portal/").status_code == 302


def test_failed_sign_ins_are_limited_per_account(app, client, people, monkeypatch):
    monkeypatch.setitem(app.config, "CRM_LOGIN_LIMIT_PER_ACCOUNT", "3/hour")
    codes = [client.post("/portal/login", data={"email": "ann@example.com",
                                                "password": "wrong-password-x"}).status_code
             for _ in range(4)]
    right = client.post("/portal/login", data={"email": "ann@example.com", "password": PASSWORD})

    assert codes == [401, 401, 401, 429]
    assert right.status_code == 429
    with app.app_context():
        limiter.reset()


def test_link_requests_are_limited_per_address(app, client, people, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "MAIL_OUTBOX_DIR", str(tmp_path))
    codes = [client.post("/portal/link", data={"email": "ann@example.com"}).status_code
             for _ in range(6)]

    assert codes == [200] * 5 + [429]
    assert len(list(tmp_path.glob("*.eml"))) == 5
    with app.app_context():
        limiter.reset()


def test_the_link_paths_are_the_portals_routes(app):
    with app.test_request_context():
        from flask import url_for

        assert PATHS == {"invite": url_for("portal.set_password"),
                         "reset": url_for("portal.set_password"),
                         "sign_in": url_for("portal.access"),
                         "email": url_for("portal.confirm_email")}


def test_pages_reached_by_a_link_send_no_referrer_and_are_never_cached(app, client, people):
    for path in ("/portal/access?token=x", "/portal/password?token=x",
                 "/portal/confirm-email?token=x"):
        response = client.get(path)
        assert response.headers["Referrer-Policy"] == "no-referrer", path
        assert response.headers["Cache-Control"] == "no-store"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


# --- the statement ----------------------------------------------------------------------------

def _figures(html: str) -> dict:
    return {k: by_testid(html, f"figure-{k}")[0] for k in ("balance", "overdue", "credit")}


def test_the_portal_admin_and_pdf_show_the_same_statement(app, client, login, people):
    ann = portal_client(app)
    portal = text_of(ann.get("/portal/"))
    login("owner")
    admin = text_of(client.get(f"/admin/owner/customer/statement/?id={people['a']['customer']}"))
    pdf = ann.get("/portal/statement.pdf")
    pdf_text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.data)).pages)

    figures = _figures(portal)
    with app.app_context():
        customer = db.session.get(Customer, people["a"]["customer"])
        expected = {"balance": f"{customer.balance:,.2f}",
                    "overdue": f"{customer.overdue_amount:,.2f}",
                    "credit": f"{customer.account_credit:,.2f}"}
    assert figures == expected == {"balance": "235.00", "overdue": "240.00", "credit": "65.00"}
    assert by_testid(admin, "balance")[0] == "£" + figures["balance"]
    assert by_testid(admin, "overdue")[0] == "£" + figures["overdue"]
    for amount in expected.values():
        assert amount in pdf_text
    for amount in ("240.00", "60.00"):  # the open invoices, in all three
        assert amount in portal and amount in admin and amount in pdf_text


def test_the_aging_bars_add_up_to_what_is_owed(app, people):
    html = text_of(portal_client(app).get("/portal/"))

    bars = [Decimal(by_testid(html, f"aging-{i}")[0].replace(",", "")) for i in range(5)]
    assert bars == [Decimal("60.00"), Decimal("0"), Decimal("240.00"), Decimal("0"),
                    Decimal("0")]


def test_the_activity_statement_defaults_to_the_last_three_months(app, people):
    html = text_of(portal_client(app).get("/portal/?kind=activity"))

    period = by_testid(html, "statement-period")[0]
    start = (date.today() - timedelta(days=91)).replace(day=1)
    assert day(start) in period  # the one date style: "1 Sept 2026"
    assert by_testid(html, "activity")


def test_a_bad_statement_date_is_a_message(app, people):
    response = portal_client(app).get("/portal/?kind=activity&start=0001-01-01")

    assert response.status_code == 400
    assert "Enter a date between 1900 and 2100" in by_testid(text_of(response),
                                                             "statement-error")[0]


# --- questions ------------------------------------------------------------------------------

def test_a_question_becomes_a_note_staff_answer_and_the_customer_reads_the_answer(
        app, client, login, people):
    ann = portal_client(app)
    invoice = people["a"]["invoice"]

    sent = ann.post(f"/portal/invoices/{invoice}/question",
                    data={"message": "Was the call-out charged twice?"})
    assert sent.status_code == 302
    with app.app_context():
        note = db.session.query(Note).filter_by(kind="portal").one()
        assert (note.customer_id, note.invoice_id, note.answered_at) == (
            people["a"]["customer"], invoice, None)
        note_id = note.id
    login("owner")
    listing = text_of(client.get("/admin/owner/portal_query/"))
    assert "Was the call-out charged twice?" in listing and "open" in listing
    timeline = by_testid(text_of(client.get(
        f"/admin/owner/customer/details/?id={people['a']['customer']}")), "timeline")[0]
    assert "Was the call-out charged twice?" in timeline

    client.post("/admin/owner/portal_query/answer/",
                data={"id": str(note_id), "reply": "No: once for the visit, once for parts."})

    page = text_of(ann.get(f"/portal/invoices/{invoice}"))
    assert "No: once for the visit, once for parts." in by_testid(page, "answer")[0]


def test_a_coordinator_has_no_portal_queries(app, client, login, people):
    login("coordinator")

    assert client.get("/admin/coordinator/portal_query/").status_code in (403, 404)


# --- details and preferences -----------------------------------------------------------------

def test_details_are_checked_and_a_stale_form_is_refused(app, people):
    ann = portal_client(app)
    page = text_of(ann.get("/portal/profile"))
    version = re.search(r'name="version" type="hidden" value="(\d+)"', page).group(1)
    form = {"version": version, "phone": "07912 345678", "address_line_1": "2 New Road",
            "town": "Salford", "postcode": "m5 4wt"}

    bad = ann.post("/portal/profile/details", data={**form, "postcode": "<>{}"})
    assert bad.status_code == 400 and "Not a valid postcode" in text_of(bad)
    saved = ann.post("/portal/profile/details", data=form)
    assert saved.status_code == 302
    stale = ann.post("/portal/profile/details", data={**form, "town": "York"})
    assert "were changed elsewhere" in text_of(ann.get(stale.headers["Location"]))

    with app.app_context():
        customer = db.session.get(Customer, people["a"]["customer"])
        assert (customer.phone, customer.postcode, customer.town) == (
            "+447912345678", "M5 4WT", "Salford")
        fields = db.session.query(AuditEvent).filter_by(
            verb="update", subject_id=customer.id).one().details["fields"]
        assert fields == ["address_line_1", "phone", "postcode", "town"]


def test_a_customer_who_wants_no_statement_emails_is_skipped_by_the_run(app, client, login,
                                                                       people, tmp_path,
                                                                       monkeypatch):
    monkeypatch.setitem(app.config, "MAIL_OUTBOX_DIR", str(tmp_path))
    ann = portal_client(app)
    ann.post("/portal/profile/preferences", data={"wants_reminders": "y"})
    login("owner")

    done = client.post("/admin/owner/customer/bulk/email_statements/",
                       data={"ids": [str(people["a"]["customer"]), str(people["b"]["customer"])],
                             "confirm": "1"})

    html = text_of(done)
    assert "asked for no statement e-mails" in html
    [message] = list(tmp_path.glob("*.eml"))
    assert b"bob@example.com" in message.read_bytes()


# --- download my data -------------------------------------------------------------------------

def test_download_my_data_holds_the_customers_records_and_nobody_elses(app, people):
    ann = portal_client(app)
    ann.post(f"/portal/invoices/{people['a']['invoice']}/question",
             data={"message": "A question of mine"})

    response = ann.post("/portal/my-data", data={})

    assert response.status_code == 200 and response.mimetype == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    data = json.loads(archive.read("data.json"))
    assert data["customer"]["email"] == "ann@example.com"
    assert [q["question"] for q in data["questions"]] == ["A question of mine"]
    assert len(data["invoices"]) == 2  # the issued ones, not the draft
    assert data["portal"]["account"]["email"] == "ann@example.com"
    assert any(name.startswith("invoices/") for name in archive.namelist())
    blob = b"".join(archive.read(name) for name in archive.namelist())
    assert b"Bellweather" not in blob and b"bob@example.com" not in blob


def test_staff_download_the_same_export_from_the_record_page(app, client, login, people):
    login("owner")
    page = text_of(client.get(f"/admin/owner/customer/details/?id={people['a']['customer']}"))
    assert 'data-testid="export-data"' in page

    response = client.post("/admin/owner/customer/export-data/",
                           data={"id": str(people["a"]["customer"])})

    assert response.mimetype == "application/zip"
    data = json.loads(zipfile.ZipFile(io.BytesIO(response.data)).read("data.json"))
    assert data["customer"]["surname"] == "Ashdown"


# --- staff viewing as the customer ------------------------------------------------------------

def test_view_as_shows_the_customers_portal_read_only_and_is_audited(app, client, login, people):
    login("owner")

    opened = client.post("/admin/owner/customer/view-as/",
                         data={"id": str(people["a"]["customer"])})

    assert opened.headers["Location"] == "/portal/"
    home = text_of(client.get("/portal/"))
    assert "viewing the portal as" in by_testid(home, "view-as-banner")[0]
    assert _figures(home)["balance"] == "235.00"
    for path, data in (("/portal/profile/preferences", {}),
                       (f"/portal/invoices/{people['a']['invoice']}/question",
                        {"message": "x"}), ("/portal/my-data", {})):
        assert client.post(path, data=data).status_code == 403, path
    with app.app_context():
        assert db.session.query(AuditEvent).filter_by(verb="view_as_customer").one().actor_label \
            == "owner@example.com"
        assert db.session.query(Note).count() == 0
    back = client.post("/portal/stop-viewing", data={})
    assert back.headers["Location"] == (
        f"/admin/owner/customer/details/?id={people['a']['customer']}")
    assert client.get("/portal/").status_code == 302  # no longer viewing


def test_a_coordinator_cannot_view_as_a_customer(app, client, login, people):
    login("coordinator")

    response = client.post("/admin/coordinator/customer/view-as/",
                           data={"id": str(people["a"]["customer"])})

    assert response.status_code == 403
    assert client.get("/portal/").status_code == 302


# --- structure --------------------------------------------------------------------------------

def test_a_portal_page_costs_the_same_statements_with_ten_times_the_documents(app, people):
    ann = portal_client(app)
    before = {url: statements(ann.get(url)) for url in pages()[:-1]}
    with app.app_context():
        customer = db.session.get(Customer, people["a"]["customer"])
        for n in range(30):
            f.make_invoice(db.session, customer, amount=f"{10 + n}.00", days_overdue=n)
            f.make_payment(db.session, customer, amount="1.00")
            f.make_credit_note(db.session, customer, amount="1.00")
        db.session.commit()

    after = {url: statements(ann.get(url)) for url in pages()[:-1]}

    assert after == before
    assert max(after.values()) <= 12


# --- the e-mailed links, end to end -----------------------------------------------------------

def _link_in(outbox_dir) -> str:
    from crm.mail import Outbox

    box = Outbox(outbox_dir)
    text = box.read(box.names()[0]).get_body(("plain",)).get_content()
    return re.search(r"https?://\S+", text).group(0)


def test_an_invitation_from_the_record_page_sets_a_password_and_signs_in(
        app, client, login, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "MAIL_OUTBOX_DIR", str(tmp_path))
    with app.app_context():
        customer = f.make_customer(db.session, email="new.customer@example.com")
        db.session.commit()
        key = customer.id
    login("owner")
    record = text_of(client.get(f"/admin/owner/customer/details/?id={key}"))
    assert by_testid(record, "portal-status")[0] == "not invited"
    client.post("/admin/owner/customer/bulk/portal_invite/", data={"ids": [str(key)],
                                                                   "confirm": "1"})
    link = _link_in(tmp_path)
    assert link.startswith("http://127.0.0.1:5000/portal/password?token=")
    app.test_client_class = CrmClient
    browser = app.test_client()

    landing = browser.get(link.removeprefix("http://127.0.0.1:5000"))
    assert landing.status_code == 302 and landing.headers["Location"] == "/portal/password"
    page = text_of(browser.get("/portal/password"))
    assert "new.customer@example.com" in page
    token = csrf_token_in(page)
    weak = browser.post("/portal/password", data={
        "csrf_token": token, "token": re.search(r'name="token" type="hidden" value="([^"]+)"',
                                                page).group(1),
        "password": "password12345", "confirm": "password12345"})
    assert weak.status_code == 400 and "too easy to guess" in text_of(weak)
    strong = browser.post("/portal/password", data={
        "csrf_token": token, "token": re.search(r'name="token" type="hidden" value="([^"]+)"',
                                                page).group(1),
        "password": PASSWORD, "confirm": PASSWORD})

    assert strong.status_code == 302 and strong.headers["Location"] == "/portal/"
    assert browser.get("/portal/").status_code == 200
    again = browser.get(link.removeprefix("http://127.0.0.1:5000"), follow_redirects=True)
    assert "expired or has already been used" in text_of(again)
    record = text_of(client.get(f"/admin/owner/customer/details/?id={key}"))
    assert by_testid(record, "portal-status")[0] == "active"


def test_a_sign_in_link_signs_in_once(app, people, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "MAIL_OUTBOX_DIR", str(tmp_path))
    app.test_client_class = CrmClient
    browser = app.test_client()
    browser.post("/portal/link", data={"email": "ann@example.com"})
    path = _link_in(tmp_path).removeprefix("http://127.0.0.1:5000")

    page = text_of(browser.get(path, follow_redirects=True))
    token = re.search(r'name="token" type="hidden" value="([^"]+)"', page).group(1)
    used = browser.post("/portal/access", data={"token": token})
    assert used.status_code == 302 and browser.get("/portal/").status_code == 200
    browser.post("/portal/logout", data={})
    reused = browser.post("/portal/access", data={"token": token})

    assert reused.status_code == 400
    assert "expired or has already been used" in text_of(reused)


def test_a_portal_error_page_leads_back_to_the_customers_account(app, people):
    page = portal_client(app).get("/portal/invoices/999999")

    assert page.status_code == 404
    html = text_of(page)
    assert by_testid(html, "portal-error") and 'href="/portal/"' in html
    assert "/admin/" not in html


def _portal_cookie_header(application) -> str:
    application.test_client_class = CrmClient
    browser = application.test_client()
    token = csrf_token_in(text_of(browser.get("/portal/login")))
    response = browser.post("/portal/login", data={"email": "ann@example.com",
                                                   "password": PASSWORD, "csrf_token": token})
    return next(v for v in response.headers.getlist("Set-Cookie") if v.startswith("crm_portal="))


def test_the_portal_cookie_is_http_only_same_site_and_secure_in_production(app, database_url,
                                                                           people, monkeypatch):
    from tests.conftest import make_app

    cookie = _portal_cookie_header(app)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/portal" in cookie
    assert "Secure" not in cookie  # development runs on plain HTTP
    monkeypatch.setenv("CRM_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "a-production-secret-key-of-some-length")
    monkeypatch.setenv("CRM_PUBLIC_URL", "https://crm.example.com")
    production = make_app(database_url)
    assert "Secure" in _portal_cookie_header(production)
    with production.app_context():
        limiter.reset()


def test_an_invoice_lists_only_the_money_that_still_counts_against_it(app, people):
    """A credit note voided since gave its allocation back: the invoice page must not list
    it, and what it lists adds up to the total less what is still owed."""
    from crm.actions.credit_note import void_credit_note

    with app.app_context():
        s = db.session
        customer = s.get(Customer, people["a"]["customer"])
        invoice = s.get(Invoice, people["a"]["invoice"])
        payment = f.make_payment(s, customer, amount="40.00", reference="BANK-1")
        kept = f.make_credit_note(s, customer, amount="20.00", invoice=invoice)
        voided = f.make_credit_note(s, customer, amount="30.00", invoice=invoice)
        s.flush()
        for source, amount in ((dict(payment=payment), "40.00"), (dict(credit_note=kept), "20.00"),
                               (dict(credit_note=voided), "30.00")):
            f.make_allocation(s, invoice, amount=amount, **source)
        s.commit()
        void_credit_note(s, credit_note_id=voided.id, actor=None, reason="Raised in error")
        s.commit()
        voided_number, kept_number = voided.number, kept.number

    html = text_of(portal_client(app).get(f"/portal/invoices/{people['a']['invoice']}"))

    applied = by_testid(html, "applied")[0]
    assert "BANK-1" in applied and kept_number in applied and voided_number not in applied
    assert "Total paid and credited 60.00" in applied and "Still owed 180.00" in applied


def test_the_record_page_shows_open_questions_and_offers_no_invite_to_an_active_account(
        app, client, login, people):
    portal_client(app).post(f"/portal/invoices/{people['a']['invoice']}/question",
                            data={"message": "Is the discount on this?"})
    login("owner")

    page = text_of(client.get(f"/admin/owner/customer/details/?id={people['a']['customer']}"))

    waiting = by_testid(page, "open-questions")[0]
    assert "1 question from the portal waiting for an answer" in waiting
    assert "Is the discount on this?" in waiting
    assert by_testid(page, "portal-status")[0] == "active"
    assert 'data-testid="portal-invite"' not in page  # active: they reset their own password
    assert 'data-testid="portal-revoke"' in page


def test_signing_in_always_gives_a_new_session(app, people):
    """A cookie planted before the sign-in (or left from an old one) is never the session
    the sign-in opens: the server makes a new token at every sign-in."""
    first = portal_client(app)
    planted = first.get_cookie("crm_portal", path="/portal").value
    first.post("/portal/logout", data={})
    app.test_client_class = CrmClient
    browser = app.test_client()
    browser.set_cookie("crm_portal", planted, path="/portal")

    token = csrf_token_in(text_of(browser.get("/portal/login")))
    browser.post("/portal/login", data={"email": "ann@example.com", "password": PASSWORD,
                                        "csrf_token": token})

    assert browser.get_cookie("crm_portal", path="/portal").value != planted
    assert browser.get("/portal/").status_code == 200
    app.test_client_class = CrmClient
    replay = app.test_client()
    replay.set_cookie("crm_portal", planted, path="/portal")
    assert replay.get("/portal/").status_code == 302
