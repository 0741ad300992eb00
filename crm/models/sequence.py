"""Gap-free document numbers (customer references, booking references, invoice numbers)."""

from sqlalchemy import Integer, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from crm.models.base import Base
from crm.personal_data import KEEP

PREFIXES = {"customer": "C-", "booking": "B-", "invoice": "INV-", "credit_note": "CN-"}


class DocumentSequence(Base):
    __tablename__ = "document_sequence"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    next_value: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    __personal_data__ = {"name": KEEP}


def next_number(session: Session, name: str) -> str:
    """Take the next number of ``name`` inside the caller's transaction.

    The UPDATE takes the row lock first (PostgreSQL) or the write lock (SQLite), so two
    transactions can neither share nor skip a number: the loser waits, and a rollback gives
    the number back.
    """
    stmt = (
        update(DocumentSequence)
        .where(DocumentSequence.name == name)
        .values(next_value=DocumentSequence.next_value + 1)
        .returning(DocumentSequence.next_value)
    )
    with session.no_autoflush:  # the row waiting for this number must not be flushed first
        value = session.execute(stmt).scalar_one_or_none()
    if value is None:
        session.add(DocumentSequence(name=name, next_value=2))
        session.flush()
        value = 2
    return f"{PREFIXES[name]}{value - 1:06d}"


def peek(session: Session, name: str) -> int:
    return session.execute(
        select(DocumentSequence.next_value).where(DocumentSequence.name == name)
    ).scalar_one_or_none() or 1
