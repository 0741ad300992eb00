"""``flask --app app crm seed``: fill the database with the demo data set. The generators
are imported when the command runs, so registering it costs the application nothing."""

import click
from flask import Flask
from flask.cli import with_appcontext

from crm.extensions import db


@click.command("seed")
@click.option("--customers", "count", type=click.IntRange(1, 10_000_000), default=1000)
@click.option("--seed", "seed", type=int, default=1, help="Same seed, same data.")
@click.option("--batch", type=click.IntRange(100, 100_000), default=5000)
@with_appcontext
def seed_command(count: int, seed: int, batch: int) -> None:
    """Fill the database with a realistic, deterministic demo data set, then check its ledger
    with crm.ledger (every customer up to 100,000, a spread sample above)."""
    from demo.check import LedgerMismatch
    from demo.seeding import seed_database

    try:
        with click.progressbar(length=count, label=f"Seeding {count:,} customers") as bar:
            summary = seed_database(db.engine, customers=count, seed=seed, batch=batch,
                                    progress=bar.update)
    except LedgerMismatch as mismatch:
        raise click.ClickException(str(mismatch)) from mismatch
    for table, rows in summary.items():
        click.echo(f"  {table}: {rows:,}")
    click.echo(summary.ledger_check.line())


def register(app: Flask) -> None:
    """Add the demo commands to the app's ``crm`` command group."""
    app.cli.commands["crm"].add_command(seed_command)
