"""``flask crm worker`` (the job consumer), ``flask crm jobs`` (what is queued, running and
finished), ``flask crm start-job`` (queue one of the jobs that need no selection: the
ledger check, the ageing, the loyalty refresh...) and ``flask crm run-job`` (a job in the
foreground, with a progress bar)."""

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from crm.cli.progress import progress
from crm.extensions import db
from crm.models import Job

# The kinds that work on everything rather than a selection, as the schedule starts them.
STANDALONE = {
    "age_ledger": "Re-age overdue figures",
    "refresh_loyalty": "Refresh loyalty scores",
    "check_ledger": "Check the ledger",
    "count_figures": "Count the home page's figures",
    "remove_old_job_files": "Remove old job files",
}


def queue_job(kind: str, actor_email: str | None = None) -> Job:
    """Record a job of ``kind`` and hand it to the queue; say how to follow it."""
    from crm.cli.customers import find_actor
    from crm.jobs import start_job
    from crm.jobs.queue import enqueue

    job = start_job(db.session, kind=kind, actor=find_actor(actor_email),
                    title=f"{STANDALONE[kind]} (command line)", enqueue=enqueue)
    db.session.commit()
    if current_app.config.get("CRM_JOBS_IMMEDIATE"):
        db.session.expire_all()
        job = db.session.get(Job, job.id)
        click.echo(f"Job #{job.id} ran here ({job.status}): {job.summary or job.error or ''}")
    else:
        click.echo(f"Job #{job.id} queued: a worker runs it (flask crm worker). Follow it with "
                   f"`flask --app app crm jobs` or on Settings > Jobs, or run it here with "
                   f"`flask --app app crm run-job {job.id}`.")
    return job


@click.command("worker")
@click.option("--workers", default=1, show_default=True,
              help="Jobs run side by side in this process (threads).")
@click.option("--no-schedule", is_flag=True,
              help="Leave the nightly ageing and the other scheduled work to another worker.")
@with_appcontext
def worker(workers: int, no_schedule: bool) -> None:
    """Run a job consumer: statement runs, large bulk actions, exports, imports and the
    nightly ageing happen here. Stop it with Ctrl+C (it finishes the chunk in hand)."""
    import logging

    from crm.jobs.queue import consumer

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: "
                        "%(message)s")
    app = current_app._get_current_object()
    if app.config.get("REDIS_URL"):
        where = f"Redis ({app.config.get('CRM_QUEUE_NAME', 'crm')!r})"
    else:
        where = f"the SQLite file {app.config.get('CRM_QUEUE_FILE') or 'instance/jobs.huey'}"
    click.echo(f"Job worker: {workers} at a time, queue in {where}"
               + ("" if no_schedule else ", keeping the schedule") + ". Ctrl+C stops it "
               "after the chunk in hand.")
    consumer(app, workers=workers, schedule=not no_schedule).run()


@click.command("jobs")
@click.option("--limit", default=20, show_default=True)
@with_appcontext
def list_jobs(limit: int) -> None:
    """The newest jobs: number, status, progress and title."""
    for job in db.session.scalars(select(Job).order_by(Job.id.desc()).limit(limit)):
        total = f"/{job.total:,}" if job.total is not None else ""
        click.echo(f"#{job.id:<6} {job.status:<9} {job.done:,}{total:<12} {job.title}")


@click.command("run-job")
@click.argument("job_id", type=int)
@with_appcontext
def run_job_command(job_id: int) -> None:
    """Run a queued (or stranded) job here, in the foreground, with a progress bar."""
    import threading

    from crm.jobs.runner import run_job

    job = db.session.get(Job, job_id)
    if job is None:
        raise click.ClickException(f"There is no job {job_id}.")
    if job.finished:
        raise click.ClickException(f"Job {job_id} has already ended ({job.status}).")
    app = current_app._get_current_object()
    outcome: dict = {}

    def work():
        with app.app_context():
            outcome["status"] = run_job(job_id)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    with progress(job.total or 1, job.title[:40]) as bar:
        seen = 0
        while thread.is_alive():
            thread.join(0.5)
            db.session.expire_all()
            current = db.session.get(Job, job_id)
            if current.total and getattr(bar, "length", None) != current.total:
                bar.length = current.total  # a kind that counts its items as it goes
            bar.update(current.done - seen)
            seen = current.done
    db.session.expire_all()
    job = db.session.get(Job, job_id)
    if outcome.get("status") is None and not job.finished:
        raise click.ClickException(f"Job {job_id} is being run by a worker right now; follow "
                                   "it with `flask --app app crm jobs`.")
    click.echo(job.summary or job.status)
    if job.status == "failed":
        raise click.ClickException(job.error or "The job failed.")


@click.command("start-job")
@click.argument("kind", type=click.Choice(sorted(STANDALONE)))
@click.option("--actor", help="E-mail of the staff user the job is started for (its page "
              "shows it to them); default: the system.")
@with_appcontext
def start_job_command(kind: str, actor: str | None) -> None:
    """Queue a background job of KIND (check_ledger lists every difference on its page)."""
    queue_job(kind, actor)


COMMANDS = (worker, list_jobs, start_job_command, run_job_command)
