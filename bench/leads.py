"""Leads and bookings at scale: attribution of new bookings by e-mail against every customer,
and the Leads board and the related-bookings review over HTTP, on a seeded database.

    .venv/bin/python bench/leads.py sqlite:////abs/path/bench/work/bench-1000000.sqlite
    .venv/bin/python bench/leads.py postgresql+psycopg://postgres@127.0.0.1/crm_bench

Attribution: ``--bookings`` (10,000) bookings are made in memory with contact e-mails taken
from the customers (evenly spread over the ids): seven in ten with the customer's own name
(``exact``), one in ten under another name (``related``), two in ten with an address nobody
has (a new client). Each is attributed with ``crm.actions.attribution.attribute`` in one
transaction that is rolled back at the end, so the database is left as it was; the run
counts the SQL statements of every attribution (the e-mail index keeps them constant: the
same few for the first booking and the ten-thousandth). Then gunicorn (2 workers) serves the
Leads board, the lead list and the related-bookings review, each measured as in
bench/run.py. Results: bench/results/leads-<database>-<customers>.json.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import run  # noqa: E402
from dashboard import COORDINATOR, COORDINATOR_PASSWORD  # noqa: E402


def attribution(database_url: str, bookings: int) -> dict:
    from datetime import datetime

    from sqlalchemy import event, func, select

    from crm import create_app
    from crm.actions.attribution import attribute
    from crm.extensions import db
    from crm.models import Booking, Customer, Lead

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url})
    with app.app_context():
        session = db.session
        customers = session.scalar(select(func.count()).select_from(Customer))
        leads = session.scalar(select(func.count()).select_from(Lead))
        top = session.scalar(select(func.max(Customer.id)))
        step = max(1, top // bookings)
        people = session.execute(
            select(Customer.first_name, Customer.surname, Customer.email)
            .where(Customer.email.is_not(None), Customer.merged_into_id.is_(None),
                   Customer.redacted_at.is_(None), Customer.email_blocked.is_(False),
                   Customer.id % step == 0)
            .limit(bookings)).all()
        counts: list[int] = []
        outcomes: dict[str, int] = {}
        by_outcome: dict[str, list[int]] = {}

        def count(conn, cursor, statement, *args):
            counts[-1] += 1

        engine = db.engine
        started = time.perf_counter()
        event.listen(engine, "before_cursor_execute", count)
        try:
            for n in range(bookings):
                first, surname, email = people[n % len(people)]
                kind = n % 10
                if kind == 7:
                    first, surname = "Someone", "Else"
                elif kind >= 8:
                    first, surname, email = "New", "Person", f"bench-new-{n}@example.com"
                booking = Booking(reference=f"BENCH-{n:06d}", title="Bench booking",
                                  status="confirmed", starts_at=datetime(2027, 1, 1, 19),
                                  contact_email=email, contact_first_name=first,
                                  contact_surname=surname)
                session.add(booking)
                counts.append(0)
                result = attribute(session, booking, actor=None)
                outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
                by_outcome.setdefault(result.outcome, []).append(counts[-1])
        finally:
            event.remove(engine, "before_cursor_execute", count)
            seconds = time.perf_counter() - started
            session.rollback()
    return {
        "customers": customers, "leads": leads, "bookings": bookings,
        "seconds": round(seconds, 2), "per_second": round(bookings / seconds, 1),
        "outcomes": outcomes,
        "statements_per_booking": {"min": min(counts), "max": max(counts),
                                   "median": statistics.median(counts),
                                   "first": counts[0], "last": counts[-1]},
        # Constant per outcome: a new client costs its INSERT and the customer number.
        "statements_by_outcome": {k: {"min": min(v), "max": max(v), "first": v[0],
                                      "last": v[-1]} for k, v in by_outcome.items()},
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database_url")
    parser.add_argument("--bookings", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args(argv)
    run.flask(["db", "upgrade"], args.database_url)
    run.flask(["crm", "create-user", COORDINATOR, "--role", "coordinator", "--password",
               COORDINATOR_PASSWORD], args.database_url)
    attributed = attribution(args.database_url, args.bookings)
    print(f"attribution: {attributed['bookings']:,} bookings in {attributed['seconds']} s "
          f"({attributed['per_second']}/s), statements per booking "
          f"{attributed['statements_by_outcome']}, outcomes {attributed['outcomes']}")
    pages = {
        "leads_board": "/admin/coordinator/leads_board/",
        "leads_board_mine": "/admin/coordinator/leads_board/?mine=1",
        "lead_list": "/admin/coordinator/lead/",
        "related_bookings": "/admin/coordinator/related_bookings/",
    }
    with run.Server(args.database_url, workers=2) as server:
        client = run.Client(server.base)
        client.login(COORDINATOR, COORDINATOR_PASSWORD)
        results = {name: run.measure(client, [url], args.requests)
                   for name, url in pages.items()}
    database = args.database_url.split(":", 1)[0].split("+")[0]
    report = {"database": database, "measured": time.strftime("%Y-%m-%d %H:%M:%S"),
              "environment": run.environment(), "attribution": attributed, "pages": results}
    out = run.RESULTS / f"leads-{database}-{attributed['customers']}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    for name, result in results.items():
        print(f"{name:20} wall p50 {result['wall_ms']['p50']:7.1f} p95 "
              f"{result['wall_ms']['p95']:7.1f}  server p95 {result['server_ms']['p95']}  "
              f"sql {result['sql_statements']['max']}  KB {result['bytes'] / 1024:.1f}  "
              f"errors {result['errors']}")
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
