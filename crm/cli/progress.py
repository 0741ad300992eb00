"""Progress bars for the long commands, on standard error and only at a terminal: run from
cron or piped, a command prints its result and nothing else."""

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm.models import Customer

WINDOW = 10_000  # customer ids per transaction of the commands that work in windows


class _Silent:
    def update(self, n: int) -> None:
        pass


@contextmanager
def progress(length: int, label: str) -> Iterator:
    """``with progress(n, "Checking") as bar: bar.update(k)``."""
    stream = sys.stderr
    if not stream.isatty():
        yield _Silent()
        return
    with click.progressbar(length=max(length, 1), label=label, file=stream,
                           show_pos=True) as bar:
        yield bar


def customer_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Customer)) or 0


def id_windows(session: Session, size: int | None = None) -> Iterator[tuple[int, int, int]]:
    """(first id, last id, customers in it) for consecutive windows of customer ids
    (``WINDOW`` wide), so a command over every customer can commit and report as it goes."""
    size = size or WINDOW
    low, high = session.execute(select(func.min(Customer.id), func.max(Customer.id))).one()
    if low is None:
        return
    start = low
    while start <= high:
        end = start + size - 1
        count = session.scalar(select(func.count()).select_from(Customer)
                               .where(Customer.id.between(start, end))) or 0
        yield start, end, count
        start = end + 1
