"""Background jobs in a real browser, with a real consumer: the list's "All N matching →
E-mail statements" becomes a job, the person lands on its page, the bar fills without the
page being reloaded by hand, and the outbox holds one message per customer who could be
e-mailed. And the job page's script on its own: it moves the bar as the job's row changes
and reloads the page once the job has finished.

Unlike the other browser tests, jobs here are not run inside the request: the live server of
this module is an app of its own (on the same test database) with ``CRM_JOBS_IMMEDIATE``
off, and ``flask crm worker`` runs as a child process sharing its queue file, jobs folder
and outbox with it, as a server and its worker would in production.
"""

import os
import signal
import subprocess
import sys
import time
from email import message_from_bytes
from email.utils import parseaddr
from pathlib import Path

import pytest
from playwright.sync_api import expect

from crm.extensions import db
from crm.models import Job, User
from tests.conftest import PASSWORD, create_user, make_app
from tests.e2e.conftest import TIMEOUT_MS, LiveServer
from tests.e2e.test_accessibility import severe_violations
from tests.factories import make_customer

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
FLASK = Path(sys.executable).with_name("flask")
SECRET_KEY = "test-secret-key"  # the test app's (blocked e-mail hashes depend on it)
JOB_DONE_MS = 120_000  # a PDF per customer on a shared machine; the bar is watched, not timed


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("jobs-flow")
    return {"CRM_QUEUE_FILE": str(base / "jobs.huey"), "CRM_JOBS_DIR": str(base / "jobs"),
            "MAIL_OUTBOX_DIR": str(base / "outbox")}


@pytest.fixture(scope="module")
def job_app(app, database_url, folders):
    """The server's app: the test database, jobs queued for the worker (not run at once)."""
    return make_app(database_url, CRM_JOBS_IMMEDIATE=False, MAIL_BACKEND="outbox",
                    CRM_JOB_THRESHOLD=5, **folders)


@pytest.fixture(scope="module")
def job_server(job_app):
    server = LiveServer(job_app).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def worker(app, database_url, folders, tmp_path_factory):
    """``flask crm worker`` on the same database, queue file, jobs folder and outbox; stopped
    (by its own pid) at the end of the module."""
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "MAIL_"))}
    env.update(folders, DATABASE_URL=database_url, SECRET_KEY=SECRET_KEY, MAIL_BACKEND="outbox",
               CRM_JOBS_IMMEDIATE="0", CRM_JOB_RETRY_DELAY="0", FLASK_APP="app")
    with open(log_path, "w") as out:
        child = subprocess.Popen([str(FLASK), "--app", "app", "crm", "worker", "--no-schedule"],
                                 cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while "consumer started" not in log_path.read_text().lower():
                if child.poll() is not None:
                    pytest.fail(f"the worker exited:\n{log_path.read_text()[-3000:]}")
                if time.monotonic() > deadline:
                    pytest.fail(f"the worker did not start:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.2)
            yield log_path
        finally:
            if child.poll() is None:
                child.send_signal(signal.SIGINT)  # Huey: finish the task in hand, then stop
                try:
                    child.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()


@pytest.fixture
def job_page(browser, job_server, app):
    """A browser signed in as ``role`` on this module's server: ``job_page(role)``."""
    contexts = []

    def open_as(role: str):
        context = browser.new_context(base_url=job_server.url)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        email = f"{role}@example.com"
        with app.app_context():
            if db.session.query(User).filter_by(email=email).one_or_none() is None:
                create_user(role, email)
        page.goto("/login")
        page.get_by_label("E-mail").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(lambda url: "/login" not in url)
        return page

    yield open_as
    for context in contexts:
        context.close()


def _outbox(folders) -> list[Path]:
    box = Path(folders["MAIL_OUTBOX_DIR"])
    return sorted(box.glob("*.eml")) if box.exists() else []


def test_all_matching_email_statements_runs_as_a_job_and_the_bar_reaches_100(
        app, job_page, worker, folders):
    with app.app_context():
        eligible = [make_customer(db.session, surname=f"Statement{i:02d}",
                                  email=f"statement{i}@example.com") for i in range(24)]
        for i in range(3):
            make_customer(db.session, surname=f"Noemail{i}", email=None)
        db.session.commit()
        addresses = {c.email for c in eligible}
    before = set(_outbox(folders))
    page = job_page("owner")

    page.goto("/admin/owner/customer/")
    page.get_by_test_id("all-matching").get_by_role("button").click()
    page.get_by_test_id("all-email_statements").click()
    expect(page.get_by_test_id("confirm-count")).to_contain_text("27")
    expect(page.get_by_test_id("runs-as-job")).to_be_visible()
    page.get_by_test_id("confirm-button").click()

    page.wait_for_url("**/admin/owner/jobs/*/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("E-mail statements")
    expect(page.get_by_test_id("job-bar")).to_have_attribute("value", "100",
                                                             timeout=JOB_DONE_MS)
    expect(page.get_by_test_id("job-status")).to_have_text("Done", timeout=JOB_DONE_MS)
    expect(page.get_by_test_id("job-count")).to_contain_text("27 of 27 done")
    expect(page.get_by_test_id("job-changed")).to_have_text("24")
    expect(page.get_by_test_id("job-skipped")).to_have_text("3")
    expect(page.get_by_test_id("job-reasons")).to_contain_text("No e-mail address")

    sent = [path for path in _outbox(folders) if path not in before]
    recipients = [parseaddr(message_from_bytes(path.read_bytes())["To"])[1] for path in sent]
    assert sorted(recipients) == sorted(addresses)  # one each, nobody else

    page.get_by_role("link", name="← Jobs").click()
    row = page.get_by_test_id("job-row").first
    expect(row).to_contain_text("E-mail statements")
    expect(row).to_contain_text("Done")
    assert severe_violations(page) == []


def test_the_job_page_moves_its_bar_as_the_job_runs_and_reloads_once_it_has_finished(
        app, job_page):
    with app.app_context():
        owner = db.session.query(User).filter_by(email="owner@example.com").one_or_none() \
            or create_user("owner")
        job = Job(kind="bulk_set_dormant", title="Set 10 customers dormant", user_id=owner.id,
                  params={}, status="running", total=10, done=0, skips=[], reasons={},
                  state={})
        db.session.add(job)
        db.session.commit()
        job_id = job.id
    page = job_page("owner")
    page.goto(f"/admin/owner/jobs/{job_id}/")
    expect(page.get_by_test_id("job-bar")).to_have_attribute("value", "0")
    assert severe_violations(page) == []
    page.evaluate("() => { window.stillThisPage = true; }")

    def move(**values):
        with app.app_context():
            row = db.session.get(Job, job_id)
            for name, value in values.items():
                setattr(row, name, value)
            db.session.commit()

    move(done=7, changed=6, skipped=1)
    expect(page.get_by_test_id("job-bar")).to_have_attribute("value", "70")
    expect(page.get_by_test_id("job-count")).to_contain_text("7 of 10 done")
    expect(page.get_by_test_id("job-skipped")).to_have_text("1")
    assert page.evaluate("() => window.stillThisPage === true")  # moved, not reloaded

    move(done=10, changed=9, status="done", summary="Set 9 customers dormant; 1 skipped.")
    expect(page.get_by_test_id("job-summary")).to_have_text(
        "Set 9 customers dormant; 1 skipped.")
    expect(page.get_by_test_id("job-bar")).to_have_attribute("value", "100")
    assert page.evaluate("() => window.stillThisPage === undefined")  # reloaded once
    assert page.evaluate("() => document.querySelector('[data-job-progress]')"
                         ".getAttribute('data-finished')") == "1"
