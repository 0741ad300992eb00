"""index for the possible-duplicates key "same surname and postcode"

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 19:20:00

"""
from alembic import op
import sqlalchemy as sa


revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

LIVE = sa.text("merged_into_id IS NULL")


def upgrade():
    op.create_index(
        "ix_customer_name_postcode_key",
        "customer",
        [sa.text("(lower(surname) || '|' || replace(upper(postcode), ' ', ''))"), "id"],
        unique=False,
        sqlite_where=LIVE,
        postgresql_where=LIVE,
    )


def downgrade():
    op.drop_index("ix_customer_name_postcode_key", table_name="customer")
