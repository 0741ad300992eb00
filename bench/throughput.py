"""The customer list under load: requests a second and latency with many clients at once.

    .venv/bin/python bench/throughput.py                          # SQLite and PostgreSQL, 1M
    .venv/bin/python bench/throughput.py --databases sqlite --workers 2 --worker-class gthread
    .venv/bin/python bench/throughput.py --code /tmp/before --label before   # another checkout
    .venv/bin/python bench/throughput.py --databases sqlite --customers 20000 \
        --sqlite-url sqlite:////tmp/bench-20000.sqlite --label after       # a smaller seed

Needs ``wrk`` (``apt-get install -y wrk``) and the 1,000,000-customer databases that
``bench/run.py --sizes 1000000 --databases sqlite postgresql`` seeds (``bench/work/`` and
PostgreSQL ``crm_bench``) with its owner account; nothing is seeded or changed here except
the staff session that signing in opens.

For each database: gunicorn with ``--workers`` workers (``gunicorn.conf.py`` of the checkout
run, development settings, so ``Server-Timing`` is on) on a free local port; one sign-in
through ``POST /login`` with urllib (the CSRF token read from the form); then, for each
path and each number of connections, ``wrk -t2 -c<N> -d<duration>`` with that session's
cookie and the same User-Agent (Flask-Login's strong session protection ties a session to
it), after a short warm-up. A Lua script (written next to the results) reports requests a
second, p50/p95/p99 latency, socket errors and every answer that was not a 200 (a session
that had ended would answer 302 to the sign-in page: counted as an error, never as speed).
Before and after the runs one request checks that the list really is the signed-in list.

Results: ``bench/results/throughput-<database>[-<label>].json``, and a table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as bench  # noqa: E402  (bench/run.py: Client, free_port, environment)

ROOT = bench.ROOT
USER_AGENT = "crm-throughput-bench"
PATHS = {
    "customer_list": bench.LIST_URL,
    "healthz": "/healthz",
}
SQLITE_URL = f"sqlite:///{bench.WORK / 'bench-1000000.sqlite'}"

LUA = r"""
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  not_ok = 0
end

function response(status, headers, body)
  if status ~= 200 then
    not_ok = not_ok + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("not_ok")
  end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "bytes": %d, "not_200": %d, ' ..
    '"socket_errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, ' ..
    '"latency_us": {"p50": %d, "p75": %d, "p90": %d, "p95": %d, "p99": %d, "max": %d, ' ..
    '"mean": %.1f}}\n',
    summary.requests, summary.duration, summary.bytes, bad,
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(95), latency:percentile(99), latency.max, latency.mean))
end
"""


class Server(bench.Server):
    """bench/run.py's gunicorn, with a worker count and class, from any checkout."""

    def __init__(self, database_url: str, args) -> None:  # noqa: D107
        self.port = bench.free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        code = Path(args.code).resolve()
        env = dict(os.environ, DATABASE_URL=database_url, CRM_TIMING_HEADERS="1")
        env.pop("CRM_ENV", None)
        bench.WORK.mkdir(parents=True, exist_ok=True)
        self.log_path = bench.WORK / f"gunicorn-throughput-{self.port}.log"
        self.log_file = open(self.log_path, "w")  # noqa: SIM115
        command = [str(bench.VENV_BIN / "gunicorn"), "-w", str(args.workers),
                   "-k", args.worker_class, "-b", f"127.0.0.1:{self.port}",
                   "--backlog", "2048", "--timeout", "120"]
        if args.worker_class == "gthread":
            command += ["--threads", str(args.threads)]
        self.process = subprocess.Popen(
            [*command, "app:app"], cwd=code, env=env, stdout=self.log_file,
            stderr=subprocess.STDOUT,
        )


def sign_in(base: str) -> tuple[bench.Client, str]:
    client = bench.Client(base)
    client.opener.addheaders = [("User-Agent", USER_AGENT)]
    client.login(bench.OWNER_EMAIL, bench.OWNER_PASSWORD)
    cookie = "; ".join(f"{c.name}={c.value}" for c in client.jar)
    return client, cookie


def check_list(client: bench.Client) -> dict:
    """One request: the signed-in customer list, its size, server time and statements."""
    status, headers, body, ms = client.get(bench.LIST_URL)
    html = body.decode("utf-8", "replace")
    if status != 200 or 'data-testid="match-count"' not in html:
        raise bench.BenchError(f"The customer list answered {status} without its rows "
                               "(not signed in?)")
    match = bench.SERVER_TIMING.search(headers.get("Server-Timing", "") or "")
    return {"bytes": len(body), "wall_ms": round(ms, 1),
            "server_ms": float(match.group(1)) if match else None,
            "sql_statements": int(headers.get("X-SQL-Statements") or 0) or None}


def wrk(url: str, cookie: str, connections: int, seconds: int, script: Path) -> dict:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
               "-s", str(script), "-H", f"Cookie: {cookie}", "-H", f"User-Agent: {USER_AGENT}",
               url]
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120)
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if result.returncode != 0 or line is None:
        raise bench.BenchError(f"wrk failed:\n{result.stdout}\n{result.stderr}")
    raw = json.loads(line[len("RESULT "):])
    seconds_run = raw["duration_us"] / 1e6
    socket_errors = sum(raw["socket_errors"].values())
    return {
        "connections": connections,
        "seconds": round(seconds_run, 1),
        "requests": raw["requests"],
        "requests_per_second": round(raw["requests"] / seconds_run, 1),
        "latency_ms": {k: round(v / 1000, 1) for k, v in raw["latency_us"].items()},
        "errors": raw["not_200"] + socket_errors,
        "not_200": raw["not_200"],
        "socket_errors": raw["socket_errors"],
        "bytes_per_response": round(raw["bytes"] / raw["requests"]) if raw["requests"] else 0,
    }


def database_url(database: str, args) -> str:
    return args.sqlite_url if database == "sqlite" else args.pg_url


def run_database(database: str, args, script: Path) -> dict:
    url = database_url(database, args)
    bench.log(f"{database}: gunicorn -w {args.workers} -k {args.worker_class} from {args.code}")
    runs = []
    with Server(url, args) as server:
        client, cookie = sign_in(server.base)
        before = check_list(client)
        bench.log(f"{database}: list {before['bytes']:,} bytes, server {before['server_ms']} "
                  f"ms, {before['sql_statements']} statements")
        for name in args.paths:
            target = server.base + PATHS[name]
            wrk(target, cookie, max(args.connections), args.warmup, script)  # warm every worker
            for connections in args.connections:
                figures = wrk(target, cookie, connections, args.duration, script)
                figures["path"] = name
                load = [round(x, 2) for x in os.getloadavg()]
                figures["load_average_after"] = load
                runs.append(figures)
                lat = figures["latency_ms"]
                bench.log(f"  {name:14} c={connections:<3} {figures['requests_per_second']:>8} "
                          f"req/s  p50 {lat['p50']:>6} p95 {lat['p95']:>6} p99 {lat['p99']:>6} "
                          f"ms  errors {figures['errors']}  load {load[0]}")
        after = check_list(client)
    return {
        "database": database,
        "database_url": url,
        "customers": args.customers,
        "label": args.label,
        "code": str(Path(args.code).resolve()),
        "commit": commit_of(Path(args.code)),
        "gunicorn": {"workers": args.workers, "worker_class": args.worker_class,
                     "threads": args.threads if args.worker_class == "gthread" else 1},
        "wrk": {"threads": 2, "duration_s": args.duration, "warmup_s": args.warmup},
        "list_page_before": before,
        "list_page_after": after,
        "runs": runs,
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "environment": bench.environment(),
    }


def commit_of(code: Path) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(code), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10)
    except OSError:
        return None
    return out.stdout.strip() or None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--databases", nargs="+", choices=["sqlite", "postgresql"],
                        default=["sqlite", "postgresql"])
    parser.add_argument("--paths", nargs="+", choices=sorted(PATHS),
                        default=["customer_list", "healthz"])
    parser.add_argument("--connections", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--duration", type=int, default=30, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=5, help="seconds of warm-up per path")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--worker-class", default="sync", choices=["sync", "gthread"])
    parser.add_argument("--threads", type=int, default=4, help="threads per gthread worker")
    parser.add_argument("--code", default=str(ROOT),
                        help="the checkout to serve (default: this one)")
    parser.add_argument("--label", default="", help="added to the results file's name")
    parser.add_argument("--pg-url", default=bench.PG_DEFAULT)
    parser.add_argument("--sqlite-url", default=SQLITE_URL,
                        help="another seeded SQLite database (absolute path), e.g. a 20,000 one")
    parser.add_argument("--customers", type=int, default=1_000_000,
                        help="how many customers the databases hold (recorded, and in the "
                             "results file's name when not 1,000,000)")
    parser.add_argument("--results", type=Path, default=bench.RESULTS)
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "report.lua"
        script.write_text(LUA)
        for database in args.databases:
            try:
                data = run_database(database, args, script)
            except bench.BenchError as error:
                bench.log(f"{database}: FAILED: {error}")
                failures += 1
                continue
            failures += sum(1 for r in data["runs"] if r["errors"])
            suffix = f"-{args.customers}" if args.customers != 1_000_000 else ""
            suffix += f"-{args.label}" if args.label else ""
            args.results.mkdir(parents=True, exist_ok=True)
            path = args.results / f"throughput-{database}{suffix}.json"
            path.write_text(json.dumps(data, indent=2) + "\n")
            bench.log(f"{database}: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 1 if failures else 0


if __name__ == "__main__":
    in_venv = Path(sys.prefix).resolve() == (ROOT / ".venv").resolve()
    if not in_venv and (bench.VENV_BIN / "python").exists() and not os.environ.get(
            "CRM_BENCH_VENV"):
        os.environ["CRM_BENCH_VENV"] = "1"
        os.execv(str(bench.VENV_BIN / "python"), [str(bench.VENV_BIN / "python"), *sys.argv])
    sys.exit(main())
