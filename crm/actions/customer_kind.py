"""A customer's kind (lead, prospect, client) and hidden related people, set-based.

**Kind.** A customer moves between lead, prospect and client either way, always with a
reason. The reason may name people ("booked after Mrs Smith's recommendation"), so it is not
put in the audit trail (which holds no personal data and outlives redaction): it goes on a
note on each customer, "Kind changed from lead to client: <reason>", which the timeline
shows and redaction erases; the audit event holds the kinds only.

**Hidden related people.** A spouse or a child who will never pay is kept as a customer of
its own (bookings and notes can name them) but hidden from the default list like an
archived customer, and linked to the customer they belong to. The rules:

- the customer they belong to must exist, be live (not merged away), not redacted and not
  hidden itself: a hidden person is never the one others belong to, so links are one level
  deep and there is no loop;
- a customer cannot belong to itself (it is skipped if it is in the selection);
- a customer who has related people of its own cannot be hidden (unhide or move them first);
- merged-away and redacted customers are skipped; one already hidden under that customer is
  skipped ("already hidden"); one hidden under another customer moves to this one.

``unhide`` shows hidden customers in lists again and cuts their link.

Each function sorts the selection in one statement, audits (one event for one customer; a
summary and one row per customer for more, as ``crm.actions.bulk`` does), then updates in
one statement.
"""

from sqlalchemy import (
    DateTime,
    Integer,
    String,
    and_,
    case,
    exists,
    false,
    insert,
    literal,
    select,
)
from sqlalchemy.orm import Session, aliased

from crm.actions import ActionError, ActionResult, Selection
from crm.actions.bulk import (
    CHANGE,
    MERGED,
    Group,
    bulk_result,
    bulk_update,
    live_in,
    selected,
    sort_selection,
)
from crm.models import Customer, Note, User
from crm.models.audit import record, record_each
from crm.models.base import utcnow
from crm.models.customer import CUSTOMER_KINDS

REASON_MAX = 500
REDACTED = "redacted"


def change_kind(session: Session, *, selection: Selection, kind: str, reason: str,
                actor: User | None) -> ActionResult:
    """Make the selected customers leads, prospects or clients, with a reason noted on each."""
    if kind not in CUSTOMER_KINDS:
        raise ActionError("Choose the new kind: lead, prospect or client.")
    reason = " ".join((reason or "").split())
    if not reason:
        raise ActionError("Give a reason for the change; it is noted on each customer.")
    if len(reason) > REASON_MAX:
        raise ActionError(f"Keep the reason to {REASON_MAX} characters or fewer; nothing was "
                          "changed.")
    session.flush()
    chosen = selected(selection)
    groups = sort_selection(session, chosen, case(
        (Customer.merged_into_id.is_not(None), MERGED),
        (Customer.redacted_at.is_not(None), REDACTED),
        (Customer.kind == kind, f"already a {kind}"),
        else_=CHANGE,
    ))
    if CHANGE in groups:
        changing = live_in(chosen, Customer.redacted_at.is_(None), Customer.kind != kind)
        # Which kinds they come from (at most two), for the notes and the audit rows.
        sources = session.scalars(
            select(Customer.kind).where(changing).group_by(Customer.kind)).all()
        _audit(session, actor=actor, verb="change_kind", group=groups[CHANGE],
               summary={"to": kind},
               each=[({"from": old, "to": kind}, and_(changing, Customer.kind == old))
                     for old in sorted(sources)])
        for old in sources:
            _note(session, and_(changing, Customer.kind == old),
                  f"Kind changed from {old} to {kind}: {reason}", actor)
        bulk_update(session, Customer, changing, kind=kind)
    return bulk_result("change_kind", groups, f"Changed {{n}} to {kind}")


def hide(session: Session, *, selection: Selection, related_to_id, actor: User | None
         ) -> ActionResult:
    """Hide the selected customers from the default list as related people of
    ``related_to_id`` (the customer they belong to)."""
    owner = _owner(session, related_to_id)
    session.flush()
    chosen = selected(selection)
    others = aliased(Customer)
    has_related = exists().where(others.related_to_id == Customer.id,
                                 others.merged_into_id.is_(None))
    groups = sort_selection(session, chosen, case(
        (Customer.merged_into_id.is_not(None), MERGED),
        (Customer.redacted_at.is_not(None), REDACTED),
        (Customer.id == owner.id, "the customer they would belong to"),
        (and_(Customer.hidden.is_(True), Customer.related_to_id == owner.id),
         "already hidden"),
        (has_related, "has related people of its own"),
        else_=CHANGE,
    ))
    if CHANGE in groups:
        changing = live_in(
            chosen, Customer.redacted_at.is_(None), Customer.id != owner.id,
            ~and_(Customer.hidden.is_(True), Customer.related_to_id == owner.id),
            ~has_related)
        details = {"related_to_id": owner.id, "related_to": owner.reference}
        _audit(session, actor=actor, verb="hide_related", group=groups[CHANGE],
               summary=details, each=[(details, changing)])
        bulk_update(session, Customer, changing, hidden=True, related_to_id=owner.id)
    return bulk_result("hide_related", groups, f"Hid {{n}} as related to {owner.reference}")


def unhide(session: Session, *, selection: Selection, actor: User | None) -> ActionResult:
    """Show hidden related people in the lists again, no longer linked to anyone."""
    session.flush()
    chosen = selected(selection)
    groups = sort_selection(session, chosen, case(
        (Customer.merged_into_id.is_not(None), MERGED),
        (Customer.hidden.is_(False), "not hidden"),
        else_=CHANGE,
    ))
    if CHANGE in groups:
        changing = live_in(chosen, Customer.hidden.is_(True))
        _audit(session, actor=actor, verb="unhide_related", group=groups[CHANGE],
               summary={}, each=[({}, changing)])
        bulk_update(session, Customer, changing, hidden=False, related_to_id=None)
    return bulk_result("unhide_related", groups, "Showed {n} in the lists again")


# -- steps ---------------------------------------------------------------------------------


def _owner(session: Session, related_to_id) -> Customer:
    """The customer hidden people will belong to, or a refusal saying why it cannot be."""
    if related_to_id is None or isinstance(related_to_id, bool) \
            or not isinstance(related_to_id, int):
        raise ActionError("Choose the customer they belong to.")
    owner = session.get(Customer, related_to_id)
    if owner is None:
        raise ActionError("That customer does not exist; choose the customer they belong to.")
    if owner.merged_into_id is not None:
        raise ActionError(f"{owner.reference} was merged into another customer: choose that "
                          "one instead.")
    if owner.redacted_at is not None:
        raise ActionError(f"{owner.reference} has been redacted; related people cannot be "
                          "linked to it.")
    if owner.hidden:
        raise ActionError(f"{owner.reference} is itself a hidden related person; choose the "
                          "customer it belongs to instead.")
    return owner


def _audit(session: Session, *, actor: User | None, verb: str, group: Group, summary: dict,
           each: list[tuple[dict, object]]) -> None:
    """One event on the customer when one changes; otherwise a summary event (no subject)
    and one row per customer pointing at it (``each``: details and the criterion of the
    customers they describe). Written before the update that changes what the criteria
    select."""
    if group.total == 1:
        details = next((d for d, where in each if _any(session, where)), each[0][0])
        record(session, actor=actor, verb=verb, subject_type="Customer",
               subject_id=group.ids[0], details={**details, "count": 1})
        session.flush()
        return
    event = record(session, actor=actor, verb=verb, subject_type="Customer", subject_id=None,
                   details={**summary, "count": group.total})
    session.flush()
    for details, criterion in each:
        record_each(session, actor=actor, verb=verb, criterion=criterion,
                    details={**details, "summary_id": event.id})


def _any(session: Session, criterion) -> bool:
    return session.scalar(select(exists().where(criterion))) or False


def _note(session: Session, criterion, body: str, actor: User | None) -> None:
    """One note per customer meeting ``criterion``, in one INSERT ... SELECT."""
    now = utcnow()
    session.execute(insert(Note).from_select(
        ["customer_id", "kind", "body", "important", "do_not_work_with_again", "author_id",
         "version", "created_at", "updated_at"],
        select(
            Customer.id, literal("note", String), literal(body, String), false(),
            false(), literal(actor.id if actor is not None else None, Integer),
            literal(1, Integer), literal(now, DateTime), literal(now, DateTime),
        ).where(criterion),
    ))

