"""Redact customers: the right to erasure.

What is wiped, column by column, is declared on the models (``crm.personal_data``); this
module decides *which rows* belong to the person and turns the declarations into set-based
UPDATEs, a chunk of customers at a time:

- the customer, and the tombstones merged into it (recursively): the same person's records;
- its contacts, branches, work addresses (occupier and address), their service reminders
  (cancelled if due: nobody can be reached about them) and the notes on both;
- leads linked to it or sent from its or its contacts' e-mail addresses, and that address
  on anyone's bookings;
- its bookings' title and contact e-mail; the free text of its invoices, credit notes and
  payments (numbers, dates, amounts and the ledger stay, for legal retention);
- its portal account (disabled, login replaced by ``redacted-<id>@invalid``), its tag links,
  and the "before" snapshot of any merge it took part in.

Optionally the customers' e-mail addresses are blocked first (kept as keyed hashes, so the
block survives). Irreversible: the caller passes the word the user typed. The audit event
names who and when, never what was wiped.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    Integer,
    Select,
    and_,
    case,
    cast,
    delete,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    true,
    union,
    update,
)
from sqlalchemy.orm import Session, aliased

from crm import mail
from crm.actions import SAMPLE, ActionError, ActionResult, Selection, Skip, ids_select
from crm.actions.block_email import block_customer_emails
from crm.after_commit import after_commit
from crm.models import (
    BlockedEmail,
    Booking,
    Branch,
    Contact,
    CreditNote,
    CreditNoteLine,
    Customer,
    CustomerMerge,
    Invoice,
    InvoiceLine,
    Lead,
    Note,
    Payment,
    PortalAccount,
    PortalToken,
    SentMessage,
    ServiceReminder,
    User,
    WorkAddress,
    customer_tag,
)
from crm.models.audit import record, record_each
from crm.models.base import utcnow
from crm.personal_data import wipe_values
from crm.search_index import compact_after_erasure

CONFIRMATION_WORD = "REDACT"
# The reason a redaction's own blocks get unless told otherwise; they carry no note.
BLOCK_REASON = "customer_request"
# Customers per round of UPDATEs: every statement of a round lists them once or twice, well
# under SQLite's 32,766 parameters.
CHUNK = 2000


def redact_customer(
    session: Session,
    *,
    customer_id: int,
    actor: User | None,
    confirmation: str,
    block_email: bool = False,
    block_reason: str | None = None,
) -> ActionResult:
    """Redact one customer (the row button)."""
    if session.get(Customer, customer_id) is None:
        raise ActionError(f"There is no customer #{customer_id}; nothing was changed.")
    return redact_customers(
        session, selection=[customer_id], actor=actor, confirmation=confirmation,
        block_email=block_email, block_reason=block_reason,
    )


def redact_customers(
    session: Session,
    *,
    selection: Selection,
    actor: User | None,
    confirmation: str,
    block_email: bool = False,
    block_reason: str | None = None,
) -> ActionResult:
    """Erase the personal data of every selected customer, in the caller's transaction."""
    if (confirmation or "").strip() != CONFIRMATION_WORD:
        raise ActionError(f"Type {CONFIRMATION_WORD} to confirm; nothing was changed.")
    session.flush()
    chosen, skipped = _triage(session, selection)
    if not chosen:
        return ActionResult(
            verb="redact",
            skipped=tuple(skipped[:SAMPLE]),
            skipped_count=len(skipped),
            message=_message(0, 0, len(skipped)),
        )
    people = _with_tombstones(session, [c.id for c in chosen])
    blocked = _block(session, people, block_reason, actor) if block_email else None
    now = utcnow()
    messages = 0
    for chunk in _chunks(people):
        _wipe(session, chunk, now)
        messages += _forget_messages(session, chunk)
    _compact_afterwards(session)
    # The UPDATEs went around the identity map: reload whatever the caller holds.
    session.expire_all()
    _audit(session, actor, chosen, block_email)
    session.flush()
    tombstones = len(people) - len(chosen)
    details = {"tombstones": tombstones, "email_blocked": block_email,
               "messages_removed": messages}
    if blocked is not None:
        details["emails_blocked"] = blocked
    return ActionResult(
        verb="redact",
        changed=len(chosen),
        changed_refs=tuple(c.reference for c in chosen[:SAMPLE]),
        skipped=tuple(skipped[:SAMPLE]),
        skipped_count=len(skipped),
        message=_message(len(chosen), tombstones, len(skipped)),
        details=details,
    )


# -- which customers ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Chosen:
    id: int
    reference: str


def _triage(session: Session, selection: Selection) -> tuple[list[_Chosen], list[Skip]]:
    """Split the selection into customers to redact and skips with their reasons. The rows
    are locked (PostgreSQL) so that a concurrent merge or edit waits for this transaction."""
    parent = aliased(Customer)
    rows = []
    for wanted in _selects(selection):
        rows.extend(session.execute(
            select(Customer.id, Customer.reference, Customer.redacted_at, parent.reference)
            .outerjoin(parent, parent.id == Customer.merged_into_id)
            .where(Customer.id.in_(wanted))
            .order_by(Customer.id)
            .with_for_update(of=Customer)
        ).all())
    chosen, skipped = [], []
    for customer_id, reference, redacted_at, merged_into in rows:
        if merged_into is not None:
            skipped.append(Skip(reference, f"merged into {merged_into}; redact that customer"))
        elif redacted_at is not None:
            skipped.append(Skip(reference, "already redacted"))
        else:
            chosen.append(_Chosen(customer_id, reference))
    return chosen, skipped


def _selects(selection: Selection) -> Iterator[Select]:
    """A SELECT of ids as it is, or a long list of ids in parts that fit in a statement."""
    if isinstance(selection, Select):
        yield selection.correlate(None)
        return
    for chunk in _chunks(sorted({int(i) for i in selection})):
        yield ids_select(chunk, Customer.id)


def _with_tombstones(session: Session, ids: Sequence[int]) -> list[int]:
    """The chosen customers and every tombstone merged into them, however deep: records of
    the same person, which the list no longer shows but which still hold their data. Walked
    a level at a time through the (partial) index of tombstones: chains are short, and
    SQLite plans a recursive CTE here as a scan of the whole customer table."""
    found = set(ids)
    level = sorted(found)
    while level:
        merged = []
        for chunk in _chunks(level):
            merged.extend(session.execute(
                select(Customer.id).where(Customer.merged_into_id.is_not(None),
                                          Customer.merged_into_id.in_(chunk))
            ).scalars())
        level = sorted(set(merged) - found)  # a (corrupt) cycle ends here too
        found.update(level)
    return sorted(found)


def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield list(ids[start:start + CHUNK])


# -- what is wiped -----------------------------------------------------------------------


def _block(session: Session, ids: list[int], reason: str | None, actor: User | None) -> int:
    """Block the addresses while they are still there to hash (the tombstones' too: older
    addresses of the same person); how many customers' addresses were blocked. The blocks
    get a reason from the list and no note: nothing in them names the person."""
    reason = (reason or "").strip() or BLOCK_REASON
    return sum(
        block_customer_emails(session, selection=chunk, reason=reason, actor=actor).changed
        for chunk in _chunks(ids)
    )


def scopes(session: Session, ids: list[int]) -> list[tuple[type, object]]:
    """For each model with personal columns, WHERE clauses of the rows of customers ``ids``,
    in the order they are wiped: the e-mail match of leads reads the customers' and
    contacts' addresses, so it runs before those are erased. Alternatives are separate
    statements rather than an OR, so that each is answered by its own index."""
    work_addresses = select(WorkAddress.id).where(WorkAddress.customer_id.in_(ids))
    invoices = select(Invoice.id).where(Invoice.customer_id.in_(ids))
    credit_notes = select(CreditNote.id).where(CreditNote.customer_id.in_(ids))
    return [
        (BlockedEmail, _notes_naming(ids)),
        (Lead, Lead.email.in_(_addresses(ids))),
        (Lead, Lead.customer_id.in_(ids)),
        (Booking, Booking.customer_id.in_(ids)),
        (Note, Note.customer_id.in_(ids)),
        (Note, Note.work_address_id.in_(work_addresses)),
        (ServiceReminder, ServiceReminder.work_address_id.in_(work_addresses)),
        (WorkAddress, WorkAddress.customer_id.in_(ids)),
        (Contact, Contact.customer_id.in_(ids)),
        (Branch, Branch.customer_id.in_(ids)),
        (Invoice, Invoice.customer_id.in_(ids)),
        (InvoiceLine, InvoiceLine.invoice_id.in_(invoices)),
        (CreditNote, CreditNote.customer_id.in_(ids)),
        (CreditNoteLine, CreditNoteLine.credit_note_id.in_(credit_notes)),
        (Payment, Payment.customer_id.in_(ids)),
        (PortalToken, PortalToken.account_id.in_(
            select(PortalAccount.id).where(PortalAccount.customer_id.in_(ids)))),
        (PortalAccount, PortalAccount.customer_id.in_(ids)),
        (CustomerMerge, _merges_involving(session, ids)),
        (Customer, Customer.id.in_(ids)),
    ]


def _extra_values(model, now: datetime) -> dict:
    """What redaction sets besides the registry's erasures."""
    if model is Customer:
        surname = wipe_values(Customer)["surname"]
        return {
            # customer_search_text() of the redacted row: its reference and placeholder.
            "search_text": func.lower(Customer.reference + literal(" ") + surname),
            "redacted_at": now,
            "email_opt_in": false(),
            "sms_opt_in": false(),
            "post_opt_in": false(),
        }
    if model is Contact:
        return {"email_opt_in": false(), "sms_opt_in": false()}
    if model is ServiceReminder:
        status = ServiceReminder.status
        return {"status": case((status == "due", "cancelled"), else_=status)}
    if model is PortalAccount:
        return {"disabled": true()}
    return {}


def _wipe(session: Session, ids: list[int], now: datetime) -> None:
    # Anyone's booking made from the person's address loses it (the title is the other
    # customer's business); read before the addresses themselves are erased.
    session.execute(
        update(Booking.__table__)
        .where(Booking.contact_email.in_(_addresses(ids)))
        .values(contact_email=None, version=Booking.version + 1)
    )
    for model, where in scopes(session, ids):
        table = model.__table__
        values, extra = wipe_values(model), _extra_values(model, now)
        if not extra:
            # Rows with nothing personal left (no invoice notes, a lead matched twice) are
            # not rewritten: cheaper, and their version does not change under an editor.
            where = and_(where, or_(*(table.c[k].is_distinct_from(v) for k, v in values.items())))
        values |= extra
        if "version" in table.c:
            values["version"] = table.c.version + 1
        session.execute(update(table).where(where).values(values))
    # Tags profile the person ("slow payer"); a placeholder record needs none.
    session.execute(delete(customer_tag).where(customer_tag.c.customer_id.in_(ids)))
    # "Related to" ties two people together (a spouse, a child): cut both ways.
    session.execute(update(Customer).where(Customer.related_to_id.in_(ids))
                    .values(related_to_id=None, version=Customer.version + 1))
    session.execute(update(Customer).where(Customer.id.in_(ids), Customer.related_to_id.is_not(None))
                    .values(related_to_id=None))


def _notes_naming(ids: list[int]):
    """Blocks whose note mentions the person: a name (three letters or more) or an e-mail
    address of the customers or their contacts ("Sam Smith was abusive"). A note naming a
    namesake is erased too: a staff note is little to lose against a name kept."""
    names = union(
        *(select(func.lower(column).label("name")).where(Customer.id.in_(ids))
          for column in (Customer.surname, Customer.first_name, Customer.company_name,
                         Customer.email)),
        *(select(func.lower(column).label("name")).where(Contact.customer_id.in_(ids))
          for column in (Contact.surname, Contact.first_name, Contact.email)),
    ).subquery()
    mentioned = exists(select(1).select_from(names).where(
        func.length(names.c.name) >= 3,
        func.lower(BlockedEmail.note).contains(names.c.name),
    ))
    return and_(BlockedEmail.note.is_not(None), mentioned)


def _forget_messages(session: Session, ids: list[int]) -> int:
    """Remove the e-mails stored about the customers (their address, their name, the PDF
    of their statement) once the erasure commits, and their index rows now; how many."""
    rows = session.execute(
        select(SentMessage.backend, SentMessage.reference)
        .where(SentMessage.customer_id.in_(ids))
    ).all()
    if not rows:
        return 0
    session.execute(delete(SentMessage).where(SentMessage.customer_id.in_(ids)))
    stored = [row.reference for row in rows if row.backend == "outbox"]
    if stored:
        outbox = mail.outbox()
        after_commit(session, lambda: outbox.forget(stored))
    return len(rows)


def _compact_afterwards(session: Session) -> None:
    """Once committed, leave no copy of the old values in the database's own files."""
    engine = session.get_bind()

    def compact() -> None:
        with engine.connect() as connection:
            compact_after_erasure(connection)

    after_commit(session, compact)


def _addresses(ids: list[int]):
    return union(
        select(Customer.email).where(Customer.id.in_(ids), Customer.email.is_not(None)),
        select(Contact.email).where(Contact.customer_id.in_(ids), Contact.email.is_not(None)),
    )


def _merges_involving(session: Session, ids: list[int]):
    """Merges whose survivor is one of ``ids`` or whose ``duplicate_ids`` (a JSON list)
    name one: after an undo a duplicate is live again, and the record still describes it."""
    if session.get_bind().dialect.name == "postgresql":
        items = func.json_array_elements_text(CustomerMerge.duplicate_ids).table_valued("value")
    else:
        items = func.json_each(CustomerMerge.duplicate_ids).table_valued("value")
    named = exists(select(1).select_from(items).where(cast(items.c.value, Integer).in_(ids)))
    return or_(CustomerMerge.survivor_id.in_(ids), named)


def _audit(session: Session, actor: User | None, chosen: list[_Chosen], blocked: bool) -> None:
    """Who and when; ids only, never what was wiped."""
    details: dict = {"email_blocked": blocked}
    if len(chosen) > 1:
        details["count"] = len(chosen)
    summary = record(
        session, actor=actor, verb="redact", subject_type="Customer",
        subject_id=chosen[0].id if len(chosen) == 1 else None, details=details,
    )
    if len(chosen) > 1:
        # One row per customer too, for each customer's timeline.
        session.flush()
        record_each(session, actor=actor, verb="redact", customer_ids=[c.id for c in chosen],
                    details={"summary_id": summary.id, "email_blocked": blocked})


def _message(changed: int, tombstones: int, skipped: int) -> str:
    if not changed:
        return f"Nothing was redacted; {skipped} skipped." if skipped else "Nothing to redact."
    text = f"Redacted {changed} customer{'' if changed == 1 else 's'}"
    if tombstones:
        text += f" and {tombstones} merged record{'' if tombstones == 1 else 's'} of theirs"
    return text + (f"; {skipped} skipped." if skipped else ".")
