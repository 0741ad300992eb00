"""The customer portal at scale, over HTTP: the home page (the statement), an invoice page and
the statement PDF, for a customer with 200 invoices in a seeded database, and how long a
sign-in takes with the password hashing in use.

    .venv/bin/python bench/portal.py sqlite:////abs/path/bench/work/bench-1000000.sqlite
    .venv/bin/python bench/portal.py postgresql+psycopg://postgres@127.0.0.1/crm_bench

The database must be seeded (``bench/run.py`` makes them) and is brought to the newest
schema; a SQLite path must be absolute. The first run gives one customer
in the middle of the table 200 issued invoices and 60 payments (through the ORM, so the
ledger is kept) and a portal account, and later runs reuse them. Then gunicorn (2 workers)
serves it, a client signs in to the portal, and each page is requested 10 times to warm up
and ``--requests`` times measured (p50/p95 of wall and server time, SQL statements).
Results: bench/results/portal-<database>-<customers>.json.
"""

import argparse
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import run  # noqa: E402

EMAIL = "bench-portal@example.com"
PASSWORD = "bench-portal-tangerine-harbour"
INVOICES = 200


def prepare(database_url: str) -> dict:
    """The bench customer (made once), five of its invoices and the number of customers."""
    from argon2 import PasswordHasher
    from sqlalchemy import func, select

    from crm import create_app
    from crm.extensions import db
    from crm.models import Customer, Invoice, InvoiceLine, Payment, PortalAccount
    from crm.models.sequence import next_number

    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url})
    with app.app_context():
        s = db.session
        total = s.scalar(select(func.max(Customer.id)))
        account = s.scalar(select(PortalAccount).where(PortalAccount.email == EMAIL))
        if account is None:
            customer = s.get(Customer, total // 2)
            today = date.today()
            for n in range(INVOICES):
                issued = today - timedelta(days=3 * n)
                invoice = Invoice(customer_id=customer.id, status="issued",
                                  number=next_number(s, "invoice"), issue_date=issued,
                                  due_date=issued + timedelta(days=30))
                invoice.lines.append(InvoiceLine(description=f"Visit {n}", quantity=Decimal(1),
                                                 unit_price=Decimal(50 + n % 40),
                                                 tax_rate=Decimal(20)))
                s.add(invoice)
            for n in range(60):
                s.add(Payment(customer_id=customer.id, received_on=today - timedelta(days=9 * n),
                              amount=Decimal("40.00"), method="card"))
            s.add(PortalAccount(customer_id=customer.id, email=EMAIL,
                                password_hash=PasswordHasher().hash(PASSWORD)))
            s.commit()
            account = s.scalar(select(PortalAccount).where(PortalAccount.email == EMAIL))
        invoices = s.scalars(select(Invoice.id).where(Invoice.customer_id == account.customer_id,
                                                      Invoice.status == "issued")
                             .order_by(Invoice.id).limit(5)).all()
        return {"customers": total, "invoices": list(invoices)}


def portal_sign_in(client: run.Client) -> float:
    """Sign in through the portal's form; the POST's wall time in ms."""
    status, _, body, _ = client.get("/portal/login")
    parser = run._Inputs()
    parser.feed(body.decode("utf-8", "replace"))
    data = urllib.parse.urlencode({"csrf_token": parser.values["csrf_token"], "email": EMAIL,
                                   "password": PASSWORD}).encode()
    request = urllib.request.Request(client.base + "/portal/login", data=data, method="POST")
    started = time.perf_counter()
    with client.opener.open(request, timeout=60) as response:
        final = response.geturl()
    elapsed = (time.perf_counter() - started) * 1000
    if not final.endswith("/portal/"):
        raise run.BenchError(f"portal sign-in failed: {final}")
    return elapsed


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database_url")
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args(argv)
    run.flask(["db", "upgrade"], args.database_url)
    found = prepare(args.database_url)
    from argon2 import PasswordHasher

    hasher = PasswordHasher()
    with run.Server(args.database_url, workers=2) as server:
        client = run.Client(server.base)
        sign_ins = [portal_sign_in(run.Client(server.base)) for _ in range(10)]
        portal_sign_in(client)
        pages = {
            "portal_home": ["/portal/"],
            "portal_invoice": [f"/portal/invoices/{key}" for key in found["invoices"]],
            "portal_invoices_list": ["/portal/invoices"],
            "statement_pdf": ["/portal/statement.pdf"],
        }
        results = {name: run.measure(client, urls, args.requests if "pdf" not in name
                                     else max(10, args.requests // 2))
                   for name, urls in pages.items()}
    database = args.database_url.split(":", 1)[0].split("+")[0]
    report = {
        "database": database, "customers": found["customers"], "invoices": INVOICES,
        "measured": time.strftime("%Y-%m-%d %H:%M:%S"), "environment": run.environment(),
        "sign_in_ms": {"p50": run.percentile(sign_ins, 50), "p95": run.percentile(sign_ins, 95)},
        "argon2": {"time_cost": hasher.time_cost, "memory_cost_kib": hasher.memory_cost,
                   "parallelism": hasher.parallelism},
        "pages": results,
    }
    out = run.RESULTS / f"portal-{database}-{found['customers']}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    for name, result in results.items():
        print(f"{name:22} wall p50 {result['wall_ms']['p50']:7.1f} p95 "
              f"{result['wall_ms']['p95']:7.1f}  server p95 {result['server_ms']['p95']}  "
              f"sql {result['sql_statements']['max']}  errors {result['errors']}")
    print(f"sign-in               p50 {report['sign_in_ms']['p50']} p95 "
          f"{report['sign_in_ms']['p95']} ms (Argon2id {report['argon2']})")
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
