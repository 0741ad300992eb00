"""Seed a database: generate, write, then check the ledger (see ``demo``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import date

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from crm import ledger_totals, loyalty
from crm.models import Customer
from demo.check import LedgerCheck, LedgerMismatch, verify_ledger
from demo.customers import planted_duplicate_pairs
from demo.loaders import BIG_LOAD, loader_for
from demo.parallel import batches, batches_in_child, can_fork
from demo.related import Generator
from demo.tables import TABLES

__all__ = ["LedgerCheck", "LedgerMismatch", "SeedSummary", "planted_duplicate_pairs",
           "seed_database", "verify_ledger"]

log = logging.getLogger(__name__)


class SeedSummary(dict):
    """Rows written per table (a plain ``{table: rows}``), and what the ledger check compared
    (``ledger_check``): an attribute, not a key, so that every key is still a table."""

    ledger_check: LedgerCheck
    loyalty_seconds: float = 0.0


def seed_database(
    engine: Engine,
    *,
    customers: int,
    seed: int = 1,
    batch: int = 5000,
    progress: Callable[[int], object] | None = None,
    rebuild_indexes: bool | None = None,
    parallel: bool | None = None,
) -> SeedSummary:
    """Insert ``customers`` customers with all their related rows; return rows per table.

    Ids, references and document numbers continue after what is already there. Indexes are
    dropped and re-created around large loads (``rebuild_indexes`` forces the choice). Rows
    are generated in a forked child process while this one writes (``parallel``, by default
    on Linux when there is more than one batch); the rows are the same either way.

    The loyalty scores of the new customers are worked out from their bookings
    (``crm.loyalty.refresh``, one set-based UPDATE, timed in ``loyalty_seconds``). Then the
    stored ledger of the new customers is compared with the documents by
    ``crm.ledger`` itself (``demo.check``): ``LedgerMismatch`` if anything differs.
    """
    if customers < 0:
        raise ValueError("customers must not be negative")
    loader = loader_for(engine)
    today = date.today()
    counts = SeedSummary.fromkeys(TABLES, 0)
    # The dashboard's business-wide figures: their triggers would fire for every row loaded,
    # so they go for the load and the figures are rebuilt from the documents after it.
    with engine.begin() as conn:
        ledger_totals.drop_triggers(conn)
    try:
        with loader:
            start = loader.start()
            existing = start["existing_customers"]
            big = rebuild_indexes if rebuild_indexes is not None else (
                customers >= BIG_LOAD and customers * 2 >= existing)
            generator = Generator(seed, customers, start, today, loader.float_money,
                                  start["tag_ids"], start["authors"])
            clock = time.perf_counter()
            loader.before_load(big, start["ids"]["customer"], existing)
            log.info("prepared (big load: %s) in %.1f s", big, time.perf_counter() - clock)
            if parallel is None:
                parallel = customers > batch and can_fork()
            made = batches_in_child(generator, customers, batch) if parallel else batches(
                generator, customers, batch)
            writing = 0.0
            clock = time.perf_counter()
            for n, rows, seq in made:
                started = time.perf_counter()
                loader.write(rows, seq)
                writing += time.perf_counter() - started
                for table, table_rows in rows.items():
                    counts[table] += len(table_rows)
                del rows
                if progress is not None:
                    progress(n)
            log.info("generated and written in %.1f s (writing %.1f s, parallel: %s)",
                     time.perf_counter() - clock, writing, parallel)
            loader.number_in_date_order(start)
            loader.finish()
    finally:
        with engine.begin() as conn:
            ledger_totals.rebuild(conn)
    counts["tag"] = start["tags_created"]
    first = start["ids"]["customer"]
    counts.loyalty_seconds = refresh_loyalty(engine, None if existing == 0 else first, today)
    clock = time.perf_counter()
    # Into an empty database the new customers are all there is: the whole-table check
    # (one pass, the very check of ``flask crm check-ledger``) rather than a list of ids.
    counts.ledger_check = verify_ledger(
        engine, None if existing == 0 else range(first, first + customers), today=today)
    log.info("%s (%.1f s)", counts.ledger_check.line(), time.perf_counter() - clock)
    return counts


def refresh_loyalty(engine: Engine, first: int | None, today: date) -> float:
    """Store the loyalty score of every customer from id ``first`` on (all when None) in one
    set-based UPDATE; return the seconds it took."""
    clock = time.perf_counter()
    with Session(engine) as session:
        scope = None if first is None else select(Customer.id).where(Customer.id >= first)
        changed = loyalty.refresh(session, scope, today=today)
        session.commit()
    seconds = time.perf_counter() - clock
    log.info("loyalty scores of %d customers stored in %.1f s", changed, seconds)
    return seconds
