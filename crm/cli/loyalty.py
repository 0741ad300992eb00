"""``flask crm refresh-loyalty`` and ``check-loyalty``: the nightly refresh of the stored
loyalty scores (recency falls with the calendar) and their comparison with the bookings."""

from datetime import date

import click
from flask.cli import with_appcontext

from crm import loyalty
from crm.extensions import db


@click.command("refresh-loyalty")
@with_appcontext
def refresh_loyalty() -> None:
    """Work every customer's loyalty score out anew from the bookings (run nightly)."""
    changed = loyalty.refresh(db.session, today=date.today())
    db.session.commit()
    click.echo(f"Loyalty scores: {changed:,} changed.")


@click.command("check-loyalty")
@click.option("--limit", default=20, help="How many differences to print.")
@with_appcontext
def check_loyalty(limit: int) -> None:
    """Compare every stored loyalty score with the bookings; exit 1 on any difference."""
    found = loyalty.check(db.session, today=date.today(), limit=limit)
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
