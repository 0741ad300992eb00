"""The demo seed numbers documents as issuing them would have: in issue-date order.

Numbers are given at issue, so in a seeded database the invoices (and credit notes) read by
number have non-decreasing issue dates, the numbers run without a gap from where the
sequence stood, and the sequence continues after the last one. A second seed into the same
database continues the numbering.
"""

import os
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from crm import create_app
from demo.seeding import seed_database

PG_BASE = os.environ.get("CRM_TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_BASE else [])
DOCUMENTS = (("invoice", "INV-"), ("credit_note", "CN-"))


def _admin(sql: str) -> None:
    admin = create_engine(make_url(PG_BASE), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(sql))
    admin.dispose()


@pytest.fixture(params=BACKENDS)
def engine(request, tmp_path):
    name = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'seed.sqlite'}"
    else:
        name = f"crm_seed_numbers_{uuid.uuid4().hex[:8]}"
        _admin(f'CREATE DATABASE "{name}"')
        url = make_url(PG_BASE).set(database=name).render_as_string(hide_password=False)
    from flask_migrate import upgrade

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    with app.app_context():
        upgrade()
        from crm.extensions import db

        db.engine.dispose()
    made = create_engine(url)
    yield made
    made.dispose()
    if name:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _numbered(engine, table: str) -> list[tuple[str, str]]:
    """(number, issue date) of every numbered document, in number order."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            f'SELECT number, issue_date FROM "{table}" WHERE number IS NOT NULL'  # noqa: S608
        )).all()
    return sorted(((n, str(d)) for n, d in rows), key=lambda row: row[0])


def _next_value(engine, name: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT next_value FROM document_sequence WHERE name = :n"),
                            {"n": name}).scalar()


def test_seeded_invoices_read_by_number_have_non_decreasing_issue_dates(engine):
    seed_database(engine, customers=150, seed=3, batch=40, parallel=False)

    for table, prefix in DOCUMENTS:
        rows = _numbered(engine, table)
        assert len(rows) > (100 if table == "invoice" else 3), table
        dates = [issued for _, issued in rows]
        out_of_order = [(a, b) for a, b in zip(rows, rows[1:], strict=False) if b[1] < a[1]]
        assert out_of_order == [], (table, out_of_order[:3])
        assert dates == sorted(dates)
        # gap-free from 1, and the sequence carries on after the last
        assert [n for n, _ in rows] == [f"{prefix}{k:06d}" for k in range(1, len(rows) + 1)]
        assert _next_value(engine, table) == len(rows) + 1


def test_a_second_seed_continues_the_numbers_in_date_order(engine):
    seed_database(engine, customers=60, seed=3, batch=25, parallel=False)
    before = {table: _numbered(engine, table) for table, _ in DOCUMENTS}

    seed_database(engine, customers=60, seed=4, batch=25, parallel=False)

    for table, prefix in DOCUMENTS:
        after = _numbered(engine, table)
        assert after[:len(before[table])] == before[table]  # the first load's are untouched
        added = after[len(before[table]):]
        assert [n for n, _ in after] == [f"{prefix}{k:06d}" for k in range(1, len(after) + 1)]
        assert [d for _, d in added] == sorted(d for _, d in added)
        assert _next_value(engine, table) == len(after) + 1
