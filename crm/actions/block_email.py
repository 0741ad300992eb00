"""Block and unblock e-mail: one address, or a whole domain (``@example.com``).

An address is kept only as a keyed hash of its normalized form (``crm.security``), so the
block outlives the redaction of the person who had it; a domain is kept in clear (it is not
personal data). A domain block is exact: ``@example.com`` blocks ``sam@example.com`` but not
``sam@mail.example.com`` — subdomains often belong to someone else (a university's
departments, a host's customers), so each is blocked on its own when it should be.

``Customer.email_blocked`` answers "is this customer's e-mail blocked now" for the list's flag
and filter. These actions keep it right for the customers already on file, set-based; the
session hook in ``crm.session_hooks`` keeps it right for customers created or edited later.
Refusing to create a customer, lead or booking with a blocked address is the job of whoever
creates it, through ``ensure_not_blocked``; the look-ups themselves live in ``crm.blocklist``.
"""

from collections.abc import Iterable

from sqlalchemy import and_, func, inspect, select, update
from sqlalchemy.orm import Session

from crm.actions import SAMPLE, ActionError, ActionResult, Selection, Skip, ids_select
from crm.blocklist import CHUNK, active, blocked_addresses, canonical, is_email_blocked
from crm.models import BlockedEmail, Customer, User
from crm.models.audit import record, record_each
from crm.models.base import utcnow
from crm.models.comms import BLOCK_REASON_LABELS, BLOCK_REASONS
from crm.security import email_block_hash
from crm.validation import email_domain, normalize_email

NOTE_MAX = 500
HOW_TO_WRITE = "Enter an address (name@example.com) or a whole domain (@example.com)."


def block_email(session: Session, *, value: str, reason: str, actor: User | None,
                note: str | None = None) -> ActionResult:
    """Block an address or a domain, and flag the live customers who use it. ``reason`` is
    one of ``BLOCK_REASONS``; ``note`` says more for colleagues (optional)."""
    reason, note = _reason(reason), _note(note)
    kind, normalized = _parse(value)
    key = normalized if kind == "domain" else email_block_hash(normalized)
    session.flush()
    existing = session.execute(
        select(BlockedEmail).where(active(), _same(kind, key)).limit(1)
    ).scalar_one_or_none()
    if existing is not None:
        return ActionResult(
            verb="block_email",
            skipped=(Skip(_label(existing), "already blocked"),),
            skipped_count=1,
            message=f"Nothing changed: {_label(existing)} is already blocked "
                    f"(block #{existing.id}).",
            details={"block_id": existing.id},
        )
    block = BlockedEmail(
        kind=kind,
        address_hash=key if kind == "address" else None,
        domain=key if kind == "domain" else None,
        reason=reason,
        note=note,
        created_by_id=actor.id if actor is not None else None,
    )
    session.add(block)
    session.flush()
    flagged = _flag(session, kind, normalized)
    details = {"kind": kind, "block_id": block.id, "customers_flagged": flagged}
    if kind == "domain":
        details["domain"] = key
    record(session, actor=actor, verb="block_email", subject_type="BlockedEmail",
           subject_id=block.id, details=details)
    session.flush()
    return ActionResult(
        verb="block_email",
        changed=1,
        changed_refs=(_label(block),),
        message=f"Blocked {_label(block)}; {_customers(flagged)} flagged.",
        details=details,
    )


def block_customer_emails(
    session: Session, *, selection: Selection, reason: str, actor: User | None,
    note: str | None = None,
) -> ActionResult:
    """Block the e-mail address of each selected customer (redaction calls this before it
    wipes the addresses). Hashing happens in Python; the blocks go in with one INSERT and the
    flags with one UPDATE (plus one look-up per ``CHUNK`` addresses)."""
    reason, note = _reason(reason), _note(note)
    session.flush()
    chosen = ids_select(selection, Customer.id).correlate(None)
    rows = session.execute(
        select(Customer.id, Customer.reference, Customer.email)
        .where(Customer.id.in_(chosen))
        .order_by(Customer.id)
    ).all()
    by_hash: dict[str, list[tuple[int, str]]] = {}
    no_email: list[str] = []
    for row in rows:
        if row.email and row.email.strip():
            key = email_block_hash(canonical(row.email))
            by_hash.setdefault(key, []).append((row.id, row.reference))
        else:
            no_email.append(row.reference)
    already = _active_hashes(session, by_hash)
    new = [h for h in by_hash if h not in already]
    if new:
        creator = actor.id if actor is not None else None
        now = utcnow()
        session.execute(
            BlockedEmail.__table__.insert(),
            [dict(kind="address", address_hash=h, reason=reason, note=note,
                  created_by_id=creator, created_at=now, updated_at=now) for h in new],
        )
    flagged = _flag_selected(session, chosen) if new else 0
    changed = sorted(customer for h in new for customer in by_hash[h])
    skipped = [Skip(ref, "no e-mail") for ref in no_email] + [
        Skip(ref, "already blocked") for h in by_hash if h in already for _, ref in by_hash[h]
    ]
    details = {"kind": "address", "blocks": len(new), "count": len(changed),
               "skipped": len(skipped), "customers_flagged": flagged}
    if changed:
        subject = changed[0][0] if len(changed) == 1 else None
        summary = record(session, actor=actor, verb="block_email", subject_type="Customer",
                         subject_id=subject, details=details)
        session.flush()
        if len(changed) > 1:  # one row per customer too, for each customer's timeline
            record_each(session, actor=actor, verb="block_email",
                        customer_ids=[key for key, _ in changed],
                        details={"summary_id": summary.id})
    return ActionResult(
        verb="block_email",
        changed=len(changed),
        changed_refs=tuple(ref for _, ref in changed[:SAMPLE]),
        skipped=tuple(skipped[:SAMPLE]),
        skipped_count=len(skipped),
        message=_bulk_message(len(changed), len(skipped)),
        details=details,
    )


def unblock_email(session: Session, *, block_id: int, actor: User | None) -> ActionResult:
    """Lift a block, keeping its row as history, and clear the flag of the customers it
    covered unless their e-mail is still blocked by another row (its domain, say)."""
    session.flush()
    block = session.get(BlockedEmail, block_id)
    if block is None:
        raise ActionError(f"There is no e-mail block #{block_id}.")
    if block.unblocked_at is not None:
        return ActionResult(
            verb="unblock_email",
            skipped=(Skip(_label(block), "not blocked"),),
            skipped_count=1,
            message=f"Nothing changed: {_label(block)} was already unblocked.",
            details={"block_id": block.id},
        )
    block.unblocked_at = utcnow()
    block.unblocked_by_id = actor.id if actor is not None else None
    session.flush()
    cleared = _recompute_flags(session, _covered(session, block))
    details = {"kind": block.kind, "block_id": block.id, "customers_unflagged": cleared}
    if block.kind == "domain":
        details["domain"] = block.domain
    record(session, actor=actor, verb="unblock_email", subject_type="BlockedEmail",
           subject_id=block.id, details=details)
    session.flush()
    return ActionResult(
        verb="unblock_email",
        changed=1,
        changed_refs=(_label(block),),
        message=f"Unblocked {_label(block)}; {_customers(cleared)} no longer flagged.",
        details=details,
    )


def ensure_not_blocked(session: Session, email: str | None, *, what: str = "customer") -> None:
    """Refuse a blocked address where a customer, lead or booking would be created with it."""
    if is_email_blocked(session, email):
        article = "an" if what[:1].lower() in tuple("aeiou") else "a"
        raise ActionError(
            f"The e-mail address {email.strip()} is blocked; {article} {what} cannot be "
            "created with it."
        )


def ensure_not_blocked_customer(customer: Customer | None, *, what: str) -> None:
    """Refuse a new lead or booking for a customer whose own address is blocked (the flag
    the blocklist keeps on the customer), whatever address the new record gives."""
    if customer is not None and customer.email_blocked:
        raise ActionError(
            f"{customer.reference} has a blocked e-mail address: no new {what}s can be "
            "created for it."
        )


def ensure_record_not_blocked(session: Session, record, *, email_attr: str = "email",
                              is_created: bool) -> None:
    """The check a create or edit form runs as it saves a customer, lead or booking: refuse
    a blocked address when the record is new or its address changed, and a new lead or
    booking for a customer whose own address is blocked."""
    what = record.__tablename__
    with session.no_autoflush:  # the row being saved must not be flushed half-made
        if is_created or inspect(record).attrs[email_attr].history.has_changes():
            ensure_not_blocked(session, getattr(record, email_attr), what=what)
        if is_created:
            ensure_not_blocked_customer(getattr(record, "customer", None), what=what)


# -- steps ---------------------------------------------------------------------------------


def _reason(reason: str | None) -> str:
    """One of ``BLOCK_REASONS`` (its label is accepted too: "Customer's request")."""
    typed = (reason or "").strip()
    by_label = {label.lower(): code for code, label in BLOCK_REASON_LABELS.items()}
    code = typed if typed in BLOCK_REASONS else by_label.get(typed.lower())
    if code is None:
        choices = ", ".join(BLOCK_REASON_LABELS[c].lower() for c in BLOCK_REASONS)
        raise ActionError(f"Choose the reason for the block: {choices}.")
    return code


def _note(note: str | None) -> str | None:
    note = (note or "").strip() or None
    if note is not None and len(note) > NOTE_MAX:
        raise ActionError(f"Keep the note to {NOTE_MAX} characters or fewer.")
    return note


def _parse(value: str | None) -> tuple[str, str]:
    """("address", normalized address) or ("domain", domain) from what a person typed."""
    value = (value or "").strip()
    if not value:
        raise ActionError(f"Nothing to block. {HOW_TO_WRITE}")
    if value.startswith("@"):
        try:
            normalized = normalize_email("x" + value)
        except ValueError as exc:
            raise ActionError(f"Not a valid domain: {_why(exc)}. {HOW_TO_WRITE}") from None
        return "domain", email_domain(normalized)
    try:
        return "address", normalize_email(value)
    except ValueError as exc:
        raise ActionError(f"Not a valid e-mail address: {_why(exc)}. {HOW_TO_WRITE}") from None


def _why(exc: ValueError) -> str:
    return str(exc).removeprefix("Not a valid e-mail address: ").rstrip(".")


def _same(kind: str, key: str):
    if kind == "domain":
        return and_(BlockedEmail.kind == "domain", BlockedEmail.domain == key)
    return and_(BlockedEmail.kind == "address", BlockedEmail.address_hash == key)


def _matches_domain(domain: str):
    escaped = domain.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    # lower(): matched alike on PostgreSQL (case-sensitive LIKE) and SQLite (case-blind).
    return func.lower(Customer.email).like(f"%@{escaped}", escape="\\")


def _flag(session: Session, kind: str, normalized: str) -> int:
    """Flag the live customers with this address or on this domain; return how many were
    not flagged before."""
    match = _matches_domain(normalized) if kind == "domain" else Customer.email == normalized
    return _set_flags(session, True, match, Customer.merged_into_id.is_(None))


def _flag_selected(session: Session, chosen) -> int:
    """Flag every live customer sharing an address with the selection (a duplicate record
    of the same person too), in one statement."""
    addresses = select(Customer.email).where(Customer.id.in_(chosen), Customer.email.is_not(None))
    return _set_flags(session, True, Customer.email.in_(addresses.correlate(None)),
                      Customer.merged_into_id.is_(None))


def _set_flags(session: Session, value: bool, *criteria) -> int:
    """Set ``email_blocked`` where it differs, set-based; customers already loaded in the
    session have the flag expired, so they read the new value (cheaper than reading back
    every changed id, as ``synchronize_session="fetch"`` would). The version is left alone:
    the flag is derived, not something a colleague's open edit form could overwrite."""
    result = session.execute(
        update(Customer).where(*criteria, Customer.email_blocked.is_(not value))
        .values(email_blocked=value),
        execution_options={"synchronize_session": False},
    )
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Customer):
            session.expire(obj, ["email_blocked", "updated_at"])
    return result.rowcount


def _active_hashes(session: Session, hashes: Iterable[str]) -> set[str]:
    keys = sorted(hashes)
    found: set[str] = set()
    for start in range(0, len(keys), CHUNK):
        found.update(session.execute(
            select(BlockedEmail.address_hash).where(
                active(), BlockedEmail.kind == "address",
                BlockedEmail.address_hash.in_(keys[start:start + CHUNK]),
            )
        ).scalars())
    return found


def _covered(session: Session, block: BlockedEmail) -> list[tuple[int, str]]:
    """(id, e-mail) of the flagged customers this block matched. An address is known only by
    its hash, so the flagged few (a partial index) are hashed here to find it."""
    query = select(Customer.id, Customer.email).where(
        Customer.email_blocked.is_(True), Customer.email.is_not(None)
    )
    if block.kind == "domain":
        return [tuple(r) for r in session.execute(query.where(_matches_domain(block.domain)))]
    return [
        (r.id, r.email) for r in session.execute(query)
        if email_block_hash(canonical(r.email)) == block.address_hash
    ]


def _recompute_flags(session: Session, customers: list[tuple[int, str]]) -> int:
    """Clear the flag of those customers whose e-mail no active block matches any more."""
    still = blocked_addresses(session, (email for _, email in customers))
    clear = sorted(cid for cid, email in customers if canonical(email) not in still)
    for start in range(0, len(clear), CHUNK):
        _set_flags(session, False, Customer.id.in_(clear[start:start + CHUNK]))
    return len(clear)


def _label(block: BlockedEmail) -> str:
    return f"@{block.domain}" if block.kind == "domain" else "the address"


def _customers(n: int) -> str:
    return f"{n} customer{'' if n == 1 else 's'}"


def _bulk_message(changed: int, skipped: int) -> str:
    text = f"Blocked the e-mail address of {_customers(changed)}"
    return text + (f"; {skipped} skipped." if skipped else ".")
