"""Staff sign-in sessions, kept on the server: the cookie names a session by a random token
(only its hash is stored), so signing out ends it for every copy of the cookie, and "sign
out everywhere" ends every session of a user at once.

- ``start_session``: a new session at sign-in (and the time of the sign-in, written without
  the optimistic version check: forty simultaneous sign-ins to one account must not fail).
- ``end_session``: sign-out.
- ``end_all_sessions``: sign out everywhere (audited).
- ``signed_in_user``: who a cookie belongs to, if its session is still open.
"""

import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from crm.actions import ActionError, ActionResult
from crm.models import StaffSession, User
from crm.models.audit import record
from crm.models.base import utcnow

# A session is good for this long after sign-in, however it is kept alive (the remember-me
# cookie lasts as long).
MAX_AGE = timedelta(days=30)


def start_session(session: Session, *, user: User, now: datetime | None = None) -> str:
    """Open a session for ``user`` and return its token (for ``user.session_token``)."""
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    # Ended and expired sessions of this user are of no further use.
    session.execute(delete(StaffSession).where(
        StaffSession.user_id == user.id,
        or_(StaffSession.ended_at.is_not(None), StaffSession.created_at < now - MAX_AGE),
    ))
    session.add(StaffSession(user_id=user.id, token_hash=StaffSession.hash(token),
                             created_at=now))
    session.execute(update(User.__table__).where(User.__table__.c.id == user.id)
                    .values(last_login_at=now))
    session.flush()
    user.session_token = token
    return token


def end_session(session: Session, *, user_id: int, token: str | None) -> bool:
    """End one session (sign-out); whether there was an open one."""
    if not token:
        return False
    result = session.execute(
        update(StaffSession)
        .where(StaffSession.user_id == user_id, StaffSession.token_hash == StaffSession.hash(token),
               StaffSession.ended_at.is_(None))
        .values(ended_at=utcnow())
    )
    return result.rowcount > 0


def end_all_sessions(session: Session, *, user_id: int, actor: User | None) -> ActionResult:
    """Sign ``user_id`` out of every browser (a lost laptop, a colleague who left)."""
    user = session.get(User, user_id)
    if user is None:
        raise ActionError(f"There is no staff user #{user_id}.")
    ended = session.execute(
        update(StaffSession)
        .where(StaffSession.user_id == user_id, StaffSession.ended_at.is_(None))
        .values(ended_at=utcnow())
    ).rowcount
    record(session, actor=actor, verb="end_sessions", subject_type="User", subject_id=user_id,
           details={"sessions": ended})
    session.flush()
    plural = "" if ended == 1 else "s"
    return ActionResult(
        verb="end_sessions", changed=ended, changed_refs=(user.email,),
        message=f"Signed {user.email} out of {ended} session{plural}." if ended
        else f"{user.email} was not signed in anywhere.",
    )


def signed_in_user(session: Session, cookie_id: str) -> User | None:
    """The user a session cookie's id (``User.get_id``) names, if that session is still
    open, not too old, and was signed in with the user's current password. One query."""
    user_id, fingerprint, token = (cookie_id.split(".") + ["", ""])[:3]
    if not user_id.isdigit() or not token or len(token) > 100:
        return None
    user = session.execute(
        select(User).join(StaffSession, StaffSession.user_id == User.id).where(
            User.id == int(user_id),
            StaffSession.token_hash == StaffSession.hash(token),
            StaffSession.ended_at.is_(None),
            StaffSession.created_at > utcnow() - MAX_AGE,
        )
    ).scalar_one_or_none()
    if user is None or user.password_fingerprint() != fingerprint:
        return None
    user.session_token = token
    return user
