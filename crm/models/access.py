"""Staff users and customer portal accounts."""

import hashlib
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import Boolean, CheckConstraint, DateTime, ForeignKey, String, false, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm.models.base import Base, Versioned, utcnow
from crm.models.customer import Customer, _in
from crm.permissions import ROLES
from crm.personal_data import ERASE, KEEP, placeholder
from crm.security import token_digest


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

    # The signed-in session this object was loaded for (``StaffSession``'s token, set at
    # sign-in and by the user loader); never stored on the user's row.
    session_token = None

    def get_id(self) -> str:
        """The id Flask-Login keeps in the session cookie and the remember cookie: the user,
        the current password's fingerprint (a new password ends every session signed in with
        the old one) and the server-side session (signing out ends it, whatever copies of
        the cookie exist)."""
        return f"{self.id}.{self.password_fingerprint()}.{self.session_token or ''}"

    def password_fingerprint(self) -> str:
        return hashlib.sha256((self.password_hash or "").encode()).hexdigest()[:16]

    def __str__(self) -> str:
        return self.name or self.email


class StaffSession(Base):
    """One signed-in browser of a staff user. The cookie carries a random token; only its
    hash is stored. Signing out ends the row, so a copied cookie no longer opens anything;
    "sign out everywhere" ends every row of the user."""

    __tablename__ = "staff_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)

    __personal_data__ = {"token_hash": KEEP}

    @staticmethod
    def hash(token: str) -> str:
        return token_digest(token)


PORTAL_TOKEN_PURPOSES = ("invite", "sign_in", "reset", "email")
PORTAL_STATUSES = ("invited", "active", "disabled")


class PortalAccount(Versioned, Base):
    """A customer's way into the portal: one per customer, signed in with its e-mail and a
    password, or a link e-mailed to it. Invited until its first password is set."""

    __tablename__ = "portal_account"

    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), unique=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    invited_at: Mapped[datetime | None] = mapped_column(DateTime)
    activated_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    # The login e-mail is unique and NOT NULL: a per-row address that can never be delivered.
    __personal_data__ = {
        "email": placeholder("redacted-{id}@invalid"),
        "password_hash": ERASE,
    }

    customer: Mapped[Customer] = relationship()

    @property
    def status(self) -> str:
        if self.disabled:
            return "disabled"
        return "active" if self.password_hash else "invited"

    def __str__(self) -> str:
        return self.email


class PortalToken(Base):
    """A link e-mailed to a portal account: an invitation (7 days), a sign-in link or a
    password reset (15 minutes), or the confirmation of a new login e-mail. Only a hash of
    the token is kept; a token works once, until it expires, and not after a newer one of the
    same kind was sent or the password changed (``ended_at``)."""

    __tablename__ = "portal_token"
    __table_args__ = (CheckConstraint(_in("purpose", PORTAL_TOKEN_PURPOSES), name="purpose"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("portal_account.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(10))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The address being confirmed (purpose "email" only).
    new_email: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)

    __personal_data__ = {"purpose": KEEP, "token_hash": KEEP, "new_email": ERASE}

    account: Mapped[PortalAccount] = relationship()


class PortalSession(Base):
    """One signed-in browser of a portal account (the portal's own cookie names it by a
    token; only the hash is kept). Signing out, a new password and revoking end it."""

    __tablename__ = "portal_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("portal_account.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)

    __personal_data__ = {"token_hash": KEEP}
