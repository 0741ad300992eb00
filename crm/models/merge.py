"""The record of each customer merge, kept so that a merge can be undone (within 30 days):
which rows moved from which duplicate, and the survivor's values before the merge."""

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.models.access import User
from crm.models.base import Base, Timestamped
from crm.models.customer import Customer
from crm.personal_data import ERASE, KEEP


class CustomerMerge(Timestamped, Base):
    __tablename__ = "customer_merge"

    survivor_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    # Ids of the customers merged into the survivor (tombstones since).
    duplicate_ids: Mapped[list] = mapped_column(JSON, default=list)
    # The survivor's field values before the merge (personal data: redaction wipes it).
    survivor_before: Mapped[dict | None] = mapped_column(JSON)
    # The survivor's version right after the merge: a later edit makes undo refuse.
    survivor_version: Mapped[int | None] = mapped_column(Integer)
    undone_at: Mapped[datetime | None] = mapped_column(DateTime)
    undone_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))

    survivor: Mapped[Customer] = relationship(foreign_keys=[survivor_id])
    actor: Mapped[User | None] = relationship(foreign_keys=[actor_id])

    def __str__(self) -> str:
        return f"Merge #{self.id}"

    # Redaction of the survivor or of a duplicate wipes the snapshot (undo then refuses).
    __personal_data__ = {"duplicate_ids": KEEP, "survivor_before": ERASE}


class CustomerMergeMove(Base):
    """One row changed by a merge: ``table_name.column_name`` of row ``row_id`` pointed at
    ``from_customer_id`` before (``kind`` says what happened: a move, a demoted primary
    contact, a tag moved or added)."""

    __tablename__ = "customer_merge_move"
    __table_args__ = (Index("ix_customer_merge_move_merge_id_table", "merge_id", "table_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    merge_id: Mapped[int] = mapped_column(ForeignKey("customer_merge.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20), default="move")
    table_name: Mapped[str] = mapped_column(String(40))
    column_name: Mapped[str] = mapped_column(String(40))
    row_id: Mapped[int] = mapped_column(Integer)
    from_customer_id: Mapped[int | None] = mapped_column(Integer)

    __personal_data__ = {"kind": KEEP, "table_name": KEEP, "column_name": KEEP}
