"""Page timings over HTTP on seeded data (the budgets are in docs/architecture.md). Never run as a timed test.

    .venv/bin/python bench/run.py --sizes 100000 1000000 --databases sqlite postgresql
    .venv/bin/python bench/run.py --smoke          # the whole pipeline, 1,000 customers, SQLite

For each database and size: a fresh database (SQLite file under bench/work/, PostgreSQL
database ``crm_bench``), ``flask db upgrade``, ``flask crm seed --customers N --seed 1`` (timed,
its ledger check included), an owner user, gunicorn (2 workers) on a free local port, a login
through ``POST /login``, then each page: 10 warm-up requests (so every worker is warm) and
``--requests`` measured ones. Recorded per page: p50/p95 of the client's wall time and of the
server's own time (``Server-Timing: app;dur=``), and the SQL statement count
(``X-SQL-Statements``). Results: bench/results/<database>-<size>.json and
bench/results/summary.md (rebuilt from every JSON file there).

Standard library only on the client side (urllib with a cookie jar).
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
WORK = ROOT / "bench" / "work"
RESULTS = ROOT / "bench" / "results"
OWNER_EMAIL = "bench-owner@example.com"
OWNER_PASSWORD = "bench-password-1"
PG_DEFAULT = os.environ.get("CRM_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1/crm_bench")
LIST_URL = "/admin/owner/customer/"
DETAILS_URL = "/admin/owner/customer/details/"
VIEW_ENDPOINT = "customer_owner"
WARMUP = 10  # enough for every gunicorn worker to have compiled its templates

# The p95 budgets in ms (page 10,000: at most twice page 1)
BUDGETS = {
    "list_default": 40,
    "sort_balance_desc": 100,
    "filter_overdue": None,
    "search_email": 50,
    "search_surname": 50,
    "page_10000": "2x list",
    "details": 60,
}
BASELINE = {  # stock Flask-Admin p50 at 1M customers: (SQLite, PostgreSQL)
    "list_default": (36, 48),
    "sort_balance_desc": (1721, 3596),
    "search_surname": (660, 577),
    "search_email": (648, 556),
    "page_10000": (44, 731),
    "details": (4, 5),
}
PAGE_TITLES = {
    "list_default": "customer list, default sort",
    "sort_balance_desc": "sorted by balance, descending",
    "filter_overdue": "filtered: overdue amount > 0",
    "search_email": "search: e-mail fragment",
    "search_surname": "search: surname",
    "page_10000": "page 10,000",
    "details": "customer details",
}


class BenchError(RuntimeError):
    pass


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --------------------------------------------------------------------------------------------
# Databases, seeding, server


def flask(args: list[str], database_url: str, *, capture: bool = True) -> str:
    env = dict(os.environ, DATABASE_URL=database_url, FLASK_APP="app")
    result = subprocess.run(
        [str(VENV_BIN / "flask"), "--app", "app", *args], cwd=ROOT, env=env,
        capture_output=capture, text=True,
    )
    if result.returncode != 0:
        raise BenchError(f"flask {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout or ""


def fresh_database(database: str, size: int, pg_url: str) -> str:
    if database == "sqlite":
        WORK.mkdir(parents=True, exist_ok=True)
        path = WORK / f"bench-{size}.sqlite"
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(pg_url)
    name = url.database
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.render_as_string(hide_password=False)


def marker(database: str, size: int) -> Path:
    return WORK / f"{database}-{size}.seeded.json"


def prepare(database: str, size: int, seed: int, pg_url: str, reuse: bool) -> dict:
    """Fresh database, migrated and seeded (or the one left by an earlier identical run)."""
    mark = marker(database, size)
    if reuse and mark.exists():
        info = json.loads(mark.read_text())
        if info.get("seed") == seed and info.get("size") == size:
            log(f"{database} {size:,}: reusing the database seeded {info['seeded_at']}")
            flask(["db", "upgrade"], info["url"])  # a reused database is brought to head
            return info
    if database == "postgresql":
        for other in WORK.glob("postgresql-*.seeded.json"):
            other.unlink()  # one PostgreSQL database: whatever it held is gone now
    mark.unlink(missing_ok=True)
    url = fresh_database(database, size, pg_url)
    log(f"{database} {size:,}: db upgrade")
    flask(["db", "upgrade"], url)
    log(f"{database} {size:,}: seeding {size:,} customers (seed {seed})")
    started = time.perf_counter()
    output = flask(["crm", "seed", "--customers", str(size), "--seed", str(seed)], url)
    seconds = time.perf_counter() - started
    rows = {m.group(1): int(m.group(2).replace(",", ""))
            for m in re.finditer(r"^\s+(\w+): ([\d,]+)$", output, re.M)}
    check = re.search(r"^Ledger check: .*$", output, re.M)
    log(f"{database} {size:,}: seeded in {seconds:.1f} s, {sum(rows.values()):,} rows; "
        f"{check.group(0) if check else 'no ledger check reported'}")
    flask(["crm", "create-user", OWNER_EMAIL, "--role", "owner", "--password", OWNER_PASSWORD],
          url)
    info = {"database": database, "size": size, "seed": seed, "url": url,
            "seed_seconds": round(seconds, 1), "rows": rows,
            "ledger_check": check.group(0) if check else None,
            "seeded_at": time.strftime("%Y-%m-%d %H:%M:%S")}
    WORK.mkdir(parents=True, exist_ok=True)
    mark.write_text(json.dumps(info, indent=2))
    return info


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """gunicorn -w N on a free port, stopped (by its own pid) on exit."""

    def __init__(self, database_url: str, workers: int) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        gunicorn = VENV_BIN / "gunicorn"
        if not gunicorn.exists():
            raise BenchError("gunicorn is not installed: pip install -e '.[dev]'")
        env = dict(os.environ, DATABASE_URL=database_url, CRM_TIMING_HEADERS="1")
        WORK.mkdir(parents=True, exist_ok=True)
        self.log_path = WORK / f"gunicorn-{self.port}.log"
        self.log_file = open(self.log_path, "w")  # noqa: SIM115
        self.process = subprocess.Popen(
            [str(gunicorn), "-w", str(workers), "-b", f"127.0.0.1:{self.port}", "app:app"],
            cwd=ROOT, env=env, stdout=self.log_file, stderr=subprocess.STDOUT,
        )

    def __enter__(self) -> Server:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"gunicorn exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=2) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.3)
        raise BenchError("gunicorn did not answer /healthz within 60 s")

    def __exit__(self, *exc) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_file.close()


# --------------------------------------------------------------------------------------------
# HTTP client


class _Inputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}

    def handle_starttag(self, tag, attrs) -> None:
        if tag == "input":
            a = dict(attrs)
            if a.get("name"):
                self.values[a["name"]] = a.get("value") or ""


class Client:
    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path: str) -> tuple[int, dict, bytes, float]:
        started = time.perf_counter()
        try:
            with self.opener.open(self.base + path, timeout=120) as response:
                body = response.read()
                status, headers = response.status, response.headers
        except urllib.error.HTTPError as error:
            body, status, headers = error.read(), error.code, error.headers
        return status, headers, body, (time.perf_counter() - started) * 1000

    def login(self, email: str, password: str) -> None:
        status, _, body, _ = self.get("/login")
        if status != 200:
            raise BenchError(f"GET /login answered {status}")
        parser = _Inputs()
        parser.feed(body.decode("utf-8", "replace"))
        token = parser.values.get("csrf_token")
        if not token:
            raise BenchError("No csrf_token input on the login form")
        data = urllib.parse.urlencode(
            {"csrf_token": token, "email": email, "password": password}).encode()
        request = urllib.request.Request(self.base + "/login", data=data, method="POST")
        try:
            with self.opener.open(request, timeout=60) as response:
                final = response.geturl()
        except urllib.error.HTTPError as error:
            raise BenchError(f"POST /login answered {error.code}") from None
        if final.rstrip("/").endswith("/login"):
            raise BenchError("Login failed: still on /login")


# --------------------------------------------------------------------------------------------
# What to request


def discover(database_url: str) -> dict:
    """Sort index of Balance, the overdue filter's URL argument, search terms and ids."""
    os.environ["DATABASE_URL"] = database_url
    sys.path.insert(0, str(ROOT))
    from sqlalchemy import create_engine, text

    from crm import create_app

    app = create_app()
    admin = app.extensions["admin"]
    admin = admin[0] if isinstance(admin, list | tuple) else admin
    view = next((v for v in admin._views if getattr(v, "endpoint", None) == VIEW_ENDPOINT),
                None)
    if view is None:
        raise BenchError(
            f"The admin view '{VIEW_ENDPOINT}' (the owner's customer list at {LIST_URL}) does "
            "not exist yet: the page timings need it. Seeding, gunicorn and login worked."
        )
    columns = [name for name, _ in view._list_columns]
    if "balance" not in columns or "balance" not in (view._sortable_columns or {}):
        raise BenchError("The owner's customer list has no sortable 'balance' column.")
    overdue_arg = None
    for arg, (_, flt) in (view._filter_args or {}).items():
        if str(flt.name) == "Overdue amount" and str(flt.operation()) == "greater than":
            overdue_arg = arg
    if overdue_arg is None:
        raise BenchError("No 'Overdue amount' 'greater than' filter on the customer list.")
    engine = create_engine(database_url)
    with engine.connect() as conn:
        top = conn.execute(text("SELECT max(id) FROM customer")).scalar()
        middle = conn.execute(text(
            "SELECT email, surname FROM customer WHERE id >= :i AND email IS NOT NULL "
            "AND surname IS NOT NULL AND customer_type = 'private' ORDER BY id LIMIT 1"),
            {"i": top // 2}).one()
        ids = [conn.execute(text("SELECT min(id) FROM customer WHERE id >= :i"),
                            {"i": max(1, top * k // 5)}).scalar() for k in range(5)]
    engine.dispose()
    return {
        "balance_sort": columns.index("balance"),
        "overdue_filter": f"flt0_{overdue_arg}",
        "email_fragment": middle.email.split("@")[0],
        "surname": middle.surname,
        "detail_ids": ids,
        "page_size": view.page_size,
    }


def pages(found: dict) -> dict[str, list[str]]:
    q = urllib.parse.urlencode
    return {
        "list_default": [LIST_URL],
        "sort_balance_desc": [f"{LIST_URL}?{q({'sort': found['balance_sort'], 'desc': 1})}"],
        "filter_overdue": [f"{LIST_URL}?{q({found['overdue_filter']: 0})}"],
        "search_email": [f"{LIST_URL}?{q({'search': found['email_fragment']})}"],
        "search_surname": [f"{LIST_URL}?{q({'search': found['surname']})}"],
        "page_10000": [f"{LIST_URL}?{q({'page': 10000})}"],
        "details": [f"{DETAILS_URL}?{q({'id': i})}" for i in found["detail_ids"]],
    }


def check_balance_link(client: Client, index: int) -> None:
    _, _, body, _ = client.get(LIST_URL)
    html = body.decode("utf-8", "replace")
    match = re.search(r'<a[^>]+href="[^"]*[?&]sort=(\d+)[^"]*"[^>]*>\s*Balance', html)
    if match and int(match.group(1)) != index:
        raise BenchError(f"The Balance header sorts with sort={match.group(1)}, not {index}")


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)  # nearest rank
    rank = max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))
    return round(ordered[rank], 1)


SERVER_TIMING = re.compile(r"app;dur=([\d.]+)")


def measure(client: Client, urls: list[str], requests: int) -> dict:
    for k in range(WARMUP):
        client.get(urls[k % len(urls)])
    wall, server, statements, statuses, sizes = [], [], [], [], []
    for k in range(requests):
        status, headers, body, ms = client.get(urls[k % len(urls)])
        statuses.append(status)
        wall.append(ms)
        sizes.append(len(body))
        match = SERVER_TIMING.search(headers.get("Server-Timing", "") or "")
        if match:
            server.append(float(match.group(1)))
        if headers.get("X-SQL-Statements"):
            statements.append(int(headers["X-SQL-Statements"]))
    return {
        "urls": urls,
        "requests": requests,
        "errors": sum(1 for s in statuses if s != 200),
        "statuses": sorted(set(statuses)),
        "wall_ms": {"p50": percentile(wall, 50), "p95": percentile(wall, 95),
                    "max": round(max(wall), 1)},
        "server_ms": {"p50": percentile(server, 50), "p95": percentile(server, 95)},
        "sql_statements": {"min": min(statements, default=None),
                           "max": max(statements, default=None)},
        "bytes": int(statistics.median(sizes)),
    }


# --------------------------------------------------------------------------------------------
# Results


def environment() -> dict:
    import sqlite3

    info = {
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "machine": platform.machine(),
    }
    psql = shutil.which("psql")
    if psql:
        try:
            info["postgresql"] = subprocess.run(
                [psql, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return info


def write_summary(results_dir: Path) -> Path:
    # Only this script's page figures (<database>-<size>.json); other benches write beside them.
    files = sorted((p for p in results_dir.glob("*.json")
                    if p.name.startswith(("sqlite-", "postgresql-"))),
                   key=lambda p: (json.loads(p.read_text())["size"], p.name))
    lines = [
        "# Benchmark results",
        "",
        "Written by `bench/run.py` (see bench/README.md). Times in ms over HTTP (gunicorn, 2",
        "workers, this 2-core machine): client wall time p50 / p95, the server's own time",
        "(`Server-Timing: app;dur`) p50 / p95, and SQL statements per request.",
        "",
    ]
    for path in files:
        data = json.loads(path.read_text())
        lines += [
            f"## {data['database']}, {data['size']:,} customers",
            "",
            f"Seeded in {data['seed']['seconds']} s ({sum(data['seed']['rows'].values()):,} "
            f"rows); {data['requests']} requests per page after {WARMUP} warm-up; measured "
            f"{data['measured_at']}; load average at start {data['environment']['load_average']}.",
            "",
            "| page | wall p50 | wall p95 | server p50 | server p95 | SQL statements | budget p95 "
            "| errors |",
            "|---|---:|---:|---:|---:|---:|---|---:|",
        ]
        first = data["pages"].get("list_default", {}).get("wall_ms", {}).get("p95")
        for key, page in data["pages"].items():
            budget = BUDGETS.get(key)
            if budget == "2x list":
                budget_text = f"≤ {2 * first:.0f} (2x page 1)" if first else "≤ 2x page 1"
                limit = 2 * first if first else None
            elif budget is None:
                budget_text, limit = "—", None
            else:
                budget_text, limit = f"≤ {budget}", budget
            p95 = page["wall_ms"]["p95"]
            verdict = "" if limit is None or p95 is None else (" ok" if p95 <= limit else " over")
            statements = page["sql_statements"]
            sql = statements["min"] if statements["min"] == statements["max"] else \
                f"{statements['min']}–{statements['max']}"
            lines.append(
                f"| {PAGE_TITLES.get(key, key)} | {page['wall_ms']['p50']} | {p95} | "
                f"{page['server_ms']['p50']} | {page['server_ms']['p95']} | {sql} | "
                f"{budget_text}{verdict} | {page['errors']} |"
            )
        lines.append("")
    path = results_dir / "summary.md"
    path.write_text("\n".join(lines))
    return path


# --------------------------------------------------------------------------------------------


def run_one(database: str, size: int, args) -> dict:
    info = prepare(database, size, args.seed, args.pg_url, args.reuse)
    url = info["url"]
    found = discover_in_subprocess(url)
    log(f"{database} {size:,}: starting gunicorn")
    with Server(url, args.workers) as server:
        client = Client(server.base)
        client.login(OWNER_EMAIL, OWNER_PASSWORD)
        log(f"{database} {size:,}: logged in; pages: {found}")
        if found.get("error"):
            raise BenchError(found["error"])
        check_balance_link(client, found["balance_sort"])
        results = {}
        for key, urls in pages(found).items():
            results[key] = measure(client, urls, args.requests)
            page = results[key]
            log(f"  {key:18} wall p50 {page['wall_ms']['p50']:>7} p95 {page['wall_ms']['p95']:>7}"
                f"  server p95 {page['server_ms']['p95']}  sql {page['sql_statements']['max']}"
                f"  errors {page['errors']}")
    data = {
        "database": database,
        "size": size,
        "requests": args.requests,
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "seed": {"seed": info["seed"], "seconds": info["seed_seconds"], "rows": info["rows"]},
        "parameters": found,
        "pages": results,
        "environment": environment(),
    }
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / f"{database}-{size}.json").write_text(json.dumps(data, indent=2) + "\n")
    return data


def discover_in_subprocess(url: str) -> dict:
    """discover() in a child interpreter (keeps the app's import side effects out of here)."""
    code = (
        "import json, sys; sys.path.insert(0, 'bench'); import run\n"
        "try:\n"
        f"    print(json.dumps(run.discover({url!r})))\n"
        "except run.BenchError as e:\n"
        "    print(json.dumps({'error': str(e)}))\n"
    )
    result = subprocess.run([str(VENV_BIN / "python"), "-c", code], cwd=ROOT,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise BenchError(f"Could not inspect the admin views:\n{result.stderr[-3000:]}")
    found = json.loads(result.stdout.strip().splitlines()[-1])
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--databases", nargs="+", choices=["sqlite", "postgresql"],
                        default=["sqlite"])
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pg-url", default=PG_DEFAULT,
                        help="PostgreSQL URL of the bench database (dropped and re-created)")
    parser.add_argument("--reuse", action="store_true",
                        help="keep a database this script seeded earlier with the same size")
    parser.add_argument("--smoke", action="store_true",
                        help="1,000 customers on SQLite, 5 requests per page; results under "
                             "bench/work/smoke/; fails on any error")
    args = parser.parse_args(argv)
    args.results = RESULTS
    if args.smoke:
        args.sizes, args.databases, args.requests = [1000], ["sqlite"], 5
        args.results = WORK / "smoke"
    failures = 0
    for database in args.databases:
        for size in args.sizes:
            try:
                data = run_one(database, size, args)
            except BenchError as error:
                log(f"{database} {size:,}: FAILED: {error}")
                failures += 1
                continue
            failures += sum(1 for page in data["pages"].values() if page["errors"])
            if args.smoke:
                missing = [k for k, p in data["pages"].items()
                           if p["server_ms"]["p50"] is None or p["sql_statements"]["max"] is None]
                if missing:
                    log(f"no Server-Timing / X-SQL-Statements headers on: {missing}")
                    failures += 1
    summary = write_summary(args.results)
    log(f"summary: {summary.relative_to(ROOT)}")
    return 1 if failures else 0


if __name__ == "__main__":
    in_venv = Path(sys.prefix).resolve() == (ROOT / ".venv").resolve()
    if not in_venv and (VENV_BIN / "python").exists() and not os.environ.get("CRM_BENCH_VENV"):
        os.environ["CRM_BENCH_VENV"] = "1"  # the project's virtualenv has the app and drivers
        os.execv(str(VENV_BIN / "python"), [str(VENV_BIN / "python"), *sys.argv])
    sys.exit(main())
