"""block reasons from a list (with an optional note), and an index of the e-mails sent about
each customer

A block's free-text reason could hold the person's name ("Sam Smith was abusive") and was
kept after their erasure. The reason becomes a code from a list; the old text moves to the
new ``note`` column, which redaction erases when it names the customer. ``sent_message``
lists where each e-mail about a customer is stored, so that erasure can remove it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 20:58:54.101753

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

REASONS = ("abuse", "spam", "chargeback", "customer_request", "other")
IN_LIST = "reason IN ({})".format(", ".join(f"'{r}'" for r in REASONS))


def upgrade():
    op.create_table('sent_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('backend', sa.String(length=10), nullable=False),
    sa.Column('reference', sa.String(length=255), nullable=False),
    sa.CheckConstraint("backend IN ('outbox', 'smtp')", name=op.f('ck_sent_message_backend')),
    sa.ForeignKeyConstraint(['customer_id'], ['customer.id'], name=op.f('fk_sent_message_customer_id_customer')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sent_message'))
    )
    with op.batch_alter_table('sent_message', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sent_message_customer_id'), ['customer_id'], unique=False)

    with op.batch_alter_table('blocked_email', schema=None) as batch_op:
        batch_op.add_column(sa.Column('note', sa.String(length=500), nullable=True))
    # The free text becomes the note; the reason, a code (a text that names one keeps it).
    op.execute(
        "UPDATE blocked_email SET note = CASE WHEN lower(trim(reason)) IN ({codes}) THEN NULL "
        "ELSE reason END, reason = CASE WHEN lower(trim(reason)) IN ({codes}) "
        "THEN lower(trim(reason)) ELSE 'other' END".format(
            codes=", ".join(f"'{r}'" for r in REASONS)))
    with op.batch_alter_table('blocked_email', schema=None) as batch_op:
        batch_op.alter_column('reason',
               existing_type=sa.VARCHAR(length=500),
               type_=sa.String(length=20),
               existing_nullable=False)
        batch_op.create_check_constraint(op.f('ck_blocked_email_reason'), IN_LIST)


def downgrade():
    with op.batch_alter_table('blocked_email', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_blocked_email_reason'), type_='check')
        batch_op.alter_column('reason',
               existing_type=sa.String(length=20),
               type_=sa.VARCHAR(length=500),
               existing_nullable=False)
    op.execute("UPDATE blocked_email SET reason = coalesce(note, reason)")
    with op.batch_alter_table('blocked_email', schema=None) as batch_op:
        batch_op.drop_column('note')

    with op.batch_alter_table('sent_message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sent_message_customer_id'))

    op.drop_table('sent_message')
