"""The statement runs from the customer list (issue 4, item 7) and the outbox they write to:
"Statements (ZIP)" confirms then downloads a ZIP of PDFs; "E-mail statements" confirms then
reports who was sent and who was skipped and why; both owner/admin only, CSRF-protected and
bounded in size. Settings > Outbox lists and shows the messages, for owners and admins only,
and reads no file outside its folder."""

import io
import re
import socket
import zipfile
from datetime import date, timedelta
from html import unescape

import pytest

from crm import mail
from crm.extensions import db
from crm.formatting import day
from crm.models import AuditEvent, Customer
from tests import factories as f
from tests.integration.helpers import by_testid, confirm_form, count_rows, customer, text_of


def bulk(role: str, verb: str) -> str:
    return f"/admin/{role}/customer/bulk/{verb}/"


@pytest.fixture
def outbox(app, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "MAIL_BACKEND", "outbox")
    monkeypatch.setitem(app.config, "MAIL_OUTBOX_DIR", str(tmp_path / "outbox"))
    return mail.Outbox(tmp_path / "outbox")


@pytest.fixture
def people(app):
    """Two customers who may get e-mail (one owing money), one dormant, one without e-mail."""
    with app.app_context():
        rows = {
            "ann": customer(db.session, first_name="Ann", email="ann@example.com"),
            "bob": customer(db.session, first_name="Bob", email="bob@example.com"),
            "dormant": customer(db.session, status="dormant"),
            "no_email": customer(db.session, email=None),
        }
        f.make_invoice(db.session, rows["ann"], amount="99.90", days_overdue=5)
        db.session.commit()
        return {**{k: c.id for k, c in rows.items()},
                **{f"{k}_ref": c.reference for k, c in rows.items()}}


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (it was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def ids(people, *keys) -> list[str]:
    return [str(people[k]) for k in keys]


# --- the ZIP --------------------------------------------------------------------------------

def test_statements_zip_confirms_then_downloads_one_pdf_per_customer(app, client, login,
                                                                    people):
    login("owner")
    response = client.post("/admin/owner/customer/action/",
                           data={"action": "statements_zip",
                                 "rowid": ids(people, "ann", "bob", "dormant")})
    html = text_of(response)

    assert response.status_code == 200
    assert "3 customers selected" in by_testid(html, "confirm-count")[0]
    assert f"at {day(date.today())} (today)" in html  # "at 5 Dec 2026 (today)"
    action, data = confirm_form(html)
    assert action == bulk("owner", "statements_zip")

    download = client.post(action, data=data)

    assert download.status_code == 200
    assert download.mimetype == "application/zip"
    assert (f"filename=statements-{date.today().isoformat()}.zip"
            in download.headers["Content-Disposition"])
    archive = zipfile.ZipFile(io.BytesIO(download.get_data()))
    assert sorted(archive.namelist()) == sorted(
        f"statement-{people[k + '_ref']}.pdf" for k in ("ann", "bob", "dormant"))
    assert archive.read(f"statement-{people['ann_ref']}.pdf").startswith(b"%PDF")
    assert count_rows(app, AuditEvent, AuditEvent.verb == "statements_zip") == 1


def test_statements_zip_at_a_past_date_from_the_url(app, client, login, people):
    login("admin")
    when = date.today() - timedelta(days=3)
    html = text_of(client.get(bulk("admin", "statements_zip"),
                              query_string={"ids": ids(people, "ann"), "as_of": day(when)}))
    assert f"at {day(when)}" in html
    assert re.search(rf'<input[^>]*value="{day(when)}" data-testid="as-of"', html)
    assert 'type="date"' not in html
    action, data = confirm_form(html)
    assert "as_of=" in action

    download = client.post(action, data=data)

    assert f"statements-{when.isoformat()}.zip" in download.headers["Content-Disposition"]


@pytest.mark.parametrize("as_of, problem", [
    ("31 Feb 2024", "The statement date: type a date like 4 Dec 2026"),
    ("next tuesday", "The statement date: type a date like 4 Dec 2026"),
    ((date.today() + timedelta(days=2)).isoformat(), "a date that has passed"),
])
def test_a_bad_statement_date_is_a_message_not_a_download(app, client, login, people, as_of,
                                                          problem):
    login("owner")
    response = client.post(bulk("owner", "statements_zip"), query_string={"as_of": as_of},
                           data={"confirm": "1", "ids": ids(people, "ann")})

    assert response.status_code == 400
    assert problem in unescape(by_testid(text_of(response), "action-error")[0])
    assert count_rows(app, AuditEvent, AuditEvent.verb == "statements_zip") == 0


def test_a_bigger_run_becomes_a_job_and_its_zip_is_the_jobs_file(app, client, login, people,
                                                                 monkeypatch):
    """Past a handful of customers a statement run goes to the background: no bound, the
    user lands on the job's page, and the job's file is the ZIP, one PDF per customer."""
    import zipfile
    from pathlib import Path

    from sqlalchemy import select

    from crm.admin_views import customer_bulk
    from crm.extensions import db
    from crm.models import Job

    monkeypatch.setattr(customer_bulk, "SLOW_OVER", 2)
    login("owner")
    query = {"ids": ids(people, "ann", "bob", "dormant")}

    page = client.get(bulk("owner", "statements_zip"), query_string=query)
    assert page.status_code == 200
    assert by_testid(text_of(page), "runs-as-job")

    started = client.post(bulk("owner", "statements_zip"), data={"confirm": "1", **query})
    assert started.status_code == 302 and "/admin/owner/jobs/" in started.headers["Location"]
    with app.app_context():
        job = db.session.scalars(select(Job)).one()
        assert (job.kind, job.status, job.money, job.changed) == ("statements_zip", "done",
                                                                  True, 3)
        path = Path(app.config["CRM_JOBS_DIR"]) / job.result_path
        with zipfile.ZipFile(path) as archive:
            names = sorted(archive.namelist())
        refs = sorted(f"statement-{db.session.get(Customer, i).reference}.pdf"
                      for i in ids(people, "ann", "bob", "dormant"))
        assert names == refs
        assert job.result_name.startswith("statements-") and job.result_name.endswith(".zip")
    page = text_of(client.get(started.headers["Location"]))
    assert "3</span> in the ZIP" in page  # the job's page words its count for a ZIP


def test_a_dated_run_as_a_job_keeps_its_date_and_a_bad_date_starts_no_job(
        app, client, login, people, monkeypatch):
    from sqlalchemy import select

    from crm.admin_views import customer_bulk
    from crm.extensions import db
    from crm.models import Job

    monkeypatch.setattr(customer_bulk, "SLOW_OVER", 2)
    login("owner")
    query = {"ids": ids(people, "ann", "bob", "dormant")}

    refused = client.post(bulk("owner", "statements_zip"),
                          data={"confirm": "1", "as_of": "31 Febtember", **query})
    assert refused.status_code == 400
    assert "statement date" in unescape(by_testid(text_of(refused), "action-error")[0])
    with app.app_context():
        assert db.session.scalars(select(Job)).all() == []

    started = client.post(bulk("owner", "statements_zip"),
                          data={"confirm": "1", "as_of": "1 Dec 2026", **query})
    assert started.status_code == 302
    with app.app_context():
        job = db.session.scalars(select(Job)).one()
        assert job.params["as_of"] == "2026-12-01"
        assert job.result_name == "statements-2026-12-01.zip"


# --- e-mail ---------------------------------------------------------------------------------

def test_email_statements_confirms_then_reports_sent_and_skipped(app, client, login, people,
                                                                outbox):
    login("admin")
    html = text_of(client.get(bulk("admin", "email_statements"),
                              query_string={"ids": ids(people, "ann", "bob", "dormant",
                                                       "no_email")}))
    assert "4 customers selected" in by_testid(html, "confirm-count")[0]
    assert outbox.names() == []
    action, data = confirm_form(html)

    done = client.post(action, data=data)
    html = text_of(done)

    assert done.status_code == 200
    assert by_testid(html, "result-changed")[0].startswith("2 changed")
    skipped = re.findall(r"<li>(.*?)</li>", html.split('data-testid="skipped-list"', 1)[1]
                         .split("</ul>", 1)[0])
    assert sorted(skipped) == sorted([f"{people['dormant_ref']} skipped: dormant",
                                      f"{people['no_email_ref']} skipped: no e-mail address"])
    assert "Sent 2 statements by e-mail; 2 skipped" in by_testid(html, "result-message")[0]
    assert sorted(str(outbox.read(n)["To"]) for n in outbox.names()) == [
        "ann@example.com", "bob@example.com"]
    assert count_rows(app, AuditEvent, AuditEvent.verb == "email_statements") == 3


def test_a_mail_server_failure_is_reported_on_the_results_page(app, client, login, people,
                                                              monkeypatch):
    monkeypatch.setitem(app.config, "MAIL_BACKEND", "smtp")
    monkeypatch.setitem(app.config, "MAIL_SERVER", "127.0.0.1")
    monkeypatch.setitem(app.config, "MAIL_PORT", closed_port())
    monkeypatch.setitem(app.config, "MAIL_USE_TLS", False)
    monkeypatch.setitem(app.config, "MAIL_TIMEOUT", 2)
    login("owner")

    done = client.post(bulk("owner", "email_statements"),
                       data={"confirm": "1", "ids": ids(people, "ann", "bob")})
    html = unescape(text_of(done))

    assert done.status_code == 200
    assert "Could not connect to the mail server 127.0.0.1:" in html
    assert "the 0 already sent cannot be unsent" in html
    assert by_testid(html, "result-changed")[0].startswith("0 changed")


# --- refusals -------------------------------------------------------------------------------

@pytest.mark.parametrize("verb", ["statements_zip", "email_statements"])
def test_a_coordinator_cannot_run_statements(app, client, login, people, outbox, verb):
    login("coordinator")

    assert client.get(bulk("coordinator", verb),
                      query_string={"ids": ids(people, "ann")}).status_code == 403
    assert client.post(bulk("coordinator", verb),
                       data={"confirm": "1", "ids": ids(people, "ann")}).status_code == 403
    listing = text_of(client.get("/admin/coordinator/customer/"))
    assert "E-mail statements" not in listing and "Statements (ZIP)" not in listing
    assert outbox.names() == []


@pytest.mark.parametrize("verb", ["statements_zip", "email_statements"])
def test_a_statement_run_without_the_csrf_token_is_refused(app, client, login, people, outbox,
                                                           verb):
    login("owner")

    response = client.post(bulk("owner", verb), csrf=False,
                           data={"confirm": "1", "ids": ids(people, "ann")})

    assert response.status_code == 400
    assert outbox.names() == []
    assert count_rows(app, AuditEvent, AuditEvent.verb.in_(["statements_zip",
                                                            "email_statements"])) == 0


# --- the outbox -----------------------------------------------------------------------------

def sent(app, n: int) -> list[str]:
    with app.app_context():
        return [mail.send(mail.Message(
            to=f"c{i}@example.com", subject=f"Subject {i} <b>", text=f"Body {i} <script>",
            attachments=[(f"statement-C-{i:06}.pdf", b"%PDF-1.4 " + bytes([i]), "application/pdf")],
        )) for i in range(n)]


def test_the_outbox_lists_messages_newest_first(app, client, login, outbox):
    names = sent(app, 3)
    login("owner")

    html = text_of(client.get("/admin/owner/outbox/"))

    rows = by_testid(html, "outbox-row")
    assert [r.split(" ")[2] for r in rows] == ["c2@example.com", "c1@example.com",
                                              "c0@example.com"]
    assert "Subject 2 &lt;b&gt;" in html and "statement-C-000002.pdf" in rows[0]
    assert "3 messages" in by_testid(html, "outbox-count")[0]
    assert f"/admin/owner/outbox/view/?name={names[2]}" in html
    assert 'class="dropdown-item active  " href="/admin/owner/outbox/"' in html  # menu


def test_the_outbox_is_paged(app, client, login, outbox, monkeypatch):
    from crm.admin_views import outbox as outbox_view

    monkeypatch.setattr(outbox_view, "PAGE_SIZE", 2)
    sent(app, 3)
    login("admin")

    first = text_of(client.get("/admin/admin/outbox/"))
    second = text_of(client.get("/admin/admin/outbox/?page=1"))

    assert len(by_testid(first, "outbox-row")) == 2 and by_testid(first, "next-page")
    assert [r.split(" ")[2] for r in by_testid(second, "outbox-row")] == ["c0@example.com"]
    assert client.get("/admin/admin/outbox/?page=99").status_code == 200


def test_a_message_shows_its_text_and_attachments(app, client, login, outbox):
    name = sent(app, 2)[1]
    login("owner")

    html = text_of(client.get("/admin/owner/outbox/view/", query_string={"name": name}))

    assert by_testid(html, "message-subject") == ["Subject 1 <b>"]
    assert "Body 1 &lt;script&gt;" in html and "<script>" not in html.split("message-text")[1]
    link = re.search(r'href="([^"]+)">statement-C-000001.pdf</a>', html)
    download = client.get(unescape(link.group(1)))
    assert download.status_code == 200
    assert download.get_data() == b"%PDF-1.4 \x01"
    assert download.mimetype == "application/pdf"
    assert "statement-C-000001.pdf" in download.headers["Content-Disposition"]


@pytest.mark.parametrize("name", ["../secret_key", "..%2Fsecret_key", "/etc/passwd",
                                  "20260101T000000000000Z-00000000.eml", ""])
def test_the_outbox_reads_no_file_outside_its_folder(app, client, login, outbox, name):
    sent(app, 1)
    (outbox.directory.parent / "secret_key").write_text("do not show")
    login("owner")

    assert client.get("/admin/owner/outbox/view/", query_string={"name": name}
                      ).status_code == 404
    assert client.get("/admin/owner/outbox/attachment/",
                      query_string={"name": name, "index": 0}).status_code == 404


def test_an_attachment_index_out_of_range_is_not_found(app, client, login, outbox):
    name = sent(app, 1)[0]
    login("owner")

    for index in ("1", "-1", "x"):
        assert client.get("/admin/owner/outbox/attachment/",
                          query_string={"name": name, "index": index}).status_code == 404


def test_a_coordinator_cannot_open_the_outbox(app, client, login, outbox):
    name = sent(app, 1)[0]
    login("coordinator")

    for path in ("/admin/coordinator/outbox/", "/admin/owner/outbox/",
                 f"/admin/coordinator/outbox/view/?name={name}",
                 f"/admin/owner/outbox/attachment/?name={name}&index=0"):
        assert client.get(path).status_code == 403, path
    assert "/outbox/" not in text_of(client.get("/admin/coordinator/customer/"))


def test_signed_out_the_outbox_asks_to_sign_in(client, outbox):
    response = client.get("/admin/owner/outbox/")

    assert response.status_code == 302
    assert "/login" in response.headers["Location"]
