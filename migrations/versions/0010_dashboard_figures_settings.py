"""dashboard figures, business profile, list settings

ledger_day and ledger_total hold the business-wide money figures of the owner's dashboard
(owed by due date, invoiced and received by day, account credit), kept by triggers on
invoice, payment and customer and filled here from the documents. business_profile is the
business's identity on documents and e-mails; list_preference and saved_filter remember each
staff user's list columns and named filters. The audit log gets indexes to filter by verb and
by actor; invoices an index of the drafts.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 23:19:50.094807

"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy import text

# The triggers as this revision made them. Kept here, not imported from the application
# (crm.ledger_totals), so that the migration stays what it was whatever the live code becomes.

def _sqlite_add(day: str, column: str, amount: str, when: str) -> str:
    """One UPSERT adding ``amount`` to ``column`` of the day ``day``, when ``when`` holds."""
    return (
        f"INSERT INTO ledger_day (day, {column}) SELECT {day}, {amount} "
        f"WHERE {when} AND {day} IS NOT NULL AND {amount} <> 0 "
        f"ON CONFLICT (day) DO UPDATE SET {column} = round({column} + excluded.{column}, 2);"
    )


def _sqlite_credit(amount: str) -> str:
    return (
        f"INSERT INTO ledger_total (id, account_credit) VALUES (1, {amount}) "
        "ON CONFLICT (id) DO UPDATE SET "
        "account_credit = round(account_credit + excluded.account_credit, 2);"
    )


_INVOICE_ADD = (
    _sqlite_add("new.due_date", "outstanding", "new.outstanding", "1")
    + _sqlite_add("new.issue_date", "invoiced", "new.total", "new.status = 'issued'")
)
_INVOICE_REMOVE = (
    _sqlite_add("old.due_date", "outstanding", "-old.outstanding", "1")
    + _sqlite_add("old.issue_date", "invoiced", "-old.total", "old.status = 'issued'")
)
_INVOICE_CHANGED = " OR ".join(
    f"old.{c} IS NOT new.{c}" for c in ("outstanding", "due_date", "status", "total",
                                         "issue_date")
)

SQLITE_TRIGGERS = {
    "ledger_invoice_ai": f"AFTER INSERT ON invoice BEGIN {_INVOICE_ADD} END",
    "ledger_invoice_au": (
        "AFTER UPDATE OF outstanding, due_date, status, total, issue_date ON invoice "
        f"WHEN {_INVOICE_CHANGED} BEGIN {_INVOICE_REMOVE} {_INVOICE_ADD} END"
    ),
    "ledger_invoice_ad": f"AFTER DELETE ON invoice BEGIN {_INVOICE_REMOVE} END",
    "ledger_payment_ai": (
        "AFTER INSERT ON payment BEGIN "
        + _sqlite_add("new.received_on", "received", "new.amount", "1") + " END"
    ),
    "ledger_payment_au": (
        "AFTER UPDATE OF amount, received_on ON payment "
        "WHEN old.amount IS NOT new.amount OR old.received_on IS NOT new.received_on BEGIN "
        + _sqlite_add("old.received_on", "received", "-old.amount", "1")
        + _sqlite_add("new.received_on", "received", "new.amount", "1") + " END"
    ),
    "ledger_payment_ad": (
        "AFTER DELETE ON payment BEGIN "
        + _sqlite_add("old.received_on", "received", "-old.amount", "1") + " END"
    ),
    "ledger_customer_ai": (
        "AFTER INSERT ON customer WHEN new.account_credit <> 0 BEGIN "
        + _sqlite_credit("new.account_credit") + " END"
    ),
    "ledger_customer_au": (
        "AFTER UPDATE OF account_credit ON customer "
        "WHEN old.account_credit IS NOT new.account_credit BEGIN "
        + _sqlite_credit("new.account_credit - old.account_credit") + " END"
    ),
    "ledger_customer_ad": (
        "AFTER DELETE ON customer WHEN old.account_credit <> 0 BEGIN "
        + _sqlite_credit("-old.account_credit") + " END"
    ),
}

# PostgreSQL: the changed rows of a statement, as (day, outstanding, invoiced, received)
# amounts; "new_rows" and "old_rows" are the statement's transition tables.
_PG_INVOICE_ROWS = """
    SELECT due_date AS day, {sign}outstanding AS outstanding, 0 AS invoiced, 0 AS received
      FROM {rows} WHERE due_date IS NOT NULL AND outstanding <> 0
    UNION ALL
    SELECT issue_date, 0, {sign}total, 0 FROM {rows} WHERE status = 'issued' AND total <> 0
"""
_PG_PAYMENT_ROWS = """
    SELECT received_on AS day, 0 AS outstanding, 0 AS invoiced, {sign}amount AS received
      FROM {rows}
"""
_PG_ADD = """
    INSERT INTO ledger_day AS l (day, outstanding, invoiced, received)
    SELECT day, sum(outstanding), sum(invoiced), sum(received) FROM ({changes}) AS c
     GROUP BY day
    HAVING sum(outstanding) <> 0 OR sum(invoiced) <> 0 OR sum(received) <> 0
     ORDER BY day
    ON CONFLICT (day) DO UPDATE SET
        outstanding = l.outstanding + excluded.outstanding,
        invoiced = l.invoiced + excluded.invoiced,
        received = l.received + excluded.received;
"""


def _pg_function(name: str, rows: str) -> str:
    added = _PG_ADD.format(changes=rows.format(sign="", rows="new_rows"))
    removed = _PG_ADD.format(changes=rows.format(sign="-", rows="old_rows"))
    changed = _PG_ADD.format(changes=rows.format(sign="", rows="new_rows") + " UNION ALL "
                             + rows.format(sign="-", rows="old_rows"))
    return f"""
CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN {added}
    ELSIF TG_OP = 'UPDATE' THEN {changed}
    ELSE {removed}
    END IF;
    RETURN NULL;
END $$"""


POSTGRES_FUNCTIONS = {
    "ledger_invoice_change": _pg_function("ledger_invoice_change", _PG_INVOICE_ROWS),
    "ledger_payment_change": _pg_function("ledger_payment_change", _PG_PAYMENT_ROWS),
    "ledger_customer_credit": """
CREATE OR REPLACE FUNCTION ledger_customer_credit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE change numeric;
BEGIN
    IF TG_OP = 'INSERT' THEN change := NEW.account_credit;
    ELSIF TG_OP = 'UPDATE' THEN change := NEW.account_credit - OLD.account_credit;
    ELSE change := -OLD.account_credit;
    END IF;
    INSERT INTO ledger_total AS t (id, account_credit) VALUES (1, change)
    ON CONFLICT (id) DO UPDATE SET account_credit = t.account_credit + excluded.account_credit;
    RETURN NULL;
END $$""",
}


def _pg_statement_triggers(table: str, function: str) -> dict[str, str]:
    return {
        f"ledger_{table}_ai": f"AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows "
                              f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
        f"ledger_{table}_au": f"AFTER UPDATE ON {table} REFERENCING OLD TABLE AS old_rows "
                              f"NEW TABLE AS new_rows FOR EACH STATEMENT "
                              f"EXECUTE FUNCTION {function}()",
        f"ledger_{table}_ad": f"AFTER DELETE ON {table} REFERENCING OLD TABLE AS old_rows "
                              f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
    }


POSTGRES_TRIGGERS = {
    **_pg_statement_triggers("invoice", "ledger_invoice_change"),
    **_pg_statement_triggers("payment", "ledger_payment_change"),
    "ledger_customer_ai": "AFTER INSERT ON customer FOR EACH ROW "
                          "WHEN (NEW.account_credit <> 0) "
                          "EXECUTE FUNCTION ledger_customer_credit()",
    "ledger_customer_au": "AFTER UPDATE OF account_credit ON customer FOR EACH ROW "
                          "WHEN (OLD.account_credit IS DISTINCT FROM NEW.account_credit) "
                          "EXECUTE FUNCTION ledger_customer_credit()",
    "ledger_customer_ad": "AFTER DELETE ON customer FOR EACH ROW "
                          "WHEN (OLD.account_credit <> 0) "
                          "EXECUTE FUNCTION ledger_customer_credit()",
}

def create_triggers(conn) -> None:
    if conn.dialect.name == "postgresql":
        for body in POSTGRES_FUNCTIONS.values():
            conn.execute(text(body))
        for name, body in POSTGRES_TRIGGERS.items():
            table = name.split("_")[1]
            conn.execute(text(f"DROP TRIGGER IF EXISTS {name} ON {table}"))
            conn.execute(text(f"CREATE TRIGGER {name} {body}"))
    else:
        for name, body in SQLITE_TRIGGERS.items():
            conn.execute(text(f"CREATE TRIGGER IF NOT EXISTS {name} {body}"))


def drop_triggers(conn) -> None:
    """For bulk loads: drop the triggers, load, then ``rebuild`` (which re-creates them)."""
    names = POSTGRES_TRIGGERS if conn.dialect.name == "postgresql" else SQLITE_TRIGGERS
    for name in names:
        on = f" ON {name.split('_')[1]}" if conn.dialect.name == "postgresql" else ""
        conn.execute(text(f"DROP TRIGGER IF EXISTS {name}{on}"))


# What the stored figures should be, from the documents.
_EXPECTED_DAYS = """
    SELECT day, round(sum(outstanding), 2) AS outstanding, round(sum(invoiced), 2) AS invoiced,
           round(sum(received), 2) AS received
      FROM (SELECT due_date AS day, outstanding, 0 AS invoiced, 0 AS received FROM invoice
             WHERE due_date IS NOT NULL AND outstanding <> 0
            UNION ALL
            SELECT issue_date, 0, total, 0 FROM invoice WHERE status = 'issued' AND total <> 0
            UNION ALL
            SELECT received_on, 0, 0, amount FROM payment) AS documents
     GROUP BY day
"""
_EXPECTED_CREDIT = "SELECT round(coalesce(sum(account_credit), 0), 2) FROM customer"


def rebuild(conn) -> None:
    """Recompute every stored figure from the documents and (re-)create the triggers, in
    the caller's transaction."""
    conn.execute(text("DELETE FROM ledger_day"))
    conn.execute(text(
        "INSERT INTO ledger_day (day, outstanding, invoiced, received) "  # noqa: S608
        f"SELECT * FROM ({_EXPECTED_DAYS}) AS expected "
        "WHERE outstanding <> 0 OR invoiced <> 0 OR received <> 0"
    ))
    conn.execute(text("DELETE FROM ledger_total"))
    conn.execute(text("INSERT INTO ledger_total (id, account_credit) "  # noqa: S608
                      f"SELECT 1, ({_EXPECTED_CREDIT})"))
    create_triggers(conn)




# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('business_profile',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('address', sa.String(length=500), nullable=True),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('phone', sa.String(length=50), nullable=True),
    sa.Column('website', sa.String(length=200), nullable=True),
    sa.Column('vat_number', sa.String(length=30), nullable=True),
    sa.Column('company_number', sa.String(length=30), nullable=True),
    sa.Column('bank_details', sa.String(length=500), nullable=True),
    sa.Column('payment_terms_days', sa.Integer(), server_default='30', nullable=False),
    sa.Column('payment_terms', sa.String(length=500), nullable=True),
    sa.Column('email_from', sa.String(length=254), nullable=True),
    sa.Column('reply_to', sa.String(length=254), nullable=True),
    sa.Column('logo', sa.LargeBinary(), nullable=True),
    sa.Column('logo_mime', sa.String(length=40), nullable=True),
    sa.Column('logo_updated_at', sa.DateTime(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint('id = 1', name=op.f('ck_business_profile_single_row')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_business_profile'))
    )
    op.create_table('ledger_day',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('outstanding', sa.Numeric(precision=20, scale=2), server_default='0', nullable=False),
    sa.Column('invoiced', sa.Numeric(precision=20, scale=2), server_default='0', nullable=False),
    sa.Column('received', sa.Numeric(precision=20, scale=2), server_default='0', nullable=False),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_ledger_day'))
    )
    op.create_table('ledger_total',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_credit', sa.Numeric(precision=20, scale=2), server_default='0', nullable=False),
    sa.CheckConstraint('id = 1', name=op.f('ck_ledger_total_single_row')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_total'))
    )
    op.create_table('list_preference',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('view', sa.String(length=40), nullable=False),
    sa.Column('columns', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_list_preference_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_list_preference')),
    sa.UniqueConstraint('user_id', 'view', name=op.f('uq_list_preference_user_id_view'))
    )
    op.create_table('saved_filter',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('view', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('query', sa.String(length=1000), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_saved_filter_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_saved_filter')),
    sa.UniqueConstraint('user_id', 'view', 'name', name=op.f('uq_saved_filter_user_id_view_name'))
    )
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_event_actor_id'))
        batch_op.create_index('ix_audit_event_actor_id_created_at_id', ['actor_id', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_audit_event_verb_created_at_id', ['verb', 'created_at', 'id'], unique=False)

    with op.batch_alter_table('invoice', schema=None) as batch_op:
        batch_op.create_index('ix_invoice_draft_id', ['id'], unique=False, sqlite_where=sa.text("status = 'draft'"), postgresql_where=sa.text("status = 'draft'"))

    rebuild(op.get_bind())


def downgrade():
    conn = op.get_bind()
    drop_triggers(conn)
    if conn.dialect.name == "postgresql":
        for name in POSTGRES_FUNCTIONS:
            conn.execute(text(f"DROP FUNCTION IF EXISTS {name}()"))
    with op.batch_alter_table('invoice', schema=None) as batch_op:
        batch_op.drop_index('ix_invoice_draft_id', sqlite_where=sa.text("status = 'draft'"), postgresql_where=sa.text("status = 'draft'"))

    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_event_verb_created_at_id')
        batch_op.drop_index('ix_audit_event_actor_id_created_at_id')
        batch_op.create_index(batch_op.f('ix_audit_event_actor_id'), ['actor_id'], unique=False)

    op.drop_table('saved_filter')
    op.drop_table('list_preference')
    op.drop_table('ledger_total')
    op.drop_table('ledger_day')
    op.drop_table('business_profile')
