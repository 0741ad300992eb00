"""What erasure costs on SQLite at scale: redacting one customer (the action and its commit),
then the work after the commit that leaves no copy on disk (optimising the full-text index,
checkpointing and truncating the write-ahead log).

    .venv/bin/python bench/erasure.py sqlite:///bench/work/bench-1000000.sqlite [--rounds 10]

The database must be seeded (``flask --app app crm seed``); each round redacts one more live,
unredacted customer spread over the table, so the database is changed: use a copy you can
lose. Prints p50/p95/max of each part and writes bench/results/erasure-<rows>.json.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database_url")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args(argv)

    from sqlalchemy import func, select

    from crm import create_app, search_index
    from crm.actions.redact import redact_customer
    from crm.extensions import db
    from crm.models import Customer

    app = create_app({"SQLALCHEMY_DATABASE_URI": args.database_url,
                      "MAIL_OUTBOX_DIR": str(ROOT / "bench" / "work" / "outbox")})
    timings: dict[str, list[float]] = {"redact_and_commit": [], "compact_after_commit": []}
    compact = search_index.compact_after_erasure

    def timed_compact(connection):
        started = time.perf_counter()
        compact(connection)
        timings["compact_after_commit"].append(time.perf_counter() - started)

    with app.app_context():
        # The action's own after-commit work, timed apart from the action and its commit.
        import crm.actions.redact as redact_module

        redact_module.compact_after_erasure = timed_compact
        total = db.session.scalar(select(func.count()).select_from(Customer))
        step = max(1, total // (args.rounds + 1))
        for n in range(args.rounds):
            key = db.session.scalar(
                select(Customer.id).where(Customer.id >= (n + 1) * step,
                                          Customer.redacted_at.is_(None),
                                          Customer.merged_into_id.is_(None))
                .order_by(Customer.id).limit(1))
            started = time.perf_counter()
            redact_customer(db.session, customer_id=key, actor=None, confirmation="REDACT")
            db.session.commit()  # runs the compaction, timed on its own above
            elapsed = time.perf_counter() - started
            timings["redact_and_commit"].append(elapsed - timings["compact_after_commit"][-1])
    report = {
        "database": args.database_url.split(":", 1)[0], "customers": total,
        "rounds": args.rounds,
        **{name: {"p50_ms": round(statistics.median(v) * 1000, 1),
                  "p95_ms": round(_percentile(v, 0.95) * 1000, 1),
                  "max_ms": round(max(v) * 1000, 1)} for name, v in timings.items()},
    }
    print(json.dumps(report, indent=2))
    out = ROOT / "bench" / "results" / f"erasure-sqlite-{total}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
