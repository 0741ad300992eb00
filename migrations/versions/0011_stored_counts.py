"""dashboard counts: stored counts, indexes of upcoming bookings and of leads by status

The dashboard's count of possible-duplicate groups is a full grouping scan at a million
customers; ``flask crm count-figures`` (nightly) stores it here with the time it was made.
Bookings get an index on their start (what is coming up across customers), leads one on
status and creation (the new ones to contact).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 00:10:00

"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('stored_count',
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('value', sa.Integer(), nullable=False),
    sa.Column('counted_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_stored_count'))
    )
    with op.batch_alter_table('booking', schema=None) as batch_op:
        batch_op.create_index('ix_booking_starts_at', ['starts_at'], unique=False)
    with op.batch_alter_table('lead', schema=None) as batch_op:
        batch_op.create_index('ix_lead_status_created_at', ['status', 'created_at'], unique=False)


def downgrade():
    with op.batch_alter_table('lead', schema=None) as batch_op:
        batch_op.drop_index('ix_lead_status_created_at')
    with op.batch_alter_table('booking', schema=None) as batch_op:
        batch_op.drop_index('ix_booking_starts_at')
    op.drop_table('stored_count')
