"""Jobs over a selection of customers: every bulk action of the customer list (set
dormant, reactivate, deactivate, change kind, hide and unhide related people, block
e-mails, delete / archive, redact, portal invitations) and the statement runs (a ZIP of
PDFs, e-mails).

A bulk job calls the very function the in-request action calls, on one chunk of the
customers confirmed (``job_item``) at a time, inside the runner's transaction: the chunk's
changes, its audit rows and the job's progress commit together.

The statement ZIP is written chunk by chunk into part files (each made under a temporary
name and renamed, so a part is whole or absent) and joined into one ZIP when the last chunk
has committed, reading one PDF at a time: never the whole ZIP in memory.

E-mail is the one thing a transaction cannot take back. A statement e-mail job works one
customer per chunk: it first commits a *claim* on the customer (``job_item.state``), then
sends, then commits the chunk. A run that resumes after a crash finds at most one customer
claimed and not recorded: it looks for that message in the outbox (the message carries a
Message-ID made from the job and the customer) and counts it sent if it is there, or sends
it if it is not (an outbox file appears whole or not at all); with an SMTP server, which
cannot be asked, it skips the customer with the reason, rather than risk a second e-mail.
"""

import os
import secrets
import zipfile
from collections import Counter
from datetime import date

from sqlalchemy import update
from sqlalchemy.orm import Session

from crm import mail
from crm.actions import ActionResult
from crm.jobs import (
    Chunk,
    Context,
    Kind,
    Superseded,
    chunk_size,
    items_select,
    next_items,
    register,
    set_result,
)
from crm.models import Customer, Job, JobItem
from crm.models.audit import record


# --- the bulk actions, as the customer list and the jobs both call them -----------------------
def _set_dormant(session, actor, selection, form):
    from crm.actions.dormant import set_dormant

    return set_dormant(session, selection=selection, actor=actor)


def _reactivate(session, actor, selection, form):
    from crm.actions.dormant import reactivate

    return reactivate(session, selection=selection, actor=actor)


def _deactivate(session, actor, selection, form):
    from crm.actions.dormant import deactivate

    return deactivate(session, selection=selection, actor=actor, reason=form["reason"])


def _change_kind(session, actor, selection, form):
    from crm.actions.customer_kind import change_kind

    return change_kind(session, selection=selection, kind=form["kind"], reason=form["reason"],
                       actor=actor)


def _hide(session, actor, selection, form):
    from crm.actions.customer_kind import hide

    return hide(session, selection=selection, related_to_id=form["related_to"], actor=actor)


def _unhide(session, actor, selection, form):
    from crm.actions.customer_kind import unhide

    return unhide(session, selection=selection, actor=actor)


def _block(session, actor, selection, form):
    from crm.actions.block_email import block_customer_emails

    return block_customer_emails(session, selection=selection, reason=form["block_reason"],
                                 note=form["note"], actor=actor)


def _delete(session, actor, selection, form):
    from crm.actions.archive import delete_customers

    return delete_customers(session, selection=selection, actor=actor)


def _redact(session, actor, selection, form):
    from crm.actions.redact import redact_customers

    return redact_customers(
        session, selection=selection, actor=actor, confirmation=form["word"],
        block_email=form["block"], block_reason=form["block_reason"] or None,
    )


def _portal_invite(session, actor, selection, form, send=None):
    from crm.actions.portal_access import invite_customers
    from crm.portal_links import link_maker

    if send is not None:
        return invite_customers(session, selection=selection, actor=actor,
                                link=link_maker("invite"), send=send)
    with mail.connection() as connected:  # one SMTP session for the whole run
        return invite_customers(session, selection=selection, actor=actor,
                                link=link_maker("invite"), send=connected)


# verb -> (session, actor, selection, form) -> ActionResult
BULK_RUNS = {
    "set_dormant": _set_dormant,
    "reactivate": _reactivate,
    "deactivate": _deactivate,
    "change_kind": _change_kind,
    "hide_related": _hide,
    "unhide_related": _unhide,
    "block_email": _block,
    "delete": _delete,
    "redact": _redact,
    "portal_invite": _portal_invite,
}
# What a bulk job of each verb says it did: "{n}" is "4,800 customers".
DONE = {
    "set_dormant": "Set {n} dormant",
    "reactivate": "Reactivated {n}",
    "deactivate": "Deactivated {n}",
    "change_kind": "Changed the kind of {n}",
    "hide_related": "Hid {n} as related people",
    "unhide_related": "Showed {n} again",
    "block_email": "Blocked the e-mail addresses of {n}",
    "delete": "Deleted or archived {n}",
    "redact": "Redacted {n}",
    "portal_invite": "Invited {n} to the portal",
}


def bulk_kind(verb: str) -> str:
    return f"bulk_{verb}"


def _chunk_of(result: ActionResult, ids: list[int], last: bool) -> Chunk:
    reasons = result.details.get("reasons") if isinstance(result.details, dict) else None
    if not reasons:
        reasons = Counter(skip.reason for skip in result.skipped)
        missing = result.skipped_count - sum(reasons.values())
        if missing > 0:
            reasons["other reasons"] += missing
    return Chunk(cursor=ids[-1], processed=len(ids), changed=result.changed,
                 skips=[(s.reference, s.reason) for s in result.skipped],
                 reasons=dict(reasons), last=last)


def _bulk_chunk(verb: str):
    def run_chunk(session: Session, job: Job, context: Context) -> Chunk:
        size = chunk_size(BULK_KINDS[verb], context.config)
        ids = next_items(session, job, size)
        if not ids:
            return Chunk(cursor=job.cursor, last=True)
        result = BULK_RUNS[verb](session, context.actor, items_select(job, ids),
                                 job.params.get("form") or {})
        session.flush()
        return _chunk_of(result, ids, last=len(ids) < size)

    return run_chunk


def _bulk_finish(verb: str):
    def finish(session: Session, job: Job, context: Context) -> str:
        return summary_of(job, DONE[verb])

    return finish


def summary_of(job: Job, done: str) -> str:
    n = f"{job.changed:,} customer{'' if job.changed == 1 else 's'}"
    text = done.format(n=n)
    if not job.skipped:
        return text + "."
    listed = ", ".join(f"{count:,} {reason}" for reason, count in sorted(
        (job.reasons or {}).items()))
    return f"{text}; {job.skipped:,} skipped ({listed})."


BULK_KINDS: dict[str, Kind] = {
    verb: register(Kind(
        name=bulk_kind(verb), label=label, run_chunk=_bulk_chunk(verb),
        finish=_bulk_finish(verb), capability=capability,
        chunk_size=100 if verb in ("redact", "portal_invite") else 1_000,
    ))
    for verb, label, capability in (
        ("set_dormant", "Set customers dormant", "set_dormant"),
        ("reactivate", "Reactivate customers", "set_dormant"),
        ("deactivate", "Deactivate customers", "set_dormant"),
        ("change_kind", "Change the kind of customers", "change_kind"),
        ("hide_related", "Hide related people", "hide_related"),
        ("unhide_related", "Show hidden related people", "hide_related"),
        ("block_email", "Block e-mail addresses", "block_email"),
        ("delete", "Delete or archive customers", "delete"),
        ("redact", "Redact customers", "redact"),
        ("portal_invite", "Send portal invitations", "portal_invite"),
    )
}


# --- statements: a ZIP of PDFs ------------------------------------------------------------
def _as_of(job: Job) -> date | None:
    text = job.params.get("as_of")
    return date.fromisoformat(text) if text else None


def _zip_chunk(session: Session, job: Job, context: Context) -> Chunk:
    from crm.actions.statement_run import statements_zip

    size = chunk_size(STATEMENTS_ZIP, context.config)
    ids = next_items(session, job, size)
    if not ids:
        return Chunk(cursor=job.cursor, last=True)
    part = context.path(f"part-{ids[0]:012d}.zip")
    # Each writer its own draft: two consumers on one chunk must not write into one file.
    draft = part.with_name(f".{part.name}.{secrets.token_hex(4)}.tmp")
    with open(draft, "wb") as out:
        result = statements_zip(session, selection=items_select(job, ids),
                                actor=context.actor, out=out, as_of=_as_of(job),
                                kind=job.params.get("kind") or "outstanding")
        out.flush()
        os.fsync(out.fileno())
    os.replace(draft, part)
    session.flush()
    return _chunk_of(result, ids, last=len(ids) < size)


def _zip_finish(session: Session, job: Job, context: Context) -> str:
    """Join the parts into one ZIP, one PDF at a time; then remove the parts. The ZIP is
    renamed into place only once whole, so if it exists the join was done (a finish cut
    short after that only removes the parts left)."""
    day = job.params.get("as_of") or date.today().isoformat()
    final = context.path(f"statements-{day}.zip")
    parts = sorted(context.folder.glob("part-*.zip"))
    if not final.exists():
        draft = final.with_name(f".{final.name}.{secrets.token_hex(4)}.tmp")
        seen: set[str] = set()
        with zipfile.ZipFile(draft, "w", compression=zipfile.ZIP_DEFLATED) as joined:
            for part in parts:
                with zipfile.ZipFile(part) as piece:
                    for name in piece.namelist():
                        if name not in seen:
                            seen.add(name)
                            joined.writestr(name, piece.read(name))
        os.replace(draft, final)
    for part in parts:
        part.unlink(missing_ok=True)
    for draft in context.folder.glob(".part-*.tmp"):  # left by a chunk cut short
        draft.unlink(missing_ok=True)
    set_result(job, context, final, name=final.name, mimetype="application/zip")
    n = f"{job.changed:,} statement{'' if job.changed == 1 else 's'}"
    skipped = f"; {job.skipped:,} skipped (merged into another customer)" if job.skipped else ""
    return f"{n} in the ZIP{skipped}."


STATEMENTS_ZIP = register(Kind(
    name="statements_zip", label="Statements (ZIP)", run_chunk=_zip_chunk,
    finish=_zip_finish, capability="statements", money=True, chunk_size=100,
    changed_label="in the ZIP",
))


# --- statements by e-mail -------------------------------------------------------------------
CLAIMED = "claimed"
IN_DOUBT = ("not sent again: the worker stopped while sending it, and the mail server cannot "
            "say whether it went; check before sending it again")


def message_key(job_id: int, customer_id: int) -> str:
    return f"statement-job{job_id}-c{customer_id}"


def _email_chunk(session: Session, job: Job, context: Context) -> Chunk:
    from crm.actions.sent_messages import index_sent
    from crm.actions.statement_run import email_statements

    ids = next_items(session, job, 1)
    if not ids:
        return Chunk(cursor=job.cursor, last=True)
    [customer_id] = ids
    key = message_key(job.id, customer_id)
    item = session.get(JobItem, (job.id, customer_id))
    if item.state == CLAIMED:  # a run before this one stopped while sending it
        found = mail.find_sent(key, config=context.config)
        if found is not None:  # it went: record it as the interrupted run would have
            index_sent(session, customer_id=customer_id, kind="statement", sent=found)
            record(session, actor=context.actor, verb="email_statements",
                   subject_type="Customer", subject_id=customer_id,
                   details={"count": 1, "skipped": 0, "as_of": _as_of_day(job),
                            "found_in_outbox": found})
            session.flush()
            return Chunk(cursor=customer_id, processed=1, changed=1)
        if context.config.get("MAIL_BACKEND") == "smtp":  # the server cannot be asked
            reference = session.get(Customer, customer_id).reference
            return Chunk(cursor=customer_id, processed=1, skips=[(reference, IN_DOUBT)])
        # Not in the outbox: never written (a message appears there whole), so send it.
    else:
        # Claim it where a crash cannot take the claim back: its own commit, before
        # sending. Another consumer that claimed it first makes this one stand down.
        claimed = session.execute(
            update(JobItem).where(JobItem.job_id == job.id, JobItem.item_id == customer_id,
                                  JobItem.state.is_(None))
            .values(state=CLAIMED).execution_options(synchronize_session=False)).rowcount
        if not claimed:
            session.rollback()
            raise Superseded
        session.commit()
    result = email_statements(
        session, selection=items_select(job, ids), actor=context.actor, as_of=_as_of(job),
        send=lambda message: mail.send(message.keyed(key), config=context.config))
    if result.details.get("stopped_at"):  # the mail server refused: it was not sent
        session.rollback()
        session.execute(update(JobItem).where(JobItem.job_id == job.id,
                                              JobItem.item_id == customer_id)
                        .values(state=None))
        session.commit()
        raise mail.MailError(result.message)
    session.flush()
    return _chunk_of(result, ids, last=False)


def _as_of_day(job: Job) -> str:
    return job.params.get("as_of") or date.today().isoformat()


def _email_finish(session: Session, job: Job, context: Context) -> str:
    return summary_of(job, "Sent {n} their statement by e-mail")


EMAIL_STATEMENTS = register(Kind(
    name="email_statements", label="E-mail statements", run_chunk=_email_chunk,
    finish=_email_finish, capability="statements", money=True, chunk_size=1,
    changed_label="sent",
))
