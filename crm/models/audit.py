"""The audit trail: who did what to which record. Details never hold personal data."""

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, insert, literal, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from crm.models.access import User
from crm.models.base import Base, utcnow
from crm.personal_data import KEEP

# The actor of what a customer does in the portal (never their e-mail: the trail outlives
# their erasure untouched).
PORTAL = "customer (portal)"


class AuditEvent(Base):
    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_subject", "subject_type", "subject_id", "created_at"),
        Index("ix_audit_event_created_at_id", "created_at", "id"),
        # The audit log filtered by what was done, or by whom, newest first.
        Index("ix_audit_event_verb_created_at_id", "verb", "created_at", "id"),
        Index("ix_audit_event_actor_id_created_at_id", "actor_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    actor_label: Mapped[str] = mapped_column(String(254))
    verb: Mapped[str] = mapped_column(String(40))
    subject_type: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[int | None] = mapped_column(Integer)
    details: Mapped[dict] = mapped_column(JSON, default=dict)

    # Who (staff) did what to which id; details never hold personal data (ids, references,
    # counts), so the trail survives the redaction of its subjects untouched.
    __personal_data__ = {"actor_label": KEEP, "verb": KEEP, "subject_type": KEEP, "details": KEEP}

    actor: Mapped[User | None] = relationship()

    def __str__(self) -> str:
        return f"{self.verb} {self.subject_type} #{self.subject_id}"


def record(
    session: Session,
    *,
    actor: User | None,
    verb: str,
    subject_type: str,
    subject_id: int | None,
    details: dict | None = None,
    label: str | None = None,
) -> AuditEvent:
    """``label`` names an actor who is not a staff user (``PORTAL``: the customer, signed in
    to the portal); without one and without ``actor`` the event is the system's."""
    event = AuditEvent(
        actor_id=actor.id if actor is not None else None,
        actor_label=actor.email if actor is not None else (label or "system"),
        verb=verb,
        subject_type=subject_type,
        subject_id=subject_id,
        details=details or {},
    )
    session.add(event)
    return event


def record_each(
    session: Session,
    *,
    actor: User | None,
    verb: str,
    details: dict,
    criterion=None,
    customer_ids: list[int] | None = None,
    chunk: int = 5000,
) -> None:
    """One audit row per customer (what each customer's timeline reads) meeting
    ``criterion`` (a condition on Customer) or among ``customer_ids``, written with one
    INSERT ... SELECT (per ``chunk`` ids) instead of one ORM object per customer."""
    from crm.models.customer import Customer

    if criterion is not None:
        criteria = [criterion]
    else:
        ids = list(customer_ids or ())
        criteria = [Customer.id.in_(ids[i : i + chunk]) for i in range(0, len(ids), chunk)]
    now = utcnow()
    for where in criteria:
        session.execute(insert(AuditEvent).from_select(
            ["created_at", "actor_id", "actor_label", "verb", "subject_type", "subject_id",
             "details"],
            select(
                literal(now, DateTime),
                literal(actor.id if actor is not None else None, Integer),
                literal(actor.email if actor is not None else "system", String),
                literal(verb, String), literal("Customer", String), Customer.id,
                literal(details, JSON),
            ).where(where),
        ))
