"""Merge customers: any number of duplicates into one survivor, in one transaction.

Every foreign key to ``customer.id`` is declared once, in ``crm.actions.merge_records``
(``REFERENCES``): the preview counts from it, the merge moves from it, undo
(``crm.actions.merge_undo``) puts back from what the merge recorded, and a test fails when the
schema gains a reference that tuple does not name.
Rows move with set-based statements (INSERT ... SELECT into ``customer_merge_move``, then
UPDATE ... WHERE customer_id IN (duplicates)), so thousands of rows cost a few statements.

Each changed row is recorded in ``customer_merge_move`` with a ``kind``:
``move`` (``table.column`` of ``row_id`` pointed at ``from_customer_id``), ``demote`` (a
duplicate's primary contact made ordinary), ``primary`` (a duplicate's primary contact kept as
the survivor's), ``tag`` (tag ``row_id`` taken off duplicate ``from_customer_id``) and
``tag_added`` (tag ``row_id`` given to the survivor).
"""

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Integer, Select, func, insert, literal, select, union_all, update
from sqlalchemy.orm import Session

from crm.actions import ActionError, ActionResult
from crm.actions.merge_records import (
    CUSTOMERS,
    FIELD_LABELS,
    FIELDS,
    FINANCE_FIELDS,
    KINDS,
    MOVES,
    REFERENCES,
    Reference,
    and_list,
    recompute_ledger,
)
from crm.models import (
    Contact,
    Customer,
    CustomerMerge,
    PortalAccount,
    User,
    audit,
    customer_tag,
)

MAX_RECORDS = 50  # survivor included: a preview of more is unreadable, a typo is likelier


@dataclass(frozen=True)
class FieldChoice:
    name: str
    label: str
    values: dict[int, Any]  # customer id -> value, in the order of the preview's customers
    default_id: int
    differs: bool
    finance_only: bool = False


@dataclass(frozen=True)
class MergePreview:
    customers: list[Customer]  # [survivor, *duplicates]
    fields: list[FieldChoice]
    counts: dict[int, dict[str, int]]  # customer id -> kind -> rows it holds
    conflicts: list[str]  # everything worth a look, blocking ones included
    blocking: list[str]  # the conflicts that make the merge refuse

    @property
    def kinds(self) -> tuple[str, ...]:
        return KINDS

    @property
    def survivor(self) -> Customer:
        return self.customers[0]

    @property
    def moving(self) -> dict[str, int]:
        """Rows that will move to the survivor, per kind (the duplicates' counts summed)."""
        return {
            kind: sum(self.counts[c.id][kind] for c in self.customers[1:]) for kind in self.kinds
        }


@dataclass(frozen=True)
class MergeResult(ActionResult):
    merge_id: int = 0
    survivor_reference: str = ""
    moved: dict[str, int] = field(default_factory=dict)


def merge_preview(session: Session, *, survivor_id: int, duplicate_ids: list[int]) -> MergePreview:
    """Everything the merge screen shows: the records side by side, the value each field
    would keep, what would move and what needs a look. Refuses what merge would refuse
    outright (ActionError); blocking conflicts are returned for the screen to show."""
    customers = _load(session, survivor_id, duplicate_ids)
    conflicts, blocking = _conflicts(session, customers)
    return MergePreview(
        customers=customers,
        fields=[_field_choice(name, label, customers) for name, label in FIELDS],
        counts=_counts(session, [c.id for c in customers]),
        conflicts=conflicts,
        blocking=blocking,
    )


def merge_customers(
    session: Session,
    *,
    survivor_id: int,
    duplicate_ids: list[int],
    actor: User | None,
    field_choices: dict[str, int] | None = None,
) -> MergeResult:
    """Move everything attached to the duplicates to the survivor and make the duplicates
    tombstones. ``field_choices`` maps a field name to the id of the customer whose value the
    survivor keeps; unnamed fields keep the preview's default."""
    session.flush()
    customers = _load(session, survivor_id, duplicate_ids, lock=True)
    survivor, duplicates = customers[0], customers[1:]
    blocking = _conflicts(session, customers)[1]
    if blocking:
        raise ActionError(" ".join(blocking))
    values = _chosen_values(customers, field_choices or {})
    dup_ids = [c.id for c in duplicates]
    dup_refs = [c.reference for c in duplicates]
    survivor_reference = survivor.reference

    merge = CustomerMerge(
        survivor_id=survivor.id,
        actor_id=actor.id if actor is not None else None,
        duplicate_ids=dup_ids,
        survivor_before=_snapshot(survivor),
    )
    session.add(merge)
    _apply_fields(survivor, values)
    session.flush()
    merge_id = merge.id

    moved = _move_everything(session, merge_id, survivor.id, dup_ids)
    _tombstone(session, survivor.id, dup_ids)
    recompute_ledger(session, [survivor.id, *dup_ids])

    merge = session.get(CustomerMerge, merge_id)
    merge.survivor_version = session.scalar(
        select(Customer.version).where(Customer.id == survivor_id)
    )
    audit.record(
        session, actor=actor, verb="merge", subject_type="Customer", subject_id=survivor_id,
        details={"merge_id": merge_id, "duplicates": dup_refs, "moved": moved},
    )
    session.flush()
    return MergeResult(
        verb="merge",
        changed=len(dup_ids),
        changed_refs=tuple(dup_refs),
        message=_summary(survivor_reference, dup_refs, moved),
        details={"merge_id": merge_id, "moved": moved},
        merge_id=merge_id,
        survivor_reference=survivor_reference,
        moved=moved,
    )


def live_customer_id(session: Session, customer_id: int) -> int | None:
    """The live record a customer id now stands for: itself, or the survivor it was merged
    into (following older merges too). None for an unknown id or a broken chain."""
    seen: set[int] = set()
    current: int | None = customer_id
    while current is not None and current not in seen:
        seen.add(current)
        row = session.execute(
            select(Customer.id, Customer.merged_into_id).where(Customer.id == current)
        ).first()
        if row is None:
            return None
        if row.merged_into_id is None:
            return row.id
        current = row.merged_into_id
    return None


# -- guards ------------------------------------------------------------------------------


def _load(session: Session, survivor_id: int, duplicate_ids, lock: bool = False) -> list[Customer]:
    """[survivor, *duplicates] after every guard; ``lock`` holds their rows (PostgreSQL)
    until the caller commits, so two merges of one record cannot both go ahead."""
    wanted = list(dict.fromkeys(int(i) for i in duplicate_ids))
    if not wanted:
        raise ActionError("Choose at least one duplicate to merge into the survivor.")
    chosen = len({int(survivor_id), *wanted})
    if chosen > MAX_RECORDS:
        raise ActionError(
            f"At most {MAX_RECORDS} customers can be merged at once; {chosen} were chosen."
        )
    ids = [int(survivor_id), *wanted]
    query = select(Customer).where(Customer.id.in_(ids)).order_by(Customer.id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    found = {c.id: c for c in session.scalars(query)}
    missing = [i for i in ids if i not in found]
    if missing:
        raise ActionError(f"There is no customer with id {missing[0]}.")
    if survivor_id in wanted:
        raise ActionError(f"{found[survivor_id].reference} cannot be merged into itself.")
    customers = [found[i] for i in ids]
    for customer in customers:
        if customer.merged_into_id is not None:
            live = live_customer_id(session, customer.id)
            into = session.get(Customer, live) if live else customer.merged_into
            raise ActionError(
                f"{customer.reference} was already merged into "
                f"{into.reference if into else 'another record'}."
            )
        if customer.redacted_at is not None:
            raise ActionError(f"{customer.reference} has been redacted and cannot be merged.")
    return customers


def _conflicts(session: Session, customers: list[Customer]) -> tuple[list[str], list[str]]:
    refs = {c.id: c.reference for c in customers}
    ids = list(refs)
    conflicts: list[str] = []
    blocking: list[str] = []

    portals = session.scalars(
        select(PortalAccount.customer_id).where(PortalAccount.customer_id.in_(ids))
    ).all()
    if len(portals) > 1:
        holders = and_list([refs[i] for i in ids if i in portals])
        blocking.append(
            f"{holders} each have a portal account, and a customer can have only one: "
            "delete all but one of them before merging."
        )

    primaries = {
        row.customer_id: row
        for row in session.execute(
            select(Contact.id, Contact.customer_id, Contact.first_name, Contact.surname)
            .where(Contact.customer_id.in_(ids), Contact.is_primary)
        )
    }
    if len(primaries) > 1:
        keeper = primaries[next(i for i in ids if i in primaries)]
        name = " ".join(p for p in (keeper.first_name, keeper.surname) if p)
        conflicts.append(
            f"{and_list([refs[i] for i in ids if i in primaries])} each have a primary contact: "
            f"{name} ({refs[keeper.customer_id]}) stays primary; the others become ordinary "
            "contacts."
        )

    emails = {c.email.strip().lower() for c in customers if c.email and c.email.strip()}
    if len(emails) > 1:
        conflicts.append(
            "The records have different e-mail addresses: the survivor keeps the one chosen "
            "below; the others stay on the merged-away records only."
        )
    blocked = [c.reference for c in customers if c.email_blocked]
    if blocked:
        conflicts.append(
            f"The e-mail address of {and_list(blocked)} is blocked; the survivor is flagged "
            "blocked if it keeps that address."
        )
    statuses = {c.status for c in customers}
    if len(statuses) > 1:
        conflicts.append(
            f"The records have different statuses ({', '.join(sorted(statuses))}); the survivor "
            f"stays {customers[0].status}, and what moves keeps its own status."
        )
    return blocking + conflicts, blocking


# -- fields ------------------------------------------------------------------------------


def _empty(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _field_choice(name: str, label: str, customers: list[Customer]) -> FieldChoice:
    values = {c.id: getattr(c, name) for c in customers}
    default_id = next((i for i, v in values.items() if not _empty(v)), customers[0].id)
    distinct = {None if _empty(v) else v for v in values.values()}
    return FieldChoice(
        name=name, label=label, values=values, default_id=default_id,
        differs=len(distinct) > 1, finance_only=name in FINANCE_FIELDS,
    )


def _chosen_values(customers: list[Customer], field_choices: dict[str, int]) -> dict[str, Any]:
    """The value of every field the survivor ends with. (Its ``email_blocked`` flag follows
    the e-mail address through the session hook in ``crm.session_hooks``.)"""
    by_id = {c.id: c for c in customers}
    for name, customer_id in field_choices.items():
        if name not in FIELD_LABELS:
            raise ActionError(f"“{name}” is not a field whose value a merge can choose.")
        if customer_id not in by_id:
            raise ActionError(
                f"The {FIELD_LABELS[name].lower()} to keep must come from one of the records "
                "being merged."
            )
    values = {}
    for name, label in FIELDS:
        source = field_choices.get(name) or _field_choice(name, label, customers).default_id
        values[name] = getattr(by_id[source], name)
    return values


def _snapshot(customer: Customer) -> dict:
    """The survivor before the merge, for undo: its chosen fields and version (so that undo
    can tell whether the record was edited in between)."""
    before = {name: getattr(customer, name) for name, _label in FIELDS}
    before["version"] = customer.version
    return before


def _apply_fields(survivor: Customer, values: dict[str, Any]) -> None:
    for name, value in values.items():
        if getattr(survivor, name) != value:
            setattr(survivor, name, value)


# -- counts and moves --------------------------------------------------------------------


def _counts(session: Session, ids: list[int]) -> dict[int, dict[str, int]]:
    """Rows of each kind per customer, in one statement whatever the number of customers."""
    counts = {i: dict.fromkeys((ref.kind for ref in REFERENCES), 0) for i in ids}
    parts = [
        select(literal(ref.kind).label("kind"), ref.column.label("customer_id"),
               func.count().label("n"))
        .where(ref.column.in_(ids))
        .group_by(ref.column)
        for ref in REFERENCES
    ]
    for row in session.execute(union_all(*parts)):
        counts[row.customer_id][row.kind] = row.n
    return counts


def _move_everything(session: Session, merge_id: int, survivor_id: int, dup_ids) -> dict:
    """Rows moved per kind. Primary contacts are settled first: a record may hold only one."""
    _keep_one_primary_contact(session, merge_id, survivor_id, dup_ids)
    moved = {}
    for ref in REFERENCES:
        if ref.column.table is customer_tag:
            moved[ref.kind] = _unite_tags(session, merge_id, survivor_id, dup_ids)
        else:
            moved[ref.kind] = _move(session, merge_id, ref, survivor_id, dup_ids)
    return moved


def _record(session: Session, rows: Select) -> None:
    """INSERT ... SELECT of (merge_id, kind, table_name, column_name, row_id, from_customer_id)."""
    session.execute(
        insert(MOVES).from_select(
            ["merge_id", "kind", "table_name", "column_name", "row_id", "from_customer_id"], rows
        )
    )


def _move(session: Session, merge_id: int, ref: Reference, survivor_id: int, dup_ids) -> int:
    table, column = ref.column.table, ref.column
    _record(session, select(
        literal(merge_id), literal("move"), literal(table.name), literal(column.name),
        table.c.id, column,
    ).where(column.in_(dup_ids)))
    values = {column.name: survivor_id}
    if "version" in table.c and table is not CUSTOMERS:
        # A form opened on the row before the merge must not save it back to a tombstone.
        # (Customer versions are left alone: they tell undo whether a record was edited.)
        values["version"] = table.c.version + 1
    result = session.execute(update(table).where(column.in_(dup_ids)).values(**values))
    return result.rowcount


def _keep_one_primary_contact(session: Session, merge_id: int, survivor_id: int, dup_ids) -> None:
    """The survivor's primary contact stays primary, else the first duplicate's (in the
    order given); every other duplicate's primary becomes an ordinary contact."""
    order = [survivor_id, *dup_ids]
    primaries = sorted(
        session.execute(
            select(Contact.id, Contact.customer_id)
            .where(Contact.customer_id.in_(order), Contact.is_primary)
        ).all(),
        key=lambda row: order.index(row.customer_id),
    )
    if not primaries:
        return
    keeper, demoted = primaries[0], primaries[1:]
    marks = [("demote", row) for row in demoted]
    if keeper.customer_id != survivor_id:
        marks.append(("primary", keeper))  # undo gives it back its own record's primary
    if marks:
        session.execute(insert(MOVES), [
            {"merge_id": merge_id, "kind": kind, "table_name": "contact",
             "column_name": "is_primary", "row_id": row.id, "from_customer_id": row.customer_id}
            for kind, row in marks
        ])
    if demoted:
        session.execute(
            update(Contact.__table__)
            .where(Contact.__table__.c.id.in_([row.id for row in demoted]))
            .values(is_primary=False, version=Contact.__table__.c.version + 1)
        )


def _unite_tags(session: Session, merge_id: int, survivor_id: int, dup_ids) -> int:
    tags = customer_tag.c
    new_tags = (
        select(tags.tag_id)
        .where(tags.customer_id.in_(dup_ids))
        .where(tags.tag_id.not_in(select(tags.tag_id).where(tags.customer_id == survivor_id)))
        .distinct()
        .subquery()
    )
    _record(session, select(
        literal(merge_id), literal("tag_added"), literal("customer_tag"),
        literal("customer_id"), new_tags.c.tag_id, literal(None, Integer),
    ))
    session.execute(
        insert(customer_tag).from_select(
            ["customer_id", "tag_id"], select(literal(survivor_id), new_tags.c.tag_id)
        )
    )
    _record(session, select(
        literal(merge_id), literal("tag"), literal("customer_tag"), literal("customer_id"),
        tags.tag_id, tags.customer_id,
    ).where(tags.customer_id.in_(dup_ids)))
    return session.execute(customer_tag.delete().where(tags.customer_id.in_(dup_ids))).rowcount


def _tombstone(session: Session, survivor_id: int, dup_ids: list[int]) -> None:
    result = session.execute(
        update(CUSTOMERS)
        .where(
            CUSTOMERS.c.id.in_(dup_ids),
            CUSTOMERS.c.merged_into_id.is_(None),
            CUSTOMERS.c.redacted_at.is_(None),
        )
        .values(merged_into_id=survivor_id)
    )
    if result.rowcount != len(dup_ids):
        raise ActionError(
            "One of these customers was merged or redacted by someone else meanwhile; "
            "reload the preview and try again."
        )


def _summary(survivor_reference: str, dup_refs: list[str], moved: dict[str, int]) -> str:
    by_kind = {ref.kind: ref for ref in REFERENCES}
    parts = [by_kind[kind].noun(n) for kind, n in moved.items() if n]
    message = f"Merged {and_list(dup_refs)} into {survivor_reference}"
    return message + (f": {', '.join(parts)} moved." if parts else ".")
