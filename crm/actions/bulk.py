"""What the set-based customer actions share (dormant, reactivate, deactivate, archive,
delete): sort a selection into what changes and what is skipped and why, in one statement;
audit it (one event for one customer; a summary plus one row per customer for more, since a
customer's timeline reads the events by subject); update in bulk; report the result."""

from dataclasses import dataclass

from sqlalchemy import Select, and_, func, select, update
from sqlalchemy.orm import Session

from crm.actions import SAMPLE, ActionResult, Selection, Skip, ids_select
from crm.models import Customer, User
from crm.models.audit import record, record_each

CHANGE = "change"
MERGED = "merged into another customer"


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
        record_each(session, actor=actor, verb=verb_of(fate), criterion=changes[fate],
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
        details={"count": changed.total, "skipped": skipped_count,
                 "reasons": {fate: g.total for fate, g in groups.items() if fate != CHANGE}},
    )


def _customers(n: int) -> str:
    return f"{n:,} customer{'' if n == 1 else 's'}"


def _reasons(groups: dict[str, Group]) -> str:
    return ", ".join(f"{g.total:,} {fate}" for fate, g in sorted(groups.items())
                     if fate != CHANGE)
