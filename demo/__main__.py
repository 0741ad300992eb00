"""``python -m demo DATABASE_URL N [SEED]``: time a seed without Flask (and with the log of
each phase: preparing, generating and writing, indexes, search index, the ledger check)."""

import logging
import sys
import time

from sqlalchemy import create_engine

import crm  # noqa: F401  (the SQLite connect pragmas)
from demo.seeding import seed_database


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    url, n = sys.argv[1], int(sys.argv[2])
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    started = time.perf_counter()
    counts = seed_database(create_engine(url), customers=n, seed=seed)
    print(f"{time.perf_counter() - started:.1f} s", dict(counts), f"{sum(counts.values()):,} rows")
    print(counts.ledger_check.line())


if __name__ == "__main__":
    main()
