"""Bulk dormant / reactivate / deletion plan at scale (the budget: "100,000 rows take seconds").

    .venv/bin/python bench/bulk_dormant.py --database sqlite|postgresql [--size 100000]

Makes a fresh database (SQLite file ``bench/work/bulk_dormant-<size>.sqlite``, or the
PostgreSQL database ``crm_bench_dormant``, dropped and re-created; ``--pg-url`` or
``CRM_BENCH_PG_URL`` to change the server), migrates it and seeds it with
``demo.seeding.seed_database(engine, customers=size, seed=1)``. Then, ``--rounds`` times:

- ``set_dormant`` over "all matching a filter": a SELECT of every active, live customer
  (about 85% of the seed), then commit — the customers, their work addresses and one audit
  row per customer, each in one statement;
- ``reactivate`` of exactly those (the customers whose audit rows that run wrote), then commit;
- ``deletion_plan`` over every live customer (read only: what would be deleted or archived).

Reports wall time per call (p50, p95 — of a few rounds, p95 is close to the slowest), the
SQL statements each call sent, and the load average, as a row per database and size in
``bench/results/bulk_dormant.md`` (other rows are kept).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, event, func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "bulk_dormant.md"
WORK = ROOT / "bench" / "work"
PG_DATABASE = "crm_bench_dormant"
HEADER = (
    "| database | customers | selected | work addresses cascaded | set_dormant p50 / p95 "
    "| reactivate p50 / p95 | deletion_plan p50 / p95 | statements (dormant / reactivate / "
    "plan) | load average | when |"
)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def fresh_database(database: str, size: int, pg_url: str) -> str:
    if database == "sqlite":
        WORK.mkdir(parents=True, exist_ok=True)
        path = WORK / f"bulk_dormant-{size}.sqlite"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"
    url = make_url(pg_url)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{PG_DATABASE}"'))
    admin.dispose()
    return url.set(database=PG_DATABASE).render_as_string(hide_password=False)


class Counter:
    """SQL statements sent while a call runs."""

    def __init__(self, engine) -> None:
        self.engine, self.count = engine, 0

    def _seen(self, *args) -> None:
        self.count += 1

    def __enter__(self) -> Counter:
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *exc) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)


def timed(engine, call) -> tuple[float, int, object]:
    with Counter(engine) as counter:
        started = time.perf_counter()
        result = call()
        elapsed = time.perf_counter() - started
    return elapsed, counter.count, result


def measure(rounds: int) -> dict:
    from crm.actions.archive import deletion_plan
    from crm.actions.dormant import reactivate, set_dormant
    from crm.extensions import db
    from crm.models import AuditEvent, Customer, WorkAddress

    session, engine = db.session, db.engine
    active = select(Customer.id).where(Customer.status == "active",
                                       Customer.merged_into_id.is_(None))
    live = select(Customer.id).where(Customer.merged_into_id.is_(None))
    times: dict[str, list[float]] = {"set_dormant": [], "reactivate": [], "deletion_plan": []}
    counts: dict[str, int] = {}
    figures: dict = {}
    for n in range(1, rounds + 1):
        _vacuum(engine)
        before = session.scalar(select(func.coalesce(func.max(AuditEvent.id), 0)))

        def dormant():
            result = set_dormant(session, selection=active, actor=None)
            session.commit()
            return result

        elapsed, statements, result = timed(engine, dormant)
        cascaded = session.scalar(select(func.count()).where(
            WorkAddress.dormant_with_customer.is_(True)))
        times["set_dormant"].append(elapsed)
        counts["set_dormant"] = statements
        figures.update(selected=result.changed, cascaded=cascaded)
        log(f"round {n}: set_dormant {result.changed:,} customers, {cascaded:,} work "
            f"addresses: {elapsed:.2f} s, {statements} statements")

        those = select(AuditEvent.subject_id).where(
            AuditEvent.id > before, AuditEvent.verb == "set_dormant",
            AuditEvent.subject_type == "Customer", AuditEvent.subject_id.is_not(None))

        def back(those=those):
            result = reactivate(session, selection=those, actor=None)
            session.commit()
            return result

        elapsed, statements, result = timed(engine, back)
        times["reactivate"].append(elapsed)
        counts["reactivate"] = statements
        log(f"round {n}: reactivate {result.changed:,}: {elapsed:.2f} s, {statements} statements")

        elapsed, statements, plan = timed(engine, lambda: deletion_plan(session, selection=live))
        session.rollback()
        times["deletion_plan"].append(elapsed)
        counts["deletion_plan"] = statements
        log(f"round {n}: deletion_plan delete {plan.delete:,} archive {plan.archive:,} "
            f"already archived {plan.already_archived:,}: {elapsed:.2f} s, {statements} "
            "statements")
    return {"times": times, "counts": counts, **figures}


def _vacuum(engine) -> None:
    """PostgreSQL: each round leaves two dead versions of 85,000 customer rows; vacuum them
    (untimed) so that every round starts from the table autovacuum would leave."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in ("customer", "work_address", "note", "audit_event"):
                conn.execute(text(f"VACUUM ANALYZE {table}"))


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def row(database: str, size: int, figures: dict, load: tuple) -> str:
    def p(name: str) -> str:
        values = figures["times"][name]
        return f"{percentile(values, 50):.2f} s / {percentile(values, 95):.2f} s"

    counts = figures["counts"]
    label = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}[database]
    return (
        f"| {label} | {size:,} | {figures['selected']:,} | {figures['cascaded']:,} "
        f"| {p('set_dormant')} | {p('reactivate')} | {p('deletion_plan')} "
        f"| {counts['set_dormant']} / {counts['reactivate']} / {counts['deletion_plan']} "
        f"| {' / '.join(f'{x:.1f}' for x in load)} | {datetime.now():%Y-%m-%d %H:%M} |"
    )


def write(database: str, size: int, line: str) -> None:
    """Replace this database and size's row in the results table, keeping the others."""
    label = line.split("|")[1:3]
    rows = []
    if RESULTS.exists():
        rows = [r for r in RESULTS.read_text().splitlines()
                if r.startswith("| ") and not r.startswith("| database")
                and r.split("|")[1:3] != label]
    rows.append(line)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join([
        "# Bulk set dormant / reactivate / deletion plan",
        "",
        "Measured by `bench/bulk_dormant.py` on a fresh database seeded with",
        "`seed_database(engine, customers=N, seed=1)`. *selected*: every active, live customer",
        "(\"all matching a filter\"); each set_dormant also writes one audit row per customer",
        "(`INSERT ... SELECT`) and cascades to their active work addresses; reactivate reverses",
        "exactly those; deletion_plan sorts every live customer into delete / archive / already",
        "archived (one EXISTS per related table). Times include the commit; p95 of three",
        "rounds is close to the slowest; on PostgreSQL each round starts after an (untimed)",
        "VACUUM ANALYZE. *load average*: 1 / 5 / 15 minutes after the run, on a 2-core",
        "machine shared with other work.",
        "",
        "Where PostgreSQL's time goes: the customer UPDATE. `status` is indexed, so no update",
        "is HOT and every changed row gets a new entry in each of the customer table's",
        "indexes, the trigram GIN index of the search above all (EXPLAIN ANALYZE of that",
        "UPDATE over 85,530 rows, inside a rolled-back transaction: 20.4 s with the GIN index,",
        "8.5 s without it, load about 5).",
        "",
        HEADER,
        "|---|---:|---:|---:|---:|---:|---:|---|---|---|",
        *sorted(rows),
        "",
    ]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql"), required=True)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pg-url", default=os.environ.get(
        "CRM_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args(argv)

    from flask_migrate import upgrade

    from crm import create_app
    from crm.extensions import db
    from demo.seeding import seed_database

    url = fresh_database(args.database, args.size, args.pg_url)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench-bulk-dormant"})
    with app.app_context():
        log(f"{args.database}: migrating")
        upgrade()
        log(f"{args.database}: seeding {args.size:,} customers")
        started = time.perf_counter()
        seed_database(db.engine, customers=args.size, seed=1)
        log(f"seeded in {time.perf_counter() - started:.1f} s")
        figures = measure(args.rounds)
        db.session.remove()
        db.engine.dispose()
    line = row(args.database, args.size, figures, os.getloadavg())
    write(args.database, args.size, line)
    print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
