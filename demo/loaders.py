"""Writing the generated rows: plain DBAPI, one loader per database.

The ORM would be two orders of magnitude too slow for a million customers, so rows go
straight to the driver (``executemany`` on SQLite, ``COPY`` on PostgreSQL) with explicit ids
continuing from ``max(id)`` of each table and document numbers from ``document_sequence``.
Large loads drop the secondary indexes and foreign keys first and re-create them exactly as
they were (read back from the catalogue) afterwards, so the schema after a seed is the schema
the migrations made."""

from __future__ import annotations

import logging
import time
from datetime import date

from sqlalchemy import text
from sqlalchemy.engine import Engine

from crm.models.sequence import PREFIXES
from crm.search_index import create_search_index, disable_sqlite_triggers, rebuild_sqlite_index
from demo.tables import COLUMNS, ID_TABLES, TABLES
from demo.vocabulary import TAG_POOL

log = logging.getLogger(__name__)

# The documents numbered when issued: (table, document sequence).
NUMBERED = (("invoice", "invoice"), ("credit_note", "credit_note"))
RENUMBER = "seed_renumber"
BIG_LOAD = 20_000  # from this many customers (and at least half what is there) indexes are
#                    dropped and re-created around the load


def _quote(name: str) -> str:
    return f'"{name}"'


class _phase:
    """Log how long a step of the load took."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self):
        self.started = time.perf_counter()

    def __exit__(self, *exc) -> None:
        log.info("%s: %.1f s", self.what, time.perf_counter() - self.started)


class _Loader:
    """What both databases share: reading the starting point, tags and sequences."""

    float_money = False

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # subclasses: query(sql, params) -> rows, execute(sql, params), commit(),
    # write(rows_by_table), drop_indexes(), restore_indexes(), finish()

    def start(self) -> dict:
        ids = {}
        for table in ID_TABLES:
            highest = self.query(f"SELECT max(id) FROM {_quote(table)}")[0][0]  # noqa: S608
            ids[table] = (highest or 0) + 1
        seq = {name: value for name, value in
               self.query("SELECT name, next_value FROM document_sequence")}
        for name in PREFIXES:
            if name not in seq:
                self.execute(
                    "INSERT INTO document_sequence (name, next_value) "  # noqa: S608
                    f"VALUES ({self.mark}, {self.mark})", (name, 1))
                seq[name] = 1
        tags = {name: tag_id for tag_id, name in self.query("SELECT id, name FROM tag")}
        created = 0
        now = date.today().isoformat() + " 09:00:00.000000"
        for name, colour in TAG_POOL:
            if name not in tags:
                tags[name] = ids["tag"]
                ids["tag"] += 1
                created += 1
                m = self.mark
                self.execute(
                    "INSERT INTO tag (id, name, colour, created_at, updated_at) "  # noqa: S608
                    f"VALUES ({m}, {m}, {m}, {m}, {m})",
                    (tags[name], name, colour, now, now),
                )
        self.commit()
        customers = self.query("SELECT count(*) FROM customer")[0][0]
        authors = [row[0] for row in self.query(
            "SELECT id FROM \"user\" WHERE role IN ('owner', 'admin', 'coordinator') ORDER BY id")]
        return {
            "ids": ids, "seq": seq, "tag_ids": [tags[name] for name, _ in TAG_POOL],
            "tags_created": created, "existing_customers": customers, "authors": authors,
        }

    def save_sequences(self, seq: dict) -> None:
        for name, value in seq.items():
            self.execute(f"UPDATE document_sequence SET next_value = {self.mark} "  # noqa: S608
                         f"WHERE name = {self.mark}", (value, name))

    def number_in_date_order(self, start: dict) -> None:
        """Give the documents of this load their numbers again, in the order they were
        issued, as issuing them one by one would have. The generator numbers a customer's
        documents as it makes them, customer after customer, so numbers and dates disagreed
        across customers. The load used exactly the numbers from ``start["seq"]`` on: they
        are handed out again by (issue date, id), in two steps, because numbers are unique at
        every moment (first each row holds a placeholder made of its id)."""
        m = self.mark
        for table, sequence in NUMBERED:
            with _phase(f"{table} numbers in issue-date order"):
                self.execute(f"DROP TABLE IF EXISTS {RENUMBER}")
                self.execute(
                    f"CREATE TEMPORARY TABLE {RENUMBER} AS "  # noqa: S608
                    f"SELECT id, {self.padded('ROW_NUMBER() OVER (ORDER BY issue_date, id)')} "
                    f"AS n FROM {_quote(table)} WHERE id >= {m} AND number IS NOT NULL",
                    (start["seq"][sequence] - 1, start["ids"][table]))
                self.execute(f"UPDATE {_quote(table)} SET number = '#' || id "  # noqa: S608
                             f"WHERE id IN (SELECT id FROM {RENUMBER})")
                self.execute(
                    f"UPDATE {_quote(table)} SET number = {m} || {RENUMBER}.n "  # noqa: S608
                    f"FROM {RENUMBER} WHERE {RENUMBER}.id = {_quote(table)}.id",
                    (PREFIXES[sequence],))
                self.execute(f"DROP TABLE {RENUMBER}")
                self.commit()


class _SqliteLoader(_Loader):
    float_money = True
    mark = "?"

    @staticmethod
    def padded(rank: str) -> str:
        """``rank`` plus a parameter (the last number used before the load), as a document
        number's digits: at least six, as ``crm.models.sequence`` writes them."""
        return f"printf('%06d', {rank} + ?)"

    def __enter__(self):
        self.conn = self.engine.connect()
        self.raw = self.conn.connection.driver_connection
        self.raw.commit()
        cur = self.raw.cursor()
        self.saved = {p: cur.execute(f"PRAGMA {p}").fetchone()[0]
                      for p in ("foreign_keys", "synchronous", "cache_size", "temp_store")}
        for pragma in ("foreign_keys=OFF", "synchronous=OFF", "cache_size=-524288",
                       "temp_store=MEMORY"):
            cur.execute(f"PRAGMA {pragma}")
        self.dropped: list[str] = []
        self.first_customer_id = None
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.raw.rollback()
            self.restore_indexes()
            cur = self.raw.cursor()
            for pragma, value in self.saved.items():
                cur.execute(f"PRAGMA {pragma}={value}")
        finally:
            self.conn.close()

    def query(self, sql, params=()):
        return self.raw.execute(sql, params).fetchall()

    def execute(self, sql, params=()):
        self.raw.execute(sql, params)

    def commit(self):
        self.raw.commit()

    def before_load(self, big: bool, first_customer_id: int, existing: int) -> None:
        self.first_customer_id = first_customer_id
        self.fts_rebuild = existing == 0
        with self.conn.begin():
            disable_sqlite_triggers(self.conn)
        if big:
            names = ", ".join(f"'{t}'" for t in TABLES)
            rows = self.query(
                "SELECT name, sql FROM sqlite_master "  # noqa: S608
                "WHERE type = 'index' AND sql IS NOT NULL AND sql NOT LIKE 'CREATE UNIQUE%' "
                f"AND tbl_name IN ({names}) ORDER BY name")
            for name, sql in rows:
                self.raw.execute(f"DROP INDEX {_quote(name)}")
                self.dropped.append(sql)
            self.raw.commit()

    def write(self, rows: dict[str, list], seq: dict) -> None:
        cur = self.raw.cursor()
        for table in TABLES:
            batch = rows[table]
            if batch:
                columns = COLUMNS[table]
                cur.executemany(
                    f"INSERT INTO {_quote(table)} ({', '.join(columns)}) "  # noqa: S608
                    f"VALUES ({', '.join('?' * len(columns))})",
                    batch,
                )
        self.save_sequences(seq)
        self.raw.commit()

    def restore_indexes(self) -> None:
        while self.dropped:
            with _phase(self.dropped[0].split(" ON ")[0]):
                self.raw.execute(self.dropped[0])
                self.raw.commit()
            self.dropped.pop(0)

    def finish(self) -> None:
        self.restore_indexes()
        with _phase("search index"), self.conn.begin():
            if self.fts_rebuild:
                rebuild_sqlite_index(self.conn)
            else:
                self.conn.execute(text(
                    "INSERT INTO customer_fts(rowid, search_text) "
                    "SELECT id, search_text FROM customer WHERE id >= :first"
                ), {"first": self.first_customer_id})
                create_search_index(self.conn)
        with _phase("ANALYZE"):
            self.raw.execute("ANALYZE")
            self.raw.commit()
        with _phase("checkpoint"):
            self.raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")


class _PostgresLoader(_Loader):
    mark = "%s"

    @staticmethod
    def padded(rank: str) -> str:
        """As ``_SqliteLoader.padded`` (lpad alone would cut a seventh digit off)."""
        return f"to_char({rank} + %s, 'FM999999999000000')"

    def __enter__(self):
        self.raw = self.engine.raw_connection()
        self.pg = self.raw.driver_connection
        self.pg.rollback()
        with self.pg.cursor() as cur:
            cur.execute("SET synchronous_commit TO off")
            cur.execute("SET maintenance_work_mem TO '1GB'")
        self.pg.commit()
        self.dropped_indexes: list[str] = []
        self.dropped_keys: list[tuple[str, str, str]] = []
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.pg.rollback()
            self.restore_indexes()
            with self.pg.cursor() as cur:
                cur.execute("RESET synchronous_commit")
                cur.execute("RESET maintenance_work_mem")
            self.pg.commit()
        finally:
            self.raw.close()

    def query(self, sql, params=()):
        with self.pg.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()

    def execute(self, sql, params=()):
        with self.pg.cursor() as cur:
            cur.execute(sql, params)

    def commit(self):
        self.pg.commit()

    def before_load(self, big: bool, first_customer_id: int, existing: int) -> None:
        if not big:
            return
        tables = list(TABLES)
        self.dropped_keys = [tuple(row) for row in self.query(
            "SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid) "
            "FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
            "WHERE c.contype = 'f' AND t.relname = ANY(%s) "
            "AND t.relnamespace = current_schema()::regnamespace ORDER BY 1, 2", (tables,))]
        self.dropped_indexes = [row[0] for row in self.query(
            "SELECT pg_get_indexdef(x.indexrelid) FROM pg_index x "
            "JOIN pg_class t ON t.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE t.relname = ANY(%s) AND t.relnamespace = current_schema()::regnamespace "
            "AND NOT x.indisunique AND NOT x.indisprimary ORDER BY i.relname", (tables,))]
        with self.pg.cursor() as cur:
            for table, name, _ in self.dropped_keys:
                cur.execute(f"ALTER TABLE {table} DROP CONSTRAINT {_quote(name)}")
            for definition in self.dropped_indexes:
                name = definition.split(" INDEX ", 1)[1].split(" ON ", 1)[0]
                cur.execute(f"DROP INDEX {name}")
        self.pg.commit()

    def write(self, rows: dict[str, list], seq: dict) -> None:
        with self.pg.cursor() as cur:
            for table in TABLES:
                batch = rows[table]
                if not batch:
                    continue
                columns = ", ".join(COLUMNS[table])
                with cur.copy(f"COPY {_quote(table)} ({columns}) FROM STDIN") as copy:
                    write_row = copy.write_row
                    for row in batch:
                        write_row(row)
        self.save_sequences(seq)
        self.pg.commit()

    def restore_indexes(self) -> None:
        with self.pg.cursor() as cur:
            while self.dropped_indexes:
                with _phase(self.dropped_indexes[0].split(" USING ")[0]):
                    cur.execute(self.dropped_indexes[0])
                    self.pg.commit()
                self.dropped_indexes.pop(0)
            while self.dropped_keys:
                table, name, definition = self.dropped_keys[0]
                with _phase(f"foreign key {name}"):
                    cur.execute(f"ALTER TABLE {table} ADD CONSTRAINT {_quote(name)} {definition}")
                    self.pg.commit()
                self.dropped_keys.pop(0)

    def finish(self) -> None:
        self.restore_indexes()
        with self.pg.cursor() as cur:
            for table in ID_TABLES:
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence(%s, 'id'), max(id)) "  # noqa: S608
                    f"FROM {_quote(table)} HAVING max(id) IS NOT NULL", (_quote(table),))
        self.pg.commit()
        self.pg.autocommit = True
        try:
            with _phase("VACUUM ANALYZE"), self.pg.cursor() as cur:
                cur.execute("VACUUM ANALYZE " + ", ".join(_quote(t) for t in ID_TABLES +
                                                           ("customer_tag", "document_sequence")))
        finally:
            self.pg.autocommit = False


def loader_for(engine: Engine) -> _Loader:
    """The loader of the engine's database (a context manager)."""
    dialect = engine.dialect.name
    if dialect == "sqlite":
        return _SqliteLoader(engine)
    if dialect == "postgresql":
        return _PostgresLoader(engine)
    raise ValueError(f"Seeding is not supported on {dialect}.")
