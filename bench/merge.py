"""Merge and undo of two customers with thousands of related rows (the budget: "one
transaction, about a second"). Never run as a timed test.

    .venv/bin/python bench/merge.py [--database sqlite|postgresql|both] [--rows 5000] [--repeat 5]

For each database: a fresh database (SQLite file bench/work/merge.sqlite, or the PostgreSQL
database ``crm_bench_merge``; ``--pg-url`` or ``CRM_BENCH_PG_URL`` names the server), migrated
with ``flask_migrate.upgrade``; two customers sharing ``--rows`` related rows (contacts,
branches, work addresses, bookings, leads, notes, tags, invoices with lines, payments, credit
notes and allocations), inserted in bulk; then ``--repeat`` rounds of ``merge_customers`` +
commit and ``undo_merge`` + commit, each timed (wall clock) with its SQL statements counted.
Writes bench/results/merge.md, keeping the other database's line from an earlier run.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import create_engine, event, func, insert, select, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crm import create_app, ledger  # noqa: E402
from crm.actions.merge import merge_customers  # noqa: E402
from crm.actions.merge_undo import undo_merge  # noqa: E402
from crm.extensions import db  # noqa: E402
from crm.models import (  # noqa: E402
    Allocation,
    Base,
    Booking,
    Branch,
    Contact,
    CreditNote,
    CreditNoteLine,
    Customer,
    Invoice,
    InvoiceLine,
    Lead,
    Note,
    Payment,
    Tag,
    WorkAddress,
    customer_tag,
)

WORK = ROOT / "bench" / "work"
RESULTS = ROOT / "bench" / "results" / "merge.md"
PG_SERVER = os.environ.get("CRM_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/")
PG_DATABASE = "crm_bench_merge"
# Share of the related rows per kind; an invoice brings a line, a payment and an allocation
# with it, a credit note its line.
MIX = {"contacts": 0.09, "branches": 0.05, "work_addresses": 0.09, "bookings": 0.17,
       "leads": 0.05, "notes": 0.17, "tags": 0.004, "invoices": 0.08, "credit_notes": 0.025}
HEADER = ("| database | date | load avg (1/5/15 min) | related rows | rows moved | merge p50 / p95 "
          "| undo p50 / p95 | statements merge / undo |")


def database_url(name: str) -> str:
    if name == "sqlite":
        WORK.mkdir(parents=True, exist_ok=True)
        path = WORK / "merge.sqlite"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"
    server = make_url(PG_SERVER)
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{PG_DATABASE}"'))
    admin.dispose()
    return server.set(database=PG_DATABASE).render_as_string(hide_password=False)


def populate(session, rows: int) -> tuple[int, int]:
    """Two customers and ``rows`` related rows split evenly between them, in bulk."""
    survivor = Customer(first_name="Sam", surname="Keeper", email="keeper@example.com",
                        address_line_1="1 High Street", postcode="LS1 1AA")
    dup = Customer(first_name="Samuel", surname="Keeper", email="dup@example.com",
                   address_line_1="1 High St", postcode="LS1 1AA")
    session.add_all([survivor, dup])
    session.flush()
    owners = (survivor.id, dup.id)
    count = {kind: max(2, round(rows * share)) for kind, share in MIX.items()}

    def each(kind):
        return [(n, owners[n % 2]) for n in range(count[kind])]

    def bulk(model, values):
        if values:
            session.execute(insert(model), values)

    today = date.today()
    bulk(Contact, [{"customer_id": c, "surname": f"Contact {n}", "is_primary": n < 2}
                   for n, c in each("contacts")])
    bulk(Branch, [{"customer_id": c, "name": f"Branch {n}", "address_line_1": "1 Road",
                   "postcode": "M1 1AA"} for n, c in each("branches")])
    bulk(WorkAddress, [{"customer_id": c, "landlord_id": owners[(n + 1) % 2],
                        "address_line_1": f"{n} Lane", "postcode": "B1 1AA"}
                       for n, c in each("work_addresses")])
    bulk(Booking, [{"customer_id": c, "reference": f"BM-{n}", "title": "Gig",
                    "starts_at": datetime(2026, 6, 1) + timedelta(days=n)}
                   for n, c in each("bookings")])
    bulk(Lead, [{"customer_id": c, "surname": "Enquirer"} for _n, c in each("leads")])
    bulk(Note, [{"customer_id": c, "body": "Called."} for _n, c in each("notes")])
    bulk(Tag, [{"name": f"bench-tag-{n}"} for n in range(count["tags"])])
    tag_ids = session.scalars(text("SELECT id FROM tag ORDER BY id")).all()
    bulk(customer_tag, [{"customer_id": c, "tag_id": t} for c in owners
                        for t in tag_ids[: len(tag_ids) * 3 // 4]])

    amount = Decimal("120.00")
    bulk(Invoice, [{"customer_id": c, "number": f"IM-{n}", "status": "issued",
                    "issue_date": today - timedelta(days=90), "due_date": today - timedelta(n % 60),
                    "subtotal": amount, "total": amount} for n, c in each("invoices")])
    invoices = session.execute(text("SELECT id, customer_id FROM invoice ORDER BY id")).all()
    bulk(InvoiceLine, [{"invoice_id": i.id, "description": "Work", "quantity": 1,
                        "unit_price": amount, "net_amount": amount} for i in invoices])
    bulk(Payment, [{"customer_id": i.customer_id, "received_on": today, "amount": Decimal("50"),
                    "method": "card"} for i in invoices])
    payments = session.execute(text("SELECT id FROM payment ORDER BY id")).scalars().all()
    bulk(Allocation, [{"invoice_id": i.id, "payment_id": p, "amount": Decimal("50")}
                      for i, p in zip(invoices, payments, strict=True)])
    bulk(CreditNote, [{"customer_id": c, "number": f"CM-{n}", "issue_date": today,
                       "subtotal": Decimal("10"), "total": Decimal("10")}
                      for n, c in each("credit_notes")])
    notes = session.execute(text("SELECT id FROM credit_note ORDER BY id")).scalars().all()
    bulk(CreditNoteLine, [{"credit_note_id": n, "description": "Credit", "quantity": 1,
                           "unit_price": Decimal("10"), "net_amount": Decimal("10")}
                          for n in notes])
    ledger.recompute(session, owners)
    session.commit()
    return owners


def related_rows(session, owners) -> int:
    """Every row attached to the two customers, documents' lines and allocations included."""
    tables = Base.metadata.tables
    total = sum(
        session.scalar(select(func.count()).select_from(tables[table])
                       .where(tables[table].c[column].in_(owners)))
        for table, column in (
            ("contact", "customer_id"), ("branch", "customer_id"),
            ("work_address", "customer_id"), ("booking", "customer_id"),
            ("lead", "customer_id"), ("note", "customer_id"), ("customer_tag", "customer_id"),
            ("invoice", "customer_id"), ("payment", "customer_id"),
            ("credit_note", "customer_id"),
        )
    )
    # Lines and allocations go with their documents (no customer key of their own); the
    # database holds nothing else.
    for table in ("invoice_line", "credit_note_line", "allocation"):
        total += session.scalar(select(func.count()).select_from(tables[table]))
    return total


class StatementCounter:
    def __init__(self, engine) -> None:
        self.count = 0
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args) -> None:
        self.count += 1

    def take(self) -> int:
        count, self.count = self.count, 0
        return count


def percentile(values: list[float], share: float) -> float:
    """Nearest rank: with 5 rounds the p95 is the slowest."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * share // 1))
    return ordered[int(rank) - 1]


def run(name: str, rows: int, repeat: int) -> dict:
    from flask_migrate import upgrade

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url(name), "SECRET_KEY": "bench-merge",
                      "RATELIMIT_STORAGE_URI": "memory://"})
    with app.app_context():
        upgrade()
        session = db.session
        survivor, dup = populate(session, rows)
        related = related_rows(session, (survivor, dup))
        balance = session.get(Customer, survivor).balance + session.get(Customer, dup).balance
        counter = StatementCounter(db.engine)
        merges, undos, merge_statements, undo_statements, moved = [], [], [], [], 0
        for _round in range(repeat):
            session.expire_all()
            counter.take()
            started = time.perf_counter()
            result = merge_customers(session, survivor_id=survivor, duplicate_ids=[dup],
                                     actor=None)
            session.commit()
            merges.append((time.perf_counter() - started) * 1000)
            merge_statements.append(counter.take())
            moved = sum(result.moved.values())
            assert session.get(Customer, survivor).balance == balance
            session.expire_all()
            counter.take()
            started = time.perf_counter()
            undo_merge(session, merge_id=result.merge_id, actor=None)
            session.commit()
            undos.append((time.perf_counter() - started) * 1000)
            undo_statements.append(counter.take())
        db.session.remove()
        db.engine.dispose()
    return {
        "database": name, "related": related, "moved": moved,
        "merge": (statistics.median(merges), percentile(merges, 0.95)),
        "undo": (statistics.median(undos), percentile(undos, 0.95)),
        "statements": (max(merge_statements), max(undo_statements)),
    }


def line(figures: dict) -> str:
    load = "/".join(f"{x:.2f}" for x in os.getloadavg())
    ms = "{:.0f} / {:.0f} ms".format
    return (f"| {figures['database']} | {date.today():%Y-%m-%d} | {load} | "
            f"{figures['related']:,} | {figures['moved']:,} | {ms(*figures['merge'])} | "
            f"{ms(*figures['undo'])} | {figures['statements'][0]} / {figures['statements'][1]} |")


def write(lines: dict[str, str], rows: int, repeat: int) -> None:
    kept = {}
    if RESULTS.exists():
        for existing in RESULTS.read_text().splitlines():
            for name in ("sqlite", "postgresql"):
                if existing.startswith(f"| {name} |"):
                    kept[name] = existing
    kept.update(lines)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join([
        "# Merge and undo at scale",
        "",
        "`bench/merge.py`: two customers sharing the related rows (contacts, branches, work",
        "addresses, bookings, leads, notes, tags, invoices with lines, payments, allocations,",
        "credit notes); the duplicate's half moves. Times are wall clock of the action plus its",
        "commit, over the rounds; statements are SQL statements sent, action and commit.",
        f"Machine: {platform.platform()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}. Last run: --rows {rows} --repeat {repeat}.",
        "Budget: one transaction, about a second.",
        "",
        HEADER,
        "|---|---|---|---|---|---|---|---|",
        *(kept[name] for name in ("sqlite", "postgresql") if name in kept),
        "",
    ]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    names = ("sqlite", "postgresql") if args.database == "both" else (args.database,)
    lines = {}
    print(HEADER)
    for name in names:
        lines[name] = line(run(name, args.rows, args.repeat))
        print(lines[name], flush=True)
    write(lines, args.rows, args.repeat)
    print(f"written {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
