"""Archive instead of delete: deleting a customer that has anything attached — bookings,
money, notes, work addresses (its own or as landlord), leads, a portal account, a merge —
archives it (hidden from the default list, reachable through the status filter); only a
customer with nothing attached besides its own contacts, branches and tags is really deleted.

An archived customer with nothing attached any more is deleted when asked again: archiving
was only the fall-back. A merged-away customer (tombstone) is never deleted: its id is
where the survivor's old links lead from.

Set-based, a constant number of statements whatever the selection: one EXISTS per related
table and customer decides its fate (each backed by an index on the customer column).
"""

from dataclasses import dataclass

from sqlalchemy import case, delete, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from crm.actions import SAMPLE, ActionResult, Selection, Skip
from crm.actions.bulk import (
    MERGED,
    Group,
    live_in,
    record_changes,
    selected,
    set_status,
    sort_selection,
)
from crm.models import (
    Booking,
    Branch,
    Contact,
    CreditNote,
    Customer,
    CustomerMerge,
    Invoice,
    Lead,
    Note,
    Payment,
    PortalAccount,
    SentMessage,
    User,
    WorkAddress,
    customer_tag,
)

ARCHIVE, DELETE, ALREADY = "archive", "delete", "already archived"
_TOMBSTONE = aliased(Customer, name="tombstone")
_RELATED = aliased(Customer, name="related_person")

# Everything that keeps a customer from being deleted: (singular, plural, customer column),
# in the order the confirmation page lists them. Contacts, branches and tags are the
# customer's own and go with it. tests/unit/test_archive.py checks that every foreign key to
# customer.id is either here or among those.
ATTACHED = (
    ("booking", "bookings", Booking.customer_id),
    ("invoice", "invoices", Invoice.customer_id),
    ("credit note", "credit notes", CreditNote.customer_id),
    ("payment", "payments", Payment.customer_id),
    ("note", "notes", Note.customer_id),
    ("work address", "work addresses", WorkAddress.customer_id),
    ("work address as landlord", "work addresses as landlord", WorkAddress.landlord_id),
    ("lead", "leads", Lead.customer_id),
    ("portal account", "portal accounts", PortalAccount.customer_id),
    ("e-mail sent", "e-mails sent", SentMessage.customer_id),
    ("merge", "merges", CustomerMerge.survivor_id),
    ("merged customer", "merged customers", _TOMBSTONE.merged_into_id),
    ("related person", "related people", _RELATED.related_to_id),
)
OWN = (Contact.customer_id, Branch.customer_id, customer_tag.c.customer_id)


@dataclass(frozen=True)
class DeletionPlan:
    """What ``delete_customers`` would do to a selection, for its confirmation page."""

    delete: int
    archive: int
    already_archived: int
    reasons: tuple[Skip, ...]  # the first SAMPLE to archive: ("C-000123", "has 3 bookings")
    merged: int = 0  # merged-away customers in the selection: left alone


def deletion_plan(session: Session, *, selection: Selection) -> DeletionPlan:
    """How many customers would be deleted, archived or left alone, and why (two statements)."""
    session.flush()
    groups = sort_selection(session, selected(selection), _fate())
    return DeletionPlan(
        delete=_total(groups, DELETE),
        archive=_total(groups, ARCHIVE),
        already_archived=_total(groups, ALREADY),
        reasons=_reasons(session, groups.get(ARCHIVE)),
        merged=_total(groups, MERGED),
    )


def delete_customers(session: Session, *, selection: Selection, actor: User | None) -> ActionResult:
    """Archive the selected customers that have anything attached; delete the rest with
    their contacts, branches and tags."""
    session.flush()
    chosen = selected(selection)
    groups = sort_selection(session, chosen, _fate())
    to_archive = live_in(chosen, _attached(), Customer.status != "archived")
    to_delete = live_in(chosen, ~_attached())
    if ARCHIVE in groups or DELETE in groups:
        record_changes(session, actor=actor, verb="delete_customers", groups=groups,
                       changes={ARCHIVE: to_archive, DELETE: to_delete})
        set_status(session, to_archive, "archived")
        _delete(session, to_delete)
    return _result(groups)


# -- steps ---------------------------------------------------------------------------------


def _attached():
    return or_(*(exists().where(column == Customer.id) for _, _, column in ATTACHED))


def _fate():
    return case(
        (Customer.merged_into_id.is_not(None), MERGED),
        (_attached(), case((Customer.status == "archived", ALREADY), else_=ARCHIVE)),
        else_=DELETE,
    )


def _delete(session: Session, criterion) -> None:
    """The customers' own rows first, so that no foreign key refuses (PostgreSQL checks
    each statement)."""
    ids = select(Customer.id).where(criterion)
    session.execute(customer_tag.delete().where(customer_tag.c.customer_id.in_(ids)))
    # "fetch": rows loaded in the session are marked deleted (few: most customers have
    # something attached).
    fetch = {"synchronize_session": "fetch"}
    session.execute(delete(Contact).where(Contact.customer_id.in_(ids)), execution_options=fetch)
    session.execute(delete(Branch).where(Branch.customer_id.in_(ids)), execution_options=fetch)
    session.execute(delete(Customer).where(criterion), execution_options=fetch)


def _reasons(session: Session, group: Group | None) -> tuple[Skip, ...]:
    """"has 3 bookings, 2 invoices" for the sampled customers to archive, in one statement."""
    if group is None:
        return ()
    counts = [
        select(func.count()).select_from(column.table).where(column == Customer.id)
        .scalar_subquery()
        for _, _, column in ATTACHED
    ]
    rows = session.execute(
        select(Customer.reference, *counts).where(Customer.id.in_(group.ids))
        .order_by(Customer.id)
    ).all()
    return tuple(Skip(row[0], _has(row[1:])) for row in rows)


def _has(numbers) -> str:
    parts = [f"{n} {one if n == 1 else many}"
             for (one, many, _), n in zip(ATTACHED, numbers, strict=True) if n]
    return "has " + ", ".join(parts)


def _total(groups: dict[str, Group], fate: str) -> int:
    group = groups.get(fate)
    return group.total if group else 0


def _result(groups: dict[str, Group]) -> ActionResult:
    deleted, archived = _total(groups, DELETE), _total(groups, ARCHIVE)
    skips = {fate: g for fate, g in groups.items() if fate not in (DELETE, ARCHIVE)}
    skipped_count = sum(g.total for g in skips.values())
    message = f"{deleted:,} deleted, {archived:,} archived"
    if archived:
        message += " (they have bookings, money or notes)"
    if skipped_count:
        message += "; " + ", ".join(f"{g.total:,} {fate}" for fate, g in sorted(skips.items()))
    refs = [ref for fate in (ARCHIVE, DELETE) if fate in groups for ref in groups[fate].refs]
    return ActionResult(
        verb="delete_customers",
        changed=deleted + archived,
        changed_refs=tuple(refs[:SAMPLE]),
        skipped=tuple(Skip(ref, fate) for fate, g in sorted(skips.items())
                      for ref in g.refs)[:SAMPLE],
        skipped_count=skipped_count,
        message=message + ".",
        details={"deleted": deleted, "archived": archived, "skipped": skipped_count},
    )

