"""Settings → Jobs (crm.admin_views.jobs): the list, a job's page, its progress as JSON, its
result file and Cancel, the Check the ledger button, and who may see which job: a
coordinator sees only their own jobs and never a money job; owners and admins see all.
Anything a person may not see answers 404 everywhere, like a job that does not exist."""

import re
from datetime import timedelta
from pathlib import Path

import pytest

from crm.extensions import db
from crm.models import Job
from crm.models.base import utcnow
from tests.integration.helpers import (
    flashes,
    load,
    staff_user,
    statements,
    text_of,
    url,
)


def _job(app, user_id, **values) -> int:
    """A job row as the runner leaves it (queued and running ones cannot be made by
    starting a job here: the tests run jobs as soon as they are queued)."""
    with app.app_context():
        row = dict(kind="bulk_set_dormant", title="Set 10 customers dormant", money=False,
                   params={}, status="running", total=10, done=4, skips=[], reasons={},
                   state={})
        row.update(values)
        job = Job(user_id=user_id, **row)
        db.session.add(job)
        db.session.commit()
        return job.id


def _colleague(app, role="coordinator") -> int:
    with app.app_context():
        user = staff_user(db.session, role)
        db.session.commit()
        return user.id


def _listed(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-testid="job-row" data-job-id="(\d+)"', html)]


def _plain(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def _result_file(app, job_id: int, content: bytes = b"PK zip bytes") -> str:
    folder = Path(app.config["CRM_JOBS_DIR"]) / f"job-{job_id}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "statements.zip").write_bytes(content)
    return f"job-{job_id}/statements.zip"


# --- the list --------------------------------------------------------------------------
def test_the_list_shows_the_newest_job_first_with_who_started_it_and_how_far_it_got(
        app, client, login):
    owner = login("owner")
    now = utcnow()
    old = _job(app, owner.id, title="Set 3 customers dormant", status="done", total=3, done=3,
               changed=3, created_at=now - timedelta(hours=2), finished_at=now)
    new = _job(app, None, kind="refresh_loyalty", title="Refresh loyalty scores (nightly)",
               total=200, done=50, created_at=now - timedelta(minutes=5))

    page = text_of(client.get(url("owner", "jobs")))

    assert _listed(page) == [new, old]
    row = page.split(f'data-job-id="{new}"', 1)[1].split("</tr>", 1)[0]
    assert "Refresh loyalty scores (nightly)" in row
    assert "Scheduled" in row and "Running" in row and "50 of 200" in row and "(25%)" in row
    done_row = page.split(f'data-job-id="{old}"', 1)[1].split("</tr>", 1)[0]
    assert "Owner" in done_row and "Done" in done_row and "3 of 3" in done_row


def test_the_list_filters_by_kind_and_by_status(app, client, login):
    owner = login("owner")
    dormant = _job(app, owner.id)
    finished = _job(app, owner.id, status="done", done=10, finished_at=utcnow())
    loyalty = _job(app, owner.id, kind="refresh_loyalty", title="Refresh loyalty scores")

    assert _listed(text_of(client.get(url("owner", "jobs", "?kind=bulk_set_dormant")))) == [
        finished, dormant]
    assert _listed(text_of(client.get(url("owner", "jobs", "?status=running")))) == [
        loyalty, dormant]
    both = text_of(client.get(url("owner", "jobs", "?kind=bulk_set_dormant&status=done")))
    assert _listed(both) == [finished]
    none = text_of(client.get(url("owner", "jobs", "?kind=check_ledger")))
    assert _listed(none) == [] and "No jobs match this filter." in none


def test_a_filter_the_list_does_not_offer_is_a_sentence_not_an_error(app, client, login):
    owner = login("owner")
    job = _job(app, owner.id)

    for query in ("?kind=nonsense", "?status=exploded", "?kind=%27%3B--"):
        response = client.get(url("owner", "jobs", query), follow_redirects=True)
        assert response.status_code == 200
        assert flashes(text_of(response)) == [
            "That filter is not one the list offers; showing every job."]
        assert _listed(text_of(response)) == [job]


def test_a_coordinator_is_not_offered_the_money_kinds_as_a_filter(app, client, login):
    login("coordinator")
    page = text_of(client.get(url("coordinator", "jobs")))
    assert "Set customers dormant" in page
    assert "E-mail statements" not in page and "Check the ledger" not in page
    response = client.get(url("coordinator", "jobs", "?kind=email_statements"),
                          follow_redirects=True)
    assert "That filter is not one the list offers" in text_of(response)


def test_an_empty_list_says_what_will_appear_there(app, client, login):
    login("coordinator")
    page = text_of(client.get(url("coordinator", "jobs")))
    assert _listed(page) == []
    assert "No jobs yet." in page


def test_the_list_pages_older_jobs(app, client, login, monkeypatch):
    from crm.admin_views import jobs

    monkeypatch.setattr(jobs, "PAGE_SIZE", 2)
    owner = login("owner")
    now = utcnow()
    ids = [_job(app, owner.id, created_at=now - timedelta(minutes=i)) for i in range(3)]

    first = text_of(client.get(url("owner", "jobs")))
    second = text_of(client.get(url("owner", "jobs", "?page=1")))
    beyond = client.get(url("owner", "jobs", "?page=99999999999999999999"))

    assert _listed(first) == ids[:2] and 'data-testid="next-page"' in first
    assert _listed(second) == ids[2:] and 'data-testid="next-page"' not in second
    assert beyond.status_code == 200


def test_a_list_page_costs_the_same_statements_with_two_or_forty_jobs(app, client, login):
    owner = login("owner")
    colleague = _colleague(app)
    for i in range(2):
        _job(app, owner.id if i % 2 else colleague)
    few = client.get(url("owner", "jobs"))
    for i in range(38):
        _job(app, owner.id if i % 2 else colleague, status="done", done=10)
    many = client.get(url("owner", "jobs"))

    assert (len(_listed(text_of(few))), len(_listed(text_of(many)))) == (2, 40)
    assert statements(few) == statements(many)


# --- a job's page and its progress -----------------------------------------------------
def test_the_job_page_shows_progress_the_skips_and_why_and_the_summary(app, client, login):
    owner = login("owner")
    job = _job(app, owner.id, status="done", total=5, done=5, changed=3, skipped=2,
               reasons={"Already dormant": 1, "Has unpaid invoices": 1},
               skips=[["C-000007", "Already dormant"], ["C-000009", "Has unpaid invoices"]],
               summary="Set 3 customers dormant; 2 skipped.", started_at=utcnow(),
               finished_at=utcnow())

    page = text_of(client.get(url("owner", "jobs", f"{job}/")))

    assert 'value="100"' in page and "100% 5 of 5 done" in _plain(page)
    assert 'data-testid="job-changed">3<' in page and 'data-testid="job-skipped">2<' in page
    assert "Set 3 customers dormant; 2 skipped." in page
    assert "Already dormant" in page and "Has unpaid invoices" in page
    assert 'href="/admin/owner/customer/ref/C-000007/"' in page
    assert 'data-testid="job-cancel"' not in page  # finished: nothing to cancel
    assert 'data-finished="1"' in page


def test_a_failed_job_shows_its_error_and_a_running_one_its_live_bar(app, client, login):
    owner = login("owner")
    failed = _job(app, owner.id, status="failed", error="The database was locked.",
                  finished_at=utcnow())
    running = _job(app, owner.id, total=8, done=2)

    failed_page = text_of(client.get(url("owner", "jobs", f"{failed}/")))
    running_page = text_of(client.get(url("owner", "jobs", f"{running}/")))

    assert "The job stopped with an error." in failed_page
    assert "The database was locked." in failed_page
    assert 'value="25"' in running_page and "25% 2 of 8 done" in _plain(running_page)
    assert f'data-job-progress="/admin/owner/jobs/{running}/progress"' in running_page
    assert 'data-finished="0"' in running_page and "js/jobs.js" in running_page
    assert "<script>" not in running_page  # the bar moves by the static script only


def test_the_progress_endpoint_says_where_the_job_stands(app, client, login):
    owner = login("owner")
    job = _job(app, owner.id, total=2000, done=1500, changed=1400, skipped=100)

    data = client.get(url("owner", "jobs", f"{job}/progress")).get_json()

    assert {k: data[k] for k in ("status", "done", "total", "percent", "changed", "skipped",
                                 "finished", "result_url")} == {
        "status": "running", "done": 1500, "total": 2000, "percent": 75, "changed": 1400,
        "skipped": 100, "finished": False, "result_url": None}
    assert data["text"] == {"done": "1,500", "total": "2,000", "changed": "1,400",
                            "skipped": "100"}


def test_a_finished_job_with_a_file_offers_it_to_download(app, client, login):
    owner = login("owner")
    job = _job(app, owner.id, kind="statements_zip", money=True, status="done", done=10,
               summary="10 statements in one ZIP.", finished_at=utcnow())
    with app.app_context():
        row = db.session.get(Job, job)
        row.result_path = _result_file(app, job, b"the zip")
        row.result_name, row.result_type = "statements-2026-12-05.zip", "application/zip"
        db.session.commit()

    page = text_of(client.get(url("owner", "jobs", f"{job}/")))
    data = client.get(url("owner", "jobs", f"{job}/progress")).get_json()
    download = client.get(url("owner", "jobs", f"{job}/file"))

    assert "Download statements-2026-12-05.zip" in page
    assert data["result_url"] == f"/admin/owner/jobs/{job}/file" and data["percent"] == 100
    assert download.status_code == 200 and download.data == b"the zip"
    assert download.headers["Content-Type"] == "application/zip"
    assert 'attachment; filename=statements-2026-12-05.zip' in download.headers[
        "Content-Disposition"]


@pytest.mark.parametrize("stored", [None, "job-1/gone.zip", "../../../etc/passwd",
                                    "/etc/passwd", "job-1/../../outside.txt"])
def test_a_missing_file_or_one_outside_the_jobs_folder_is_404(app, client, login, stored,
                                                              tmp_path):
    owner = login("owner")
    outside = Path(app.config["CRM_JOBS_DIR"]).parent / "outside.txt"
    outside.write_text("secret")
    job = _job(app, owner.id, status="done", done=10, result_path=stored,
               result_name="x.zip", result_type="application/zip")

    assert client.get(url("owner", "jobs", f"{job}/file")).status_code == 404
    page = text_of(client.get(url("owner", "jobs", f"{job}/")))
    assert "Download" not in page


@pytest.mark.parametrize("path", ["0/", "999999/", "99999999999999999999/", "abc/", "-1/",
                                  "999999/progress", "999999/file", "1.5/"])
def test_an_unknown_or_malformed_job_id_is_404_not_an_error(app, client, login, path):
    login("owner")
    assert client.get(url("owner", "jobs", path)).status_code == 404
    assert client.post(url("owner", "jobs", "99999999999999999999/cancel"),
                       data={}).status_code == 404


# --- Cancel ----------------------------------------------------------------------------
def test_cancel_asks_a_running_job_to_stop_and_says_so(app, client, login):
    user = login("coordinator")
    job = _job(app, user.id)

    response = client.post(url("coordinator", "jobs", f"{job}/cancel"), data={},
                           follow_redirects=True)

    assert response.status_code == 200
    assert load(app, Job, job, "cancel_requested") == {"cancel_requested": True}
    assert any("Cancel asked" in m for m in flashes(text_of(response)))
    assert 'data-testid="cancel-asked"' in text_of(response)
    assert 'data-testid="job-cancel"' not in text_of(response)


def test_cancelling_a_finished_job_changes_nothing(app, client, login):
    owner = login("owner")
    job = _job(app, owner.id, status="done", done=10, finished_at=utcnow())

    response = client.post(url("owner", "jobs", f"{job}/cancel"), data={},
                           follow_redirects=True)

    assert "already finished" in " ".join(flashes(text_of(response)))
    assert load(app, Job, job, "cancel_requested", "status") == {
        "cancel_requested": False, "status": "done"}


def test_cancel_without_the_csrf_token_is_refused(app, client, login):
    user = login("owner")
    job = _job(app, user.id)

    response = client.post(url("owner", "jobs", f"{job}/cancel"), data={}, csrf=False)

    assert response.status_code == 400
    assert load(app, Job, job, "cancel_requested") == {"cancel_requested": False}


def test_an_owner_may_cancel_a_colleagues_job(app, client, login):
    login("owner")
    job = _job(app, _colleague(app))

    page = text_of(client.get(url("owner", "jobs", f"{job}/")))
    client.post(url("owner", "jobs", f"{job}/cancel"), data={})

    assert 'data-testid="job-cancel"' in page
    assert load(app, Job, job, "cancel_requested") == {"cancel_requested": True}


# --- who sees which job ----------------------------------------------------------------
def _every_way_in(client, role: str, job: int) -> dict[str, int]:
    return {
        "page": client.get(url(role, "jobs", f"{job}/")).status_code,
        "progress": client.get(url(role, "jobs", f"{job}/progress")).status_code,
        "file": client.get(url(role, "jobs", f"{job}/file")).status_code,
        "cancel": client.post(url(role, "jobs", f"{job}/cancel"), data={}).status_code,
    }


HIDDEN = {"page": 404, "progress": 404, "file": 404, "cancel": 404}


def test_a_coordinator_never_reaches_a_colleagues_job(app, client, login):
    login("coordinator")
    job = _job(app, _colleague(app))
    with app.app_context():
        row = db.session.get(Job, job)
        row.result_path, row.result_name = _result_file(app, job), "export.csv"
        db.session.commit()

    assert _every_way_in(client, "coordinator", job) == HIDDEN
    assert _listed(text_of(client.get(url("coordinator", "jobs")))) == []
    assert load(app, Job, job, "cancel_requested") == {"cancel_requested": False}


def test_a_coordinator_never_reaches_a_money_job_even_one_they_started(app, client, login):
    user = login("coordinator")
    money = _job(app, user.id, kind="statements_zip", title="Statements of 10 customers",
                 money=True)
    with app.app_context():
        row = db.session.get(Job, money)
        row.result_path, row.result_name = _result_file(app, money), "statements.zip"
        db.session.commit()
    own = _job(app, user.id)

    assert _every_way_in(client, "coordinator", money) == HIDDEN
    assert _listed(text_of(client.get(url("coordinator", "jobs")))) == [own]
    assert load(app, Job, money, "cancel_requested") == {"cancel_requested": False}


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owners_and_admins_see_every_job_money_and_scheduled_ones_too(app, client, login,
                                                                       role):
    login(role)
    colleague = _colleague(app)
    jobs = [_job(app, colleague), _job(app, colleague, kind="statements_zip", money=True),
            _job(app, None, kind="age_ledger", money=True)]

    listed = _listed(text_of(client.get(url(role, "jobs"))))

    assert sorted(listed) == sorted(jobs)
    for job in jobs:
        assert client.get(url(role, "jobs", f"{job}/")).status_code == 200
        assert client.get(url(role, "jobs", f"{job}/progress")).status_code == 200


def test_a_job_page_of_another_roles_panel_is_not_a_way_round(app, client, login):
    login("coordinator")
    money = _job(app, _colleague(app, "owner"), kind="statements_zip", money=True)

    assert client.get(url("owner", "jobs", f"{money}/")).status_code == 403
    assert client.get(url("owner", "jobs", f"{money}/file")).status_code == 403


# --- starting a job from here, and landing on its page ---------------------------------
def test_check_the_ledger_starts_the_job_and_lands_on_its_page(app, client, login):
    login("owner")

    response = client.post(url("owner", "jobs", "check-ledger"), data={})

    with app.app_context():
        job = db.session.scalars(db.select(Job)).one()
        assert (job.kind, job.status) == ("check_ledger", "done")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/admin/owner/jobs/{job.id}/")
    page = text_of(client.get(response.headers["Location"]))
    assert "The ledger agrees with the documents." in page


def test_only_roles_that_run_jobs_get_the_check_the_ledger_button(app, client, login):
    login("coordinator")
    assert 'data-testid="check-ledger"' not in text_of(client.get(url("coordinator", "jobs")))
    assert client.post(url("coordinator", "jobs", "check-ledger"), data={}).status_code == 403


def test_job_page_url_is_the_signed_in_roles_own_address(app, login):
    from flask_login import login_user

    from crm.admin_views.jobs import job_file_url, job_page_url

    with app.test_request_context():
        user = staff_user(db.session, "admin")
        login_user(user)
        assert job_page_url(12) == "/admin/admin/jobs/12/"
        assert job_file_url(12) == "/admin/admin/jobs/12/file"
        db.session.rollback()
