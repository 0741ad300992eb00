"""Staff accounts: who may give which role, passwords, and what nobody may do to their own
account. The same rules serve Settings → Staff users (``check_staff_change``, called as the
form is saved) and ``flask crm create-user`` (``create_or_reset_user``); both are audited.

- An owner manages every role; an admin manages admins and coordinators, never owners (not
  even seeing them).
- A new account needs a password; a password is stored only as its Argon2id hash and must
  be ``MIN_PASSWORD_LENGTH`` characters or more. A new password ends every session signed in
  with the old one (``User.get_id`` carries its fingerprint).
- Nobody changes their own role, disables or deletes themselves: a panel must always keep
  someone able to manage it.
"""

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from crm.actions import ActionError, ActionResult
from crm.models import User
from crm.models.audit import record
from crm.permissions import ROLES
from crm.security import hash_password
from crm.validation import normalize_email

# Columns whose change the audit names (never their values).
AUDITED = ("email", "name", "role", "is_enabled", "password_hash")


def roles_managed_by(role: str | None) -> tuple[str, ...]:
    """The roles an actor of ``role`` may see, give and take away (None: an operator at the
    command line, who manages every role)."""
    if role is None or role == "owner":
        return ROLES
    if role == "admin":
        return tuple(r for r in ROLES if r != "owner")
    return ()


def check_staff_change(session: Session, *, actor: User, user: User, is_created: bool,
                       password: str | None) -> None:
    """Refuse (ActionError) a staff account created or edited by ``actor`` against the rules
    above, and store ``password`` (when given) as its hash. ``user`` holds the new values;
    what is stored is read from the database (the actor may be the very object edited)."""
    with session.no_autoflush:  # the edit must not reach the database before it is checked
        _check_staff_change(session, actor=actor, user=user, is_created=is_created,
                            password=password)


def _check_staff_change(session: Session, *, actor: User, user: User, is_created: bool,
                        password: str | None) -> None:
    managed = roles_managed_by(_stored_role(session, actor))
    if user.role not in managed:
        raise ActionError("You cannot give that role.")
    stored_role = None if is_created else _stored_role(session, user)
    if stored_role is not None and stored_role not in managed:
        raise ActionError("You cannot change that account.")
    if is_created and not password:
        raise ActionError("A new user needs a password.")
    if password:
        user.password_hash = _hash(password)
    if not is_created and user.id == actor.id and (user.role != stored_role
                                                   or not user.is_enabled):
        raise ActionError("You cannot change your own role or disable yourself.")


def check_staff_delete(*, actor: User, user: User) -> None:
    if user.id == actor.id:
        raise ActionError("You cannot delete your own account.")
    if user.role not in roles_managed_by(actor.role):
        raise ActionError("You cannot delete that account.")


def create_or_reset_user(session: Session, *, email: str, role: str, password: str,
                         name: str | None = None, actor: User | None = None) -> ActionResult:
    """Create a staff account, or give an existing one (same e-mail) this role and password
    — the operator's way in on a fresh machine, and back in after a lost password."""
    try:
        email = normalize_email(email)
    except ValueError as exc:
        raise ActionError(str(exc)) from None
    if not email:
        raise ActionError("An e-mail address is required.")
    if role not in roles_managed_by(actor.role if actor is not None else None):
        raise ActionError(f"The role is one of: {', '.join(roles_managed_by(None))}.")
    password_hash = _hash(password)
    user = session.execute(select(User).where(User.email == email)).scalar_one_or_none()
    created = user is None
    if created:
        user = User(email=email, role=role, password_hash=password_hash, name=name)
        session.add(user)
    else:
        user.role, user.password_hash = role, password_hash
        user.name = name or user.name
    changed = changed_fields(user)
    session.flush()
    record(session, actor=actor, verb="create" if created else "update", subject_type="User",
           subject_id=user.id, details={"fields": changed})
    return ActionResult(verb="create_user", changed=1, changed_refs=(email,),
                        message=f"{'Created' if created else 'Updated'} {role} {email}",
                        details={"user_id": user.id, "created": created})


def _stored_role(session: Session, user: User) -> str | None:
    if user.id is None:
        return user.role
    return session.scalar(select(User.role).where(User.id == user.id))


def changed_fields(user: User) -> list[str]:
    """The audited columns this save changes (names only)."""
    state = inspect(user)
    return sorted(name for name in AUDITED
                  if state.attrs[name].history.has_changes())


def _hash(password: str) -> str:
    try:
        return hash_password(password)
    except ValueError as exc:
        raise ActionError(str(exc)) from None
