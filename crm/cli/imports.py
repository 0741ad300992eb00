"""``flask crm import FILE --what work_addresses``: the import of Customers → Import from the
command line — the same staging, column matching, rules and job — run here with a progress
bar (or queued for the worker with ``--queue``)."""

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from crm.extensions import db
from crm.models import ImportMapping
from crm.models.job import IMPORT_TARGETS


@click.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--what", "target", type=click.Choice(IMPORT_TARGETS), required=True,
              help="What the file holds.")
@click.option("--mapping", help="A column matching saved on Customers → Import (its name); "
              "default: guessed from the headers.")
@click.option("--check", is_flag=True, help="Go through every row and report, writing nothing.")
@click.option("--queue", is_flag=True, help="Hand it to the worker instead of running it here.")
@click.option("--actor", help="E-mail of the staff user it is done for (the audit trail, the "
              "job's page); default: the system.")
@with_appcontext
def import_file(path: Path, target: str, mapping: str | None, check: bool, queue: bool,
                actor: str | None) -> None:
    """Import customers, contacts or work addresses from a CSV or XLSX file."""
    from crm.actions import ActionError
    from crm.cli.customers import find_actor
    from crm.cli.jobs import run_job_command
    from crm.jobs.imports import start_import
    from crm.jobs.queue import enqueue

    columns = None
    if mapping:
        saved = db.session.scalar(select(ImportMapping).where(
            ImportMapping.target == target, ImportMapping.name == mapping.strip()))
        if saved is None:
            raise click.BadParameter(f"no saved matching {mapping!r} for {target}",
                                     param_hint="--mapping")
        columns = dict(saved.columns)
    try:
        job = start_import(db.session, source=path, target=target, actor=find_actor(actor),
                           config=current_app.config, mapping=columns, dry_run=check,
                           enqueue=enqueue if queue else None)
    except ActionError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    if queue:
        click.echo(f"Job #{job.id} queued: follow it with `flask --app app crm jobs` or on "
                   "Settings > Jobs.")
        return
    click.get_current_context().invoke(run_job_command, job_id=job.id)
    from crm.models import Job

    db.session.expire_all()
    finished = db.session.get(Job, job.id)
    if finished.result_path:
        folder = Path(current_app.config["CRM_JOBS_DIR"])
        click.echo(f"Refused rows and the report: {folder / finished.result_path}")


COMMANDS = (import_file,)
