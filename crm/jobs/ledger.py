"""Scheduled and maintenance jobs: the nightly re-ageing of overdue figures, the nightly
refresh of loyalty scores, the ledger check (started from Settings → Jobs, it lists every
difference on its page) and the daily removal of old job files. The CLI commands of the
same names stay; these are the same functions run as jobs."""

import shutil
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm import ledger, ledger_totals, loyalty
from crm.jobs import Chunk, Context, Kind, jobs_folder, register
from crm.models import Customer, Job
from crm.models.base import utcnow

LOYALTY_CHUNK = 50_000  # customer ids per chunk of the loyalty refresh
LISTED = 200  # differences a ledger check lists on its page


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
                             capability="run_jobs", money=True))


def _cleanup_chunk(session: Session, job: Job, context: Context) -> Chunk:
    days = int(context.config.get("CRM_JOB_FILES_DAYS", 7))
    before = utcnow() - timedelta(days=days)
    old = list(session.scalars(select(Job).where(
        Job.finished_at < before, Job.result_path.is_not(None))))
    root = jobs_folder(context.config)
    for finished in old:
        shutil.rmtree(root / f"job-{finished.id}", ignore_errors=True)
        finished.result_path = None
        finished.summary = (finished.summary or "") + " Its file was removed after " \
            f"{days} days."
    return Chunk(cursor=0, processed=len(old), changed=len(old), last=True)


def _cleanup_finish(session: Session, job: Job, context: Context) -> str:
    return f"Removed the files of {job.changed:,} job(s) finished more than " \
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
