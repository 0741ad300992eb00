"""Who gets into the customer portal, and how: invitations, passwords, e-mailed sign-in
links, password resets, sessions, revoking, and changing the login e-mail.

- A link carries a random token; only its hash is stored (``PortalToken``). It works once,
  until it expires (an invitation after ``INVITE_DAYS``, a sign-in or reset link after
  ``LINK_MINUTES``), and not after a newer link of the same kind was sent or the password
  changed. Invoice Ninja's links stay valid, so an old e-mail can reopen the account; these
  do not.
- Nobody signs in (by password or link) to a disabled account, or for a customer that is
  redacted, archived, merged away, or whose e-mail is blocked; the refusal never says which,
  and a link request answers the same for a known and an unknown address. Dormant customers
  may sign in. After a merge the survivor's account is the one that works.
- Sessions live on the server (``PortalSession``); a new password ends every other session,
  revoking ends them all.

Every change is audited on the customer (as ``PORTAL`` when the customer did it), so it
shows on the staff timeline. The e-mails' links come from the caller (``link``: token ->
URL), built from the configured public address, never from a request's Host header.
"""

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from zxcvbn import zxcvbn

from crm import business, mail
from crm.actions import SAMPLE, ActionError, ActionResult, Selection, Skip, ids_select
from crm.actions.guards import live_customer
from crm.actions.sent_messages import index_sent
from crm.blocklist import is_email_blocked
from crm.models import Customer, PortalAccount, PortalSession, PortalToken, User
from crm.models.audit import PORTAL, record, record_each
from crm.models.base import utcnow
from crm.security import hash_password, token_digest, verify_password
from crm.validation import normalize_email

INVITE_DAYS = 7
LINK_MINUTES = 15
EMAIL_CHANGE_HOURS = 24
SESSION_MAX_AGE = timedelta(days=30)
MIN_PASSWORD = 12
LIFETIMES = {"invite": timedelta(days=INVITE_DAYS), "sign_in": timedelta(minutes=LINK_MINUTES),
             "reset": timedelta(minutes=LINK_MINUTES),
             "email": timedelta(hours=EMAIL_CHANGE_HOURS)}
# One sentence for every refusal of a sign-in: it never says whether the address is known,
# the account disabled or the customer blocked.
REFUSED = "That e-mail and password do not open an account here, or the account is closed."
LINK_REFUSED = ("This link has expired or has already been used. Ask for a new one on the "
                "sign-in page.")

Link = Callable[[str], str]
Send = Callable[[mail.Message], str]


class PortalRefused(ActionError):
    """A sign-in or a link refused; the message says nothing about why."""


@dataclass(frozen=True)
class Invitation:
    """An invitation made: the account, and the link (for the CLI to print)."""

    account_id: int
    reference: str
    link: str


# --- who may sign in ----------------------------------------------------------------------

def closed_reason(session: Session, account: PortalAccount, customer: Customer) -> str | None:
    """Why ``account`` may not be used now (for staff: the customer is never told), or None."""
    if account.disabled:
        return "portal account disabled"
    if customer.merged_into_id is not None:
        return "merged into another customer"
    if customer.redacted_at is not None:
        return "redacted"
    if customer.status == "archived":
        return "archived"
    if customer.email_blocked or is_email_blocked(session, account.email):
        return "e-mail blocked"
    return None


def _account_by_email(session: Session, email: str | None) -> PortalAccount | None:
    try:
        normalized = normalize_email(email)
    except ValueError:
        return None
    if not normalized:
        return None
    return session.execute(
        select(PortalAccount).where(PortalAccount.email == normalized)
    ).scalar_one_or_none()


def _open(session: Session, account: PortalAccount | None) -> PortalAccount | None:
    """The account if it may be used now, else None."""
    if account is None:
        return None
    customer = session.get(Customer, account.customer_id)
    return account if customer is not None and closed_reason(session, account, customer) is None \
        else None


# --- tokens -------------------------------------------------------------------------------

def _issue(session: Session, account: PortalAccount, purpose: str, *,
           new_email: str | None = None) -> str:
    """A new token of ``purpose`` for ``account``; older open ones of that purpose end."""
    now = utcnow()
    session.execute(
        update(PortalToken)
        .where(PortalToken.account_id == account.id, PortalToken.purpose == purpose,
               PortalToken.used_at.is_(None), PortalToken.ended_at.is_(None))
        .values(ended_at=now)
    )
    token = secrets.token_urlsafe(32)
    session.add(PortalToken(account_id=account.id, purpose=purpose, token_hash=token_digest(token),
                            new_email=new_email, created_at=now,
                            expires_at=now + LIFETIMES[purpose]))
    session.flush()
    return token


def _redeem(session: Session, token: str | None, purposes: tuple[str, ...]) -> PortalToken:
    """Use up the open token of one of ``purposes`` that ``token`` names; refused with one
    sentence whatever the reason (unknown, used, superseded, expired, account closed). One
    conditional UPDATE: of two requests racing with the same link, only one gets it."""
    if not token or len(token) > 100:
        raise PortalRefused(LINK_REFUSED)
    now = utcnow()
    digest = token_digest(token)
    used = session.execute(
        update(PortalToken)
        .where(PortalToken.token_hash == digest, PortalToken.purpose.in_(purposes),
               PortalToken.used_at.is_(None), PortalToken.ended_at.is_(None),
               PortalToken.expires_at > now)
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    found = session.execute(
        select(PortalToken).where(PortalToken.token_hash == digest)
    ).scalar_one_or_none() if used == 1 else None
    if found is None or _open(session, session.get(PortalAccount, found.account_id)) is None:
        raise PortalRefused(LINK_REFUSED)
    session.refresh(found)
    return found


def peek(session: Session, token: str | None, purposes: tuple[str, ...]) -> PortalAccount:
    """The account a link is for, without using it up (the page that asks for a new
    password first); refused like ``_redeem``."""
    found = None
    if token and len(token) <= 100:
        found = session.execute(
            select(PortalToken).where(PortalToken.token_hash == token_digest(token))
        ).scalar_one_or_none()
    if (found is None or found.purpose not in purposes or found.used_at is not None
            or found.ended_at is not None or found.expires_at <= utcnow()):
        raise PortalRefused(LINK_REFUSED)
    account = _open(session, session.get(PortalAccount, found.account_id))
    if account is None:
        raise PortalRefused(LINK_REFUSED)
    return account


def _end_tokens(session: Session, account_id: int, purposes: tuple[str, ...]) -> None:
    session.execute(
        update(PortalToken)
        .where(PortalToken.account_id == account_id, PortalToken.purpose.in_(purposes),
               PortalToken.used_at.is_(None), PortalToken.ended_at.is_(None))
        .values(ended_at=utcnow())
    )


# --- passwords ----------------------------------------------------------------------------

def check_password(password: str | None, *, email: str = "", name: str = "") -> str:
    """A password of ``MIN_PASSWORD`` characters or more that zxcvbn does not find among
    common passwords and guessable patterns; ActionError with its advice otherwise."""
    password = password or ""
    if len(password) < MIN_PASSWORD:
        raise ActionError(f"Use at least {MIN_PASSWORD} characters.")
    if len(password) > 200:
        raise ActionError("Use at most 200 characters.")
    strength = zxcvbn(password[:100], user_inputs=[w for w in (email, name) if w])
    if strength["score"] < 3:
        feedback = strength["feedback"]
        advice = " ".join(x for x in [feedback.get("warning") or "",
                                      *feedback.get("suggestions", [])] if x)
        raise ActionError("That password is too easy to guess" + (f": {advice}" if advice
                                                                 else "."))
    return password


def _set_password(session: Session, account: PortalAccount, password: str, *,
                  keep_session: str | None = None) -> None:
    customer = session.get(Customer, account.customer_id)
    check_password(password, email=account.email, name=customer.display_name if customer else "")
    now = utcnow()
    account.password_hash = hash_password(password)
    if account.activated_at is None:
        account.activated_at = now
    # A new password ends the links that could set another, and every other session.
    _end_tokens(session, account.id, ("invite", "sign_in", "reset"))
    end_sessions(session, account_id=account.id, keep=keep_session)


# --- sessions -----------------------------------------------------------------------------

def start_session(session: Session, *, account: PortalAccount) -> str:
    """A new signed-in session (its token goes in the portal's cookie)."""
    now = utcnow()
    token = secrets.token_urlsafe(32)
    session.add(PortalSession(account_id=account.id, token_hash=token_digest(token),
                              created_at=now))
    session.execute(update(PortalAccount.__table__)
                    .where(PortalAccount.__table__.c.id == account.id)
                    .values(last_login_at=now))
    session.flush()
    return token


def end_session(session: Session, *, token: str | None) -> None:
    if token:
        session.execute(update(PortalSession)
                        .where(PortalSession.token_hash == token_digest(token),
                               PortalSession.ended_at.is_(None))
                        .values(ended_at=utcnow()))


def end_sessions(session: Session, *, account_id: int, keep: str | None = None) -> int:
    """End every open session of the account (but ``keep``'s); how many."""
    criteria = [PortalSession.account_id == account_id, PortalSession.ended_at.is_(None)]
    if keep:
        criteria.append(PortalSession.token_hash != token_digest(keep))
    return session.execute(update(PortalSession).where(*criteria)
                           .values(ended_at=utcnow())).rowcount


def signed_in(session: Session, token: str | None) -> tuple[PortalAccount, Customer] | None:
    """The account and customer of an open, recent session, if the account may still be
    used (one statement, plus the blocklist when the customer is flagged)."""
    if not token or len(token) > 100:
        return None
    row = session.execute(
        select(PortalAccount, Customer)
        .join(PortalSession, PortalSession.account_id == PortalAccount.id)
        .join(Customer, Customer.id == PortalAccount.customer_id)
        .where(PortalSession.token_hash == token_digest(token),
               PortalSession.ended_at.is_(None),
               PortalSession.created_at > utcnow() - SESSION_MAX_AGE)
    ).first()
    if row is None or closed_reason(session, row[0], row[1]) is not None:
        return None
    return row[0], row[1]


# --- signing in ---------------------------------------------------------------------------

def sign_in(session: Session, *, email: str | None, password: str | None) -> PortalAccount:
    """The account an e-mail and password open, or ``PortalRefused`` (one sentence)."""
    account = _account_by_email(session, email)
    stored = account.password_hash if account is not None else None
    if not verify_password(stored, password or "") or _open(session, account) is None:
        raise PortalRefused(REFUSED)
    _audit(session, account, "portal_sign_in", {"by": "password"})
    return account


def sign_in_with_link(session: Session, *, token: str | None) -> PortalAccount:
    """Use up an e-mailed sign-in link; the account it opens."""
    used = _redeem(session, token, ("sign_in",))
    account = session.get(PortalAccount, used.account_id)
    _audit(session, account, "portal_sign_in", {"by": "link"})
    return account


def request_link(session: Session, *, email: str | None, purpose: str, link: Link,
                 send: Send = mail.send) -> None:
    """E-mail a sign-in link (``purpose`` "sign_in") or a password reset ("reset") to the
    account with that address, if there is one that may be used; otherwise do nothing. The
    caller answers the same either way."""
    if purpose not in ("sign_in", "reset"):
        raise ValueError(purpose)
    account = _open(session, _account_by_email(session, email))
    if account is None:
        return
    token = _issue(session, account, purpose)
    customer = session.get(Customer, account.customer_id)
    sent = send(business.compose(account.email, _SUBJECTS[purpose], f"portal_{purpose}",
                                 session=session, name=customer.display_name, link=link(token),
                                 minutes=LINK_MINUTES))
    index_sent(session, customer_id=customer.id, kind=f"portal_{purpose}", sent=sent)
    _audit(session, account, f"portal_{purpose}_link", {})


def set_password_with_link(session: Session, *, token: str | None,
                           password: str | None) -> PortalAccount:
    """Accept an invitation or a reset link: set the password (which ends every other link
    and session) and use the link up. The password is checked before the link is used, so
    a weak one can be replaced on the same page."""
    account = peek(session, token, ("invite", "reset"))
    customer = session.get(Customer, account.customer_id)
    check_password(password, email=account.email, name=customer.display_name)
    used = _redeem(session, token, ("invite", "reset"))
    first = account.activated_at is None
    _set_password(session, account, password)
    _audit(session, account, "portal_password_set",
           {"by": used.purpose, "first": first})
    return account


def change_password(session: Session, *, account_id: int, current: str | None,
                    new: str | None, keep_session: str | None) -> ActionResult:
    """The signed-in customer's new password; every other session of the account ends."""
    account = session.get(PortalAccount, account_id)
    if account is None or not verify_password(account.password_hash, current or ""):
        raise ActionError("Your current password is not right; nothing was changed.")
    _set_password(session, account, new, keep_session=keep_session)
    _audit(session, account, "portal_password_changed", {})
    return ActionResult("portal_password_changed", changed=1,
                        message="Your password is changed; other devices are signed out.")


# --- the login e-mail ---------------------------------------------------------------------

def request_email_change(session: Session, *, account_id: int, new_email: str | None,
                         link: Link, send: Send = mail.send) -> ActionResult:
    """Send a confirmation link to the new address; nothing changes until it is opened."""
    account = session.get(PortalAccount, account_id)
    try:
        normalized = normalize_email(new_email)
    except ValueError as exc:
        raise ActionError(str(exc)) from None
    if not normalized:
        raise ActionError("Enter the new e-mail address.")
    if normalized == account.email:
        raise ActionError("That is already your sign-in e-mail.")
    if is_email_blocked(session, normalized):
        raise ActionError("That address cannot be used here; choose another.")
    token = _issue(session, account, "email", new_email=normalized)
    customer = session.get(Customer, account.customer_id)
    sent = send(business.compose(normalized, "Confirm your new sign-in e-mail", "portal_email",
                                 session=session, name=customer.display_name, link=link(token),
                                 hours=EMAIL_CHANGE_HOURS))
    index_sent(session, customer_id=customer.id, kind="portal_email", sent=sent)
    _audit(session, account, "portal_email_change_requested", {})
    return ActionResult("portal_email_change_requested", message=(
        f"We sent a link to {normalized}. Your sign-in e-mail changes when you open it "
        f"(within {EMAIL_CHANGE_HOURS} hours)."))


def confirm_email_change(session: Session, *, token: str | None) -> PortalAccount:
    used = _redeem(session, token, ("email",))
    account = session.get(PortalAccount, used.account_id)
    taken = session.execute(select(PortalAccount.id).where(
        PortalAccount.email == used.new_email, PortalAccount.id != account.id)).first()
    if taken or is_email_blocked(session, used.new_email):
        raise ActionError("That address cannot be used here; nothing was changed.")
    account.email = used.new_email
    _audit(session, account, "portal_email_changed", {})
    return account


# --- staff: invite and revoke -------------------------------------------------------------

def invite_customers(session: Session, *, selection: Selection, actor: User | None, link: Link,
                     send: Send = mail.send) -> ActionResult:
    """Create (or re-invite) the portal account of each selected customer with an e-mail and
    e-mail it an invitation to set a password (valid ``INVITE_DAYS`` days). Skips, with the
    reason, merged-away, redacted, archived and blocked customers, those without an e-mail,
    and an address another customer's account already uses. A revoked account is opened
    again by a new invitation."""
    chosen = ids_select(selection, Customer.id).correlate(None)
    customers = session.scalars(
        select(Customer).where(Customer.id.in_(chosen)).order_by(Customer.id)).all()
    invited: list[Invitation] = []
    skipped: list[Skip] = []
    for customer in customers:
        reason = _why_not_invited(session, customer)
        account = None
        if reason is None:
            account, reason = _account_for(session, customer)
        if reason is not None:
            skipped.append(Skip(customer.reference, reason))
            continue
        token = _issue(session, account, "invite")
        url = link(token)
        sent = send(business.compose(account.email,
                                     f"Your account with {business.identity(session).name}",
                                     "portal_invite", session=session,
                                     name=customer.display_name, link=url, days=INVITE_DAYS))
        index_sent(session, customer_id=customer.id, kind="portal_invite", sent=sent)
        invited.append(Invitation(account.id, customer.reference, url))
    _audit_invites(session, actor, invited, customers)
    return ActionResult(
        "portal_invite", changed=len(invited),
        changed_refs=tuple(i.reference for i in invited[:SAMPLE]),
        skipped=tuple(skipped[:SAMPLE]), skipped_count=len(skipped),
        message=f"Sent {len(invited):,} portal invitation{'' if len(invited) == 1 else 's'}"
                + (f"; {len(skipped):,} skipped." if skipped else "."),
        details={"invitations": invited},
    )


def _why_not_invited(session: Session, customer: Customer) -> str | None:
    if customer.merged_into_id is not None:
        return "merged into another customer"
    if customer.redacted_at is not None:
        return "redacted"
    if customer.status == "archived":
        return "archived"
    if not (customer.email or "").strip():
        return "no e-mail address"
    if customer.email_blocked or is_email_blocked(session, customer.email):
        return "e-mail blocked"
    return None


def _account_for(session: Session, customer: Customer) -> tuple[PortalAccount | None, str | None]:
    """The customer's account, made or brought up to date with its e-mail (and opened again
    if it was revoked); or why there can be none."""
    email = customer.email.strip().lower()
    other = session.execute(select(PortalAccount).where(
        PortalAccount.email == email, PortalAccount.customer_id != customer.id)).scalar()
    if other is not None:
        owner = session.get(Customer, other.customer_id)
        return None, f"{email[:1]}…@{email.rsplit('@', 1)[-1]} is the portal login of " \
                     f"{owner.reference if owner else 'another customer'}"
    account = session.execute(select(PortalAccount).where(
        PortalAccount.customer_id == customer.id)).scalar_one_or_none()
    now = utcnow()
    if account is None:
        account = PortalAccount(customer_id=customer.id, email=email)
        session.add(account)
    account.email, account.disabled, account.invited_at = email, False, now
    session.flush()
    return account, None


def revoke(session: Session, *, account_id: int, actor: User | None) -> ActionResult:
    """Close a portal account at once: disabled, every session and link ended."""
    account = session.get(PortalAccount, account_id)
    if account is None:
        raise ActionError("That portal account does not exist.")
    customer = session.get(Customer, account.customer_id)
    if account.disabled:
        return ActionResult("portal_revoke", skipped=(Skip(customer.reference, "already revoked"),),
                            skipped_count=1,
                            message=f"{customer.reference}'s portal account was already revoked.")
    account.disabled = True
    ended = end_sessions(session, account_id=account.id)
    _end_tokens(session, account.id, ("invite", "sign_in", "reset", "email"))
    record(session, actor=actor, verb="portal_revoke", subject_type="Customer",
           subject_id=customer.id, details={"account_id": account.id, "sessions": ended})
    session.flush()
    return ActionResult("portal_revoke", changed=1, changed_refs=(customer.reference,),
                        message=f"{customer.reference}'s portal account is revoked; "
                                f"{ended} session{'' if ended == 1 else 's'} ended.")


def start_viewing_as(session: Session, *, customer_id: int, actor: User | None) -> ActionResult:
    """Staff open the portal as the customer sees it, read-only; audited when it starts."""
    customer = live_customer(session, customer_id, doing="view the portal as the customer")
    record(session, actor=actor, verb="view_as_customer", subject_type="Customer",
           subject_id=customer.id, details={})
    session.flush()
    return ActionResult("view_as_customer", changed=1, changed_refs=(customer.reference,),
                        details={"customer_id": customer.id})


# --- steps --------------------------------------------------------------------------------

_SUBJECTS = {"sign_in": "Your sign-in link", "reset": "Reset your password"}


def _audit(session: Session, account: PortalAccount, verb: str, details: dict) -> None:
    record(session, actor=None, label=PORTAL, verb=verb, subject_type="Customer",
           subject_id=account.customer_id, details={"account_id": account.id, **details})
    session.flush()


def _audit_invites(session: Session, actor: User | None, invited: list[Invitation],
                   customers: list[Customer]) -> None:
    if not invited:
        return
    by_reference = {c.reference: c.id for c in customers}
    ids = [by_reference[i.reference] for i in invited]
    if len(ids) == 1:
        record(session, actor=actor, verb="portal_invite", subject_type="Customer",
               subject_id=ids[0], details={"account_id": invited[0].account_id})
        session.flush()
        return
    summary = record(session, actor=actor, verb="portal_invite", subject_type="Customer",
                     subject_id=None, details={"count": len(ids)})
    session.flush()
    record_each(session, actor=actor, verb="portal_invite", customer_ids=ids,
                details={"summary_id": summary.id})


def account_of(session: Session, customer_id: int) -> PortalAccount | None:
    return session.execute(select(PortalAccount).where(
        PortalAccount.customer_id == customer_id)).scalar_one_or_none()
