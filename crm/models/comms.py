"""Notes and communications, and the e-mail blocklist."""

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    String,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.models.access import User
from crm.models.base import Base, Timestamped, Versioned, length_check, long_text, utcnow
from crm.models.customer import Customer, _in
from crm.models.property import WorkAddress
from crm.personal_data import ERASE, KEEP, erase

NOTE_KINDS = ("note", "call", "email", "portal")
STAFF_NOTE_KINDS = NOTE_KINDS[:3]  # what staff write; "portal" notes come from customers
# A customer's question from the portal is a note of kind "portal" on the customer, linked to
# the invoice it is about; staff answer it with a reply the customer reads on that invoice.
# Why an address or domain is blocked: a reason from a list (a free-text reason used to hold
# the person's name, "… was abusive", and outlived their erasure), and an optional note.
BLOCK_REASONS = ("abuse", "spam", "chargeback", "customer_request", "other")
BLOCK_REASON_LABELS = {"abuse": "Abuse", "spam": "Spam", "chargeback": "Chargeback",
                       "customer_request": "Customer's request", "other": "Other"}


class Note(Versioned, Base):
    __tablename__ = "note"
    __table_args__ = (
        CheckConstraint(_in("kind", NOTE_KINDS), name="kind"),
        CheckConstraint(
            "customer_id IS NOT NULL OR work_address_id IS NOT NULL", name="has_subject"
        ),
        Index("ix_note_customer_id_created_at", "customer_id", "created_at"),
        length_check("note", "body"),
        length_check("note", "reply"),
        # The portal queries list: open ones first, by kind and date.
        Index("ix_note_kind_answered_at_created_at", "kind", "answered_at", "created_at"),
    )

    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"))
    work_address_id: Mapped[int | None] = mapped_column(ForeignKey("work_address.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10), default="note", server_default="note")
    body: Mapped[str] = mapped_column(**long_text("note", "body"))
    important: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    do_not_work_with_again: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    author_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), index=True)
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoice.id"), index=True)
    reply: Mapped[str | None] = mapped_column(**long_text("note", "reply"))
    answered_at: Mapped[datetime | None] = mapped_column(DateTime)
    answered_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))

    __personal_data__ = {"kind": KEEP, "body": erase("[redacted]"), "reply": ERASE}

    customer: Mapped[Customer | None] = relationship()
    work_address: Mapped[WorkAddress | None] = relationship()
    author: Mapped[User | None] = relationship(foreign_keys=[author_id])
    answered_by: Mapped[User | None] = relationship(foreign_keys=[answered_by_id])
    invoice: Mapped["Invoice | None"] = relationship()  # noqa: F821

    def __str__(self) -> str:
        body = self.body or ""
        return body[:60] + ("…" if len(body) > 60 else "")


class BlockedEmail(Timestamped, Base):
    """A blocked address (kept only as a keyed hash) or a whole domain."""

    __tablename__ = "blocked_email"
    __table_args__ = (
        CheckConstraint(_in("kind", ("address", "domain")), name="kind"),
        CheckConstraint(_in("reason", BLOCK_REASONS), name="reason"),
        CheckConstraint(
            "(kind = 'address' AND address_hash IS NOT NULL AND domain IS NULL) OR "
            "(kind = 'domain' AND domain IS NOT NULL AND address_hash IS NULL)",
            name="kind_value",
        ),
        Index("ix_blocked_email_address_hash", "address_hash"),
        Index("ix_blocked_email_domain", "domain"),
    )

    kind: Mapped[str] = mapped_column(String(10))
    address_hash: Mapped[str | None] = mapped_column(String(64))
    domain: Mapped[str | None] = mapped_column(String(253))
    reason: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(String(500))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    unblocked_at: Mapped[datetime | None] = mapped_column(DateTime)
    unblocked_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))

    # The block must outlive the redaction of the person: only a keyed hash of the address
    # is stored, and the reason is a code. The note is free text and may name the person:
    # redaction erases the notes that mention the customer (crm.actions.redact). Domains are
    # organisations' (a block is not tied to one customer).
    __personal_data__ = {"kind": KEEP, "address_hash": KEEP, "domain": KEEP, "reason": KEEP,
                         "note": ERASE}

    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    unblocked_by: Mapped[User | None] = relationship(foreign_keys=[unblocked_by_id])

    def __str__(self) -> str:
        return f"@{self.domain}" if self.kind == "domain" else "address (hashed)"


class SentMessage(Base):
    """One e-mail sent about a customer (a statement so far): an index of what the mail
    backend holds, so that erasing the customer removes the stored messages without reading
    every file of the outbox. ``reference`` is the outbox file name, or the SMTP Message-ID
    (a message already delivered cannot be recalled; its row goes with the redaction)."""

    __tablename__ = "sent_message"
    __table_args__ = (CheckConstraint(_in("backend", ("outbox", "smtp")), name="backend"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    backend: Mapped[str] = mapped_column(String(10))
    reference: Mapped[str] = mapped_column(String(255))

    __personal_data__ = {"kind": KEEP, "backend": KEEP, "reference": KEEP}
