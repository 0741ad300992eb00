"""``flask crm create-user``: what an operator types on a fresh machine to get in."""

import secrets

import click
from flask.cli import with_appcontext

from crm.actions import ActionError
from crm.actions.staff import create_or_reset_user
from crm.extensions import db
from crm.permissions import ROLES
from crm.security import MIN_PASSWORD_LENGTH


@click.command("create-user")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--password",
              help=f"At least {MIN_PASSWORD_LENGTH} characters; a random one is printed if omitted.")
@click.option("--name", help="Display name.")
@with_appcontext
def create_user(email: str, role: str, password: str | None, name: str | None) -> None:
    """Create a staff user, or reset the role and password of an existing one."""
    generated = password is None
    password = password or secrets.token_urlsafe(12)
    try:
        result = create_or_reset_user(db.session, email=email, role=role, password=password,
                                      name=name)
        db.session.commit()
    except ActionError as exc:
        db.session.rollback()
        hint = "--password" if "password" in str(exc).lower() else "EMAIL"
        raise click.BadParameter(str(exc), param_hint=hint) from None
    click.echo(result.message)
    if generated:
        click.echo(f"Password: {password}")


COMMANDS = (create_user,)
