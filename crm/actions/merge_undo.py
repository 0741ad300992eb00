"""Undo a customer merge within ``UNDO_DAYS``: the duplicates live again and exactly the rows
the merge recorded in ``customer_merge_move`` go back, set-based, one UPDATE per table, column
and former customer.

Undo refuses whenever putting back would lose or tangle something made since the merge (an
edit of the survivor, a later merge, a moved row deleted or moved on, an allocation joining a
moved document to one that stays); ``undo_check`` lists those reasons for the screen.
"""

from datetime import datetime, timedelta

from sqlalchemy import and_, func, insert, literal, or_, select, union_all, update
from sqlalchemy.orm import Session, aliased

from crm.actions import ActionError, ActionResult
from crm.actions.merge_records import (
    CUSTOMERS,
    FIELDS,
    MOVES,
    REFERENCES,
    and_list,
    recompute_ledger,
)
from crm.models import (
    Allocation,
    Contact,
    CreditNote,
    Customer,
    CustomerMerge,
    Invoice,
    Payment,
    PortalAccount,
    Tag,
    User,
    audit,
    customer_tag,
)
from crm.models.base import utcnow

UNDO_DAYS = 30
PLAIN = tuple(ref for ref in REFERENCES if ref.column.table is not customer_tag)
BY_TABLE_COLUMN = {(ref.column.table.name, ref.column.name): ref for ref in PLAIN}


def undo_check(session: Session, *, merge_id: int, now: datetime | None = None) -> list[str]:
    """Why the merge cannot be undone now, one sentence each; empty when it can."""
    merge = session.get(CustomerMerge, merge_id)
    if merge is None:
        return [f"There is no merge #{merge_id}."]
    if merge.undone_at is not None:
        return [f"Merge #{merge.id} was already undone on {merge.undone_at:%d %b %Y}."]
    now = now or utcnow()
    if now - merge.created_at > timedelta(days=UNDO_DAYS):
        return [
            f"Merge #{merge.id} was made on {merge.created_at:%d %b %Y}, more than {UNDO_DAYS} "
            "days ago; it can no longer be undone."
        ]
    survivor = session.get(Customer, merge.survivor_id)
    later = _later_merge_reasons(session, merge, survivor)
    return [
        *(later or _survivor_reasons(session, merge, survivor)),
        *_moved_row_reasons(session, merge, survivor),
        *_duplicate_reasons(session, merge, survivor),
        *_allocation_reasons(session, merge),
    ]


def undo_merge(
    session: Session, *, merge_id: int, actor: User | None, now: datetime | None = None
) -> ActionResult:
    """Put the duplicates back as they were before the merge, with everything the merge
    moved off them, and the survivor's field values as they were."""
    session.flush()
    merge = session.scalars(
        select(CustomerMerge).where(CustomerMerge.id == merge_id).with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    reasons = undo_check(session, merge_id=merge_id, now=now)
    if reasons:
        raise ActionError(" ".join(reasons))
    survivor_id, dup_ids = merge.survivor_id, list(merge.duplicate_ids)
    before = dict(merge.survivor_before)

    restored = _put_rows_back(session, merge_id)
    _restore_tags(session, merge_id, survivor_id)
    _revive(session, survivor_id, dup_ids)
    _restore_survivor(session, merge, before)
    recompute_ledger(session, [survivor_id, *dup_ids])

    refs = dict(session.execute(
        select(Customer.id, Customer.reference).where(Customer.id.in_([survivor_id, *dup_ids]))
    ).all())
    merge = session.get(CustomerMerge, merge_id)
    merge.undone_at = now or utcnow()
    merge.undone_by_id = actor.id if actor is not None else None
    dup_refs = [refs[i] for i in dup_ids]
    audit.record(
        session, actor=actor, verb="merge_undo", subject_type="Customer", subject_id=survivor_id,
        details={"merge_id": merge_id, "duplicates": dup_refs, "restored": restored},
    )
    session.flush()
    return ActionResult(
        verb="merge_undo",
        changed=len(dup_ids),
        changed_refs=tuple(dup_refs),
        message=f"Merge #{merge_id} undone: {and_list(dup_refs)} restored from {refs[survivor_id]}.",
        details={"merge_id": merge_id, "restored": restored},
    )


# -- what makes undo unsafe --------------------------------------------------------------


def _survivor_reasons(session: Session, merge: CustomerMerge, survivor: Customer) -> list[str]:
    if survivor.redacted_at is not None:
        return [f"{survivor.reference} has been redacted since the merge."]
    if survivor.merged_into_id is not None:
        into = session.get(Customer, survivor.merged_into_id)
        later = _merges_of(session, into.id, survivor.id)
        first = f"; undo merge #{later[0]} first" if later else ""
        return [f"{survivor.reference} has since been merged into {into.reference}{first}."]
    if merge.survivor_before is None:
        return [
            f"The values {survivor.reference} had before the merge were wiped when a merged "
            "record was redacted."
        ]
    if survivor.version != merge.survivor_version:
        return [
            f"{survivor.reference} was edited after the merge; undoing would lose those edits."
        ]
    return []


def _merges_of(session: Session, survivor_id: int, duplicate_id: int) -> list[int]:
    """Merges in force into ``survivor_id`` that took ``duplicate_id`` (newest first)."""
    merges = session.scalars(
        select(CustomerMerge)
        .where(CustomerMerge.survivor_id == survivor_id, CustomerMerge.undone_at.is_(None))
        .order_by(CustomerMerge.id.desc())
    )
    return [m.id for m in merges if duplicate_id in m.duplicate_ids]


def _later_merge_reasons(session: Session, merge: CustomerMerge, survivor: Customer) -> list[str]:
    later = session.scalars(
        select(CustomerMerge.id).where(
            CustomerMerge.survivor_id == merge.survivor_id,
            CustomerMerge.id > merge.id,
            CustomerMerge.undone_at.is_(None),
        ).order_by(CustomerMerge.id.desc())
    ).all()
    return [
        f"Merge #{later_id} into {survivor.reference} was made later; undo merge #{later_id} "
        "first." for later_id in later
    ]


def _moved_row_reasons(session: Session, merge: CustomerMerge, survivor: Customer) -> list[str]:
    """Moved rows that no longer point at the survivor (deleted, or moved on since)."""
    parts = []
    for ref in PLAIN:
        table, column = ref.column.table, ref.column
        still_there = select(table.c.id).where(
            table.c.id == MOVES.c.row_id, column == merge.survivor_id
        )
        parts.append(
            select(literal(ref.kind).label("kind"), func.count().label("n")).where(
                MOVES.c.merge_id == merge.id, MOVES.c.kind == "move",
                MOVES.c.table_name == table.name, MOVES.c.column_name == column.name,
                ~still_there.exists(),
            )
        )
    by_kind = {ref.kind: ref for ref in PLAIN}
    return [
        f"{by_kind[row.kind].noun(row.n)} moved by the merge "
        f"{'has' if row.n == 1 else 'have'} since been deleted or moved."
        for row in session.execute(union_all(*parts))
        if row.n
    ]


def _duplicate_reasons(session: Session, merge: CustomerMerge, survivor: Customer) -> list[str]:
    """What happened to the tombstones themselves since, and what was attached to them that
    would clash with what comes back (one primary contact, one portal account each)."""
    dup_ids = list(merge.duplicate_ids)
    dups = session.execute(
        select(Customer.id, Customer.reference, Customer.merged_into_id, Customer.redacted_at)
        .where(Customer.id.in_(dup_ids))
    ).all()
    reasons = [
        f"{row.reference} has been redacted since the merge."
        if row.redacted_at is not None
        else f"{row.reference} is no longer merged into {survivor.reference}."
        for row in dups
        if row.redacted_at is not None or row.merged_into_id != merge.survivor_id
    ]
    refs = {row.id: row.reference for row in dups}
    coming_back = select(MOVES.c.from_customer_id).where(MOVES.c.merge_id == merge.id)
    primary = session.scalars(
        select(Contact.customer_id).where(
            Contact.customer_id.in_(dup_ids), Contact.is_primary,
            Contact.customer_id.in_(coming_back.where(MOVES.c.kind.in_(("demote", "primary")))),
        )
    ).all()
    portal = session.scalars(
        select(PortalAccount.customer_id).where(
            PortalAccount.customer_id.in_(dup_ids),
            PortalAccount.customer_id.in_(coming_back.where(
                MOVES.c.kind == "move", MOVES.c.table_name == "portal_account")),
        )
    ).all()
    reasons += [f"{refs[i]} has a new primary contact since the merge." for i in primary]
    reasons += [f"{refs[i]} has a new portal account since the merge." for i in portal]
    return reasons


def _allocation_reasons(session: Session, merge: CustomerMerge) -> list[str]:
    """An allocation made since the merge between a document that goes back and one that
    stays would leave one customer's money paying off another's invoice."""
    survivor_id = merge.survivor_id
    owners = {}
    query = select(func.count(Allocation.id)).join(Invoice, Invoice.id == Allocation.invoice_id)
    query = query.outerjoin(Payment, Payment.id == Allocation.payment_id)
    query = query.outerjoin(CreditNote, CreditNote.id == Allocation.credit_note_id)
    for name, model in (("invoice", Invoice), ("payment", Payment), ("credit_note", CreditNote)):
        moved = aliased(MOVES)
        query = query.outerjoin(moved, and_(
            moved.c.merge_id == merge.id, moved.c.kind == "move",
            moved.c.table_name == name, moved.c.row_id == model.id,
        ))
        owners[name] = func.coalesce(moved.c.from_customer_id, model.customer_id)
    source_owner = func.coalesce(owners["payment"], owners["credit_note"])
    count = session.scalar(query.where(
        or_(Invoice.customer_id == survivor_id, Payment.customer_id == survivor_id,
            CreditNote.customer_id == survivor_id),
        owners["invoice"] != source_owner,
    ))
    if not count:
        return []
    return [
        f"{count} allocation{'s' if count != 1 else ''} made since the merge "
        f"link{'s' if count == 1 else ''} a payment or credit note with an invoice that would "
        "end up with another customer; remove them first."
    ]


# -- putting back ------------------------------------------------------------------------


def _put_rows_back(session: Session, merge_id: int) -> dict[str, int]:
    moved_contacts = select(MOVES.c.row_id).where(
        MOVES.c.merge_id == merge_id, MOVES.c.kind == "move", MOVES.c.table_name == "contact"
    )
    contacts = Contact.__table__
    # Ordinary first, so no record holds two primary contacts while they move.
    session.execute(
        update(contacts).where(contacts.c.id.in_(moved_contacts), contacts.c.is_primary)
        .values(is_primary=False, version=contacts.c.version + 1)
    )
    groups = session.execute(
        select(MOVES.c.table_name, MOVES.c.column_name, MOVES.c.from_customer_id)
        .where(MOVES.c.merge_id == merge_id, MOVES.c.kind == "move")
        .group_by(MOVES.c.table_name, MOVES.c.column_name, MOVES.c.from_customer_id)
    ).all()
    restored = dict.fromkeys((ref.kind for ref in REFERENCES), 0)
    for group in groups:
        ref = BY_TABLE_COLUMN[(group.table_name, group.column_name)]
        table = ref.column.table
        rows = select(MOVES.c.row_id).where(
            MOVES.c.merge_id == merge_id, MOVES.c.kind == "move",
            MOVES.c.table_name == group.table_name, MOVES.c.column_name == group.column_name,
            MOVES.c.from_customer_id == group.from_customer_id,
        )
        values = {ref.column.name: group.from_customer_id}
        if "version" in table.c and table is not CUSTOMERS:
            values["version"] = table.c.version + 1
        result = session.execute(update(table).where(table.c.id.in_(rows)).values(**values))
        restored[ref.kind] += result.rowcount
    promoted = select(MOVES.c.row_id).where(
        MOVES.c.merge_id == merge_id, MOVES.c.kind.in_(("demote", "primary"))
    )
    session.execute(
        update(contacts).where(contacts.c.id.in_(promoted))
        .values(is_primary=True, version=contacts.c.version + 1)
    )
    return restored


def _restore_tags(session: Session, merge_id: int, survivor_id: int) -> None:
    tags = customer_tag.c
    added = select(MOVES.c.row_id).where(MOVES.c.merge_id == merge_id, MOVES.c.kind == "tag_added")
    session.execute(
        customer_tag.delete().where(tags.customer_id == survivor_id, tags.tag_id.in_(added))
    )
    already = select(tags.tag_id).where(
        tags.customer_id == MOVES.c.from_customer_id, tags.tag_id == MOVES.c.row_id
    )
    session.execute(insert(customer_tag).from_select(
        ["customer_id", "tag_id"],
        select(MOVES.c.from_customer_id, MOVES.c.row_id)
        .join(Tag.__table__, Tag.__table__.c.id == MOVES.c.row_id)  # a deleted tag stays gone
        .where(MOVES.c.merge_id == merge_id, MOVES.c.kind == "tag", ~already.exists()),
    ))


def _revive(session: Session, survivor_id: int, dup_ids: list[int]) -> None:
    result = session.execute(
        update(CUSTOMERS)
        .where(CUSTOMERS.c.id.in_(dup_ids), CUSTOMERS.c.merged_into_id == survivor_id)
        .values(merged_into_id=None)
    )
    if result.rowcount != len(dup_ids):
        raise ActionError(
            "One of the merged-away records changed meanwhile; reload and try again."
        )


def _restore_survivor(session: Session, merge: CustomerMerge, before: dict) -> None:
    """The survivor's values as they were. Earlier merges into it that this one left
    undoable stay undoable: the survivor is back exactly as this merge found it."""
    survivor = session.get(Customer, merge.survivor_id)
    for name, _label in FIELDS:
        if getattr(survivor, name) != before[name]:
            setattr(survivor, name, before[name])
    session.flush()
    session.execute(
        update(CustomerMerge)
        .where(
            CustomerMerge.survivor_id == merge.survivor_id,
            CustomerMerge.id < merge.id,
            CustomerMerge.undone_at.is_(None),
            CustomerMerge.survivor_version == before["version"],
        )
        .values(survivor_version=survivor.version)
        .execution_options(synchronize_session=False)
    )
