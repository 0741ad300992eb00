"""Possible duplicates at scale: page timings, one customer's candidates, a full scan, and
recall of the seed's planted duplicates. Never run as a timed test.

    .venv/bin/python bench/duplicates.py --size 1000000 --database sqlite
    .venv/bin/python bench/duplicates.py --size 1000000 --database postgresql --proposed-index

Reuses the database that bench/run.py seeded (SQLite file bench/work/bench-<size>.sqlite,
PostgreSQL database ``crm_bench``, each with its marker), or makes one the same way through
``run.prepare``. Calls crm.actions.duplicates directly, each call in a fresh session (as a
request would): the cost is the finder's SQL and the loading of its customers, without the
HTTP and template time that bench/run.py measures for the list pages.

Measured: p50/p95 of the first page of each kind and of all kinds, a deep page of each kind,
``duplicates_of`` for 20 customers (10 planted duplicates and 10 random customers), one
streaming scan of every group, and the recall of ``demo.customers.planted_duplicate_pairs``:
the share of planted (original, duplicate) pairs found together in at least one group.
``--proposed-index`` also times the surname-and-postcode pages with the expression index
this report recommends, created for the run and dropped after it.

Results: bench/results/duplicates-<database>-<size>.json, and bench/results/duplicates.md
rebuilt from every such file.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import re
import sys
import time
from collections import Counter, defaultdict
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import run  # noqa: E402  (bench/run.py: prepare, percentile, environment)
from sqlalchemy import create_engine, event, func, select, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

import crm  # noqa: E402, F401  (the SQLite connect pragmas)
from crm.actions.duplicates import (  # noqa: E402
    REASON_LABELS,
    REASONS,
    duplicates_of,
    encode_cursor,
    find_duplicate_groups,
    iter_duplicate_groups,
)
from crm.models import Customer  # noqa: E402
from demo.customers import planted_duplicate_pairs  # noqa: E402

RESULTS = run.RESULTS
SEED = 1
PAGE = 25
SLOW_BUDGET = 30.0  # seconds per measurement: a 2-second page is timed 5 times, not 20
PROPOSED_INDEX = "ix_customer_name_postcode_key"
PROPOSED_SQL = (
    f"CREATE INDEX {PROPOSED_INDEX} ON customer "
    "((lower(surname) || '|' || replace(upper(postcode), ' ', '')), id) "
    "WHERE merged_into_id IS NULL"
)


def log(message: str) -> None:
    print(f"[duplicates {time.strftime('%H:%M:%S')}] {message}", flush=True)


@contextmanager
def statements(engine):
    seen = []

    def count(*_args):
        seen.append(1)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def measure(engine, name: str, call, repeat: int, warmup: int = 2) -> dict:
    """p50/p95 of ``call(session)`` in a fresh session each time, and its statements."""
    for _ in range(warmup):
        with Session(engine) as session:
            call(session)
    times: list[float] = []
    spent = 0.0
    count = 0
    while len(times) < repeat and (spent < SLOW_BUDGET or len(times) < 5):
        with Session(engine) as session, statements(engine) as seen:
            started = time.perf_counter()
            call(session)
            elapsed = time.perf_counter() - started
        times.append(elapsed * 1000)
        spent += elapsed
        count = len(seen)
    row = {"name": name, "n": len(times), "p50": run.percentile(times, 50),
           "p95": run.percentile(times, 95), "statements": count}
    log(f"{name}: p50 {row['p50']} ms, p95 {row['p95']} ms, n {row['n']}, {count} statements")
    return row


def page_call(reason, after=None):
    return lambda s: find_duplicate_groups(s, reason=reason, after=after, limit=PAGE)


def scan(engine) -> tuple[dict, dict]:
    """One pass over every group: its time, and which pairs it puts together."""
    together: dict[tuple[int, int], set[str]] = defaultdict(set)
    groups: Counter = Counter()
    members: Counter = Counter()
    larger: Counter = Counter()  # groups of three or more
    largest: Counter = Counter()
    keys: dict[str, list[str]] = defaultdict(list)
    with Session(engine) as session, statements(engine) as seen:
        started = time.perf_counter()
        for group in iter_duplicate_groups(session):
            groups[group.reason] += 1
            members[group.reason] += group.size
            larger[group.reason] += group.size > 2
            largest[group.reason] = max(largest[group.reason], group.size)
            keys[group.reason].append(group.key)
            for a, b in itertools.combinations(group.customer_ids, 2):
                together[(a, b)].add(group.reason)
            session.expunge_all()
        seconds = time.perf_counter() - started
    info = {"seconds": round(seconds, 1), "statements": len(seen),
            "groups": dict(groups), "customers": dict(members),
            "groups_of_3_or_more": dict(larger), "largest_group": dict(largest)}
    log(f"full scan: {info}")
    return info, {"together": together, "keys": keys}


def planted(engine, size: int) -> list[tuple[int, int]]:
    """The planted (original, duplicate) ids: the seed's stream replayed (it depends on the
    size too), numbered from the first customer of the fresh database."""
    with Session(engine) as session:
        lowest, count = session.execute(select(func.min(Customer.id), func.count())).one()
    if count != size:
        raise run.BenchError(f"the database holds {count:,} customers, not {size:,}")
    offset = lowest - 1
    log("replaying the seed's customer stream for the planted pairs")
    return [(o + offset, d + offset) for o, d in planted_duplicate_pairs(size, SEED)]


def recall(pairs: list[tuple[int, int]], together: dict) -> dict:
    found = [p for p in pairs if together.get(p)]
    by_reason = {r: sum(1 for p in pairs if r in together.get(p, ())) for r in REASONS}
    planted = set(pairs)
    others = [reasons for p, reasons in together.items() if p not in planted and reasons]
    info = {
        "planted_pairs": len(pairs),
        "found": len(found),
        "recall": round(len(found) / len(pairs), 4) if pairs else None,
        "found_by_reason": by_reason,
        "other_pairs_grouped": len(others),
        "other_pairs_by_reason": {r: sum(1 for x in others if r in x) for r in REASONS},
        "missed_sample": [p for p in pairs if not together.get(p)][:10],
    }
    log(f"recall: {info}")
    return info


def deep_pages(keys: dict) -> dict[str, str]:
    """A cursor 80% of the way through each kind's groups."""
    return {r: encode_cursor(r, ks[int(len(ks) * 0.8)]) for r, ks in keys.items() if ks}


def customers_to_look_up(pairs: list[tuple[int, int]]) -> list[int]:
    """40 customers: the first 20 warm up, the other 20 (10 planted duplicates, 10 anyone)
    are timed."""
    rng = random.Random(SEED)
    lowest, highest = min(o for o, _ in pairs), max(d for _, d in pairs)
    duplicates = [d for _, d in rng.sample(pairs, 20)]
    anyone = [rng.randint(lowest, highest) for _ in range(20)]
    return duplicates[:10] + anyone[:10] + duplicates[10:] + anyone[10:]


def timed_lookups(engine, ids: list[int]) -> dict:
    times: list[float] = []
    counts: list[int] = []
    found = 0
    for position, customer_id in enumerate(ids):
        with Session(engine) as session, statements(engine) as seen:
            started = time.perf_counter()
            candidates = duplicates_of(session, customer_id=customer_id)
            elapsed = (time.perf_counter() - started) * 1000
        if position >= len(ids) // 2:
            times.append(elapsed)
            counts.append(len(seen))
            found += bool(candidates)
    row = {"name": "duplicates_of, 20 customers", "n": len(times),
           "p50": run.percentile(times, 50), "p95": run.percentile(times, 95),
           "statements": max(counts), "with_candidates": found}
    log(f"duplicates_of: {row}")
    return row


@contextmanager
def proposed_index(engine):
    with engine.begin() as conn:
        started = time.perf_counter()
        conn.execute(text(PROPOSED_SQL))
        conn.execute(text(f"ANALYZE {PROPOSED_INDEX}" if engine.dialect.name == "sqlite"
                          else "ANALYZE customer"))
        log(f"proposed index built in {time.perf_counter() - started:.1f} s")
    try:
        yield round(time.perf_counter() - started, 1)
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP INDEX IF EXISTS {PROPOSED_INDEX}"))
        log("proposed index dropped")


def plan(engine, reason: str) -> list[str]:
    from crm.actions.duplicates import _groups_select

    stmt = _groups_select(reason, "").limit(PAGE + 1)
    sql = str(stmt.compile(engine, compile_kwargs={"literal_binds": True}))
    prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    with engine.connect() as conn:
        return [" ".join(str(c) for c in row[-1:]) for row in conn.execute(text(prefix + sql))]


def bench(database: str, size: int, repeat: int, pg_url: str, with_index: bool) -> dict:
    info = run.prepare(database, size, SEED, pg_url, reuse=True)
    engine = create_engine(info["url"])
    started_env = run.environment()
    rows = [measure(engine, f"first page, {REASON_LABELS[r].lower()}", page_call(r), repeat)
            for r in REASONS]
    rows.append(measure(engine, "first page, all kinds", page_call(None), repeat))
    scanned, found = scan(engine)
    for reason, cursor in deep_pages(found["keys"]).items():
        rows.append(measure(engine, f"deep page (80%), {REASON_LABELS[reason].lower()}",
                            page_call(reason, cursor), repeat))
    pairs = planted(engine, size)
    rows.append(timed_lookups(engine, customers_to_look_up(pairs)))
    result = {
        "database": database, "size": size, "seed": SEED, "page": PAGE,
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"), "seeded_at": info["seeded_at"],
        "environment": started_env, "rows": rows, "scan": scanned,
        "recall": recall(pairs, found["together"]),
        "plans": {r: plan(engine, r) for r in REASONS},
    }
    if with_index:
        cursor = deep_pages(found["keys"]).get("name_postcode")
        with proposed_index(engine) as seconds:
            result["proposed_index"] = {
                "sql": PROPOSED_SQL, "build_seconds": seconds,
                "plan": plan(engine, "name_postcode"),
                "rows": [
                    measure(engine, "first page, same surname and postcode",
                            page_call("name_postcode"), repeat),
                    measure(engine, "deep page (80%), same surname and postcode",
                            page_call("name_postcode", cursor), repeat),
                ],
            }
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    engine.dispose()
    return result


# --------------------------------------------------------------------------------------------


def _table(rows: list[dict]) -> list[str]:
    lines = ["| measurement | p50 ms | p95 ms | n | SQL statements |",
             "|---|---:|---:|---:|---:|"]
    lines += [f"| {r['name']} | {r['p50']} | {r['p95']} | {r['n']} | {r['statements']} |"
              for r in rows]
    return lines


def _plan_text(lines: list[str]) -> str:
    """A plan on one line, without PostgreSQL's cost estimates."""
    return " / ".join(re.sub(r"\s+\(cost=[^)]*\)", "", line).strip() for line in lines)


def write_summary() -> Path:
    files = sorted(RESULTS.glob("duplicates-*.json"))
    lines = [
        "# Possible duplicates at scale",
        "",
        "Written by `bench/duplicates.py`. The finder called directly (no HTTP, no template),",
        f"each call in a fresh session; pages of {PAGE} groups; p50 / p95 in ms over n calls",
        "after 2 warm-up calls (slow pages are timed at least 5 times within 30 s).",
        "Recall: planted (original, duplicate) pairs of `demo.customers.planted_duplicate_pairs`",
        "found together in at least one group.",
    ]
    for path in files:
        r = json.loads(path.read_text())
        env, rec, sc = r["environment"], r["recall"], r["scan"]
        lines += [
            "", f"## {r['database']}, {r['size']:,} customers", "",
            f"Measured {r['measured_at']} (database seeded {r['seeded_at']}); load average "
            f"{env['load_average']} at start, {r['load_average_after']} at the end; "
            f"{env['cpus']} CPUs, SQLite {env['sqlite']}, {env.get('postgresql', '')}.", "",
            *_table(r["rows"]), "",
            f"Full streaming scan (`iter_duplicate_groups`): {sc['seconds']} s, "
            f"{sc['statements']} statements; groups "
            + ", ".join(f"{k} {v:,}" for k, v in sc["groups"].items())
            + "; customers in them " + ", ".join(f"{k} {v:,}" for k, v in sc["customers"].items())
            + "; groups of three or more "
            + ", ".join(f"{k} {v:,}" for k, v in sc.get("groups_of_3_or_more", {}).items())
            + "; largest group "
            + ", ".join(f"{k} {v:,}" for k, v in sc.get("largest_group", {}).items())
            + ".", "",
            f"Recall: {rec['found']:,} of {rec['planted_pairs']:,} planted pairs found "
            f"together = **{rec['recall']}**; found by kind "
            + ", ".join(f"{k} {v:,}" for k, v in rec["found_by_reason"].items())
            + f" (a pair can share more than one key). Pairs grouped that the seed did not "
            f"plant: {rec['other_pairs_grouped']:,}, by kind "
            + ", ".join(f"{k} {v:,}" for k, v in rec.get("other_pairs_by_reason", {}).items())
            + " (customers the seed made alike by chance: a group of n holds n(n-1)/2 pairs).",
            "", "Plans of the grouping statements:", "",
            *[f"- {k}: `{_plan_text(v)}`" for k, v in r["plans"].items()],
        ]
        if "proposed_index" in r:
            p = r["proposed_index"]
            lines += ["", f"With the proposed index (built in {p['build_seconds']} s, dropped "
                      f"after): `{p['sql']}`", "", *_table(p["rows"]), "",
                      f"Plan: `{_plan_text(p['plan'])}`"]
    out = RESULTS / "duplicates.md"
    out.write_text("\n".join(lines) + "\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--pg-url", default=run.PG_DEFAULT)
    parser.add_argument("--proposed-index", action="store_true",
                        help="also time surname-and-postcode pages with the recommended index")
    args = parser.parse_args()
    result = bench(args.database, args.size, args.repeat, args.pg_url, args.proposed_index)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"duplicates-{args.database}-{args.size}.json"
    path.write_text(json.dumps(result, indent=2, default=list))
    log(f"wrote {path} and {write_summary()}")


if __name__ == "__main__":
    main()
