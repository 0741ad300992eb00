"""The service-reminder round: what staff decide for the reminders on the due list, over a
selection of reminders — book a job, postpone, skip this time, stop for good — and the
reminder e-mails.

Each verb sorts the selection in one statement (a CASE giving ``CHANGE`` or the reason a
reminder is skipped, first match wins), refuses bad input with a sentence before anything
changes, changes the reminders with one statement (an executemany by id where each row gets
its own date), writes one audit event and returns an ``ActionResult`` a results page shows.

Repeating reminders come round every ``interval_months``: the next due date is the due date
plus that many months, the day clamped to the month's end (31 Jan + 1 month is 28 or 29 Feb;
the one after that is 31 Mar again, since each is counted from the original date), repeated
until it falls after the booked job (book) or after today (skip), so a long-overdue reminder
that is dealt with leaves the due list instead of staying there a year later. A one-off
reminder is done once booked, and cannot be skipped.

Audit: one event on the customer when one customer's reminders changed; otherwise a summary
(no subject) and one row per customer pointing at it, since each customer's timeline reads
the events by subject. The details hold counts, dates and booking references, never the
free-text description or a stop reason (that goes on a note, which redaction wipes).

Reminder e-mails go only to customers who may get automated messages (active, not merged,
not redacted, address not blocked, opted in to e-mail) and want service reminders; the others
are skipped with the reason. A message cannot be unsent: a sending failure stops the run, the
result says who was sent and who was not, and the audit of those sent is kept.
"""

import calendar
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import (
    DateTime,
    Integer,
    String,
    bindparam,
    case,
    false,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.orm import Session

from crm import mail
from crm.actions import SAMPLE, ActionError, ActionResult, Skip
from crm.actions.block_email import ensure_not_blocked
from crm.actions.bulk import CHANGE, MERGED
from crm.actions.sent_messages import index_sent
from crm.business import compose, identity
from crm.formatting import day
from crm.models import Booking, Customer, Note, ServiceReminder, User, WorkAddress
from crm.models.audit import record, record_each
from crm.models.base import utcnow
from crm.models.sequence import next_number
from crm.validation import sane_date

MAX_REMINDERS = 1_000  # a decision is taken on what staff ticked: pages of the due list
REASON_MAX = 500

NOT_DUE = "no longer due (booked, stopped or cancelled already)"
ADDRESS_INACTIVE = "work address dormant"
BLOCKED = "e-mail blocked"
ONE_OFF = "one-off, no next time to skip to"
NO_EMAIL = "no e-mail address"
NO_REMINDERS = "opted out of service reminders"
NO_EMAILS = "opted out of e-mail"
UNUSABLE = "e-mail address not usable"
STOPPED = "not sent: the run stopped at a sending failure"
SENT_ALREADY = "sent already in this run"

# (criterion over the reminder joined to its work address and customer, reason): first match
# wins. Every decision skips these.
COMMON_SKIPS = (
    (ServiceReminder.status != "due", NOT_DUE),
    (Customer.merged_into_id.is_not(None), MERGED),
    (Customer.redacted_at.is_not(None), "redacted"),
    (Customer.status == "archived", "archived"),
    (Customer.status == "dormant", "dormant"),
    (WorkAddress.status != "active", ADDRESS_INACTIVE),
)
EMAIL_SKIPS = (
    *COMMON_SKIPS,
    (Customer.email_blocked.is_(True), BLOCKED),
    (func.coalesce(func.trim(Customer.email), "") == "", NO_EMAIL),
    (Customer.wants_reminders.is_(False), NO_REMINDERS),
    (Customer.email_opt_in.is_(False), NO_EMAILS),
)


@dataclass(frozen=True)
class Row:
    """One selected reminder, with its customer and its fate."""

    id: int
    customer_id: int
    work_address_id: int
    customer_ref: str
    description: str
    due_on: date
    interval_months: int | None
    email: str | None
    fate: str

    @property
    def label(self) -> str:
        """How the results page names it: "C-000123 Boiler service (due 4 Dec 2026)"."""
        return f"{self.customer_ref} {self.description} (due {day(self.due_on)})"


# --- the decisions ---------------------------------------------------------------------------


def book_jobs(session: Session, *, reminder_ids: Iterable[int], starts_at: datetime,
              actor: User | None) -> ActionResult:
    """A confirmed booking per reminder (the customer's, at its work address, titled with the
    reminder's description) starting at ``starts_at``; a repeating reminder moves to its next
    due date after the job, a one-off is done."""
    if not isinstance(starts_at, datetime):
        raise ActionError("Say when the job starts: a date and a time. Nothing was booked.")
    _sane(starts_at.date(), "The job's date", "booked")
    if starts_at.date() < date.today():
        raise ActionError(f"{day(starts_at.date())} has passed: book the job for today or "
                          "later. Nothing was booked.")
    rows = _sort(session, reminder_ids, (*COMMON_SKIPS, (Customer.email_blocked.is_(True),
                                                         BLOCKED)))
    booked: list[tuple[Row, str]] = []
    late: list[Row] = []
    for row in _changing(rows):
        try:
            ensure_not_blocked(session, row.email, what="booking")
        except ActionError:  # blocked by domain, or since the flag was last kept
            late.append(_refate(row, BLOCKED))
            continue
        reference = next_number(session, "booking")
        session.add(Booking(
            reference=reference, customer_id=row.customer_id,
            work_address_id=row.work_address_id, title=row.description[:200],
            status="confirmed", attribution="manual", starts_at=starts_at,
        ))
        booked.append((row, reference))
    after = starts_at.date()
    _move_on(session, [row for row, _ in booked], after=after, one_off_done=True)
    session.flush()
    refs = [ref for _, ref in booked]
    extra = {"starts_at": starts_at.isoformat(timespec="minutes"), "bookings": refs[:SAMPLE]}
    # "B-000012: C-000123 Boiler service (due 4 Dec 2026)": the booking, then what it is for
    return _finish(session, actor, "book_reminders", rows, [r for r, _ in booked], late, extra,
                   lambda n: f"Booked {_jobs(n)} for {day(after)}",
                   changed_refs=[f"{ref}: {row.label}" for row, ref in booked])


def postpone(session: Session, *, reminder_ids: Iterable[int], until: date,
             actor: User | None) -> ActionResult:
    """Move the reminders' due date to ``until``, a day after today."""
    if not isinstance(until, date) or isinstance(until, datetime):
        raise ActionError("Say which day to postpone to. Nothing was changed.")
    _sane(until, "The new due date", "changed")
    if until <= date.today():
        raise ActionError(f"Postpone to a day after today ({day(until)} is not). Nothing was "
                          "changed.")
    rows = _sort(session, reminder_ids, COMMON_SKIPS)
    changing = _changing(rows)
    _set_dates(session, [(row.id, until, "due") for row in changing])
    return _finish(session, actor, "postpone_reminders", rows, changing, [],
                   {"until": until.isoformat()},
                   lambda n: f"Postponed {_reminders(n)} to {day(until)}")


def skip_this_time(session: Session, *, reminder_ids: Iterable[int],
                   actor: User | None) -> ActionResult:
    """Move repeating reminders on to their next due date after today; a one-off is
    skipped with the reason (stop it instead)."""
    rows = _sort(session, reminder_ids, (*COMMON_SKIPS,
                                         (ServiceReminder.interval_months.is_(None), ONE_OFF)))
    changing = _changing(rows)
    _move_on(session, changing, after=date.today(), one_off_done=False)
    return _finish(session, actor, "skip_reminders", rows, changing, [], {},
                   lambda n: f"Moved {_reminders(n)} on to the next due date")


def stop_for_good(session: Session, *, reminder_ids: Iterable[int], reason: str,
                  actor: User | None) -> ActionResult:
    """Stop the reminders (status "stopped": they never come round again). The reason goes on
    a note on the customer, at the work address, for colleagues to read."""
    reason = " ".join((reason or "").split())
    if not reason:
        raise ActionError("Give a reason for stopping; it is written on a note on the "
                          "customer. Nothing was changed.")
    if len(reason) > REASON_MAX:
        raise ActionError(f"Keep the reason to {REASON_MAX} characters or fewer. Nothing was "
                          "changed.")
    rows = _sort(session, reminder_ids, COMMON_SKIPS)
    changing = _changing(rows)
    if changing:
        ids = [row.id for row in changing]
        _note_stopped(session, ids, reason, actor)
        _execute_by_id(session, [{"rid": i, "new_due": row.due_on, "new_status": "stopped"}
                                 for i, row in zip(ids, changing, strict=True)])
    return _finish(session, actor, "stop_reminders", rows, changing, [], {},
                   lambda n: f"Stopped {_reminders(n)} for good")


def send_reminder_emails(session: Session, *, reminder_ids: Iterable[int], actor: User | None,
                         send: Callable[[mail.Message], str] = mail.send) -> ActionResult:
    """One e-mail per reminder to its customer, through ``send`` (``crm.mail.send`` or a
    ``crm.mail.connection()``), honouring what the customer asked for."""
    rows = _sort(session, reminder_ids, EMAIL_SKIPS)
    changing = _changing(rows)
    customers = _load(session, Customer, {r.customer_id for r in changing})
    addresses = _load(session, WorkAddress, {r.work_address_id for r in changing})
    sent: list[Row] = []
    late: list[Row] = []
    seen: set[tuple[int, date]] = set()
    failure: tuple[str, str] | None = None
    for row in changing:
        if (row.id, row.due_on) in seen:
            late.append(_refate(row, SENT_ALREADY))
            continue
        seen.add((row.id, row.due_on))
        if failure is not None:
            late.append(_refate(row, STOPPED))
            continue
        customer = customers[row.customer_id]
        try:
            message = _message(session, row, customer, addresses[row.work_address_id])
        except mail.MailError:
            late.append(_refate(row, UNUSABLE))
            continue
        try:
            where = send(message)
        except mail.MailError as exc:
            failure = (row.label, str(exc))
            late.append(_refate(row, "sending failed"))
            continue
        index_sent(session, customer_id=row.customer_id, kind="service_reminder", sent=where)
        sent.append(row)
    session.flush()
    extra = {"stopped_at": failure[0].split(" ", 1)[0]} if failure else {}
    result = _finish(session, actor, "email_reminders", rows, sent, late, extra,
                     lambda n: f"Sent {_reminders(n)} by e-mail")
    if failure is None:
        return result
    label, error = failure
    not_sent = sum(1 for row in late if row.fate in (STOPPED, "sending failed"))
    message = (f"Sent {_reminders(len(sent))} by e-mail, then the one for {label} failed: "
               f"{error} The run stopped there: the {len(sent):,} already sent cannot be "
               f"unsent; {not_sent:,} were not sent. Fix the mail settings, then select "
               "those not sent and run it again.")
    return ActionResult(result.verb, result.changed, result.changed_refs, result.skipped,
                        result.skipped_count, message, result.details)


# --- month arithmetic ------------------------------------------------------------------------


def add_months(start: date, months: int) -> date:
    """``start`` plus ``months`` calendar months, the day clamped to the month's last day
    (31 Jan + 1 = 28 Feb, or 29 in a leap year)."""
    years, month0 = divmod(start.month - 1 + months, 12)
    year, month = start.year + years, month0 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def next_due(due_on: date, interval_months: int, *, after: date) -> date:
    """The first of ``due_on`` + k × ``interval_months`` (k = 1, 2, …) that falls after
    ``after``; each counted from ``due_on`` itself, so a 31st comes back after a short
    month."""
    if interval_months < 1:
        raise ValueError("an interval is at least one month")
    # Jump close first (a reminder decades overdue must not loop a thousand times).
    behind = (after.year - due_on.year) * 12 + after.month - due_on.month
    k = max(1, behind // interval_months)
    while add_months(due_on, interval_months * k) <= after:
        k += 1
    while k > 1 and add_months(due_on, interval_months * (k - 1)) > after:
        k -= 1
    return add_months(due_on, interval_months * k)


def every(interval_months: int | None) -> str:
    """How a reminder's repetition is said: "every 12 months", "every month", "one-off"."""
    if not interval_months:
        return "one-off"
    if interval_months == 1:
        return "every month"
    return f"every {interval_months} months"


# --- steps -----------------------------------------------------------------------------------


def _ids(reminder_ids: Iterable[int]) -> list[int]:
    try:
        ids = sorted({int(i) for i in reminder_ids})
    except (TypeError, ValueError):
        raise ActionError("The selection holds something that is not a reminder. Nothing "
                          "was changed.") from None
    if not ids or len(ids) > MAX_REMINDERS:
        raise ActionError(f"Select between 1 and {MAX_REMINDERS:,} reminders. Nothing was "
                          "changed.")
    return ids


def _sane(value: date, what: str, verb: str) -> None:
    try:
        sane_date(value)
    except ValueError as exc:
        raise ActionError(f"{what}: {exc} Nothing was {verb}.") from None


def _sort(session: Session, reminder_ids: Iterable[int], skips: tuple) -> list[Row]:
    """The selected reminders that exist, soonest due first, each with its fate: one
    statement."""
    ids = _ids(reminder_ids)
    session.flush()
    found = session.execute(
        select(ServiceReminder.id, WorkAddress.customer_id, ServiceReminder.work_address_id,
               Customer.reference, ServiceReminder.description, ServiceReminder.due_on,
               ServiceReminder.interval_months, Customer.email,
               case(*skips, else_=literal(CHANGE)).label("fate"))
        .join(WorkAddress, WorkAddress.id == ServiceReminder.work_address_id)
        .join(Customer, Customer.id == WorkAddress.customer_id)
        .where(ServiceReminder.id.in_(ids))
        .order_by(ServiceReminder.due_on, ServiceReminder.id)
    ).all()
    return [Row(*row) for row in found]


def _changing(rows: list[Row]) -> list[Row]:
    return [row for row in rows if row.fate == CHANGE]


def _refate(row: Row, fate: str) -> Row:
    return Row(row.id, row.customer_id, row.work_address_id, row.customer_ref,
               row.description, row.due_on, row.interval_months, row.email, fate)


def _move_on(session: Session, rows: list[Row], *, after: date, one_off_done: bool) -> None:
    """A repeating reminder to its next due date after ``after``; a one-off done."""
    changes = []
    for row in rows:
        if row.interval_months:
            changes.append((row.id, next_due(row.due_on, row.interval_months, after=after),
                            "due"))
        elif one_off_done:
            changes.append((row.id, row.due_on, "done"))
    _set_dates(session, changes)


def _set_dates(session: Session, changes: list[tuple[int, date, str]]) -> None:
    _execute_by_id(session, [{"rid": i, "new_due": due, "new_status": status}
                             for i, due, status in changes])


def _execute_by_id(session: Session, params: list[dict]) -> None:
    """One UPDATE, executed for every row (each its own date and status), moving the
    version on so that an edit form opened before is refused as stale; loaded reminders
    read the new values."""
    if not params:
        return
    table = ServiceReminder.__table__
    session.execute(
        update(table).where(table.c.id == bindparam("rid"))
        .values(due_on=bindparam("new_due"), status=bindparam("new_status"),
                version=table.c.version + 1, updated_at=utcnow()),
        params,
    )
    for obj in list(session.identity_map.values()):
        if isinstance(obj, ServiceReminder):
            session.expire(obj, ["due_on", "status", "version", "updated_at"])


def _note_stopped(session: Session, ids: list[int], reason: str, actor: User | None) -> None:
    """One note per stopped reminder, on its customer and work address (INSERT ... SELECT)."""
    now = utcnow()
    body = (literal("Service reminder stopped for good (", String)
            + ServiceReminder.description + literal(f"): {reason}", String))
    session.execute(insert(Note).from_select(
        ["customer_id", "work_address_id", "kind", "body", "important",
         "do_not_work_with_again", "author_id", "version", "created_at", "updated_at"],
        select(
            WorkAddress.customer_id, WorkAddress.id, literal("note", String), body, false(),
            false(), literal(actor.id if actor is not None else None, Integer),
            literal(1, Integer), literal(now, DateTime), literal(now, DateTime),
        ).select_from(ServiceReminder)
        .join(WorkAddress, WorkAddress.id == ServiceReminder.work_address_id)
        .where(ServiceReminder.id.in_(ids)),
    ))


def _load(session: Session, model, ids: set[int]) -> dict:
    if not ids:
        return {}
    return {obj.id: obj for obj in session.scalars(select(model).where(model.id.in_(ids)))}


def _message(session: Session, row: Row, customer: Customer,
             address: WorkAddress) -> mail.Message:
    """The reminder e-mail, from the business (``crm.business.compose``)."""
    name = identity(session).name
    return compose(
        customer.email.strip(), f"{row.description[:120]}: due {day(row.due_on)} ({name})",
        "service_reminder", session=session, name=customer.display_name,
        reference=customer.reference, description=row.description, due_on=row.due_on,
        address=str(address), every=every(row.interval_months),
        repeating=bool(row.interval_months),
    )


def _finish(session: Session, actor: User | None, verb: str, rows: list[Row],
            changed: list[Row], late: list[Row], extra: dict, done: Callable[[int], str],
            changed_refs: list[str] | None = None) -> ActionResult:
    """Audit what changed and say what was done and what was skipped, and why."""
    skipped_rows = late + [row for row in rows if row.fate != CHANGE]
    reasons = Counter(row.fate for row in skipped_rows)
    customers = list(dict.fromkeys(row.customer_id for row in changed))
    details = {"count": len(changed), "skipped": len(skipped_rows), **extra}
    if len(customers) == 1:
        record(session, actor=actor, verb=verb, subject_type="Customer",
               subject_id=customers[0], details=details)
        session.flush()
    elif customers:
        details["customers"] = len(customers)
        summary = record(session, actor=actor, verb=verb, subject_type="Customer",
                         subject_id=None, details=details)
        session.flush()
        # each customer's row says when, too: the timeline shows no summary
        shared = {k: v for k, v in extra.items() if k in ("until", "starts_at")}
        record_each(session, actor=actor, verb=verb, customer_ids=customers,
                    details={"summary_id": summary.id, **shared})
    message = done(len(changed))
    if skipped_rows:
        listed = ", ".join(f"{n:,} {reason}" for reason, n in sorted(reasons.items()))
        message += f"; {len(skipped_rows):,} skipped ({listed})."
    else:
        message += "."
    refs = changed_refs if changed_refs is not None else [row.label for row in changed]
    return ActionResult(
        verb=verb, changed=len(changed), changed_refs=tuple(refs[:SAMPLE]),
        skipped=tuple(Skip(row.label, row.fate) for row in skipped_rows[:SAMPLE]),
        skipped_count=len(skipped_rows), message=message, details=details,
    )


def _reminders(n: int) -> str:
    return f"{n:,} reminder{'' if n == 1 else 's'}"


def _jobs(n: int) -> str:
    return f"{n:,} job{'' if n == 1 else 's'}"
