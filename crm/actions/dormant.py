"""Set dormant, reactivate and deactivate ("do not work with again") customers, set-based.

A dormant customer's work addresses go dormant with it (marked ``dormant_with_customer`` so
that reactivating brings back exactly those, not an address someone made dormant on its own);
their service reminders leave the due list and automated messages stop
(``automated_contact_allowed``); invoices can still be issued. Archived customers are left
alone by "set dormant"; reactivating brings them back too.

Every step is one statement over the selection, whatever its size, in this order: sort the
selection (what changes, what is skipped and why), audit, cascade, then the status itself,
since the status is what tells the earlier steps which customers to touch.

Audit: when exactly one customer changes, one event on it. When more do, one summary event
(no subject) and one row per customer (``INSERT ... SELECT``, pointing at the summary), since
each customer's timeline reads the events by subject. ``archive`` uses the same helpers.
"""

from dataclasses import dataclass

from sqlalchemy import (
    JSON,
    DateTime,
    Integer,
    Select,
    String,
    and_,
    case,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.orm import Session

from crm.actions import SAMPLE, ActionError, ActionResult, Selection, Skip, ids_select
from crm.models import AuditEvent, Customer, Note, ServiceReminder, User, WorkAddress
from crm.models.audit import record
from crm.models.base import utcnow

CHANGE = "change"
MERGED = "merged into another customer"
REASON_MAX = 500


def set_dormant(session: Session, *, selection: Selection, actor: User | None) -> ActionResult:
    """Make active customers dormant, with their active work addresses."""
    session.flush()
    chosen = selected(selection)
    active = live_in(chosen, Customer.status == "active")
    groups = sort_selection(session, chosen, case(
        (Customer.merged_into_id.is_not(None), MERGED),
        (Customer.status == "archived", "archived"),
        (Customer.status == "dormant", "already dormant"),
        else_=CHANGE,
    ))
    if CHANGE in groups:
        record_changes(session, actor=actor, verb="set_dormant", groups=groups,
                       changes={CHANGE: active})
        _cascade(session, active)
        set_status(session, active, "dormant")
    return bulk_result("set_dormant", groups, "Set {n} dormant")


def reactivate(session: Session, *, selection: Selection, actor: User | None) -> ActionResult:
    """Make dormant or archived customers active again, with the work addresses that went
    dormant with them; their "do not work with again" notes are unpinned but kept."""
    session.flush()
    chosen = selected(selection)
    inactive = live_in(chosen, Customer.status != "active")
    groups = sort_selection(session, chosen, case(
        (Customer.merged_into_id.is_not(None), MERGED),
        (Customer.status == "active", "already active"),
        else_=CHANGE,
    ))
    if CHANGE in groups:
        record_changes(session, actor=actor, verb="reactivate", groups=groups,
                       changes={CHANGE: inactive})
        ids = select(Customer.id).where(inactive)
        bulk_update(session, WorkAddress, WorkAddress.customer_id.in_(ids),
                    WorkAddress.dormant_with_customer.is_(True),
                    status="active", dormant_with_customer=False)
        bulk_update(session, Note, Note.customer_id.in_(ids),
                    Note.do_not_work_with_again.is_(True),
                    important=False, do_not_work_with_again=False)
        set_status(session, inactive, "active")
    return bulk_result("reactivate", groups, "Reactivated {n}")


def deactivate(
    session: Session, *, selection: Selection, actor: User | None, reason: str
) -> ActionResult:
    """Add a pinned "do not work with again" note and set dormant, in one step. A customer
    already dormant without such a note gets the note; one that has both is skipped."""
    reason = (reason or "").strip()
    if not reason:
        raise ActionError("Give a reason; it is written on the \"do not work with again\" note.")
    if len(reason) > REASON_MAX:
        raise ActionError(f"Keep the reason to {REASON_MAX} characters or fewer.")
    session.flush()
    chosen = selected(selection)
    warned = exists().where(Note.customer_id == Customer.id, Note.do_not_work_with_again.is_(True))
    groups = sort_selection(session, chosen, case(
        (Customer.merged_into_id.is_not(None), MERGED),
        (Customer.status == "archived", "archived"),
        (and_(Customer.status == "dormant", warned), "already deactivated"),
        else_=CHANGE,
    ))
    if CHANGE in groups:
        # Written before the notes that change what "warned" says, so both cover the same
        # customers: the active ones and the dormant ones not warned yet.
        change = live_in(chosen, or_(Customer.status == "active",
                                     and_(Customer.status == "dormant", ~warned)))
        record_changes(session, actor=actor, verb="deactivate", groups=groups,
                       changes={CHANGE: change})
        _warn(session, change, f"Do not work with again: {reason}", actor)
        active = live_in(chosen, Customer.status == "active")
        _cascade(session, active)
        set_status(session, active, "dormant")
    return bulk_result("deactivate", groups, "Deactivated {n}")


def due_reminders_query(*, until=None) -> Select:
    """The due list: reminders still due, at active work addresses of active, live customers
    (optionally only those due on or before ``until``), soonest first."""
    query = (
        select(ServiceReminder)
        .join(WorkAddress, WorkAddress.id == ServiceReminder.work_address_id)
        .join(Customer, Customer.id == WorkAddress.customer_id)
        .where(
            ServiceReminder.status == "due",
            WorkAddress.status == "active",
            Customer.status == "active",
            Customer.merged_into_id.is_(None),
        )
        .order_by(ServiceReminder.due_on, ServiceReminder.id)
    )
    if until is not None:
        query = query.where(ServiceReminder.due_on <= until)
    return query


def automated_contact_allowed():
    """SQL criterion on Customer: who may get automated messages (statements, reminders)."""
    return and_(
        Customer.status == "active",
        Customer.merged_into_id.is_(None),
        Customer.redacted_at.is_(None),
        Customer.email_blocked.is_(False),
        Customer.email_opt_in.is_(True),
    )


def may_contact_automatically(customer: Customer) -> bool:
    """The Python twin of ``automated_contact_allowed``, for one loaded customer."""
    return (
        customer.status == "active"
        and customer.merged_into_id is None
        and customer.redacted_at is None
        and not customer.email_blocked
        and bool(customer.email_opt_in)
    )


# -- shared by the bulk customer actions (here and in crm.actions.archive) -----------------


@dataclass(frozen=True)
class Group:
    """Customers of a selection that share a fate: how many, and the first ``SAMPLE``."""

    total: int
    ids: tuple[int, ...]
    refs: tuple[str, ...]


def sort_selection(session: Session, chosen: Select, fate) -> dict[str, Group]:
    """Sort the selected customers by ``fate`` (a CASE giving ``CHANGE`` or a skip reason),
    with counts and samples, in one statement (window functions) whatever the selection."""
    labelled = (
        select(Customer.id, Customer.reference, fate.label("fate"))
        .where(Customer.id.in_(chosen))
        .subquery()
    )
    ranked = select(
        labelled,
        func.row_number().over(partition_by=labelled.c.fate, order_by=labelled.c.id).label("n"),
        func.count().over(partition_by=labelled.c.fate).label("total"),
    ).subquery()
    rows = session.execute(
        select(ranked.c.id, ranked.c.reference, ranked.c.fate, ranked.c.total)
        .where(ranked.c.n <= SAMPLE)
        .order_by(ranked.c.fate, ranked.c.n)
    ).all()
    found: dict[str, list] = {}
    for row in rows:
        found.setdefault(row.fate, []).append(row)
    return {
        fate: Group(rows[0].total, tuple(r.id for r in rows), tuple(r.reference for r in rows))
        for fate, rows in found.items()
    }


def record_changes(
    session: Session,
    *,
    actor: User | None,
    verb: str,
    groups: dict[str, Group],
    changes: dict[str, object],
) -> None:
    """Audit a bulk action before it changes anything (see the module docstring).
    ``changes`` maps each fate that changes customers to the criterion (on Customer) of
    its customers. A customer's own row says ``verb`` or, when the action has several fates
    (archive and delete), the fate; a summary says ``verb``."""
    changed = {fate: groups[fate] for fate in changes if fate in groups}
    total = sum(g.total for g in changed.values())
    skipped = sum(g.total for fate, g in groups.items() if fate not in changes)
    details = {"count": total, "skipped": skipped}
    if len(changes) > 1:
        details.update({fate: group.total for fate, group in changed.items()})

    def verb_of(fate: str) -> str:
        return verb if len(changes) == 1 else fate

    if total == 1:
        [(fate, group)] = changed.items()
        record(session, actor=actor, verb=verb_of(fate), subject_type="Customer",
               subject_id=group.ids[0], details=details)
        session.flush()
        return
    summary = record(session, actor=actor, verb=verb, subject_type="Customer",
                     subject_id=None, details=details)
    session.flush()
    for fate in changed:
        _record_each(session, actor=actor, verb=verb_of(fate), criterion=changes[fate],
                     details={"summary_id": summary.id})


def selected(selection: Selection) -> Select:
    """The selection as a SELECT of customer ids."""
    # correlate(None): a selection drawn from the customer table itself must stay a
    # self-contained subquery inside an UPDATE of that table.
    return ids_select(selection, Customer.id).correlate(None)


def live_in(chosen: Select, *criteria):
    """Criterion: the live (not merged-away) customers of ``chosen`` meeting ``criteria``."""
    return and_(Customer.id.in_(chosen), Customer.merged_into_id.is_(None), *criteria)


def bulk_update(session: Session, model, *criteria, **values) -> int:
    """UPDATE the rows meeting ``criteria``, moving their version on (a colleague's edit
    form opened before is then refused as stale). Rows already loaded in the session have
    those columns expired, so they read the new values: far cheaper than
    ``synchronize_session="fetch"``, which reads back every changed id (100,000 of them)."""
    statement = update(model).where(*criteria).values(version=model.version + 1, **values)
    count = session.execute(statement, execution_options={"synchronize_session": False}).rowcount
    changed = [*values, "version", "updated_at"]
    for obj in list(session.identity_map.values()):
        if isinstance(obj, model):
            session.expire(obj, changed)
    return count


def set_status(session: Session, criterion, status: str) -> int:
    """Set the status of the customers meeting ``criterion``."""
    return bulk_update(session, Customer, criterion, status=status)


def bulk_result(verb: str, groups: dict[str, Group], done: str) -> ActionResult:
    """The result of a one-fate action: ``done`` is like "Set {n} dormant"."""
    changed = groups.get(CHANGE, Group(0, (), ()))
    skipped = [Skip(ref, fate) for fate, g in sorted(groups.items()) if fate != CHANGE
               for ref in g.refs]
    skipped_count = sum(g.total for fate, g in groups.items() if fate != CHANGE)
    message = done.format(n=_customers(changed.total)) + (
        f"; {skipped_count:,} skipped ({_reasons(groups)})." if skipped_count else ".")
    return ActionResult(
        verb=verb,
        changed=changed.total,
        changed_refs=changed.refs,
        skipped=tuple(skipped[:SAMPLE]),
        skipped_count=skipped_count,
        message=message,
        details={"count": changed.total, "skipped": skipped_count},
    )


def _customers(n: int) -> str:
    return f"{n:,} customer{'' if n == 1 else 's'}"


def _reasons(groups: dict[str, Group]) -> str:
    return ", ".join(f"{g.total:,} {fate}" for fate, g in sorted(groups.items())
                     if fate != CHANGE)


# -- steps ---------------------------------------------------------------------------------


def _cascade(session: Session, criterion) -> None:
    bulk_update(session, WorkAddress,
                WorkAddress.customer_id.in_(select(Customer.id).where(criterion)),
                WorkAddress.status == "active",
                status="dormant", dormant_with_customer=True)


def _warn(session: Session, criterion, body: str, actor: User | None) -> None:
    """One pinned "do not work with again" note per customer, in one INSERT ... SELECT."""
    now = utcnow()
    session.execute(insert(Note).from_select(
        ["customer_id", "kind", "body", "important", "do_not_work_with_again", "author_id",
         "version", "created_at", "updated_at"],
        select(
            Customer.id, literal("note", String), literal(body, String), true(), true(),
            literal(actor.id if actor is not None else None, Integer), literal(1, Integer),
            literal(now, DateTime), literal(now, DateTime),
        ).where(criterion),
    ))


def _record_each(session: Session, *, actor: User | None, verb: str, criterion,
                 details: dict) -> None:
    """One audit row per customer meeting ``criterion``, in one INSERT ... SELECT."""
    session.execute(insert(AuditEvent).from_select(
        ["created_at", "actor_id", "actor_label", "verb", "subject_type", "subject_id",
         "details"],
        select(
            literal(utcnow(), DateTime),
            literal(actor.id if actor is not None else None, Integer),
            literal(actor.email if actor is not None else "system", String),
            literal(verb, String), literal("Customer", String), Customer.id,
            literal(details, JSON),
        ).where(criterion),
    ))

