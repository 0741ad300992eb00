"""Declarative base: naming convention, timestamps and the optimistic version column."""

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, DateTime, Integer, MetaData, Numeric, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Money = Numeric(12, 2, asdecimal=True)

# The long free-text columns and the most each holds: one limit, read by the forms (a Length
# validator on the field), the actions, and the database (a CHECK on PostgreSQL; triggers on
# SQLite, made by migration 0008, since adding a CHECK there means rebuilding the table).
# Every other text column is a String(n): VARCHAR(n) on PostgreSQL, a Length on the forms.
TEXT_LIMITS = {
    ("customer", "notes"): 10_000,
    ("note", "body"): 20_000,
    ("note", "reply"): 5_000,
    ("lead", "message"): 5_000,
    ("invoice", "notes"): 2_000,  # printed on the PDF
    ("invoice", "address_format"): 1_000,
}


def long_text(table: str, column: str) -> dict:
    """``mapped_column`` arguments of a bounded long-text column: ``Text`` with its limit in
    ``info["max_length"]``, where the forms find it."""
    return {"type_": Text, "info": {"max_length": TEXT_LIMITS[(table, column)]}}


def length_check(table: str, column: str) -> CheckConstraint:
    """The database's own hold on a long-text column's length (PostgreSQL's CHECK)."""
    limit = TEXT_LIMITS[(table, column)]
    return CheckConstraint(f"length({column}) <= {limit}",
                           name=f"{column}_length").ddl_if(dialect="postgresql")
ZERO = Decimal("0.00")


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Timestamped:
    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime, default=utcnow, onupdate=utcnow, nullable=False
    )


class Versioned(Timestamped):
    """Editable aggregate: a concurrent UPDATE of a stale row fails instead of overwriting."""

    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    @declared_attr.directive
    def __mapper_args__(cls):  # noqa: N805
        return {"version_id_col": cls.__table__.c.version}
