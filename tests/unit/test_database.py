"""The database set-up the design relies on: SQLite in WAL mode with a busy timeout (so
concurrent writers wait), and gap-free document numbers that concurrent transactions never
share."""

import sqlite3
import threading

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from crm.extensions import db
from crm.models.sequence import next_number, peek
from tests.factories import make_customer


def _require_sqlite():
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite only")


# --- SQLite -------------------------------------------------------------------------------

def test_sqlite_connections_use_wal_a_busy_timeout_and_foreign_keys(session):
    _require_sqlite()

    assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    assert session.execute(text("PRAGMA busy_timeout")).scalar() > 0
    assert session.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_the_sqlite_file_itself_is_in_wal_mode(session):
    """WAL is a property of the file: any other program opening it (a backup, the sqlite3
    shell, a second worker) works with the same journal."""
    _require_sqlite()
    path = make_url(str(db.engine.url)).database

    other = sqlite3.connect(path)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        other.close()


def test_every_sqlite_connection_zeroes_what_it_deletes():
    """Erased data must not stay readable in free space of the file. Some builds of SQLite
    (this machine's among them) zero deleted content by default, others do not: every
    connection the application opens asks for it."""
    from crm import _sqlite_pragmas

    raw = sqlite3.connect(":memory:")
    try:
        raw.execute("PRAGMA secure_delete=OFF")
        _sqlite_pragmas(raw, None)
        assert raw.execute("PRAGMA secure_delete").fetchone()[0] == 1
    finally:
        raw.close()


# --- document numbers ---------------------------------------------------------------------

def test_numbers_follow_each_other_per_document_type(session):
    assert [next_number(session, "customer") for _ in range(3)] == [
        "C-000001", "C-000002", "C-000003"]
    assert next_number(session, "invoice") == "INV-000001"
    assert next_number(session, "credit_note") == "CN-000001"
    assert next_number(session, "booking") == "B-000001"
    session.commit()
    assert peek(session, "customer") == 4


def test_a_rolled_back_transaction_gives_its_number_back(session):
    assert next_number(session, "invoice") == "INV-000001"
    session.commit()
    assert next_number(session, "invoice") == "INV-000002"
    session.rollback()

    assert next_number(session, "invoice") == "INV-000002"


def test_new_customers_are_numbered_in_order_and_a_failed_save_leaves_no_gap(session):
    first = make_customer(session)
    session.commit()
    make_customer(session)
    session.rollback()
    second = make_customer(session)
    session.commit()

    assert (first.reference, second.reference) == ("C-000001", "C-000002")


def test_concurrent_transactions_never_share_a_number(app):
    """Four workers, each taking numbers in transactions of its own at the same time: every
    number is handed out once and none is skipped (on SQLite the writers queue behind the
    busy timeout instead of failing)."""
    workers, each = 4, 10
    with app.app_context():
        engine = db.engine
    start = threading.Barrier(workers)
    taken: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work():
        try:
            start.wait()
            for _ in range(each):
                with Session(engine) as own:
                    number = next_number(own, "invoice")
                    own.commit()
                with lock:
                    taken.append(number)
        except BaseException as exc:  # reported below, in the test's own thread
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(taken) == [f"INV-{n:06d}" for n in range(1, workers * each + 1)]
