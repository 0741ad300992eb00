"""Work that must wait until a transaction has committed, and must never happen if it rolls
back: removing the stored e-mails a redaction made obsolete, compacting the database after
it. An action queues it with ``after_commit(session, fn)``; the caller's commit runs it.

A chore that fails is logged as an error (the commit has happened and stands); it does not
stop the chores after it.
"""

import logging
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session

KEY = "crm_after_commit"
log = logging.getLogger("crm.after_commit")


def after_commit(session: Session, chore: Callable[[], object]) -> None:
    """Run ``chore`` once the session's current transaction commits (dropped on rollback)."""
    session.info.setdefault(KEY, []).append(chore)


@event.listens_for(Session, "after_commit")
def _run(session: Session) -> None:
    for chore in session.info.pop(KEY, []):
        try:
            chore()
        except Exception:  # the commit stands; say loudly what was left undone
            log.exception("A task after a commit failed: %r", chore)


@event.listens_for(Session, "after_rollback")
def _drop(session: Session) -> None:
    session.info.pop(KEY, None)
