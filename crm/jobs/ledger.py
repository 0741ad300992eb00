"""Scheduled and maintenance jobs: the nightly re-ageing of overdue figures, the nightly
refresh of loyalty scores, the ledger check (started from Settings → Jobs, it lists every
difference on its page) and the daily removal of old job files. The CLI commands of the
same names stay; these are the same functions run as jobs."""

import os
import re
import shutil
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm import ledger, ledger_totals, loyalty
from crm.jobs import Chunk, Context, Kind, jobs_folder, register
from crm.models import Customer, Job
from crm.models.base import utcnow

LOYALTY_CHUNK = 50_000  # customer ids per chunk of the loyalty refresh
LISTED = 200  # differences a ledger check lists on its page
FOLDER = re.compile(r"job-\d{1,12}")  # crm.jobs.job_folder


def _age_chunk(session: Session, job: Job, context: Context) -> Chunk:
    changed = ledger.refresh_stale(session, date.today())
    return Chunk(cursor=0, processed=changed, changed=changed, last=True)


def _age_finish(session: Session, job: Job, context: Context) -> str:
    return f"Re-aged the overdue figures of {job.changed:,} customer(s)."


AGE_LEDGER = register(Kind(name="age_ledger", label="Re-age overdue figures",
                           run_chunk=_age_chunk, finish=_age_finish, capability="run_jobs",
                           money=True))


def _loyalty_chunk(session: Session, job: Job, context: Context) -> Chunk:
    if job.total is None:
        job.total = session.scalar(select(func.count()).select_from(Customer))
    top = session.scalar(select(func.max(Customer.id))) or 0
    upper = job.cursor + LOYALTY_CHUNK
    scope = select(Customer.id).where(Customer.id > job.cursor, Customer.id <= upper)
    processed = session.scalar(select(func.count()).select_from(scope.subquery()))
    changed = loyalty.refresh(session, scope, today=date.today())
    return Chunk(cursor=upper, processed=processed, changed=changed, last=upper >= top)


def _loyalty_finish(session: Session, job: Job, context: Context) -> str:
    return f"Loyalty scores worked out for {job.done:,} customers: {job.changed:,} changed."


REFRESH_LOYALTY = register(Kind(name="refresh_loyalty", label="Refresh loyalty scores",
                                run_chunk=_loyalty_chunk, finish=_loyalty_finish,
                                capability="run_jobs"))


def _check_chunk(session: Session, job: Job, context: Context) -> Chunk:
    ledger.refresh_stale(session)
    found, total = ledger.differences(session, limit=LISTED)
    business = ledger_totals.differences(session)
    skips = [(d.reference, f"{d.field}: stored {d.stored}, the documents give {d.expected}")
             for d in found]
    skips += [("Business-wide", str(d)) for d in business[:LISTED]]
    count = total + len(business)
    job.total = session.scalar(select(func.count()).select_from(Customer))
    return Chunk(cursor=0, processed=job.total, skips=skips,
                 reasons={"difference": count} if count else {}, last=True)


def _check_finish(session: Session, job: Job, context: Context) -> str:
    if not job.skipped:
        return "The ledger agrees with the documents."
    return (f"{job.skipped:,} difference(s) between the stored ledger and the documents "
            "(listed below). `flask crm rebuild-ledger-totals` and a re-save of the documents "
            "named put them right.")


CHECK_LEDGER = register(Kind(name="check_ledger", label="Check the ledger",
                             run_chunk=_check_chunk, finish=_check_finish,
                             capability="run_jobs", money=True, changed_label="put right",
                             skipped_label="differences"))


def _cleanup_chunk(session: Session, job: Job, context: Context) -> Chunk:
    """Remove the folders of jobs that ended more than ``CRM_JOB_FILES_DAYS`` ago (a ZIP, an
    export, or the parts a failed or cancelled run left) and of jobs no longer on record;
    the jobs that had a result file say it was removed."""
    days = int(context.config.get("CRM_JOB_FILES_DAYS", 7))
    before = utcnow() - timedelta(days=days)
    root = jobs_folder(context.config)
    try:
        folders = {int(entry.name[4:]): Path(entry.path) for entry in os.scandir(root)
                   if entry.is_dir() and FOLDER.fullmatch(entry.name)}
    except FileNotFoundError:
        folders = {}
    rows = {row.id: row for row in session.scalars(
        select(Job).where(Job.id.in_(list(folders))))} if folders else {}
    removed = 0
    for job_id, folder in sorted(folders.items()):
        row = rows.get(job_id)
        if row is not None and not (row.finished and row.finished_at is not None
                                    and row.finished_at < before):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed += 1
        if row is not None and row.result_path is not None:
            row.result_path = None
            row.summary = (row.summary or "") + f" Its file was removed after {days} days."
    return Chunk(cursor=0, processed=len(folders), changed=removed, last=True)


def _cleanup_finish(session: Session, job: Job, context: Context) -> str:
    return f"Removed the files of {job.changed:,} job(s) ended more than " \
        f"{context.config.get('CRM_JOB_FILES_DAYS', 7)} days ago."


REMOVE_OLD_FILES = register(Kind(name="remove_old_job_files", label="Remove old job files",
                                 run_chunk=_cleanup_chunk, finish=_cleanup_finish,
                                 capability="run_jobs"))


def _count_chunk(session: Session, job: Job, context: Context) -> Chunk:
    from crm.actions.stored_counts import refresh_counts

    made = refresh_counts(session)
    job.state = {**(job.state or {}), "counts": made}
    return Chunk(cursor=0, processed=len(made), changed=len(made), last=True)


def _count_finish(session: Session, job: Job, context: Context) -> str:
    made = (job.state or {}).get("counts") or {}
    listed = ", ".join(f"{name.replace('_', ' ')}: {value:,}" for name, value in made.items())
    return f"Counted the home page's costly figures ({listed})."


COUNT_FIGURES = register(Kind(name="count_figures", label="Count the home page's figures",
                              run_chunk=_count_chunk, finish=_count_finish,
                              capability="run_jobs"))
