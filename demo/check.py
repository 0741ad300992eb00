"""After a seed, the ledger's own check of the figures the seed stored.

The seed writes every customer's balance, account credit and overdue figures from a Python
copy of ``crm.ledger``'s rules (``demo.related``): recomputing them in SQL after the load
would cost as much as the load. A copy can drift from the original without anyone noticing,
so it is not trusted: every seed ends with ``crm.ledger.differences`` (what
``flask crm check-ledger`` runs) and fails on any difference, quoting the first ones.

The full comparison costs about 40 s on SQLite and well over a minute on PostgreSQL at a
million customers, so above ``FULL_CHECK_UP_TO`` seeded customers a sample is compared instead:
``SAMPLE_SIZE`` ids spread over the whole seeded range, with their invoices. A rule the copy
gets wrong shows in some share of the customers: 20,000 of them find a fault that touches one
customer in 2,000 with a certainty of 99.99 %."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from crm.ledger import Difference, differences
from crm.models import Customer

FULL_CHECK_UP_TO = 100_000
SAMPLE_SIZE = 20_000
SHOWN = 10  # differences quoted in the error; the count says how many more there are
_IN_LIST = 500  # ids per IN list when counting which sampled ids exist


@dataclass(frozen=True)
class LedgerCheck:
    """What was compared: ``checked`` customers of ``customers`` (all of them, or a sample)."""

    checked: int
    customers: int

    @property
    def sampled(self) -> bool:
        return self.checked < self.customers

    def line(self) -> str:
        if self.sampled:
            return (f"Ledger check: {self.checked:,} of {self.customers:,} customers (a sample "
                    "spread over the ids) agree with crm.ledger.")
        return f"Ledger check: all {self.checked:,} customers agree with crm.ledger."


class LedgerMismatch(RuntimeError):
    """The stored figures the seed wrote are not what ``crm.ledger`` makes of the documents."""

    def __init__(self, found: list[Difference], total: int, check: LedgerCheck) -> None:
        self.differences, self.total, self.check = found, total, check
        lines = [
            f"The seeded ledger disagrees with crm.ledger: {total:,} difference(s) in "
            f"{check.checked:,} customers checked. demo/related.py's copy of the ledger rules "
            "no longer matches crm/ledger.py. First differences:",
            *(f"  {_describe(d)}" for d in found[:SHOWN]),
        ]
        if total > SHOWN:
            lines.append(f"  ... and {total - SHOWN:,} more")
        lines.append("The rows are written all the same; seed a fresh database once they agree.")
        super().__init__("\n".join(lines))


def _describe(d: Difference) -> str:
    if d.field == "outstanding":  # an invoice: the ledger reports no expected figure
        return f"{d.reference} (customer id {d.customer_id}): outstanding stored {d.stored}"
    return f"{d.reference}: {d.field} stored {d.stored} expected {d.expected}"


def sample_ids(first: int, last: int, size: int = SAMPLE_SIZE) -> list[int]:
    """``size`` ids of ``first``..``last`` (all of them if there are no more): one from each of
    ``size`` equal slices of the range, and both ends, so every part of the load is looked at.

    The position inside each slice is drawn from a generator seeded with the range, so the
    same range always gives the same ids. A fixed stride would not do: batch sizes are round
    numbers, and it would look at the same place in every batch."""
    count = last - first + 1
    if count <= size:
        return list(range(first, last + 1))
    rng = random.Random(f"demo-check:{first}:{last}:{size}")
    ids = []
    for k in range(size):
        low, high = first + k * count // size, first + (k + 1) * count // size
        ids.append(rng.randrange(low, high))
    ids[0], ids[-1] = first, last
    return ids


def verify_ledger(engine: Engine, seeded: range | None = None, *, today: date | None = None,
                  full_up_to: int = FULL_CHECK_UP_TO, sample: int = SAMPLE_SIZE) -> LedgerCheck:
    """Compare the stored ledger of the customers ``seeded`` (ids; by default every customer)
    with the documents, as ``flask crm check-ledger`` does; raise ``LedgerMismatch`` on any
    difference. Up to ``full_up_to`` customers all are compared, above that ``sample``.

    ``today`` is the day the figures were worked out for (the seed's), so that a seed that
    runs past midnight is not reported as wrong."""
    with Session(engine) as session:
        if seeded is None:
            first, last, customers = session.execute(
                select(func.min(Customer.id), func.max(Customer.id), func.count())
            ).one()
            span = range(first, last + 1) if customers else range(0)
        else:
            span, customers = seeded, len(seeded)
        if customers <= full_up_to:
            # every customer of the database is one pass; a range of them, IN lists
            ids: Sequence[int] | None = None if seeded is None else span
            check = LedgerCheck(customers, customers)
        else:
            ids = sample_ids(span[0], span[-1], sample)
            check = LedgerCheck(_existing(session, ids) if seeded is None else len(ids),
                                customers)
        found, total = differences(session, today=today, customer_ids=ids)
    if total:
        raise LedgerMismatch(found, total, check)
    return check


def _existing(session: Session, ids: Sequence[int]) -> int:
    """How many of ``ids`` are customers (a database's ids may have gaps; a seed's do not)."""
    return sum(
        session.execute(
            select(func.count()).select_from(Customer)
            .where(Customer.id.in_(ids[k:k + _IN_LIST]))
        ).scalar_one()
        for k in range(0, len(ids), _IN_LIST)
    )
