"""Statement HTML and PDF at 10, 60 and 300 lines, and a ZIP of 1,000 statement PDFs
(the budget: "Statement PDF, 60 lines: p95 < 250 ms, linear in lines"). Never run as a
timed test.

    .venv/bin/python bench/statements.py [--database sqlite|postgresql|both] [--rounds 20]
                                         [--zip 1000]

For each database: a fresh database (SQLite file bench/work/statements.sqlite, or the
PostgreSQL database ``crm_bench_statements``; ``--pg-url`` or ``CRM_BENCH_PG_URL`` names the
server), migrated with ``flask_migrate.upgrade``. Three customers whose outstanding statement
has 10, 60 and 300 lines (four in five unpaid invoices with one line each, one in five
unallocated payments), and ``--zip`` customers with six lines each, all inserted in bulk,
then ``crm.ledger.recompute``. Timed (wall clock, ``--rounds`` rounds after one warm-up):
``build_statement`` + ``statement_html`` (the admin tab) and ``build_statement`` +
``statement_pdf``; then one ``statements_zip`` of the ``--zip`` customers into a temporary
file (statements per second, ZIP size, peak resident memory of the process before and after,
from ``resource.getrusage``). Writes bench/results/statements.md, keeping the other
database's figures from an earlier run.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crm import create_app, ledger  # noqa: E402
from crm.actions.statement_run import statements_zip  # noqa: E402
from crm.documents import statement_html, statement_pdf  # noqa: E402
from crm.extensions import db  # noqa: E402
from crm.models import Customer, Invoice, InvoiceLine, Payment  # noqa: E402
from crm.statements import build_statement  # noqa: E402

WORK = ROOT / "bench" / "work"
RESULTS = ROOT / "bench" / "results" / "statements.md"
PG_SERVER = os.environ.get("CRM_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/")
PG_DATABASE = "crm_bench_statements"
SIZES = (10, 60, 300)
ZIP_LINES = 6
BUDGET_MS = 250  # p95 of a 60-line statement PDF
MARK = "<!-- {name} -->"


def database_url(name: str) -> str:
    if name == "sqlite":
        WORK.mkdir(parents=True, exist_ok=True)
        path = WORK / "statements.sqlite"
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


# --- data -------------------------------------------------------------------------------------

def populate(session, sizes: list[int]) -> list[int]:
    """One customer per entry of ``sizes``, whose outstanding statement has that many lines."""
    first = session.scalar(select(func.count()).select_from(Customer))
    session.execute(insert(Customer), [
        {"reference": f"B-{n:06}", "first_name": "Bench", "surname": f"Customer {n}",
         "email": f"bench{n}@example.com", "address_line_1": f"{n} High Street",
         "town": "Leeds", "postcode": "LS1 1AA"} for n in range(first, first + len(sizes))
    ])
    ids = session.scalars(select(Customer.id).order_by(Customer.id)).all()[-len(sizes):]
    today = date.today()
    invoices, payments = [], []
    for customer_id, lines in zip(ids, sizes, strict=True):
        paid = lines // 5
        for i in range(lines - paid):
            amount = Decimal(100 + i % 50) + Decimal("0.25")
            invoices.append({
                "customer_id": customer_id, "number": f"BS{customer_id}-{i}", "status": "issued",
                "issue_date": today - timedelta(days=30 + i % 120),
                "due_date": today - timedelta(days=i % 120), "subtotal": amount,
                "total": amount, "outstanding": amount,
            })
        payments += [{"customer_id": customer_id, "received_on": today - timedelta(days=i),
                      "amount": Decimal("25.00"), "method": "card", "reference": f"P{i}"}
                     for i in range(paid)]
    for start in range(0, len(invoices), 5000):
        session.execute(insert(Invoice), invoices[start:start + 5000])
    if payments:
        session.execute(insert(Payment), payments)
    rows = session.execute(select(Invoice.id, Invoice.total).where(
        Invoice.customer_id.in_(ids))).all()
    for start in range(0, len(rows), 5000):
        session.execute(insert(InvoiceLine), [
            {"invoice_id": row.id, "description": "Sound engineer, one evening", "quantity": 1,
             "unit_price": row.total, "net_amount": row.total}
            for row in rows[start:start + 5000]])
    ledger.recompute(session, ids)
    session.commit()
    return list(ids)


# --- measures ---------------------------------------------------------------------------------

def percentile(values: list[float], share: float) -> float:
    """Nearest rank: with 20 rounds the p95 is the second slowest."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * share // 1))
    return ordered[int(rank) - 1]


def timed(fn, rounds: int) -> tuple[float, float]:
    fn()  # warm-up: templates compiled, fonts loaded
    times = []
    for _round in range(rounds):
        db.session.expire_all()
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), percentile(times, 0.95)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def reset_run_peak() -> bool:
    """Linux: restart the VmHWM high-water mark, so the run's own peak can be read."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def run_peak_mb() -> float | None:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def zip_run(session, ids: list[int]) -> dict:
    from crm.actions import statement_run

    # The screens stop at MAX_STATEMENTS per request; the bench measures the run itself,
    # so it lifts the bound to the size asked for.
    statement_run.MAX_STATEMENTS = max(statement_run.MAX_STATEMENTS, len(ids))
    session.expire_all()
    before = peak_rss_mb()
    resident = run_peak_mb() if reset_run_peak() else None
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        result = statements_zip(session, selection=ids, actor=None, out=out)
        session.commit()
        elapsed = time.perf_counter() - started
        size = out.tell()
    return {"count": result.changed, "seconds": elapsed, "per_second": result.changed / elapsed,
            "mb": size / 2**20, "rss_before": before, "rss_after": peak_rss_mb(),
            "run_start": resident, "run_peak": run_peak_mb() if resident else None}


def run(name: str, rounds: int, zip_customers: int) -> dict:
    from flask_migrate import upgrade

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url(name),
                      "SECRET_KEY": "bench-statements", "RATELIMIT_STORAGE_URI": "memory://"})
    figures: dict = {"database": name, "sizes": {}}
    with app.app_context():
        upgrade()
        session = db.session
        ids = populate(session, list(SIZES))
        # The ZIP first: the process's peak memory is then that of the run, not of the
        # 300-line PDFs before it.
        figures["zip"] = zip_run(session, populate(session, [ZIP_LINES] * zip_customers))
        print(f"  {name} zip: {figures['zip']}", flush=True)
        for customer_id, lines in zip(ids, SIZES, strict=True):
            statement = build_statement(session, customer_id=customer_id)
            assert len(statement.lines) == lines, (len(statement.lines), lines)

            def html(customer_id=customer_id):
                return statement_html(build_statement(session, customer_id=customer_id))

            def pdf(customer_id=customer_id):
                return statement_pdf(build_statement(session, customer_id=customer_id))

            figures["sizes"][lines] = {"html": timed(html, rounds), "pdf": timed(pdf, rounds),
                                       "pdf_kb": len(pdf()) / 1024}
            print(f"  {name} {lines} lines: {figures['sizes'][lines]}", flush=True)
        db.session.remove()
        db.engine.dispose()
    return figures


# --- results ------------------------------------------------------------------------------------

def section(figures: dict, rounds: int) -> str:
    name = figures["database"]
    load = "/".join(f"{x:.2f}" for x in os.getloadavg())
    ms = "{:.0f} / {:.0f}".format
    rows, previous = [], None
    for lines, sizes in figures["sizes"].items():
        # Linear scaling shows as the same cost per added line between sizes.
        added = "" if previous is None else "{:.2f}".format(
            (sizes["pdf"][0] - previous[1]) / (lines - previous[0]))
        rows.append(f"| {lines} | {ms(*sizes['html'])} | {ms(*sizes['pdf'])} | "
                    f"{sizes['pdf'][0] / lines:.2f} | {added} | {sizes['pdf_kb']:.0f} KB |")
        previous = (lines, sizes["pdf"][0])
    z = figures["zip"]
    sixty = figures["sizes"].get(60, {}).get("pdf", (0, 0))[1]
    return "\n".join([
        MARK.format(name=name),
        f"## {name}",
        "",
        f"{date.today():%Y-%m-%d}, load average {load}, {rounds} rounds after a warm-up.",
        "",
        "| lines | build + HTML p50 / p95 (ms) | build + PDF p50 / p95 (ms) | PDF ms per line "
        "(p50) | PDF ms per added line | PDF size |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        f"Budget: 60-line PDF p95 {sixty:.0f} ms against < {BUDGET_MS} ms "
        f"({'within' if sixty < BUDGET_MS else 'OVER'}).",
        "",
        f"ZIP of {z['count']:,} statements ({ZIP_LINES} lines each): {z['seconds']:.1f} s, "
        f"{z['per_second']:.1f} statements/s, {z['mb']:.1f} MB. Memory: the process's peak "
        f"RSS (ru_maxrss) was {z['rss_before']:.0f} MB before the run"
        + (f"; with the high-water mark reset, {z['run_start']:.0f} MB resident at the start "
           f"of the run and a peak of {z['run_peak']:.0f} MB during it." if z["run_peak"]
           else f" and {z['rss_after']:.0f} MB after it."),
        MARK.format(name=f"/{name}"),
    ])


def write(sections: dict[str, str]) -> None:
    kept = dict(sections)
    if RESULTS.exists():
        existing = RESULTS.read_text()
        for name in ("sqlite", "postgresql"):
            start, end = MARK.format(name=name), MARK.format(name=f"/{name}")
            if name not in kept and start in existing and end in existing:
                kept[name] = existing[existing.index(start):existing.index(end) + len(end)]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join([
        "# Statements: HTML, PDF and the ZIP run",
        "",
        "`bench/statements.py`: the outstanding statement of one customer with 10, 60 and 300",
        "lines (four in five unpaid invoices, one in five unallocated payments), built by",
        "`crm.statements.build_statement` and rendered by `crm.documents` (in-process, no HTTP);",
        "then `crm.actions.statement_run.statements_zip` over `--zip` customers into a temporary",
        "file. Peak RSS is the process's high-water mark; on Linux it is reset just before the",
        "ZIP run (`/proc/self/clear_refs`), so the peak during the run is the run's own.",
        f"Machine: {platform.platform()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}.",
        "",
        *(kept[name] + "\n" for name in ("sqlite", "postgresql") if name in kept),
    ]))


def main() -> None:
    global PG_SERVER
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"),
                        default="sqlite")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--zip", type=int, default=1000, dest="zip_customers")
    parser.add_argument("--pg-url", default=PG_SERVER)
    args = parser.parse_args()
    PG_SERVER = args.pg_url
    names = ("sqlite", "postgresql") if args.database == "both" else (args.database,)
    sections = {}
    for name in names:
        sections[name] = section(run(name, args.rounds, args.zip_customers), args.rounds)
    write(sections)
    print(f"written {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
