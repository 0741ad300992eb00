"""every long text column has one length limit, in the database too

Customer notes, note bodies, lead messages, invoice notes and address formats were unbounded
(an attack stored 5 MB notes and 200 KB invoice notes that took a PDF 5 s). The forms and
actions now refuse text past the limit; the database holds the same rule: a CHECK on
PostgreSQL, and on SQLite a pair of triggers per column (adding a CHECK there means rebuilding
the table). Text already longer is cut to the limit first, so that the rule can hold.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 22:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

# (table, column, limit): the application's TEXT_LIMITS as of this revision.
LIMITS = (
    ("customer", "notes", 10_000),
    ("note", "body", 20_000),
    ("lead", "message", 5_000),
    ("invoice", "notes", 2_000),
    ("invoice", "address_format", 1_000),
)


def _name(table: str, column: str) -> str:
    return f"ck_{table}_{column}_length"


def _sqlite_triggers(table: str, column: str, limit: int) -> dict[str, str]:
    """BEFORE INSERT and BEFORE UPDATE OF the column: refuse (a constraint error, like a
    CHECK) a value longer than the limit."""
    refuse = (f"WHEN length(NEW.{column}) > {limit} BEGIN "
              f"SELECT RAISE(ABORT, '{_name(table, column)}'); END")
    return {
        f"{_name(table, column)}_insert": f"BEFORE INSERT ON {table} {refuse}",
        f"{_name(table, column)}_update": f"BEFORE UPDATE OF {column} ON {table} {refuse}",
    }


def upgrade():
    conn = op.get_bind()
    for table, column, limit in LIMITS:
        # Invoice notes may sit on issued invoices, which the application keeps fixed; this
        # is the schema's own change, below the application.
        op.execute(f"UPDATE {table} SET {column} = substr({column}, 1, {limit}) "
                   f"WHERE length({column}) > {limit}")
        if conn.dialect.name == "postgresql":
            op.create_check_constraint(op.f(_name(table, column)), table,
                                       f"length({column}) <= {limit}")
        else:
            for name, body in _sqlite_triggers(table, column, limit).items():
                op.execute(f"CREATE TRIGGER {name} {body}")


def downgrade():
    conn = op.get_bind()
    for table, column, limit in LIMITS:
        if conn.dialect.name == "postgresql":
            op.drop_constraint(op.f(_name(table, column)), table, type_="check")
        else:
            for name in _sqlite_triggers(table, column, limit):
                op.execute(f"DROP TRIGGER IF EXISTS {name}")
