"""Work addresses (properties) and their service reminders."""

from datetime import date

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.models.base import Base, Versioned
from crm.models.customer import ADDRESS_STATUSES, AddressFields, Customer, _in
from crm.personal_data import ERASE, KEEP, address_decisions, erase


class WorkAddress(AddressFields, Versioned, Base):
    __tablename__ = "work_address"
    __table_args__ = (
        CheckConstraint(_in("status", ADDRESS_STATUSES), name="status"),
        Index("ix_work_address_postcode", "postcode"),
    )

    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    landlord_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"), index=True)
    occupier_title: Mapped[str | None] = mapped_column(String(20))
    occupier_first_name: Mapped[str | None] = mapped_column(String(100))
    occupier_surname: Mapped[str] = mapped_column(
        String(100), default="Occupier", server_default="Occupier"
    )
    occupier_phone: Mapped[str | None] = mapped_column(String(20))
    occupier_email: Mapped[str | None] = mapped_column(String(254))
    status: Mapped[str] = mapped_column(String(10), default="active", server_default="active")
    # Made dormant by its customer's "set dormant" (not on its own): reactivating the
    # customer brings back exactly these.
    dormant_with_customer: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )

    # Redacting the customer wipes the occupier and the address itself: for a private
    # customer it is their home, and with the kept bookings it would still say who they are.
    __personal_data__ = {
        "occupier_title": ERASE,
        "occupier_first_name": ERASE,
        "occupier_surname": erase("Occupier"),
        "occupier_phone": ERASE,
        "occupier_email": ERASE,
        "status": KEEP,
        **address_decisions(),
    }

    customer: Mapped[Customer] = relationship(foreign_keys=[customer_id])
    landlord: Mapped[Customer | None] = relationship(foreign_keys=[landlord_id])

    def __str__(self) -> str:
        return ", ".join(p for p in (self.address_line_1, self.postcode) if p)


# due: on the due list; done: booked or serviced; cancelled: removed by staff; stopped: the
# customer does not want it any more ("stop for good").
REMINDER_STATUSES = ("due", "done", "cancelled", "stopped")


class ServiceReminder(Versioned, Base):
    __tablename__ = "service_reminder"
    __table_args__ = (
        CheckConstraint(_in("status", REMINDER_STATUSES), name="status"),
        CheckConstraint("interval_months IS NULL OR interval_months BETWEEN 1 AND 120",
                        name="interval_months"),
        Index("ix_service_reminder_due_on_id", "due_on", "id"),
        # The due list (oldest first) and its count read only the reminders still due.
        Index("ix_service_reminder_due_id", "due_on", "id", sqlite_where=text("status = 'due'"),
              postgresql_where=text("status = 'due'")),
    )

    work_address_id: Mapped[int] = mapped_column(ForeignKey("work_address.id"), index=True)
    due_on: Mapped[date] = mapped_column(Date)
    description: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10), default="due", server_default="due")
    # Every how many months it comes round again (annual service: 12); empty for a one-off.
    interval_months: Mapped[int | None] = mapped_column(Integer)

    # Free text ("service Mrs Smith's boiler"): wiped with its work address.
    __personal_data__ = {"description": erase("[redacted]"), "status": KEEP}

    work_address: Mapped[WorkAddress] = relationship()

    def __str__(self) -> str:
        return f"{self.description} ({self.due_on})"
