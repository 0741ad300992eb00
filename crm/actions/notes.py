"""Notes on a customer's record page: add one, pin or unpin it (pinned notes show as a banner
on every screen of that customer)."""

from sqlalchemy.orm import Session

from crm.actions import ActionError, ActionResult
from crm.actions.guards import live_customer
from crm.models import Note, User
from crm.models.audit import record
from crm.models.comms import STAFF_NOTE_KINDS

MAX_BODY = Note.__table__.c.body.info["max_length"]


def add_note(session: Session, *, customer_id: int, kind: str, body: str, important: bool,
             actor: User | None) -> ActionResult:
    customer = live_customer(session, customer_id, doing="add notes")
    body = (body or "").strip()
    if kind not in STAFF_NOTE_KINDS:
        raise ActionError(f"A note is one of: {', '.join(STAFF_NOTE_KINDS)}.")
    if not body:
        raise ActionError("Write something in the note; nothing was saved.")
    if len(body) > MAX_BODY:
        raise ActionError(f"A note holds at most {MAX_BODY:,} characters; nothing was saved.")
    note = Note(customer_id=customer.id, kind=kind, body=body, important=bool(important),
                author_id=actor.id if actor is not None else None)
    session.add(note)
    session.flush()
    record(session, actor=actor, verb="add_note", subject_type="Customer",
           subject_id=customer.id, details={"note_id": note.id, "kind": kind,
                                            "important": bool(important)})
    return ActionResult("add_note", changed=1, changed_refs=(customer.reference,),
                        message=f"Note added to {customer.reference}.")


def pin_note(session: Session, *, note_id: int, pinned: bool, actor: User | None) -> ActionResult:
    note = session.get(Note, note_id)
    if note is None or note.customer_id is None:
        raise ActionError("That note does not exist.")
    customer = live_customer(session, note.customer_id, doing="change notes")
    if note.important == pinned:
        state = "pinned" if pinned else "not pinned"
        return ActionResult("pin_note", message=f"The note was already {state}; nothing changed.")
    note.important = pinned
    session.flush()
    record(session, actor=actor, verb="pin_note" if pinned else "unpin_note",
           subject_type="Customer", subject_id=customer.id, details={"note_id": note.id})
    return ActionResult("pin_note", changed=1, changed_refs=(customer.reference,),
                        message="Note pinned." if pinned else "Note unpinned.")
