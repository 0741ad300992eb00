"""The home page dashboard at scale, over HTTP: the owner's page (money, charts, largest
overdue, counts), the coordinator's (counts and what is coming up), and the lists its bars
and counts open, on a seeded database.

    .venv/bin/python bench/dashboard.py sqlite:////abs/path/bench/work/bench-1000000.sqlite
    .venv/bin/python bench/dashboard.py postgresql+psycopg://postgres@127.0.0.1/crm_bench

The database must be seeded (``bench/run.py`` makes them) and is brought to the newest
schema; a SQLite path must be absolute. The stored counts are made first (``flask crm
count-figures``, timed: it is the nightly job), a coordinator is created if missing, then
gunicorn (2 workers) serves it; each page is requested 10 times to warm up and
``--requests`` times measured (p50/p95 of wall and server time, SQL statements, bytes).
Results: bench/results/dashboard-<database>-<customers>.json.
"""

import argparse
import html
import json
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import run  # noqa: E402

COORDINATOR = "bench-coordinator@example.com"
COORDINATOR_PASSWORD = "bench-password-coordinator"


def _links(page: bytes) -> dict[str, str]:
    """The aging bars' and the count tiles' links of the owner's dashboard."""
    text = page.decode()
    found = {}
    for label, href in re.findall(r'<a href="([^"]+)" class="bar-link" aria-label="([^:]+):',
                                  text):
        found[f"aging {href}"] = html.unescape(label)
    for key, href in re.findall(r'data-testid="tile-(\w+)">\s*<a class="tile-link" href="([^"]+)"',
                                text):
        found[f"count {key}"] = html.unescape(href)
    return found


def _customers(database_url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM customer")).scalar_one()
    engine.dispose()
    return count


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database_url")
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args(argv)
    run.flask(["db", "upgrade"], args.database_url)
    started = time.perf_counter()
    counted = run.flask(["crm", "count-figures"], args.database_url).strip()
    count_seconds = time.perf_counter() - started
    run.flask(["crm", "create-user", COORDINATOR, "--role", "coordinator", "--password",
               COORDINATOR_PASSWORD], args.database_url)
    customers = _customers(args.database_url)
    with run.Server(args.database_url, workers=2) as server:
        owner = run.Client(server.base)
        owner.login(run.OWNER_EMAIL, run.OWNER_PASSWORD)
        coordinator = run.Client(server.base)
        coordinator.login(COORDINATOR, COORDINATOR_PASSWORD)
        status, _headers, body, _ = owner.get("/admin/")
        if status != 200:
            raise run.BenchError(f"the owner's dashboard answered {status}")
        links = _links(body)
        results = {
            "dashboard_owner": run.measure(owner, ["/admin/"], args.requests),
            "dashboard_coordinator": run.measure(coordinator, ["/admin/"], args.requests),
        }
        for name, url in links.items():
            results[name] = run.measure(owner, [url], max(10, args.requests // 2))
    database = args.database_url.split(":", 1)[0].split("+")[0]
    report = {
        "database": database, "customers": customers,
        "measured": time.strftime("%Y-%m-%d %H:%M:%S"), "environment": run.environment(),
        "count_figures": {"seconds": round(count_seconds, 1), "output": counted},
        "links": links, "pages": results,
    }
    out = run.RESULTS / f"dashboard-{database}-{customers}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    for name, result in results.items():
        print(f"{name[:60]:60} wall p50 {result['wall_ms']['p50']:7.1f} p95 "
              f"{result['wall_ms']['p95']:7.1f}  server p95 {result['server_ms']['p95']}  "
              f"sql {result['sql_statements']['max']}  KB {result['bytes'] / 1024:.1f}  "
              f"errors {result['errors']}")
    print(f"count-figures: {counted} in {count_seconds:.1f} s")
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
