"""``flask --app app crm ...`` commands for the customer actions: the same functions the
admin screens call, for scripted clean-ups and for operators without a browser.

Customers are named by reference (C-000123) or id; ``--actor EMAIL`` records a staff user in
the audit trail (default: "system")."""

import click
from flask.cli import with_appcontext
from sqlalchemy import or_, select

from crm.actions import ActionError, ActionResult
from crm.extensions import db
from crm.models import Customer, User
from crm.models.comms import BLOCK_REASONS


def find_actor(email: str | None) -> User | None:
    """The staff user ``--actor`` names (None: the system), for every command's audit."""
    if not email:
        return None
    user = db.session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise click.BadParameter(f"no staff user {email}", param_hint="--actor")
    return user


def _ids(references: tuple[str, ...]) -> list[int]:
    ids = []
    for ref in references:
        found = db.session.scalar(
            select(Customer.id).where(
                or_(Customer.reference == ref.strip().upper(),
                    Customer.id == (int(ref) if ref.strip().isdigit() else -1))
            )
        )
        if found is None:
            raise click.BadParameter(f"no customer {ref}", param_hint="CUSTOMER")
        ids.append(found)
    return ids


def _run(fn, **kwargs) -> ActionResult:
    """One transaction: commit what the action did, or roll back and exit non-zero."""
    try:
        result = fn(db.session, **kwargs)
        db.session.commit()
    except ActionError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    click.echo(result.message or f"{result.changed} changed, {result.skipped_count} skipped.")
    for skip in result.skipped:
        click.echo(f"  {skip}")
    return result


actor_option = click.option("--actor", help="E-mail of the staff user to record as the actor.")


@click.command("merge")
@click.argument("survivor")
@click.argument("duplicates", nargs=-1, required=True)
@actor_option
@with_appcontext
def merge_command(survivor: str, duplicates: tuple[str, ...], actor: str | None) -> None:
    """Merge DUPLICATES into SURVIVOR (survivor's non-empty values win)."""
    from crm.actions.merge import merge_customers

    result = _run(merge_customers, survivor_id=_ids((survivor,))[0],
                  duplicate_ids=_ids(duplicates), actor=find_actor(actor))
    click.echo(f"Merge #{result.merge_id}: undo with `flask --app app crm undo-merge "
               f"{result.merge_id}` within 30 days.")


@click.command("undo-merge")
@click.argument("merge_id", type=int)
@actor_option
@with_appcontext
def undo_merge_command(merge_id: int, actor: str | None) -> None:
    """Undo a merge (within 30 days, when nothing since makes it unsafe)."""
    from crm.actions.merge_undo import undo_merge

    _run(undo_merge, merge_id=merge_id, actor=find_actor(actor))


@click.command("redact")
@click.argument("customers", nargs=-1, required=True)
@click.option("--confirm", "confirmation", required=True, help="Type REDACT: it cannot be undone.")
@click.option("--block-email", is_flag=True, help="Also block their e-mail addresses.")
@click.option("--reason", type=click.Choice(BLOCK_REASONS), default="customer_request",
              show_default=True, help="Why the e-mail is blocked (with --block-email).")
@actor_option
@with_appcontext
def redact_command(customers, confirmation, block_email, reason, actor) -> None:
    """Erase the personal data of CUSTOMERS (money records are kept)."""
    from crm.actions.redact import redact_customers

    _run(redact_customers, selection=_ids(customers), confirmation=confirmation,
         block_email=block_email, block_reason=reason, actor=find_actor(actor))


@click.command("block-email")
@click.argument("value")
@click.option("--reason", required=True, type=click.Choice(BLOCK_REASONS),
              help="Why it is blocked.")
@click.option("--note", help="What happened, for colleagues (not who: redaction erases notes "
                             "that name the customer).")
@actor_option
@with_appcontext
def block_email_command(value: str, reason: str, note: str | None, actor: str | None) -> None:
    """Block an address (name@example.com) or a whole domain (@example.com)."""
    from crm.actions.block_email import block_email

    _run(block_email, value=value, reason=reason, note=note, actor=find_actor(actor))


@click.command("unblock-email")
@click.argument("block_id", type=int)
@actor_option
@with_appcontext
def unblock_email_command(block_id: int, actor: str | None) -> None:
    """Lift a block (its history is kept)."""
    from crm.actions.block_email import unblock_email

    _run(unblock_email, block_id=block_id, actor=find_actor(actor))


@click.command("set-dormant")
@click.argument("customers", nargs=-1, required=True)
@actor_option
@with_appcontext
def set_dormant_command(customers, actor) -> None:
    """Set CUSTOMERS dormant (their work addresses too)."""
    from crm.actions.dormant import set_dormant

    _run(set_dormant, selection=_ids(customers), actor=find_actor(actor))


@click.command("reactivate")
@click.argument("customers", nargs=-1, required=True)
@actor_option
@with_appcontext
def reactivate_command(customers, actor) -> None:
    """Make dormant or archived CUSTOMERS active again."""
    from crm.actions.dormant import reactivate

    _run(reactivate, selection=_ids(customers), actor=find_actor(actor))


@click.command("change-kind")
@click.argument("customers", nargs=-1, required=True)
@click.option("--kind", "kind", required=True, type=click.Choice(("lead", "prospect", "client")))
@click.option("--reason", required=True, help="Why (noted on each customer).")
@actor_option
@with_appcontext
def change_kind_command(customers, kind, reason, actor) -> None:
    """Make CUSTOMERS leads, prospects or clients, with a reason noted on each."""
    from crm.actions.customer_kind import change_kind

    _run(change_kind, selection=_ids(customers), kind=kind, reason=reason, actor=find_actor(actor))


@click.command("hide-related")
@click.argument("customers", nargs=-1, required=True)
@click.option("--related-to", "related_to", required=True,
              help="The customer they belong to (reference or id).")
@actor_option
@with_appcontext
def hide_related_command(customers, related_to, actor) -> None:
    """Hide CUSTOMERS from the list as related people of --related-to."""
    from crm.actions.customer_kind import hide

    [owner] = _ids((related_to,))
    _run(hide, selection=_ids(customers), related_to_id=owner, actor=find_actor(actor))


@click.command("unhide-related")
@click.argument("customers", nargs=-1, required=True)
@actor_option
@with_appcontext
def unhide_related_command(customers, actor) -> None:
    """Show hidden related CUSTOMERS in the list again."""
    from crm.actions.customer_kind import unhide

    _run(unhide, selection=_ids(customers), actor=find_actor(actor))


@click.command("duplicates")
@click.option("--reason", type=click.Choice(("email", "phone", "name_postcode")))
@click.option("--limit", default=25, show_default=True, type=click.IntRange(1, 200),
              help="How many groups to print.")
def duplicates_command(reason: str | None, limit: int) -> None:
    """Print the first groups of possible duplicate customers."""
    from crm.actions.duplicates import find_duplicate_groups

    page = find_duplicate_groups(db.session, reason=reason, limit=limit)
    for group in page.groups:
        refs = ", ".join(c.reference for c in group.customers)
        click.echo(f"{group.label}: {refs}")
    if page.next_after:
        click.echo(f"... (the first {limit}; --limit for more, or the admin's Possible "
                   "duplicates page)")


@click.command("portal-invite")
@click.argument("customers", nargs=-1, required=True)
@click.option("--password", help="Set this password at once instead of waiting for the "
                                 "customer (for a demonstration or support; it must pass the "
                                 "same strength check).")
@actor_option
@with_appcontext
def portal_invite_command(customers, password, actor) -> None:
    """Invite CUSTOMERS to the portal: e-mail each an invitation and print its link."""
    from urllib.parse import parse_qs, urlsplit

    from crm.actions.portal_access import invite_customers, set_password_with_link
    from crm.portal_links import link_maker

    result = _run(invite_customers, selection=_ids(customers), actor=find_actor(actor),
                  link=link_maker("invite"))
    for invitation in result.details["invitations"]:
        click.echo(f"{invitation.reference}: {invitation.link}")
        if password:
            token = parse_qs(urlsplit(invitation.link).query)["token"][0]
            try:
                set_password_with_link(db.session, token=token, password=password)
                db.session.commit()
            except ActionError as exc:
                db.session.rollback()
                raise click.ClickException(f"{invitation.reference}: {exc}") from None
            click.echo(f"{invitation.reference}: password set; the link is used up.")


COMMANDS = (merge_command, undo_merge_command, redact_command, block_email_command,
            unblock_email_command, set_dormant_command, reactivate_command, duplicates_command,
            portal_invite_command, change_kind_command, hide_related_command,
            unhide_related_command)
