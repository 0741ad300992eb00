"""Look-ups in the e-mail blocklist: is this address blocked now, by itself or its domain?

Below both the block/unblock actions (``crm.actions.block_email``), which write the list, and
the session hooks (``crm.session_hooks``), which keep ``Customer.email_blocked`` true for
customers created or given a new address. An address is matched by a keyed hash of its
canonical form (``crm.security.email_block_hash``); a domain in clear, exactly
(``@example.com`` does not cover ``mail.example.com``).
"""

from collections.abc import Iterable

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from crm.models import BlockedEmail
from crm.security import email_block_hash
from crm.validation import email_domain, normalize_email

# Values per IN (...) list: well under SQLite's 32,766 and PostgreSQL's 65,535 parameters.
CHUNK = 5000


def canonical(email: str) -> str:
    """The form an address is hashed and matched in: normalized when it is a valid address;
    an invalid one (only ever typed, never stored) is matched as typed, lower-cased."""
    try:
        return normalize_email(email) or ""
    except ValueError:
        return email.strip().lower()


def active():
    """The criterion of a block in force (a lifted block stays as history)."""
    return BlockedEmail.unblocked_at.is_(None)


def blocked_addresses(session: Session, emails: Iterable[str]) -> set[str]:
    """The canonical forms of those ``emails`` that are blocked now (a constant number of
    statements per ``CHUNK`` addresses, whatever the size of the blocklist)."""
    canon = sorted({canonical(e) for e in emails if e and e.strip()})
    blocked: set[str] = set()
    for start in range(0, len(canon), CHUNK):
        part = canon[start:start + CHUNK]
        hashes = {email_block_hash(e): e for e in part}
        domains = {email_domain(e) for e in part}
        rows = session.execute(
            select(BlockedEmail.kind, BlockedEmail.address_hash, BlockedEmail.domain).where(
                active(),
                or_(
                    and_(BlockedEmail.kind == "address",
                         BlockedEmail.address_hash.in_(list(hashes))),
                    and_(BlockedEmail.kind == "domain", BlockedEmail.domain.in_(sorted(domains))),
                ),
            )
        ).all()
        blocked_domains = {r.domain for r in rows if r.kind == "domain"}
        blocked.update(hashes[r.address_hash] for r in rows if r.kind == "address")
        blocked.update(e for e in part if email_domain(e) in blocked_domains)
    return blocked


def is_email_blocked(session: Session, email: str | None) -> bool:
    """Whether an address is blocked now, by itself or by its domain."""
    if email is None or not email.strip():
        return False
    return bool(blocked_addresses(session, [email]))
