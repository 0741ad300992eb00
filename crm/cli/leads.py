"""``flask --app app crm ...`` commands for leads and bookings: the same actions the Leads
board and the booking form call (crm.actions.leads, crm.actions.attribution).

``--actor EMAIL`` records a staff user in the audit trail (default: "system")."""

from datetime import datetime

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from crm.actions import ActionError
from crm.cli.customers import actor_option, find_actor
from crm.cli.progress import progress
from crm.extensions import db
from crm.formatting import parse_moment
from crm.models import Booking, Customer


@click.command("convert-lead")
@click.argument("lead_ids", nargs=-1, type=int, required=True)
@click.option("--prospect", is_flag=True, help="Make prospects, without bookings.")
@click.option("--starts", help="The booking's start, like '4 Dec 2026, 20:00' (default: "
                               "each lead's preferred date at 09:00).")
@actor_option
@with_appcontext
def convert_lead_command(lead_ids: tuple[int, ...], prospect: bool, starts: str | None,
                         actor: str | None) -> None:
    """Convert leads by id into customers (found by e-mail or made) with bookings."""
    from crm.actions.leads import BookingDetails, convert

    start: datetime | None = None
    if starts:
        try:
            start = parse_moment(starts)
        except ValueError:
            raise click.BadParameter("type it like '4 Dec 2026, 20:00'",
                                     param_hint="--starts") from None
    try:
        result = convert(db.session, lead_ids=list(lead_ids), actor=find_actor(actor),
                         with_booking=not prospect, booking=BookingDetails(starts_at=start))
        db.session.commit()
    except ActionError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    click.echo(result.message)
    for skip in result.skipped:
        click.echo(f"  {skip}")


@click.command("attach-waiting-bookings")
@actor_option
@with_appcontext
def attach_waiting_command(actor: str | None) -> None:
    """Attach every booking waiting without a customer to the customer who now has its
    e-mail (after an import of customers, say); prints how many."""
    from crm.actions.attribution import attach_waiting

    emails = db.session.scalars(select(Booking.contact_email).where(
        Booking.customer_id.is_(None), Booking.contact_email.is_not(None)).distinct()).all()
    who = find_actor(actor)
    attached = 0
    with progress(len(emails), "Attaching waiting bookings") as bar:
        for email in emails:
            customer = db.session.scalars(select(Customer).where(
                Customer.email == email, Customer.merged_into_id.is_(None),
                Customer.redacted_at.is_(None)).order_by(Customer.id).limit(1)).first()
            if customer is not None:
                attached += attach_waiting(db.session, customer, actor=who)
            bar.update(1)
    db.session.commit()
    click.echo(f"Attached {attached:,} waiting booking{'' if attached == 1 else 's'}; "
               f"{len(emails):,} e-mail address{'' if len(emails) == 1 else 'es'} had some "
               "waiting.")


COMMANDS = (convert_lead_command, attach_waiting_command)
