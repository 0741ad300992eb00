"""Staff users and customer portal accounts."""

import hashlib
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import Boolean, CheckConstraint, DateTime, ForeignKey, String, false, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.models.base import Base, Versioned
from crm.models.customer import Customer, _in
from crm.permissions import ROLES
from crm.personal_data import ERASE, KEEP, placeholder


class User(UserMixin, Versioned, Base):
    __tablename__ = "user"
    __table_args__ = (CheckConstraint(_in("role", ROLES), name="role"),)

    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(12))
    password_hash: Mapped[str] = mapped_column(String(255))
    is_enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime)

    # Staff, not customers: a customer's erasure leaves them alone (the audit trail needs
    # to say who acted); staff accounts are disabled or edited through user management.
    __personal_data__ = {"email": KEEP, "name": KEEP, "role": KEEP, "password_hash": KEEP}

    @property
    def is_active(self) -> bool:  # Flask-Login refuses disabled accounts
        return bool(self.is_enabled)

    def get_id(self) -> str:
        """The id Flask-Login keeps in the session and the remember cookie, bound to the
        current password: a new password ends every session signed in with the old one."""
        return f"{self.id}.{self.password_fingerprint()}"

    def password_fingerprint(self) -> str:
        return hashlib.sha256((self.password_hash or "").encode()).hexdigest()[:16]

    def __str__(self) -> str:
        return self.name or self.email


class PortalAccount(Versioned, Base):
    __tablename__ = "portal_account"

    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), unique=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    invite_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    invite_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    # The login e-mail is unique and NOT NULL: a per-row address that can never be delivered.
    __personal_data__ = {
        "email": placeholder("redacted-{id}@invalid"),
        "password_hash": ERASE,
        "invite_token_hash": ERASE,
    }

    customer: Mapped[Customer] = relationship()

    def __str__(self) -> str:
        return self.email
