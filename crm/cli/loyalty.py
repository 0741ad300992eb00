"""``flask crm refresh-loyalty`` and ``check-loyalty``: the nightly refresh of the stored
loyalty scores (recency falls with the calendar) and their comparison with the bookings."""

from datetime import date

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from crm import loyalty
from crm.cli.progress import customer_count, id_windows, progress
from crm.extensions import db
from crm.models import Customer


@click.command("refresh-loyalty")
@with_appcontext
def refresh_loyalty() -> None:
    """Work every customer's loyalty score out anew from the bookings (the worker does it
    nightly). Works through the customers in windows of ids, one transaction each."""
    today, changed = date.today(), 0
    with progress(customer_count(db.session), "Refreshing loyalty scores") as bar:
        for first, last, count in id_windows(db.session):
            changed += loyalty.refresh(db.session, select(Customer.id).where(
                Customer.id.between(first, last)), today=today)
            db.session.commit()
            bar.update(count)
    click.echo(f"Loyalty scores: {changed:,} changed.")


@click.command("check-loyalty")
@click.option("--limit", default=20, help="How many differences to print.")
@with_appcontext
def check_loyalty(limit: int) -> None:
    """Compare every stored loyalty score with the bookings; exit 1 on any difference."""
    with progress(customer_count(db.session), "Checking loyalty scores") as bar:
        found = loyalty.check(db.session, today=date.today(), limit=limit,
                              progress=bar.update)
    db.session.rollback()
    for diff in found:
        click.echo(str(diff))
    if found:
        more = "+" if len(found) >= limit else ""
        raise click.ClickException(
            f"{len(found)}{more} loyalty score(s) differ from the bookings; "
            "flask crm refresh-loyalty puts them right.")
    click.echo("Loyalty scores agree with the bookings.")


COMMANDS = (refresh_loyalty, check_loyalty)
