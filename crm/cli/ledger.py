"""``flask crm check-ledger`` and ``age-ledger``: the stored ledger against the documents,
and the nightly re-ageing of overdue figures."""

from datetime import date

import click
from flask.cli import with_appcontext

from crm import ledger
from crm.extensions import db


@click.command("check-ledger")
@click.option("--limit", default=20, help="How many differences to print.")
@with_appcontext
def check_ledger(limit: int) -> None:
    """Recompute every balance from the documents and report any difference."""
    ledger.refresh_stale(db.session)
    db.session.commit()
    found, total = ledger.differences(db.session, limit=limit)
    for diff in found:
        click.echo(
            f"{diff.reference}: {diff.field} stored {diff.stored} expected {diff.expected}"
        )
    if total:
        raise click.ClickException(f"{total} ledger difference(s) found.")
    click.echo("Ledger agrees with the documents.")


@click.command("age-ledger")
@with_appcontext
def age_ledger() -> None:
    """Re-age overdue figures that changed with the calendar (run nightly)."""
    changed = ledger.refresh_stale(db.session, date.today())
    db.session.commit()
    click.echo(f"Re-aged {changed} customer(s).")


COMMANDS = (check_ledger, age_ledger)
