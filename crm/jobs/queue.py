"""The queue: one Huey instance per application, its tasks and its schedule.

- No ``REDIS_URL``: ``SqliteHuey`` in a file of the instance folder (``instance/jobs.huey``),
  so one machine needs no extra service; the web process and ``flask crm worker`` share it.
- ``REDIS_URL`` set: ``RedisHuey`` on that server, so any number of consumers on any number
  of machines share one queue.
- ``CRM_JOBS_IMMEDIATE=1`` (and the tests' configuration): Huey's immediate mode runs a task
  as soon as it is queued, in the same process, with no consumer; what the tests of screens
  use. The consumer's own behaviour is tested with real processes.

The queue carries only a job's id (``run``). Everything else is in the ``job`` table, so a
message lost with a killed consumer is not a job lost: ``rescue`` (when a consumer starts,
then every minute) queues again any job whose consumer has stopped beating.

Schedule (a consumer started with ``--no-schedule`` leaves it to another): the ledger's
overdue figures re-aged nightly, the loyalty scores refreshed nightly, the home page's costly
counts made nightly, old job files removed daily, stranded jobs rescued every minute.
"""

import logging
from datetime import timedelta
from pathlib import Path

from flask import Flask, current_app
from huey import RedisHuey, SqliteHuey, crontab
from sqlalchemy import or_, select, update

from crm.extensions import db
from crm.jobs import KINDS, QUEUE_EXTENSION, RUN_TASK, start_job
from crm.models import Job
from crm.models.base import utcnow

log = logging.getLogger("crm.jobs")
EXTENSION = QUEUE_EXTENSION


def make_huey(app: Flask):
    config = app.config
    immediate = bool(config.get("CRM_JOBS_IMMEDIATE"))
    redis_url = (config.get("REDIS_URL") or "").strip()
    name = config.get("CRM_QUEUE_NAME", "crm")
    if redis_url and not immediate:
        return RedisHuey(name, url=redis_url, results=False)
    path = Path(config.get("CRM_QUEUE_FILE") or Path(app.instance_path) / "jobs.huey")
    path.parent.mkdir(parents=True, exist_ok=True)
    return SqliteHuey(name, filename=str(path), results=False, immediate=immediate)


def init_app(app: Flask) -> None:
    import crm.jobs.customers  # noqa: F401  (registers the kinds of job)
    import crm.jobs.imports  # noqa: F401
    import crm.jobs.ledger  # noqa: F401

    huey = make_huey(app)
    app.extensions[EXTENSION] = huey

    @huey.task(name="run_job")
    def run(job_id: int) -> None:
        from crm.jobs.runner import run_job

        with app.app_context():
            run_job(job_id)

    @huey.periodic_task(crontab(minute="*"), name="rescue_jobs")
    def rescue_every_minute() -> None:
        with app.app_context():
            rescue()

    @huey.periodic_task(crontab(minute="10", hour="2"), name="age_ledger")
    def nightly_ageing() -> None:
        with app.app_context():
            scheduled("age_ledger", "Re-age overdue figures (nightly)")

    @huey.periodic_task(crontab(minute="40", hour="2"), name="refresh_loyalty")
    def nightly_loyalty() -> None:
        with app.app_context():
            scheduled("refresh_loyalty", "Refresh loyalty scores (nightly)")

    @huey.periodic_task(crontab(minute="50", hour="2"), name="count_figures")
    def nightly_counts() -> None:
        with app.app_context():
            scheduled("count_figures", "Count the home page's figures (nightly)")

    @huey.periodic_task(crontab(minute="20", hour="3"), name="remove_old_job_files")
    def daily_cleanup() -> None:
        with app.app_context():
            scheduled("remove_old_job_files", "Remove old job files (daily)")

    app.extensions[RUN_TASK] = run


def huey_of(app: Flask | None = None):
    return (app or current_app).extensions[EXTENSION]


def enqueue(job_id: int) -> None:
    """Hand job ``job_id`` to the queue (what ``start_job`` calls after its commit)."""
    current_app.extensions[RUN_TASK](job_id)


def scheduled(kind: str, title: str) -> int | None:
    """Start a scheduled job unless one of its kind started in the last 12 hours (several
    consumers may each keep the schedule); run it here, in the consumer that keeps it."""
    from crm.jobs.runner import run_job

    since = utcnow() - timedelta(hours=12)
    session = db.session
    recent = session.scalar(select(Job.id).where(Job.kind == kind, Job.user_id.is_(None),
                                                 Job.created_at >= since).limit(1))
    if recent is not None or kind not in KINDS:
        return None
    job = start_job(session, kind=kind, actor=None, title=title)
    session.commit()
    run_job(job.id)
    return job.id


def rescue() -> list[int]:
    """Queue again the jobs no consumer is running: running with no heartbeat for
    ``CRM_JOB_STALE_SECONDS`` (their consumer died), or queued that long ago and never
    picked up (the message was lost, say with a Redis restart). A job queued twice runs
    once: the second run finds it finished or running."""
    stale = utcnow() - timedelta(seconds=float(current_app.config.get(
        "CRM_JOB_STALE_SECONDS", 120)))
    session = db.session
    ids = list(session.scalars(select(Job.id).where(or_(
        (Job.status == "running") & (Job.heartbeat_at < stale),
        (Job.status == "queued") & (Job.updated_at < stale),
    )).order_by(Job.id).limit(100)))
    if ids:
        session.execute(update(Job).where(Job.id.in_(ids), Job.status == "queued")
                        .values(updated_at=utcnow()))
    session.commit()
    for job_id in ids:
        log.warning("Job %s had no consumer: queued again.", job_id)
        enqueue(job_id)
    return ids


def consumer(app: Flask, *, workers: int = 1, schedule: bool = True):
    """A Huey consumer for ``app`` (``flask crm worker``), after rescuing stranded jobs.
    Asked to stop (Ctrl+C, SIGTERM), it tells the jobs in hand to stop at their chunk
    boundary and go back to the queue, so stopping never waits for a whole job."""
    from crm.jobs.runner import stop_at_chunk_boundary

    with app.app_context():
        rescue()
    made = huey_of(app).create_consumer(workers=workers, periodic=schedule,
                                        worker_type="thread", initial_delay=0.1,
                                        max_delay=2.0, backoff=1.15)
    stop = made.stop

    def stop_after_the_chunk(graceful: bool = False) -> None:
        stop_at_chunk_boundary()
        stop(graceful=graceful)

    made.stop = stop_after_the_chunk
    return made
