"""the default-order index also holds the status (archived customers are hidden by default)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 19:35:00

"""
from alembic import op
import sqlalchemy as sa


revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

LIVE = sa.text("merged_into_id IS NULL")


def _live_id(columns):
    op.drop_index("ix_customer_live_id", table_name="customer")
    op.create_index("ix_customer_live_id", "customer", columns, unique=False,
                    sqlite_where=LIVE, postgresql_where=LIVE)


def upgrade():
    _live_id(["id", "status", "merged_into_id"])


def downgrade():
    _live_id(["id"])
