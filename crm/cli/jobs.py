"""``flask crm worker`` (the job consumer), ``flask crm jobs`` (what is queued, running and
finished) and ``flask crm run-job`` (a job in the foreground, with a progress bar)."""

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from crm.extensions import db
from crm.models import Job


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
    with click.progressbar(length=max(job.total or 1, 1), label=job.title[:40]) as bar:
        seen = 0
        while thread.is_alive():
            thread.join(0.5)
            db.session.expire_all()
            now = db.session.get(Job, job_id).done
            bar.update(now - seen)
            seen = now
    db.session.expire_all()
    job = db.session.get(Job, job_id)
    click.echo(job.summary or job.status)
    if job.status == "failed":
        raise click.ClickException(job.error or "The job failed.")


COMMANDS = (worker, list_jobs, run_job_command)
