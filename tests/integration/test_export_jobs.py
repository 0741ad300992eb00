"""Exports past CRM_EXPORT_THRESHOLD rows are background jobs (``export_csv``,
``export_xlsx``): the request asks to confirm (a POST with its CSRF token), the user lands on
the job's page, and the file has exactly the rows of the export made at once, in the same
order, with the same columns; a chunk that fails part-way and is run again writes its rows
once. (The tests run jobs as soon as they are queued, in the test's process.)"""

import io
import re
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from crm.admin_views import exports
from crm.admin_views.exports import XLSX_MIMETYPE, start_export
from crm.extensions import db
from crm.jobs import Context, Superseded, job_folder, runner
from crm.jobs.runner import run_job
from crm.models import Customer, Job, User
from tests import factories as f
from tests.integration.helpers import (
    csv_table,
    customer,
    staff_user,
    text_of,
    url,
    view_for,
)

ROWS = 23  # threshold 5, chunks of 4: six chunks, the last one short


@pytest.fixture
def small(app, monkeypatch):
    """Exports of more than 5 rows are jobs, working 4 rows a chunk."""
    monkeypatch.setitem(app.config, "CRM_EXPORT_THRESHOLD", 5)
    monkeypatch.setitem(app.config, "CRM_JOB_CHUNK_SIZE", 4)


@pytest.fixture
def owner(login):
    return login("owner")


def _customers(app, n: int = ROWS) -> None:
    """``n`` customers Row000... (a formula in one first name, a quarter dormant, loyalty
    scores out of order) and one in credit (Zmoney)."""
    with app.app_context():
        for i in range(n):
            customer(db.session, surname=f"Row{i:03d}", first_name="=1+1" if i == 3 else "Ann",
                     status="dormant" if i % 4 == 0 else "active", loyalty_score=(i * 7) % 50)
        rich = customer(db.session, surname="Zmoney")
        f.make_payment(db.session, rich, amount="12.50")
        db.session.commit()


def _direct(app, client, fmt: str, query: str = "", role: str = "owner"):
    """The same export made at once (the threshold out of the way)."""
    app.config["CRM_EXPORT_THRESHOLD"] = 1_000_000
    try:
        response = client.get(url(role, "customer", f"export/{fmt}/{query}"))
    finally:
        app.config["CRM_EXPORT_THRESHOLD"] = 5
    assert response.status_code == 200
    return response


def _as_job(app, client, fmt: str, query: str = "", role: str = "owner") -> Job:
    page = client.get(url(role, "customer", f"export/{fmt}/{query}"))
    assert page.status_code == 200
    html = text_of(page)
    assert 'data-testid="export-job-form"' in html and "csrf_token" in html
    action = re.search(r'data-testid="export-job-page".*?<form method="post" action="([^"]+)"',
                       html, re.S).group(1).replace("&amp;", "&")
    started = client.post(action, data={})
    assert started.status_code == 302
    with app.app_context():
        job = db.session.scalars(select(Job).order_by(Job.id.desc())).first()
        db.session.expunge(job)
    assert started.headers["Location"].endswith(f"/admin/{role}/jobs/{job.id}/")
    return job


def _file(app, job: Job) -> bytes:
    return (Path(app.config["CRM_JOBS_DIR"]) / job.result_path).read_bytes()


def _table(data: bytes) -> list[list[str]]:
    import csv

    return list(csv.reader(io.StringIO(data.decode())))


def _sheet(data: bytes) -> list[list]:
    book = load_workbook(io.BytesIO(data))
    return [list(row) for row in book.worksheets[0].iter_rows(values_only=True)]


def _status_arg(app) -> str:
    view = view_for(app, "customer", "owner")
    return next(arg for arg, (_, flt) in view._filter_args.items() if flt.name == "Status")


def _loyalty_sort(app) -> int:
    view = view_for(app, "customer", "owner")
    return [name for name, _ in view._list_columns].index("loyalty_score")


@pytest.mark.parametrize(("query", "rows"), [("", ROWS + 1), ("?sort={sort}&desc=1", ROWS + 1),
                                             ("?search=row01", 10), ("?flt0_{status}=dormant", 6)],
                         ids=["default", "sorted", "searched", "filtered"])
def test_a_csv_job_has_the_rows_of_the_export_made_at_once(app, client, owner, small, query,
                                                          rows):
    _customers(app)
    query = query.format(status=_status_arg(app), sort=_loyalty_sort(app))

    job = _as_job(app, client, "csv", query)

    with app.app_context():
        done = db.session.get(Job, job.id)
        assert done.status == "done", (done.error, done.summary)
        assert done.result_type == "text/csv" and done.result_name.endswith(".csv")
        assert done.money is True  # the owner's customer export has the balances
        assert done.chunks > 1 or "search" in query
        data = _file(app, done)
    direct = csv_table(_direct(app, client, "csv", query))
    assert _table(data) == direct
    surnames = [row[direct[0].index("Surname")] for row in direct[1:]]
    assert len(surnames) == rows
    if "flt" in query:
        assert {row[direct[0].index("Status")] for row in direct[1:]} == {"dormant"}
    if "search" in query:
        assert all(name.startswith("Row01") for name in surnames)
    if "sort" in query:  # by loyalty, highest first (not the order they were made in)
        scores = [int(row[direct[0].index("Loyalty")]) for row in direct[1:]]
        assert scores == sorted(scores, reverse=True) and surnames != sorted(surnames)


def test_an_xlsx_job_has_the_cells_of_the_export_made_at_once(app, client, owner, small):
    _customers(app)

    job = _as_job(app, client, "xlsx", f"?sort={_loyalty_sort(app)}&desc=1")

    with app.app_context():
        done = db.session.get(Job, job.id)
        assert done.status == "done", (done.error, done.summary)
        assert done.result_type == XLSX_MIMETYPE and done.result_name.endswith(".xlsx")
        data = _file(app, done)
        folder = Path(app.config["CRM_JOBS_DIR"]) / f"job-{job.id}"
        assert sorted(p.name for p in folder.iterdir()) == ["export.xlsx"]  # parts removed
    sheet = _sheet(data)
    assert sheet == _sheet(_direct(app, client, "xlsx", f"?sort={_loyalty_sort(app)}&desc=1")
                          .get_data())
    assert len(sheet) == ROWS + 2
    first_names = [row[sheet[0].index("First Name")] for row in sheet[1:]]
    assert "'=1+1" in first_names


def test_a_job_keeps_no_search_words_once_its_rows_are_chosen(app, client, owner, small):
    _customers(app)

    job = _as_job(app, client, "csv", "?search=row01")

    with app.app_context():
        params = db.session.get(Job, job.id).params
    assert "row01" not in repr(params)
    assert params["narrowed"] is True
    assert params["endpoint"] == "customer_owner"


def test_a_coordinators_export_job_is_not_a_money_job_and_has_no_money(app, client, login,
                                                                        small):
    login("coordinator")
    _customers(app)

    job = _as_job(app, client, "csv", role="coordinator")

    with app.app_context():
        done = db.session.get(Job, job.id)
        assert done.status == "done" and done.money is False
        table = _table(_file(app, done))
    assert "Balance" not in table[0] and "Account Credit" not in table[0]
    assert table == csv_table(_direct(app, client, "csv", role="coordinator"))


def test_starting_an_export_job_needs_the_csrf_token(app, client, owner, small):
    _customers(app)

    refused = client.post(url("owner", "customer", "export/csv/"), data={}, csrf=False)

    assert refused.status_code == 400
    with app.app_context():
        assert db.session.scalar(select(Job.id)) is None


def test_an_export_under_the_threshold_is_made_at_once_even_when_posted(app, client, owner):
    _customers(app, 3)

    response = client.post(url("owner", "customer", "export/csv/"), data={})

    assert response.status_code == 200 and response.mimetype == "text/csv"
    with app.app_context():
        assert db.session.scalar(select(Job.id)) is None


class _FailOnce:
    """Raise once, the ``at``-th time it is called, after the real call (so the chunk's
    rows are already in the file when it fails)."""

    def __init__(self, real, at: int):
        self.real, self.at, self.calls = real, at, 0

    def __call__(self, *args, **kwargs):
        result = self.real(*args, **kwargs)
        self.calls += 1
        if self.calls == self.at:
            raise RuntimeError("the disk went away")
        return result


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_a_chunk_that_fails_mid_way_is_written_once_when_run_again(app, client, owner, small,
                                                                   monkeypatch, fmt):
    """Fails halfway through the third chunk's rows: part of them are already in the file;
    the retry cuts the file back to what the second chunk committed."""
    _customers(app)
    fail = _FailOnce(exports.ExportMixin.csv_cells if fmt == "csv"
                     else exports.ExportMixin.xlsx_cells, at=10)
    monkeypatch.setattr(exports.ExportMixin, f"{fmt}_cells",
                        lambda self, *a: fail(self, *a))

    job = _as_job(app, client, fmt)

    with app.app_context():
        done = db.session.get(Job, job.id)
        assert done.status == "done", (done.error, done.summary)
        data = _file(app, done)
    assert fail.calls > 10  # it did fail, and went on
    if fmt == "csv":
        table = _table(data)
        assert table == csv_table(_direct(app, client, "csv"))
    else:
        table = _sheet(data)
        assert table == _sheet(_direct(app, client, "xlsx").get_data())
    references = [row[0] for row in table[1:]]
    assert len(references) == len(set(references)) == ROWS + 1


def test_a_crash_after_the_chunk_is_written_but_before_it_commits(app, client, owner, small,
                                                                   monkeypatch):
    """The worker dies between writing a chunk's rows and committing its progress: the rows
    are in the file, the recorded size is the one before. The next run cuts them off and
    writes them again: each row once."""
    _customers(app)
    real = runner._record
    calls = []

    def record(session, job, chunk, started_from):
        calls.append(started_from)
        if len(calls) == 3:
            raise RuntimeError("killed")
        return real(session, job, chunk, started_from)

    monkeypatch.setattr(runner, "_record", record)

    job = _as_job(app, client, "csv")

    with app.app_context():
        done = db.session.get(Job, job.id)
        assert done.status == "done", (done.error, done.summary)
        table = _table(_file(app, done))
    assert calls[2] == calls[3]  # the third chunk ran twice
    assert table == csv_table(_direct(app, client, "csv"))


def test_rows_deleted_after_the_job_started_are_left_out_and_counted(app, client, owner,
                                                                     small, monkeypatch):
    _customers(app)
    real = exports._slice
    seen = []

    def slice_then_merge(path, start, size):
        ids = real(path, start, size)
        if start and not seen:  # the second chunk: one of its customers is merged away
            seen.append(ids[0])
            db.session.execute(Customer.__table__.update().where(Customer.id == ids[0])
                               .values(merged_into_id=ids[1]))
            db.session.commit()
        return ids

    monkeypatch.setattr(exports, "_slice", slice_then_merge)

    job = _as_job(app, client, "csv")

    with app.app_context():
        done = db.session.get(Job, job.id)
        assert done.status == "done"
        assert done.skipped == 1 and done.changed == ROWS
        assert "1 deleted or merged since the export started" in done.summary
        table = _table(_file(app, done))
        gone = db.session.get(Customer, seen[0]).reference
    assert len(table) == ROWS + 1
    assert gone not in [row[0] for row in table]


def test_start_export_from_python_exports_the_whole_list(app, small):
    """What bench/ and the shell use: the whole customer list of one role, for one user."""
    _customers(app)
    with app.app_context():
        user = staff_user(db.session, "admin")
        job = start_export(db.session, user, "customer_admin", "xlsx")
        db.session.commit()
        assert run_job(job.id) == "done"
        db.session.expire_all()
        done = db.session.get(Job, job.id)
        sheet = _sheet(_file(app, done))
    assert len(sheet) == ROWS + 2
    assert "Balance" in sheet[0]


def test_a_user_whose_role_changed_gets_no_more_rows(app, small):
    _customers(app)
    with app.app_context():
        user = staff_user(db.session, "admin")
        job = start_export(db.session, user, "customer_admin", "csv")
        db.session.commit()
        db.session.get(User, user.id).role = "coordinator"
        db.session.commit()

        assert run_job(job.id) == "failed"
        db.session.expire_all()
        failed = db.session.get(Job, job.id)
        assert "no longer has that list's role" in failed.error
        assert failed.result_path is None


def test_start_export_refuses_another_roles_list(app):
    from crm.actions import ActionError

    with app.app_context():
        user = staff_user(db.session, "coordinator")
        with pytest.raises(ActionError, match="own role"):
            start_export(db.session, user, "customer_owner", "csv")
        with pytest.raises(ActionError, match="CSV or XLSX"):
            start_export(db.session, user, "customer_coordinator", "pdf")
        db.session.rollback()
        assert view_for(app, "customer", "coordinator").export_types == ["csv", "xlsx"]


def test_building_a_workbook_keeps_the_job_alive_and_a_second_finish_keeps_the_file(
        app, client, owner, small, monkeypatch):
    """The workbook is built in ``finish`` (minutes for a million rows): the job beats while
    it is built, so no other consumer takes it over; a finish run again after the workbook
    was renamed into place (the consumer died just after) keeps it as it is."""
    _customers(app)
    beats = []
    real = exports._beat
    monkeypatch.setattr(exports, "BEAT_SECONDS", -1)
    monkeypatch.setattr(exports, "_beat", lambda session, job: (beats.append(job.id),
                                                                real(session, job)))

    job = _as_job(app, client, "xlsx")

    with app.app_context():
        done = db.session.get(Job, job.id)
        assert done.status == "done"
        first = _file(app, done)
        assert len(beats) == done.chunks  # one part a chunk, a beat after each
        user = db.session.get(User, done.user_id)
        context = Context(folder=job_folder(app.config, job.id), actor=user,
                          config=dict(app.config))
        with Session(db.engine) as session:
            again = session.get(Job, job.id)
            summary = exports.KINDS_BY_FORMAT["xlsx"].finish(session, again, context)
        assert summary == done.summary
        assert _file(app, done) == first
    assert len(_sheet(first)) == ROWS + 2


def test_a_second_consumer_finding_the_job_moved_on_writes_nothing(app, small):
    """A consumer that took the job for dead (its first one was only slow) and reaches a
    chunk the first one has meanwhile committed stops before touching the file."""
    _customers(app)
    with app.app_context():
        user = staff_user(db.session, "admin")
        job = start_export(db.session, user, "customer_admin", "csv")
        db.session.commit()
        assert run_job(job.id) == "done"
        db.session.expire_all()
        done = db.session.get(Job, job.id)
        before = _file(app, done)
        context = Context(folder=job_folder(app.config, job.id), actor=user,
                          config=dict(app.config))
        with Session(db.engine) as session:
            stale = session.get(Job, job.id)
            set_committed_value(stale, "cursor", 4)  # what the slow consumer last saw
            with pytest.raises(Superseded):
                exports.KINDS_BY_FORMAT["csv"].run_chunk(session, stale, context)
            session.rollback()
        assert _file(app, done) == before
