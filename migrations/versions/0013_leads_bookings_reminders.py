"""leads to customers and bookings: pipeline, attribution, kinds and hidden relations,
reminder intervals, loyalty score, customers without an address

A lead moves through new -> contacted -> quoted -> won / lost (a lost lead says why), with an
owner, a follow-up date, what it is for and the day the person would like ("converted"
becomes "won"). A booking can wait without a customer (an enquiry), records the name and
phone the person gave, and when staff reviewed a "related" attribution. A customer can be
hidden (a spouse, a child) and linked to the customer it belongs to, carries a stored
loyalty score, and no longer needs a billing address (a name and one way to reach them do;
an invoice asks for the address when it is issued). A service reminder can repeat every so
many months and be stopped for good.

On SQLite the customer, lead, booking and reminder tables are rebuilt (a column loses NOT
NULL, a CHECK changes); the triggers and the expression index a rebuild would lose are read
from the schema before and made again after.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 03:15:49

"""
from contextlib import contextmanager

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

LIVE = sa.text('merged_into_id IS NULL')
OPEN = sa.text("(status = 'new' OR status = 'contacted' OR status = 'quoted')")
TO_REVIEW = sa.text("attribution = 'related' AND reviewed_at IS NULL")
UNATTACHED = sa.text('customer_id IS NULL')
RELATED = sa.text('related_to_id IS NOT NULL')
LEAD_STATUSES = "status IN ('new', 'contacted', 'quoted', 'won', 'lost')"
OLD_LEAD_STATUSES = "status IN ('new', 'contacted', 'converted', 'lost')"
REMINDER_STATUSES = "status IN ('due', 'done', 'cancelled', 'stopped')"
OLD_REMINDER_STATUSES = "status IN ('due', 'done', 'cancelled')"


def _sqlite() -> bool:
    return op.get_bind().dialect.name == 'sqlite'


@contextmanager
def _rebuilt(table: str):
    """``batch_alter_table`` that, on SQLite, rebuilds ``table`` and then makes again the
    triggers and the expression index the rebuild drops (read from the schema first)."""
    kept = []
    if _sqlite():
        kept = op.get_bind().execute(sa.text(
            "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = :t AND sql IS NOT NULL "
            "AND (type = 'trigger' OR name = 'ix_customer_name_postcode_key')"),
            {'t': table}).all()
    with op.batch_alter_table(table, schema=None,
                              recreate='always' if _sqlite() else 'auto') as batch_op:
        yield batch_op
    for kind, name, sql in kept:
        exists = op.get_bind().execute(sa.text(
            "SELECT 1 FROM sqlite_master WHERE type = :k AND name = :n"),
            {'k': kind, 'n': name}).first()
        if not exists:
            op.execute(sql)


def upgrade():
    with _rebuilt('booking') as batch_op:
        batch_op.add_column(sa.Column('contact_first_name', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('contact_surname', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('contact_phone', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('reviewed_at', sa.DateTime(), nullable=True))
        batch_op.alter_column('customer_id',
               existing_type=sa.INTEGER(),
               nullable=True)
        batch_op.create_index('ix_booking_to_review', ['id'], unique=False, sqlite_where=sa.text("attribution = 'related' AND reviewed_at IS NULL"), postgresql_where=sa.text("attribution = 'related' AND reviewed_at IS NULL"))
        batch_op.create_index('ix_booking_unattached_email', ['contact_email'], unique=False, sqlite_where=sa.text('customer_id IS NULL'), postgresql_where=sa.text('customer_id IS NULL'))

    with _rebuilt('customer') as batch_op:
        batch_op.add_column(sa.Column('hidden', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('related_to_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('loyalty_score', sa.Integer(), server_default='0', nullable=False))
        batch_op.alter_column('address_line_1',
               existing_type=sa.VARCHAR(length=200),
               nullable=True)
        batch_op.alter_column('postcode',
               existing_type=sa.VARCHAR(length=12),
               nullable=True)
        batch_op.drop_index('ix_customer_live_id', sqlite_where=LIVE, postgresql_where=LIVE)
        batch_op.create_index('ix_customer_live_id', ['id', 'status', 'hidden', 'merged_into_id'], unique=False, sqlite_where=sa.text('merged_into_id IS NULL'), postgresql_where=sa.text('merged_into_id IS NULL'))
        batch_op.create_index('ix_customer_loyalty_score_id', ['loyalty_score', 'id', 'status', 'hidden', 'merged_into_id'], unique=False, sqlite_where=sa.text('merged_into_id IS NULL'), postgresql_where=sa.text('merged_into_id IS NULL'))
        batch_op.create_index('ix_customer_related_to_id', ['related_to_id'], unique=False, sqlite_where=sa.text('related_to_id IS NOT NULL'), postgresql_where=sa.text('related_to_id IS NOT NULL'))
        batch_op.create_foreign_key(batch_op.f('fk_customer_related_to_id_customer'), 'customer', ['related_to_id'], ['id'])

    # The old statuses' CHECK goes first, the rows move to the new names, then the new
    # CHECKs come (on SQLite the copy into the rebuilt table is checked).
    with _rebuilt('lead') as batch_op:
        batch_op.drop_constraint(op.f('ck_lead_status'), type_='check')
        batch_op.add_column(sa.Column('purpose', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('preferred_date', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('owner_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('follow_up_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('lost_reason', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('notes', sa.String(length=2000), nullable=True))
        batch_op.create_index('ix_lead_open_follow_up_on', ['follow_up_on', 'id'], unique=False, sqlite_where=OPEN, postgresql_where=OPEN)
        batch_op.create_index('ix_lead_owner_id_status_created_at', ['owner_id', 'status', 'created_at'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_lead_owner_id_user'), 'user', ['owner_id'], ['id'])

    op.execute("UPDATE lead SET status = 'won' WHERE status = 'converted'")
    op.execute("UPDATE lead SET lost_reason = 'Not recorded' WHERE status = 'lost'")
    with _rebuilt('lead') as batch_op:
        batch_op.create_check_constraint(op.f('ck_lead_status'), LEAD_STATUSES)
        batch_op.create_check_constraint(op.f('ck_lead_lost_reason'),
                                         "status != 'lost' OR lost_reason IS NOT NULL")

    with _rebuilt('service_reminder') as batch_op:
        batch_op.add_column(sa.Column('interval_months', sa.Integer(), nullable=True))
        batch_op.drop_constraint(op.f('ck_service_reminder_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_service_reminder_status'), REMINDER_STATUSES)
        batch_op.create_check_constraint(
            op.f('ck_service_reminder_interval_months'),
            'interval_months IS NULL OR interval_months BETWEEN 1 AND 120')


def downgrade():
    op.execute("UPDATE service_reminder SET status = 'cancelled' WHERE status = 'stopped'")
    with _rebuilt('service_reminder') as batch_op:
        batch_op.drop_constraint(op.f('ck_service_reminder_interval_months'), type_='check')
        batch_op.drop_constraint(op.f('ck_service_reminder_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_service_reminder_status'),
                                         OLD_REMINDER_STATUSES)
        batch_op.drop_column('interval_months')

    with _rebuilt('lead') as batch_op:
        batch_op.drop_constraint(op.f('ck_lead_lost_reason'), type_='check')
        batch_op.drop_constraint(op.f('ck_lead_status'), type_='check')
    op.execute("UPDATE lead SET status = 'converted' WHERE status = 'won'")
    op.execute("UPDATE lead SET status = 'contacted' WHERE status = 'quoted'")
    with _rebuilt('lead') as batch_op:
        batch_op.create_check_constraint(op.f('ck_lead_status'), OLD_LEAD_STATUSES)
        batch_op.drop_constraint(batch_op.f('fk_lead_owner_id_user'), type_='foreignkey')
        batch_op.drop_index('ix_lead_owner_id_status_created_at')
        batch_op.drop_index('ix_lead_open_follow_up_on', sqlite_where=OPEN, postgresql_where=OPEN)
        batch_op.drop_column('notes')
        batch_op.drop_column('lost_reason')
        batch_op.drop_column('follow_up_on')
        batch_op.drop_column('owner_id')
        batch_op.drop_column('preferred_date')
        batch_op.drop_column('purpose')

    # Customers without an address get the placeholders redaction uses.
    op.execute("UPDATE customer SET address_line_1 = 'Not given' WHERE address_line_1 IS NULL")
    op.execute("UPDATE customer SET postcode = '' WHERE postcode IS NULL")
    with _rebuilt('customer') as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_customer_related_to_id_customer'), type_='foreignkey')
        batch_op.drop_index('ix_customer_related_to_id', sqlite_where=sa.text('related_to_id IS NOT NULL'), postgresql_where=sa.text('related_to_id IS NOT NULL'))
        batch_op.drop_index('ix_customer_loyalty_score_id', sqlite_where=sa.text('merged_into_id IS NULL'), postgresql_where=sa.text('merged_into_id IS NULL'))
        batch_op.drop_index('ix_customer_live_id', sqlite_where=sa.text('merged_into_id IS NULL'), postgresql_where=sa.text('merged_into_id IS NULL'))
        batch_op.create_index('ix_customer_live_id', ['id', 'status', 'merged_into_id'], unique=False, sqlite_where=LIVE, postgresql_where=LIVE)
        batch_op.alter_column('postcode',
               existing_type=sa.VARCHAR(length=12),
               nullable=False)
        batch_op.alter_column('address_line_1',
               existing_type=sa.VARCHAR(length=200),
               nullable=False)
        batch_op.drop_column('loyalty_score')
        batch_op.drop_column('related_to_id')
        batch_op.drop_column('hidden')

    # Bookings still waiting for a customer cannot stay without one.
    op.execute("DELETE FROM booking WHERE customer_id IS NULL")
    with _rebuilt('booking') as batch_op:
        batch_op.drop_index('ix_booking_unattached_email', sqlite_where=sa.text('customer_id IS NULL'), postgresql_where=sa.text('customer_id IS NULL'))
        batch_op.drop_index('ix_booking_to_review', sqlite_where=sa.text("attribution = 'related' AND reviewed_at IS NULL"), postgresql_where=sa.text("attribution = 'related' AND reviewed_at IS NULL"))
        batch_op.alter_column('customer_id',
               existing_type=sa.INTEGER(),
               nullable=False)
        batch_op.drop_column('reviewed_at')
        batch_op.drop_column('contact_phone')
        batch_op.drop_column('contact_surname')
        batch_op.drop_column('contact_first_name')

