"""``flask --app app crm ...`` commands."""

import secrets
from datetime import date

import click
from flask import Blueprint
from sqlalchemy import select

from crm.extensions import db
from crm.models import ROLES, User
from crm.security import hash_password
from crm.validation import normalize_email

bp = Blueprint("crm", __name__, cli_group="crm")


@bp.cli.command("create-user")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--password", help="At least 10 characters; a random one is printed if omitted.")
@click.option("--name", help="Display name.")
def create_user(email: str, role: str, password: str | None, name: str | None) -> None:
    """Create a staff user, or reset the role and password of an existing one."""
    try:
        email = normalize_email(email)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="EMAIL") from None
    if not email:
        raise click.BadParameter("An e-mail address is required.", param_hint="EMAIL")
    generated = password is None
    password = password or secrets.token_urlsafe(12)
    try:
        password_hash = hash_password(password)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--password") from None
    user = db.session.execute(select(User).where(User.email == email)).scalar_one_or_none()
    if user is None:
        user = User(email=email, role=role, password_hash=password_hash, name=name)
        db.session.add(user)
        verb = "Created"
    else:
        user.role, user.password_hash = role, password_hash
        user.name = name or user.name
        verb = "Updated"
    db.session.commit()
    click.echo(f"{verb} {role} {email}")
    if generated:
        click.echo(f"Password: {password}")


@bp.cli.command("seed")
@click.option("--customers", "count", type=click.IntRange(1, 10_000_000), default=1000)
@click.option("--seed", "seed", type=int, default=1, help="Same seed, same data.")
@click.option("--batch", type=click.IntRange(100, 100_000), default=5000)
def seed_command(count: int, seed: int, batch: int) -> None:
    """Fill the database with a realistic, deterministic demo data set."""
    from crm.seed import seed_database

    with click.progressbar(length=count, label=f"Seeding {count:,} customers") as bar:
        summary = seed_database(db.engine, customers=count, seed=seed, batch=batch,
                                progress=bar.update)
    for table, rows in summary.items():
        click.echo(f"  {table}: {rows:,}")


@bp.cli.command("check-ledger")
@click.option("--limit", default=20, help="How many differences to print.")
def check_ledger(limit: int) -> None:
    """Recompute every balance from the documents and report any difference."""
    from crm import ledger

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


@bp.cli.command("age-ledger")
def age_ledger() -> None:
    """Re-age overdue figures that changed with the calendar (run nightly)."""
    from crm import ledger

    changed = ledger.refresh_stale(db.session, date.today())
    db.session.commit()
    click.echo(f"Re-aged {changed} customer(s).")
import crm.cli_actions  # noqa: E402,F401  (registers the action commands on bp)
