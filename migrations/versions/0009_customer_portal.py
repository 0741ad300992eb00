"""customer portal: sign-in links and sessions, preferences, invoice queries

portal_token holds the hashes of e-mailed links (invitations, sign-in links, password resets,
e-mail confirmations) and portal_session the portal's signed-in browsers; a portal account
records when it was invited and first activated (its old invite-token columns go: tokens live
in portal_token). Customers get their communication preferences. A note can be a customer's
question about an invoice, with the reply staff give.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 22:15:58.561801

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

NOTE_KINDS = ("note", "call", "email", "portal")


def _kinds(kinds) -> str:
    return "kind IN ({})".format(", ".join(f"'{k}'" for k in kinds))


def _sqlite_length_triggers(table: str, column: str, limit: int) -> dict[str, str]:
    """As in 0008: refuse a value longer than the limit, like a CHECK would."""
    name = f"ck_{table}_{column}_length"
    refuse = (f"WHEN length(NEW.{column}) > {limit} BEGIN "
              f"SELECT RAISE(ABORT, '{name}'); END")
    return {f"{name}_insert": f"BEFORE INSERT ON {table} {refuse}",
            f"{name}_update": f"BEFORE UPDATE OF {column} ON {table} {refuse}"}


def upgrade():
    op.create_table('portal_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['portal_account.id'], name=op.f('fk_portal_session_account_id_portal_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_portal_session')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_portal_session_token_hash'))
    )
    with op.batch_alter_table('portal_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_portal_session_account_id'), ['account_id'], unique=False)

    op.create_table('portal_token',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('purpose', sa.String(length=10), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('new_email', sa.String(length=254), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('used_at', sa.DateTime(), nullable=True),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("purpose IN ('invite', 'sign_in', 'reset', 'email')", name=op.f('ck_portal_token_purpose')),
    sa.ForeignKeyConstraint(['account_id'], ['portal_account.id'], name=op.f('fk_portal_token_account_id_portal_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_portal_token')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_portal_token_token_hash'))
    )
    with op.batch_alter_table('portal_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_portal_token_account_id'), ['account_id'], unique=False)

    # Plain ALTER TABLE ADD COLUMN: a batch would rebuild the customer table on SQLite and
    # lose its search-index triggers, its length triggers and its expression index.
    op.add_column('customer', sa.Column('wants_statements', sa.Boolean(), server_default=sa.true(), nullable=False))
    op.add_column('customer', sa.Column('wants_reminders', sa.Boolean(), server_default=sa.true(), nullable=False))
    op.add_column('customer', sa.Column('wants_marketing', sa.Boolean(), server_default=sa.false(), nullable=False))

    sqlite = op.get_bind().dialect.name == "sqlite"
    # SQLite rebuilds the note table (a new CHECK on the kind): its length triggers of 0008
    # go with the old table and are made again below.
    with op.batch_alter_table('note', schema=None, recreate="always" if sqlite else "auto") as batch_op:
        batch_op.add_column(sa.Column('invoice_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('reply', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('answered_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('answered_by_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_note_invoice_id'), ['invoice_id'], unique=False)
        batch_op.create_index('ix_note_kind_answered_at_created_at', ['kind', 'answered_at', 'created_at'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_note_invoice_id_invoice'), 'invoice', ['invoice_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_note_answered_by_id_user'), 'user', ['answered_by_id'], ['id'])
        batch_op.drop_constraint(op.f('ck_note_kind'), type_='check')
        batch_op.create_check_constraint(op.f('ck_note_kind'), _kinds(NOTE_KINDS))
    if sqlite:
        for column, limit in (("body", 20_000), ("reply", 5_000)):
            for name, body in _sqlite_length_triggers("note", column, limit).items():
                op.execute(f"CREATE TRIGGER {name} {body}")
    else:
        op.create_check_constraint(op.f("ck_note_reply_length"), "note",
                                   "length(reply) <= 5000")

    with op.batch_alter_table('portal_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('invited_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('activated_at', sa.DateTime(), nullable=True))
        batch_op.drop_constraint(batch_op.f('uq_portal_account_invite_token_hash'), type_='unique')
        batch_op.drop_column('invite_expires_at')
        batch_op.drop_column('invite_token_hash')



def downgrade():
    with op.batch_alter_table('portal_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('invite_token_hash', sa.VARCHAR(length=64), nullable=True))
        batch_op.add_column(sa.Column('invite_expires_at', sa.DateTime(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_portal_account_invite_token_hash'), ['invite_token_hash'])
        batch_op.drop_column('activated_at')
        batch_op.drop_column('invited_at')

    sqlite = op.get_bind().dialect.name == "sqlite"
    op.execute("DELETE FROM note WHERE kind = 'portal'")
    if not sqlite:
        op.drop_constraint(op.f("ck_note_reply_length"), "note", type_="check")
    with op.batch_alter_table('note', schema=None, recreate="always" if sqlite else "auto") as batch_op:
        batch_op.drop_constraint(op.f('ck_note_kind'), type_='check')
        batch_op.create_check_constraint(op.f('ck_note_kind'), _kinds(NOTE_KINDS[:-1]))
        batch_op.drop_constraint(batch_op.f('fk_note_answered_by_id_user'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_note_invoice_id_invoice'), type_='foreignkey')
        batch_op.drop_index('ix_note_kind_answered_at_created_at')
        batch_op.drop_index(batch_op.f('ix_note_invoice_id'))
        batch_op.drop_column('answered_by_id')
        batch_op.drop_column('answered_at')
        batch_op.drop_column('reply')
        batch_op.drop_column('invoice_id')
    if sqlite:
        for name, body in _sqlite_length_triggers("note", "body", 20_000).items():
            op.execute(f"CREATE TRIGGER IF NOT EXISTS {name} {body}")

    # DROP COLUMN without a rebuild (SQLite 3.35+), for the same reason as above.
    for column in ('wants_marketing', 'wants_reminders', 'wants_statements'):
        op.drop_column('customer', column)

    with op.batch_alter_table('portal_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_portal_token_account_id'))

    op.drop_table('portal_token')
    with op.batch_alter_table('portal_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_portal_session_account_id'))

    op.drop_table('portal_session')
