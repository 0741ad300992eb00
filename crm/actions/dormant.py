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


from sqlalchemy import (
    DateTime,
    Integer,
    Select,
    String,
    and_,
    case,
    exists,
    insert,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.orm import Session

from crm.actions import ActionError, ActionResult, Selection
from crm.actions.bulk import (
    CHANGE,
    MERGED,
    bulk_result,
    bulk_update,
    live_in,
    record_changes,
    selected,
    set_status,
    sort_selection,
)
from crm.models import Customer, Note, ServiceReminder, User, WorkAddress
from crm.models.base import utcnow

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
    (optionally only those due on or before ``until``), soonest first. A customer who said
    (in the portal) that they want no service reminders stays on it, flagged: the service
    is still due, but the reminder e-mails skip them (``crm.actions.reminders``)."""
    query = (
        select(ServiceReminder)
        .join(WorkAddress, WorkAddress.id == ServiceReminder.work_address_id)
        .join(Customer, Customer.id == WorkAddress.customer_id)
        .where(*due_reminder_criteria())
        .order_by(ServiceReminder.due_on, ServiceReminder.id)
    )
    if until is not None:
        query = query.where(ServiceReminder.due_on <= until)
    return query


def due_reminder_criteria() -> tuple:
    """What puts a reminder on the due list, over ServiceReminder joined to its WorkAddress
    and that address's Customer (joins, not ``id IN (…)``: the planner then walks the
    reminders in due order and stops at a page)."""
    return (
        # a literal, so SQLite may use the partial index of reminders still due
        ServiceReminder.status == literal("due", literal_execute=True),
        WorkAddress.status == "active",
        Customer.status == "active",
        Customer.merged_into_id.is_(None),
    )


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
