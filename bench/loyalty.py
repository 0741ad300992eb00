"""The loyalty score at scale: the customer list sorted by loyalty over HTTP (best first and
worst first, page 1 and page 10,000) and the nightly refresh of every score, on a seeded
database.

    .venv/bin/python bench/loyalty.py sqlite:////abs/path/bench/work/bench-1000000.sqlite
    .venv/bin/python bench/loyalty.py postgresql+psycopg://postgres@127.0.0.1/crm_bench

The database must be seeded (``bench/run.py`` makes them) and is brought to the newest
schema; a SQLite path must be absolute. First ``flask crm refresh-loyalty`` runs twice,
timed: the first brings a database seeded before the scores existed up to date (every
scored customer changes), the second is what a night costs (only what the calendar moved);
then ``flask crm check-loyalty`` (timed) must find nothing. Then gunicorn (2 workers) serves
it; each page is requested 10 times to warm up and ``--requests`` times measured (p50/p95 of
wall and server time, SQL statements, bytes). Results:
bench/results/loyalty-<database>-<customers>.json.
"""

import argparse
import json
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import run  # noqa: E402
from dashboard import _customers  # noqa: E402


def _sort_index(database_url: str) -> int:
    """The position of the Loyalty column in the owner's customer list (its ?sort= value),
    read from the view in a child interpreter (keeps the app's import side effects out)."""
    code = (
        "import os, sys; sys.path.insert(0, '.')\n"
        f"os.environ['DATABASE_URL'] = {database_url!r}\n"
        "from crm import create_app\n"
        "app = create_app()\n"
        "admin = app.extensions['admin']\n"
        "admin = admin[0] if isinstance(admin, (list, tuple)) else admin\n"
        f"view = next(v for v in admin._views if v.endpoint == {run.VIEW_ENDPOINT!r})\n"
        "print([name for name, _ in view._list_columns].index('loyalty_score'))\n"
    )
    result = subprocess.run([str(run.VENV_BIN / "python"), "-c", code], cwd=run.ROOT,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise run.BenchError(f"No Loyalty column on the owner's customer list:\n"
                             f"{result.stderr[-2000:]}")
    return int(result.stdout.strip().splitlines()[-1])


def _timed(args: list[str], database_url: str) -> dict:
    started = time.perf_counter()
    output = run.flask(args, database_url).strip()
    return {"seconds": round(time.perf_counter() - started, 1), "output": output}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database_url")
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args(argv)
    run.flask(["db", "upgrade"], args.database_url)
    refresh = [_timed(["crm", "refresh-loyalty"], args.database_url) for _ in range(2)]
    check = _timed(["crm", "check-loyalty"], args.database_url)
    run.flask(["crm", "create-user", run.OWNER_EMAIL, "--role", "owner", "--password",
               run.OWNER_PASSWORD], args.database_url)
    customers = _customers(args.database_url)
    index = _sort_index(args.database_url)
    q = urllib.parse.urlencode
    pages = {
        "list_default": f"{run.LIST_URL}",
        "loyalty_desc_page_1": f"{run.LIST_URL}?{q({'sort': index, 'desc': 1})}",
        "loyalty_asc_page_1": f"{run.LIST_URL}?{q({'sort': index})}",
        "loyalty_desc_page_10000": f"{run.LIST_URL}?{q({'sort': index, 'desc': 1, 'page': 10000})}",
        "loyalty_asc_page_10000": f"{run.LIST_URL}?{q({'sort': index, 'page': 10000})}",
    }
    with run.Server(args.database_url, workers=2) as server:
        owner = run.Client(server.base)
        owner.login(run.OWNER_EMAIL, run.OWNER_PASSWORD)
        results = {name: run.measure(owner, [url], args.requests) for name, url in pages.items()}
    database = args.database_url.split(":", 1)[0].split("+")[0]
    report = {
        "database": database, "customers": customers,
        "measured": time.strftime("%Y-%m-%d %H:%M:%S"), "environment": run.environment(),
        "refresh_loyalty": refresh, "check_loyalty": check, "pages": results,
    }
    out = run.RESULTS / f"loyalty-{database}-{customers}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    for name, result in results.items():
        print(f"{name:28} wall p50 {result['wall_ms']['p50']:7.1f} p95 "
              f"{result['wall_ms']['p95']:7.1f}  server p95 {result['server_ms']['p95']}  "
              f"sql {result['sql_statements']['max']}  KB {result['bytes'] / 1024:.1f}  "
              f"errors {result['errors']}")
    for k, timed in enumerate(refresh, 1):
        print(f"refresh-loyalty #{k}: {timed['output']} in {timed['seconds']} s")
    print(f"check-loyalty: {check['output']} in {check['seconds']} s")
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
