"""The business-wide money figures of the owner's dashboard, stored so that no page sums a
million rows: what is owed by due date, what was invoiced and received by day
(``ledger_day``) and the account credit held for all customers (``ledger_total``).

The database keeps them, not the application: triggers on ``invoice``, ``payment`` and
``customer`` add each write's difference, whatever wrote it (a form, a bulk action, a merge,
the ledger's own recomputation, a hand-written UPDATE). On SQLite they are row triggers; on
PostgreSQL the invoice and payment ones are statement triggers over the changed rows, which
add one row per day touched, in day order (two transactions lock shared days in the same
order), and the customer one a row trigger that only fires when account credit changes.

- ``outstanding`` of a day: ``invoice.outstanding`` summed over the invoices due that day
  (``crm.ledger`` keeps it zero on drafts and void invoices);
- ``invoiced``: the totals of issued invoices dated that day;
- ``received``: the payments received that day;
- ``ledger_total.account_credit``: ``customer.account_credit`` summed.

``rebuild`` recomputes them from the documents (after a bulk load with the triggers
dropped), ``differences`` compares them (``flask crm check-ledger``), and ``dashboard``
reads what the home page shows: aging buckets, twelve months, the totals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from crm.models import LedgerDay, LedgerTotal

ZERO = Decimal("0.00")


def _sqlite_add(day: str, column: str, amount: str, when: str) -> str:
    """One UPSERT adding ``amount`` to ``column`` of the day ``day``, when ``when`` holds."""
    return (
        f"INSERT INTO ledger_day (day, {column}) SELECT {day}, {amount} "  # noqa: S608
        f"WHERE {when} AND {day} IS NOT NULL AND {amount} <> 0 "
        f"ON CONFLICT (day) DO UPDATE SET {column} = round({column} + excluded.{column}, 2);"
    )


def _sqlite_credit(amount: str) -> str:
    return (
        f"INSERT INTO ledger_total (id, account_credit) VALUES (1, {amount}) "  # noqa: S608
        "ON CONFLICT (id) DO UPDATE SET "
        "account_credit = round(account_credit + excluded.account_credit, 2);"
    )


_INVOICE_ADD = (
    _sqlite_add("new.due_date", "outstanding", "new.outstanding", "1")
    + _sqlite_add("new.issue_date", "invoiced", "new.total", "new.status = 'issued'")
)
_INVOICE_REMOVE = (
    _sqlite_add("old.due_date", "outstanding", "-old.outstanding", "1")
    + _sqlite_add("old.issue_date", "invoiced", "-old.total", "old.status = 'issued'")
)
_INVOICE_CHANGED = " OR ".join(
    f"old.{c} IS NOT new.{c}" for c in ("outstanding", "due_date", "status", "total",
                                         "issue_date")
)

SQLITE_TRIGGERS = {
    "ledger_invoice_ai": f"AFTER INSERT ON invoice BEGIN {_INVOICE_ADD} END",
    "ledger_invoice_au": (
        "AFTER UPDATE OF outstanding, due_date, status, total, issue_date ON invoice "
        f"WHEN {_INVOICE_CHANGED} BEGIN {_INVOICE_REMOVE} {_INVOICE_ADD} END"
    ),
    "ledger_invoice_ad": f"AFTER DELETE ON invoice BEGIN {_INVOICE_REMOVE} END",
    "ledger_payment_ai": (
        "AFTER INSERT ON payment BEGIN "
        + _sqlite_add("new.received_on", "received", "new.amount", "1") + " END"
    ),
    "ledger_payment_au": (
        "AFTER UPDATE OF amount, received_on ON payment "
        "WHEN old.amount IS NOT new.amount OR old.received_on IS NOT new.received_on BEGIN "
        + _sqlite_add("old.received_on", "received", "-old.amount", "1")
        + _sqlite_add("new.received_on", "received", "new.amount", "1") + " END"
    ),
    "ledger_payment_ad": (
        "AFTER DELETE ON payment BEGIN "
        + _sqlite_add("old.received_on", "received", "-old.amount", "1") + " END"
    ),
    "ledger_customer_ai": (
        "AFTER INSERT ON customer WHEN new.account_credit <> 0 BEGIN "
        + _sqlite_credit("new.account_credit") + " END"
    ),
    "ledger_customer_au": (
        "AFTER UPDATE OF account_credit ON customer "
        "WHEN old.account_credit IS NOT new.account_credit BEGIN "
        + _sqlite_credit("new.account_credit - old.account_credit") + " END"
    ),
    "ledger_customer_ad": (
        "AFTER DELETE ON customer WHEN old.account_credit <> 0 BEGIN "
        + _sqlite_credit("-old.account_credit") + " END"
    ),
}

# PostgreSQL: the changed rows of a statement, as (day, outstanding, invoiced, received)
# amounts; "new_rows" and "old_rows" are the statement's transition tables.
_PG_INVOICE_ROWS = """
    SELECT due_date AS day, {sign}outstanding AS outstanding, 0 AS invoiced, 0 AS received
      FROM {rows} WHERE due_date IS NOT NULL AND outstanding <> 0
    UNION ALL
    SELECT issue_date, 0, {sign}total, 0 FROM {rows} WHERE status = 'issued' AND total <> 0
"""
_PG_PAYMENT_ROWS = """
    SELECT received_on AS day, 0 AS outstanding, 0 AS invoiced, {sign}amount AS received
      FROM {rows}
"""
_PG_ADD = """
    INSERT INTO ledger_day AS l (day, outstanding, invoiced, received)
    SELECT day, sum(outstanding), sum(invoiced), sum(received) FROM ({changes}) AS c
     GROUP BY day
    HAVING sum(outstanding) <> 0 OR sum(invoiced) <> 0 OR sum(received) <> 0
     ORDER BY day
    ON CONFLICT (day) DO UPDATE SET
        outstanding = l.outstanding + excluded.outstanding,
        invoiced = l.invoiced + excluded.invoiced,
        received = l.received + excluded.received;
"""


def _pg_function(name: str, rows: str) -> str:
    added = _PG_ADD.format(changes=rows.format(sign="", rows="new_rows"))
    removed = _PG_ADD.format(changes=rows.format(sign="-", rows="old_rows"))
    changed = _PG_ADD.format(changes=rows.format(sign="", rows="new_rows") + " UNION ALL "
                             + rows.format(sign="-", rows="old_rows"))
    return f"""
CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN {added}
    ELSIF TG_OP = 'UPDATE' THEN {changed}
    ELSE {removed}
    END IF;
    RETURN NULL;
END $$"""


POSTGRES_FUNCTIONS = {
    "ledger_invoice_change": _pg_function("ledger_invoice_change", _PG_INVOICE_ROWS),
    "ledger_payment_change": _pg_function("ledger_payment_change", _PG_PAYMENT_ROWS),
    "ledger_customer_credit": """
CREATE OR REPLACE FUNCTION ledger_customer_credit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE change numeric;
BEGIN
    IF TG_OP = 'INSERT' THEN change := NEW.account_credit;
    ELSIF TG_OP = 'UPDATE' THEN change := NEW.account_credit - OLD.account_credit;
    ELSE change := -OLD.account_credit;
    END IF;
    INSERT INTO ledger_total AS t (id, account_credit) VALUES (1, change)
    ON CONFLICT (id) DO UPDATE SET account_credit = t.account_credit + excluded.account_credit;
    RETURN NULL;
END $$""",
}


def _pg_statement_triggers(table: str, function: str) -> dict[str, str]:
    return {
        f"ledger_{table}_ai": f"AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows "
                              f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
        f"ledger_{table}_au": f"AFTER UPDATE ON {table} REFERENCING OLD TABLE AS old_rows "
                              f"NEW TABLE AS new_rows FOR EACH STATEMENT "
                              f"EXECUTE FUNCTION {function}()",
        f"ledger_{table}_ad": f"AFTER DELETE ON {table} REFERENCING OLD TABLE AS old_rows "
                              f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
    }


POSTGRES_TRIGGERS = {
    **_pg_statement_triggers("invoice", "ledger_invoice_change"),
    **_pg_statement_triggers("payment", "ledger_payment_change"),
    "ledger_customer_ai": "AFTER INSERT ON customer FOR EACH ROW "
                          "WHEN (NEW.account_credit <> 0) "
                          "EXECUTE FUNCTION ledger_customer_credit()",
    "ledger_customer_au": "AFTER UPDATE OF account_credit ON customer FOR EACH ROW "
                          "WHEN (OLD.account_credit IS DISTINCT FROM NEW.account_credit) "
                          "EXECUTE FUNCTION ledger_customer_credit()",
    "ledger_customer_ad": "AFTER DELETE ON customer FOR EACH ROW "
                          "WHEN (OLD.account_credit <> 0) "
                          "EXECUTE FUNCTION ledger_customer_credit()",
}

def create_triggers(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        for body in POSTGRES_FUNCTIONS.values():
            conn.execute(text(body))
        for name, body in POSTGRES_TRIGGERS.items():
            table = name.split("_")[1]
            conn.execute(text(f"DROP TRIGGER IF EXISTS {name} ON {table}"))
            conn.execute(text(f"CREATE TRIGGER {name} {body}"))
    else:
        for name, body in SQLITE_TRIGGERS.items():
            conn.execute(text(f"CREATE TRIGGER IF NOT EXISTS {name} {body}"))


def drop_triggers(conn: Connection) -> None:
    """For bulk loads: drop the triggers, load, then ``rebuild`` (which re-creates them)."""
    names = POSTGRES_TRIGGERS if conn.dialect.name == "postgresql" else SQLITE_TRIGGERS
    for name in names:
        on = f" ON {name.split('_')[1]}" if conn.dialect.name == "postgresql" else ""
        conn.execute(text(f"DROP TRIGGER IF EXISTS {name}{on}"))


# What the stored figures should be, from the documents.
_EXPECTED_DAYS = """
    SELECT day, round(sum(outstanding), 2) AS outstanding, round(sum(invoiced), 2) AS invoiced,
           round(sum(received), 2) AS received
      FROM (SELECT due_date AS day, outstanding, 0 AS invoiced, 0 AS received FROM invoice
             WHERE due_date IS NOT NULL AND outstanding <> 0
            UNION ALL
            SELECT issue_date, 0, total, 0 FROM invoice WHERE status = 'issued' AND total <> 0
            UNION ALL
            SELECT received_on, 0, 0, amount FROM payment) AS documents
     GROUP BY day
"""
_EXPECTED_CREDIT = "SELECT round(coalesce(sum(account_credit), 0), 2) FROM customer"


def rebuild(conn: Connection) -> None:
    """Recompute every stored figure from the documents and (re-)create the triggers, in
    the caller's transaction."""
    conn.execute(text("DELETE FROM ledger_day"))
    conn.execute(text(
        "INSERT INTO ledger_day (day, outstanding, invoiced, received) "  # noqa: S608
        f"SELECT * FROM ({_EXPECTED_DAYS}) AS expected "
        "WHERE outstanding <> 0 OR invoiced <> 0 OR received <> 0"
    ))
    conn.execute(text("DELETE FROM ledger_total"))
    conn.execute(text("INSERT INTO ledger_total (id, account_credit) "  # noqa: S608
                      f"SELECT 1, ({_EXPECTED_CREDIT})"))
    create_triggers(conn)


@dataclass(frozen=True)
class FigureDifference:
    """A stored business-wide figure that is not what the documents add up to."""

    figure: str  # "outstanding on 2026-12-01", "account credit"
    stored: Decimal
    expected: Decimal

    def __str__(self) -> str:
        return f"{self.figure}: stored {self.stored}, documents say {self.expected}"


def _money(value) -> Decimal:
    return Decimal(str(value or 0)).quantize(Decimal("0.01"))


def _day(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def differences(session: Session) -> list[FigureDifference]:
    """Every stored business-wide figure that differs from the documents."""
    stored = {_day(row.day): row for row in session.scalars(select(LedgerDay))}
    expected = {_day(row.day): row for row in session.execute(text(_EXPECTED_DAYS))}
    found = []
    for day in sorted(stored.keys() | expected.keys()):
        for name in ("outstanding", "invoiced", "received"):
            have = _money(getattr(stored.get(day), name, 0))
            want = _money(getattr(expected.get(day), name, 0))
            if have != want:
                found.append(FigureDifference(f"{name} on {day.isoformat()}", have, want))
    have = _money(session.execute(select(LedgerTotal.account_credit)).scalar())
    want = _money(session.execute(text(_EXPECTED_CREDIT)).scalar())
    if have != want:
        found.append(FigureDifference("account credit", have, want))
    return found


# --- what the dashboard reads -----------------------------------------------------------

AGING_BUCKETS = (
    # (key, label, first day overdue, last day overdue); None: open-ended
    ("current", "Not yet due", None, 0),
    ("1_30", "1–30 days", 1, 30),
    ("31_60", "31–60 days", 31, 60),
    ("61_90", "61–90 days", 61, 90),
    ("over_90", "Over 90 days", 91, None),
)


@dataclass(frozen=True)
class Month:
    first_day: date
    invoiced: Decimal
    received: Decimal


@dataclass(frozen=True)
class BusinessFigures:
    outstanding: Decimal  # owed on issued invoices
    overdue: Decimal
    account_credit: Decimal
    aging: dict[str, Decimal]  # bucket key -> amount
    months: list[Month]  # oldest first, the current month last

    @property
    def balance(self) -> Decimal:
        """What customers owe once their account credit is set against it."""
        return self.outstanding - self.account_credit


def _bucket(days_overdue: int) -> str:
    for key, _label, first, last in AGING_BUCKETS:
        if (first is None or days_overdue >= first) and (last is None or days_overdue <= last):
            return key
    raise AssertionError(days_overdue)


def _month_starts(today: date, count: int) -> list[date]:
    starts = [today.replace(day=1)]
    while len(starts) < count:
        starts.append((starts[-1] - timedelta(days=1)).replace(day=1))
    return starts[::-1]


def business_figures(session: Session, today: date | None = None,
                     months: int = 12) -> BusinessFigures:
    """The dashboard's money: two indexed reads of ``ledger_day`` (the days anything is
    still owed on; the last ``months`` months) and one of ``ledger_total``."""
    today = today or date.today()
    aging = dict.fromkeys((key for key, *_ in AGING_BUCKETS), ZERO)
    for day, amount in session.execute(
        select(LedgerDay.day, LedgerDay.outstanding).where(LedgerDay.outstanding != 0)
    ):
        aging[_bucket((today - _day(day)).days)] += _money(amount)
    starts = _month_starts(today, months)
    totals = {start: [ZERO, ZERO] for start in starts}
    for day, invoiced, received in session.execute(
        select(LedgerDay.day, LedgerDay.invoiced, LedgerDay.received)
        .where(LedgerDay.day >= starts[0], LedgerDay.day <= today)
    ):
        month = totals[_day(day).replace(day=1)]
        month[0] += _money(invoiced)
        month[1] += _money(received)
    credit = _money(session.execute(select(LedgerTotal.account_credit)).scalar())
    return BusinessFigures(
        outstanding=sum(aging.values(), ZERO),
        overdue=sum((v for k, v in aging.items() if k != "current"), ZERO),
        account_credit=credit,
        aging=aging,
        months=[Month(start, *totals[start]) for start in starts],
    )
