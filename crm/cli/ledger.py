"""``flask crm check-ledger``, ``rebuild-ledger-totals`` and ``age-ledger``: the stored
ledger (each customer's figures and the business-wide ones) against the documents, their
rebuild after a bulk load, and the nightly re-ageing of overdue figures."""

from datetime import date

import click
from flask.cli import with_appcontext

from crm import ledger, ledger_totals
from crm.cli.progress import customer_count, id_windows, progress
from crm.extensions import db
from crm.models import Customer


@click.command("check-ledger")
@click.option("--limit", default=20, help="How many differences to print.")
@click.option("--as-job", is_flag=True,
              help="Queue it as a background job instead (its page lists every difference).")
@with_appcontext
def check_ledger(limit: int, as_job: bool) -> None:
    """Recompute every balance from the documents and report any difference."""
    if as_job:
        from crm.cli.jobs import queue_job

        queue_job("check_ledger")
        return
    ledger.refresh_stale(db.session)
    db.session.commit()
    with progress(customer_count(db.session), "Checking the ledger") as bar:
        found, total = ledger.differences(db.session, limit=limit, progress=bar.update)
    for diff in found:
        click.echo(
            f"{diff.reference}: {diff.field} stored {diff.stored} expected {diff.expected}"
        )
    business = ledger_totals.differences(db.session)
    for diff in business[:limit]:
        click.echo(f"Business-wide {diff}")
    total += len(business)
    if total:
        raise click.ClickException(f"{total} ledger difference(s) found.")
    click.echo("Ledger agrees with the documents.")


@click.command("rebuild-ledger-totals")
@with_appcontext
def rebuild_ledger_totals() -> None:
    """Recompute the business-wide figures of the dashboard from the documents (after a
    bulk load that bypassed the database triggers) and re-create the triggers."""
    ledger_totals.rebuild(db.session.connection())
    db.session.commit()
    click.echo("Business-wide figures rebuilt from the documents.")


@click.command("count-figures")
@with_appcontext
def count_figures() -> None:
    """Make the dashboard's costly counts (possible-duplicate groups) anew: run nightly."""
    from crm.actions.stored_counts import refresh_counts

    made = refresh_counts(db.session)
    db.session.commit()
    click.echo(", ".join(f"{name.replace('_', ' ')}: {value:,}" for name, value in made.items()))


@click.command("age-ledger")
@with_appcontext
def age_ledger() -> None:
    """Re-age overdue figures that changed with the calendar (the worker does it nightly).
    Works through the customers in windows of ids, one transaction each."""
    today, changed = date.today(), 0
    with progress(customer_count(db.session), "Re-ageing overdue figures") as bar:
        for first, last, count in id_windows(db.session):
            changed += ledger.refresh_stale(db.session, today,
                                            within=Customer.id.between(first, last))
            db.session.commit()
            bar.update(count)
    click.echo(f"Re-aged {changed} customer(s).")


COMMANDS = (check_ledger, rebuild_ledger_totals, age_ledger, count_figures)
