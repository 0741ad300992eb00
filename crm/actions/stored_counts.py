"""Counts too costly to make on a page view, made by ``flask crm count-figures`` (nightly,
beside ``age-ledger``) and stored with the time they were made: the dashboard shows them
with that time ("counted 3 hours ago").

Today one: the possible-duplicate groups (a full grouping scan of the customers per kind).
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm.actions.duplicates import count_duplicate_groups
from crm.models import StoredCount
from crm.models.base import utcnow

COUNTERS = {"duplicate_groups": count_duplicate_groups}


@dataclass(frozen=True)
class Counted:
    value: int
    counted_at: datetime


def refresh_counts(session: Session) -> dict[str, int]:
    """Make every stored count anew, in the caller's transaction."""
    made = {}
    for name, counter in COUNTERS.items():
        value = counter(session)
        row = session.get(StoredCount, name)
        if row is None:
            session.add(StoredCount(name=name, value=value, counted_at=utcnow()))
        else:
            row.value, row.counted_at = value, utcnow()
        made[name] = value
    session.flush()
    return made


def stored_counts(session: Session) -> dict[str, Counted]:
    """What was counted last, by name (absent: never counted)."""
    return {row.name: Counted(row.value, row.counted_at)
            for row in session.scalars(select(StoredCount))}
