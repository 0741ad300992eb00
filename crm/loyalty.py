"""Each customer's loyalty score: how likely they are to book again, 0 to 100, stored in
``customer.loyalty_score`` so that the customer list sorts by it through an index.

The score adds three parts, each a whole number of points, from the customer's *completed*
bookings that started on or before today (an enquiry, a confirmed gig still to come and a
cancelled one do not count, nor does a booking dated in the future):

- **recency**, up to 40: 40 when the last completed booking was today, one point less for
  every 18¼ days since, 0 from two years (730 days) on — ``40 * (730 - days) // 730``;
- **frequency**, up to 30: 6 for each completed booking of the last three years (1,095
  days), so five or more bookings get the full 30;
- **value**, up to 30: in proportion to what those bookings were worth, the full 30 from
  ``FULL_VALUE`` (3,000.00) on — ``30 * min(total, 3,000.00) // 3,000.00``, in whole cents.

Worked example, on 5 Dec 2026: two completed bookings, 10 Sep 2026 (86 days ago, £400.00)
and 1 Mar 2025 (£800.00): recency 40 * 644 // 730 = 35, frequency 2 * 6 = 12, value
30 * 1,200 // 3,000 = 12: a score of 59. A customer with no completed booking scores 0.

The formula is written once, as one SQL expression over the aggregates of a customer's
completed bookings (``score_of``), and used three ways, like the stored ledger
(``crm.ledger``):

- ``refresh(session, ids, today=...)`` rewrites the scores of some customers (or of all) in
  one set-based UPDATE that touches only the rows whose score changes. The session hooks
  (``crm.session_hooks``) note the customers whose bookings a flush or a set-based statement
  touched and call it just before the commit; ``flask crm refresh-loyalty`` runs it for
  everyone nightly, since recency falls with the calendar.
- ``check(session, today=...)`` lists every stored score that differs from the bookings
  (``flask crm check-loyalty``).
- ``expected(session, ids, today=...)`` works scores out without storing them (the tests).
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import Date, Integer, Select, case, cast, func, literal, select, update
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnElement, FunctionElement

from crm.models import Booking, Customer

RECENCY_POINTS = 40
RECENCY_DAYS = 730  # two years: a last booking this old or older earns no recency points
FREQUENCY_POINTS = 6  # per completed booking in the window
FREQUENCY_CAP = 5  # bookings: 5 x 6 = 30
WINDOW_DAYS = 1095  # three years: the bookings that count for frequency and value
VALUE_POINTS = 30
FULL_VALUE = Decimal("3000.00")  # what the window's completed bookings must be worth for 30
CHUNK = 500
# What the score means, in a sentence a tooltip or a page can show (no amounts: coordinators
# read it too).
MEANING = ("How likely to book again, out of 100: up to 40 points for a recent completed "
           "booking (none after two years), 6 for each completed booking in the last three "
           "years (up to 30), and up to 30 for what those bookings were worth.")


class _days_since(FunctionElement):
    """Whole days from a booking's start (a wall-clock datetime) to ``today`` (a date)."""

    type = Integer()
    inherit_cache = True


@compiles(_days_since)
def _days_since_sqlite(element, compiler, **kw):
    today, moment = list(element.clauses)
    return (f"CAST(julianday({compiler.process(today, **kw)}) - "
            f"julianday(date({compiler.process(moment, **kw)})) AS INTEGER)")


@compiles(_days_since, "postgresql")
def _days_since_postgresql(element, compiler, **kw):
    today, moment = list(element.clauses)
    return (f"(CAST({compiler.process(today, **kw)} AS DATE) - "
            f"CAST({compiler.process(moment, **kw)} AS DATE))")


def counted(today: date) -> ColumnElement:
    """The bookings that count on ``today``: completed, started in the last three years and
    not after today."""
    since = datetime.combine(today - timedelta(days=WINDOW_DAYS - 1), time())
    until = datetime.combine(today + timedelta(days=1), time())
    return (Booking.status == "completed") & (Booking.starts_at >= since) \
        & (Booking.starts_at < until)


def score_of(today: date) -> ColumnElement:
    """The score, as one SQL expression over aggregates of ``counted`` bookings (use it in a
    SELECT ... FROM booking WHERE counted(today), correlated or grouped by customer)."""
    days = _days_since(literal(today, Date), func.max(Booking.starts_at))
    recency = case(
        (days.is_(None), 0),
        (days >= RECENCY_DAYS, 0),
        else_=(RECENCY_POINTS * (RECENCY_DAYS - days)) // RECENCY_DAYS,
    )
    bookings = func.count(Booking.id)
    frequency = case(
        (bookings >= FREQUENCY_CAP, FREQUENCY_CAP * FREQUENCY_POINTS),
        else_=bookings * FREQUENCY_POINTS,
    )
    total = func.coalesce(func.sum(Booking.value), 0)
    capped = case((total >= FULL_VALUE, FULL_VALUE), else_=total)
    full_cents = int(FULL_VALUE * 100)
    # Whole cents as an integer on both databases, so that the division is an integer one.
    cents = cast(func.round(capped * 100), Integer)
    value = (cents * VALUE_POINTS) // full_cents
    return cast(recency + frequency + value, Integer)


def score_for(customer_id_col, today: date):
    """The score of the customer ``customer_id_col`` (a column to correlate), a scalar
    subquery: 0 for a customer without a counted booking."""
    return (
        select(score_of(today))
        .where(Booking.customer_id == customer_id_col, counted(today))
        .scalar_subquery()
    )


def _chunks(ids: Iterable[int]) -> Iterable[list[int]]:
    ids = sorted(set(ids) - {None})
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def refresh(session: Session, customer_ids: Iterable[int] | Select | None = None, *,
            today: date) -> int:
    """Store the score of ``customer_ids`` (ids, a SELECT of ids, or every customer when
    None) as of ``today``; return how many changed. One UPDATE (per 500 ids of a list),
    touching only the rows whose score changes."""
    if customer_ids is None or isinstance(customer_ids, Select):
        scopes: list = [customer_ids]
    else:
        scopes = list(_chunks(customer_ids))
    changed = 0
    for scope in scopes:
        new = score_for(Customer.id, today)
        stmt = (
            update(Customer)
            .where(Customer.loyalty_score != new)
            # A figure worked out, not a change anyone made: "last changed" stays.
            .values(loyalty_score=new, updated_at=Customer.updated_at)
            .execution_options(synchronize_session=False)
        )
        if scope is not None:
            stmt = stmt.where(Customer.id.in_(scope))
        changed += session.execute(stmt).rowcount or 0
    if changed:
        # Loaded customers would otherwise keep the score they were read with.
        for obj in session.identity_map.values():
            if isinstance(obj, Customer):
                session.expire(obj, ["loyalty_score"])
    return changed


def expected(session: Session, customer_ids: Iterable[int], *, today: date) -> dict[int, int]:
    """The scores of ``customer_ids`` as the bookings give them, without storing them."""
    found: dict[int, int] = {}
    for chunk in _chunks(customer_ids):
        found.update(session.execute(
            select(Customer.id, score_for(Customer.id, today)).where(Customer.id.in_(chunk))
        ).all())
    return found


@dataclass(frozen=True)
class Difference:
    customer_id: int
    reference: str
    stored: int
    expected: int

    def __str__(self) -> str:
        return f"{self.reference}: loyalty score stored {self.stored} expected {self.expected}"


def check(session: Session, *, today: date, limit: int = 1000, batch: int = 50_000,
          progress: Callable[[int], object] | None = None) -> list[Difference]:
    """Every customer whose stored score differs from the bookings (the first ``limit``);
    ``progress(n)`` is told of each batch of ``n`` customers compared (a progress bar)."""
    found: list[Difference] = []
    last_id = 0
    new = score_for(Customer.id, today)
    while len(found) < limit:
        ids = session.execute(
            select(Customer.id).where(Customer.id > last_id).order_by(Customer.id).limit(batch)
        ).scalars().all()
        if not ids:
            break
        last_id = ids[-1]
        if progress is not None:
            progress(len(ids))
        rows = session.execute(
            select(Customer.id, Customer.reference, Customer.loyalty_score, new.label("new"))
            .where(Customer.id.between(ids[0], last_id), Customer.loyalty_score != new)
            .order_by(Customer.id)
            .limit(limit - len(found))
        ).all()
        found.extend(Difference(row.id, row.reference, row.loyalty_score, row.new)
                     for row in rows)
    return found


# --- the customers whose bookings this transaction touched -------------------------------
# The session hooks note customer ids (or, for a customer created in the same flush, the
# instance) in the session's ``info``; ``flush_loyalty`` refreshes them before the commit.
DIRTY_KEY = "loyalty_dirty"


def mark_dirty(session: Session, refs: Iterable) -> None:
    session.info.setdefault(DIRTY_KEY, set()).update(r for r in refs if r is not None)


def is_dirty(session: Session) -> bool:
    return bool(session.info.get(DIRTY_KEY))


def forget_dirty(session: Session) -> None:
    session.info.pop(DIRTY_KEY, None)


def flush_loyalty(session: Session, today: date | None = None) -> int:
    """Refresh the scores of the customers noted since the last call."""
    refs = session.info.pop(DIRTY_KEY, None)
    if not refs:
        return 0
    session.flush()
    ids = {ref if isinstance(ref, int) else ref.id for ref in refs}
    return refresh(session, ids, today=today or date.today())
