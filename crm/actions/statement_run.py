"""Statement runs over a selection of customers (issue 4, item 7): a ZIP of statement PDFs,
or one e-mail per customer with the PDF attached.

Both build each statement with ``crm.statements.build_statement`` and render it with
``crm.documents.statement_pdf`` (the same numbers as the customer page), so they need an
application context for the templates. Customers are read in batches of ``BATCH`` (one
SELECT per batch, then the statement's own fixed handful of statements each), and nothing
accumulates per customer but its reference: a run of 1,000 keeps one PDF in memory at a time
and writes the ZIP into the caller's file (a temporary file for the download).

Size: a run of any size works here, one statement in memory at a time; the screens run a
small selection in the request and hand a bigger one to a background job
(``crm.jobs.customers``), which calls these functions one chunk of customers at a time.

E-mail goes only to customers who may get automated messages (``automated_contact_allowed``:
active, not merged, not redacted, e-mail not blocked, opted in to e-mail) and have an
address; the others are skipped with the reason. A message cannot be unsent, so a sending
failure part-way does not roll back: the run stops, the result says who was sent and who was
not, and the audit rows of the messages sent are kept (the caller commits).
"""

import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date
from typing import BinaryIO

from sqlalchemy import Select, case, func, or_, select
from sqlalchemy.orm import Session

from crm import mail
from crm.actions import SAMPLE, ActionError, ActionResult, Selection, Skip
from crm.actions.bulk import CHANGE, MERGED, live_in, selected, sort_selection
from crm.actions.dormant import automated_contact_allowed
from crm.actions.sent_messages import index_sent
from crm.business import compose, identity
from crm.documents import statement_pdf
from crm.formatting import day
from crm.models import Customer, User
from crm.models.audit import record, record_each
from crm.pdf import PdfError
from crm.statements import KINDS, build_statement
from crm.validation import sane_date

BATCH = 100
NO_EMAIL = "no e-mail address"
UNUSABLE = "e-mail address not usable"
STOPPED = "not sent: the run stopped at a sending failure"
EMAIL_SKIPS = (  # (criterion, reason), first match wins; the rest may be e-mailed
    (Customer.merged_into_id.is_not(None), MERGED),
    (Customer.redacted_at.is_not(None), "redacted"),
    (Customer.status == "archived", "archived"),
    (Customer.status == "dormant", "dormant"),
    (Customer.email_blocked.is_(True), "e-mail blocked"),
    (or_(Customer.email.is_(None), func.trim(Customer.email) == ""), NO_EMAIL),
    (Customer.email_opt_in.is_(False), "opted out of e-mail"),
    (Customer.wants_statements.is_(False), "asked for no statement e-mails"),
)


def statements_zip(
    session: Session,
    *,
    selection: Selection,
    actor: User | None,
    out: BinaryIO,
    as_of: date | None = None,
    kind: str = "outstanding",
) -> ActionResult:
    """Write a ZIP of one statement PDF per selected customer (``statement-C-000123.pdf``)
    into ``out``; merged-away customers are skipped. ``as_of=None`` is today's position."""
    chosen = selected(selection)
    _check(session, chosen, as_of, kind)
    groups = sort_selection(session, chosen, case(
        (Customer.merged_into_id.is_not(None), MERGED), else_=CHANGE))
    merged = groups[MERGED] if MERGED in groups else None
    written: list[str] = []
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for customer in _customers(session, live_in(chosen)):
            statement = build_statement(session, customer_id=customer.id, kind=kind,
                                        as_of=as_of)
            try:
                pdf = statement_pdf(statement)
            except PdfError as exc:
                raise ActionError(f"The statement of {customer.reference} could not be made "
                                  f"({exc}); no ZIP was made.") from exc
            archive.writestr(f"statement-{customer.reference}.pdf", pdf)
            written.append(customer.reference)
    skipped = merged.total if merged else 0
    details = {"count": len(written), "skipped": skipped, "kind": kind,
               "as_of": _day(as_of).isoformat()}
    record(session, actor=actor, verb="statements_zip", subject_type="Customer",
           subject_id=None, details=details)
    session.flush()
    return ActionResult(
        "statements_zip", changed=len(written), changed_refs=tuple(written[:SAMPLE]),
        skipped=tuple(Skip(ref, MERGED) for ref in merged.refs) if merged else (),
        skipped_count=skipped, details=details,
        message=f"{_statements(len(written))} in the ZIP"
        + (f"; {skipped:,} skipped ({skipped:,} {MERGED})." if skipped else "."),
    )


def email_statements(
    session: Session,
    *,
    selection: Selection,
    actor: User | None,
    as_of: date | None = None,
    send: Callable[[mail.Message], str] = mail.send,
) -> ActionResult:
    """E-mail each selected customer who may be contacted their outstanding statement, as a
    PDF attachment, through ``send`` (``crm.mail.send`` or a ``crm.mail.connection()``)."""
    chosen = selected(selection)
    _check(session, chosen, as_of, "outstanding")
    groups = sort_selection(session, chosen, case(*EMAIL_SKIPS, else_=CHANGE))
    skipped = [Skip(ref, fate) for fate, group in sorted(groups.items()) if fate != CHANGE
               for ref in group.refs]
    late: list[Skip] = []  # listed first: who was not sent because of the run itself
    reasons = Counter({fate: g.total for fate, g in groups.items() if fate != CHANGE})
    sent: list[tuple[int, str]] = []
    failure = None
    eligible = live_in(chosen, automated_contact_allowed(), Customer.email.is_not(None),
                       func.trim(Customer.email) != "", Customer.wants_statements.is_(True))
    for customer in _customers(session, eligible):
        if failure is None:
            reason, failure = _send_one(session, customer, as_of, send)
        else:
            reason = STOPPED
        if reason is None:
            sent.append((customer.id, customer.reference))
        else:
            late.append(Skip(customer.reference, reason))
            reasons[reason] += 1
    skipped_count = sum(reasons.values())
    details = {"count": len(sent), "skipped": skipped_count, "as_of": _day(as_of).isoformat()}
    if failure is not None:
        details["stopped_at"] = failure[0]
    _audit(session, actor, sent, details)
    return ActionResult(
        "email_statements", changed=len(sent), changed_refs=tuple(r for _, r in sent[:SAMPLE]),
        skipped=tuple((late + skipped)[:SAMPLE]), skipped_count=skipped_count,
        message=_email_message(len(sent), reasons, failure), details=details,
    )


# --- steps ----------------------------------------------------------------------------------


def _check(session: Session, chosen: Select, as_of: date | None, kind: str) -> None:
    if kind not in KINDS:
        raise ActionError(f"Unknown kind of statement {kind!r}: use outstanding or activity.")
    try:
        sane_date(as_of)
    except ValueError as exc:
        raise ActionError(f"Statement date: {exc} Nothing was made or sent.") from None
    if as_of is not None and as_of > date.today():
        raise ActionError("A statement shows a date that has passed: choose today or earlier.")


def _customers(session: Session, criterion) -> Iterator[Customer]:
    """The customers meeting ``criterion`` by id, loaded ``BATCH`` at a time (so that
    ``build_statement`` finds each in the session instead of asking for it)."""
    after = 0
    while True:
        batch = session.scalars(
            select(Customer).where(criterion, Customer.id > after)
            .order_by(Customer.id).limit(BATCH)
        ).all()
        yield from batch
        if len(batch) < BATCH:
            return
        after = batch[-1].id


def _send_one(session: Session, customer: Customer, as_of: date | None, send):
    """(why it was not sent or None, (reference, error) if the sending itself failed)."""
    try:
        message = _message(session, customer, as_of)
    except mail.MailError:
        return UNUSABLE, None
    except PdfError as exc:  # the fonts or the template: every later statement would fail too
        return "statement could not be made", (customer.reference, str(exc))
    try:
        sent = send(message)
    except mail.MailError as exc:
        return "sending failed", (customer.reference, str(exc))
    index_sent(session, customer_id=customer.id, kind="statement", sent=sent)
    return None, None


def _message(session: Session, customer: Customer, as_of: date | None) -> mail.Message:
    """The statement e-mail: the position in the one wording of the statement itself
    ("Overdue £980.75, less account credit £55.31, balance £925.44."), from the business
    (its name in the subject and signature, its sender and reply-to: ``crm.business``)."""
    statement = build_statement(session, customer_id=customer.id, as_of=as_of)
    on = statement.as_of or _day(as_of)
    name = identity(session).name
    return compose(
        customer.email.strip(), f"Statement of account at {day(on)} from {name}", "statement",
        session=session, name=customer.display_name, reference=customer.reference, as_of=on,
        balance=statement.balance, overdue=statement.overdue, position=statement.position,
        attachments=[(f"statement-{customer.reference}.pdf", statement_pdf(statement),
                      "application/pdf")],
    )


def _audit(session: Session, actor: User | None, sent: list[tuple[int, str]],
           details: dict) -> None:
    """One event on the customer when one was sent; else a summary and one row per customer
    sent (what each customer's timeline reads)."""
    if not sent:
        return
    if len(sent) == 1:
        record(session, actor=actor, verb="email_statements", subject_type="Customer",
               subject_id=sent[0][0], details=details)
        session.flush()
        return
    summary = record(session, actor=actor, verb="email_statements", subject_type="Customer",
                     subject_id=None, details=details)
    session.flush()
    record_each(session, actor=actor, verb="email_statements",
                customer_ids=[i for i, _ in sent], details={"summary_id": summary.id})


def _email_message(sent: int, reasons: Counter, failure: tuple[str, str] | None) -> str:
    text = f"Sent {_statements(sent)} by e-mail"
    if failure is not None:
        reference, error = failure
        return (f"{text}, then the one to {reference} failed: {error} The run stopped there: "
                f"the {sent:,} already sent cannot be unsent; the {reasons[STOPPED] + 1:,} "
                "from there on were not sent. Fix the mail settings, then select those not "
                "sent and run it again.")
    skipped = sum(reasons.values())
    if not skipped:
        return text + "."
    listed = ", ".join(f"{n:,} {reason}" for reason, n in sorted(reasons.items()))
    return f"{text}; {skipped:,} skipped ({listed})."


def _statements(n: int) -> str:
    return f"{n:,} statement{'' if n == 1 else 's'}"


def _day(as_of: date | None) -> date:
    return as_of or date.today()
