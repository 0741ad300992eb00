"""The demo seed (``demo``): deterministic, realistic in shape, consistent with the ledger.

Runs on SQLite always and on PostgreSQL as well when CRM_TEST_DATABASE_URL is set (each
PostgreSQL database here is created and dropped by this module). Fixtures are local to this
module on purpose (their names do not clash with tests/conftest.py).
"""

import os
import re
import uuid
from collections import Counter
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from crm import create_app, ledger, loyalty
from crm.validation import normalize_email, normalize_phone
from demo.customers import planted_duplicate_pairs
from demo.seeding import seed_database

SEED = 7
COUNT = 300
PG_BASE = os.environ.get("CRM_TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_BASE else [])
POSTCODE = re.compile(r"^[A-Z]{1,2}[0-9]{1,2}[A-Z]? [0-9][A-Z]{2}$")


class _Databases:
    """Fresh migrated databases; PostgreSQL ones are dropped at the end."""

    def __init__(self, tmp_path_factory) -> None:
        self.tmp = tmp_path_factory
        self.pg_names: list[str] = []

    def new(self, backend: str) -> str:
        if backend == "sqlite":
            url = f"sqlite:///{self.tmp.mktemp('seed') / 'seed.sqlite'}"
        else:
            worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
            name = f"crm_seed_test_{worker}_{uuid.uuid4().hex[:6]}"
            self._admin(f'CREATE DATABASE "{name}"')
            self.pg_names.append(name)
            url = make_url(PG_BASE).set(database=name).render_as_string(hide_password=False)
        from flask_migrate import upgrade

        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
        with app.app_context():
            upgrade()
            from crm.extensions import db

            db.engine.dispose()
        return url

    def _admin(self, sql: str) -> None:
        admin = create_engine(make_url(PG_BASE), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(sql))
        admin.dispose()

    def close(self) -> None:
        for name in self.pg_names:
            self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def databases(tmp_path_factory):
    made = _Databases(tmp_path_factory)
    yield made
    made.close()


@pytest.fixture(scope="module", params=BACKENDS)
def seeded(request, databases):
    """One database per backend with COUNT customers of SEED, and the summary."""
    url = databases.new(request.param)
    engine = create_engine(url)
    summary = seed_database(engine, customers=COUNT, seed=SEED, batch=120, parallel=False)
    yield engine, summary
    engine.dispose()


def _rows(engine, table: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(f'SELECT * FROM "{table}" ORDER BY 1, 2'))]  # noqa: S608


def _scalar(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_same_seed_gives_the_same_rows_whatever_the_batch_size(backend, databases):
    first, second = databases.new(backend), databases.new(backend)
    engines = [create_engine(first), create_engine(second)]
    seed_database(engines[0], customers=COUNT, seed=SEED, batch=COUNT, parallel=False)
    # a forked generator and small batches must give the very same rows
    seed_database(engines[1], customers=COUNT, seed=SEED, batch=100, parallel=True)
    for table in ("customer", "contact", "invoice", "invoice_line", "payment", "allocation",
                  "booking", "work_address", "credit_note", "customer_tag"):
        assert _rows(engines[0], table) == _rows(engines[1], table), table
    for engine in engines:
        engine.dispose()


def test_row_counts_have_the_designed_proportions(seeded):
    engine, summary = seeded
    assert summary["customer"] == COUNT
    assert summary["tag"] == 12
    for table, (low, high) in {
        "contact": (1.2, 1.8), "work_address": (0.8, 1.3), "service_reminder": (0.3, 0.8),
        "lead": (0.15, 0.5), "booking": (0.8, 1.4), "note": (0.7, 1.3), "invoice": (2.4, 3.6),
        "payment": (1.1, 2.0), "credit_note": (0.03, 0.2), "customer_tag": (0.2, 0.7),
    }.items():
        assert low <= summary[table] / COUNT <= high, table
    for table, rows in summary.items():
        if table != "tag":
            assert _scalar(engine, f'SELECT count(*) FROM "{table}"') == rows, table  # noqa: S608


def test_every_kind_type_and_status_is_present(seeded):
    engine, _ = seeded
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT kind, customer_type, status FROM customer")).all()
    kinds, types, statuses = (Counter(r[i] for r in rows) for i in range(3))
    assert set(kinds) == {"lead", "prospect", "client"}
    assert set(types) == {"private", "company", "landlord"}
    assert set(statuses) == {"active", "dormant", "archived"}
    assert kinds["client"] > kinds["prospect"] > 0
    assert types["private"] > types["company"] > 0


def test_customer_fields_are_valid_and_normalized(seeded):
    engine, _ = seeded
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT reference, customer_type, first_name, surname, company_name, email, phone, "
            "postcode, address_line_1, country, search_text, version FROM customer ORDER BY id"
        )).all()
    with_email = 0
    for reference, ctype, _first, surname, company, email, phone, postcode, line1, country, \
            search_text, version in rows:
        assert re.fullmatch(r"C-\d{6}", reference)
        assert (company if ctype == "company" else surname)
        if email:
            with_email += 1
            assert normalize_email(email) == email
        if phone:
            assert normalize_phone(phone) == phone
        assert POSTCODE.match(postcode), postcode
        assert line1 and country == "GB" and version == 1
        assert reference.lower() in search_text and postcode.lower() in search_text
    assert 0.85 * len(rows) <= with_email < len(rows)


def test_at_most_one_primary_contact_and_most_have_one(seeded):
    engine, _ = seeded
    with engine.connect() as conn:
        primaries = conn.execute(text(
            "SELECT customer_id, count(*) FROM contact WHERE is_primary GROUP BY customer_id"
        )).all()
    assert all(n == 1 for _, n in primaries)
    assert 0.8 * COUNT <= len(primaries) < COUNT


def test_documents_and_allocations_are_consistent(seeded):
    engine, _ = seeded
    checks = {
        "draft invoices have no number, others do": "SELECT count(*) FROM invoice WHERE "
        "(status = 'draft') = (number IS NOT NULL)",
        "due on or after issue": "SELECT count(*) FROM invoice WHERE due_date < issue_date",
        "bookings end after they start": "SELECT count(*) FROM booking WHERE ends_at < starts_at",
        "invoice totals are the sum of lines": "SELECT count(*) FROM invoice i WHERE "
        "abs(i.subtotal - (SELECT sum(net_amount) FROM invoice_line l "
        "WHERE l.invoice_id = i.id)) > 0.001 OR abs(i.total - i.subtotal - i.tax_total) > 0.001",
        "allocations only to issued invoices": "SELECT count(*) FROM allocation a JOIN invoice i "
        "ON i.id = a.invoice_id WHERE i.status <> 'issued'",
        "never more allocated than the invoice total": "SELECT count(*) FROM invoice i WHERE "
        "(SELECT sum(amount) FROM allocation a WHERE a.invoice_id = i.id) > i.total + 0.001",
        "never more allocated than the payment": "SELECT count(*) FROM payment p WHERE "
        "(SELECT sum(amount) FROM allocation a WHERE a.payment_id = p.id) > p.amount + 0.001",
        "never more allocated than the credit note": "SELECT count(*) FROM credit_note c WHERE "
        "(SELECT sum(amount) FROM allocation a WHERE a.credit_note_id = c.id) > c.total + 0.001",
        "allocations stay within the customer": "SELECT count(*) FROM allocation a "
        "JOIN invoice i ON i.id = a.invoice_id LEFT JOIN payment p ON p.id = a.payment_id "
        "LEFT JOIN credit_note c ON c.id = a.credit_note_id "
        "WHERE coalesce(p.customer_id, c.customer_id) <> i.customer_id",
        "landlords are landlord-type customers created earlier": "SELECT count(*) FROM "
        "work_address w JOIN customer l ON l.id = w.landlord_id "
        "WHERE l.customer_type <> 'landlord' OR l.id >= w.customer_id",
        "won leads point at their customer": "SELECT count(*) FROM lead WHERE "
        "(status = 'won') <> (customer_id IS NOT NULL)",
    }
    for what, sql in checks.items():
        assert _scalar(engine, sql) == 0, what
    assert _scalar(engine, "SELECT count(*) FROM work_address WHERE landlord_id IS NOT NULL") > 0
    assert _scalar(engine, "SELECT count(*) FROM allocation WHERE payment_id IS NULL") > 0
    assert _scalar(engine, "SELECT count(*) FROM payment p WHERE NOT EXISTS "
                           "(SELECT 1 FROM allocation a WHERE a.payment_id = p.id)") > 0
    statuses = dict(_rows(engine, "document_sequence"))
    assert statuses["customer"] == COUNT + 1
    assert statuses["invoice"] == 1 + _scalar(engine, "SELECT count(*) FROM invoice "
                                                      "WHERE number IS NOT NULL")


def test_stored_ledger_agrees_with_the_documents(seeded):
    engine, _ = seeded
    with Session(engine) as session:
        found, total = ledger.differences(session)
        assert (found, total) == ([], 0)
        overdue = session.execute(text(
            "SELECT count(*) FROM customer WHERE overdue_amount > 0")).scalar()
        credit = session.execute(text(
            "SELECT count(*) FROM customer WHERE account_credit > 0")).scalar()
    assert overdue > 0 and credit > 0


def test_seeded_loyalty_scores_agree_with_the_bookings(seeded):
    engine, _ = seeded
    with Session(engine) as session:
        assert loyalty.check(session, today=date.today()) == []
        scores = session.execute(text("SELECT loyalty_score FROM customer")).scalars().all()
    assert max(scores) > 50 and 0 in scores


def test_some_invoices_are_overdue_in_every_aging_bucket(seeded):
    engine, _ = seeded
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT due_date FROM invoice WHERE status = 'issued' AND outstanding > 0.005"
        )).scalars().all()
    from datetime import date

    today = date.today()
    ages = [(today - (d if isinstance(d, date) else date.fromisoformat(d))).days for d in rows]
    buckets = Counter(
        "current" if a <= 0 else "1-30" if a <= 30 else "31-60" if a <= 60 else "61-90"
        if a <= 90 else "90+" for a in ages
    )
    assert set(buckets) == {"current", "1-30", "31-60", "61-90", "90+"}


def test_planted_duplicates_match_the_database(seeded):
    engine, _ = seeded
    pairs = planted_duplicate_pairs(COUNT, SEED)
    assert pairs
    with engine.connect() as conn:
        people = {r[0]: r[1:] for r in conn.execute(text(
            "SELECT id, email, phone, surname, postcode FROM customer"))}
    for original, duplicate in pairs:
        assert original < duplicate
        a, b = people[original], people[duplicate]
        same_email = a[0] is not None and a[0] == b[0]
        same_phone = a[1] is not None and a[1] == b[1]
        same_name = a[2] is not None and (a[2], a[3]) == (b[2], b[3])
        assert same_email or same_phone or same_name, (original, duplicate, a, b)


def test_planted_duplicates_are_about_two_percent():
    pairs = planted_duplicate_pairs(3000, 11)
    assert 30 <= len(pairs) <= 90
    assert len({d for _, d in pairs}) == len(pairs)
    assert not {o for o, _ in pairs} & {d for _, d in pairs}  # originals are not duplicates


def test_search_index_holds_the_seeded_customers(seeded):
    engine, _ = seeded
    surname = _scalar(engine, "SELECT surname FROM customer WHERE surname IS NOT NULL "
                              "ORDER BY id LIMIT 1").lower()
    expected = _scalar(engine, "SELECT count(*) FROM customer WHERE search_text LIKE :t",
                       t=f"%{surname}%")
    if engine.dialect.name == "sqlite":
        found = _scalar(engine, "SELECT count(*) FROM customer_fts WHERE customer_fts MATCH :t",
                        t=f'"{surname}"')
        triggers = _scalar(engine, "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' "
                                   "AND name LIKE 'customer_fts_%'")
        assert triggers == 3
    else:
        found = _scalar(engine, "SELECT count(*) FROM customer WHERE search_text LIKE :t",
                        t=f"%{surname}%")
    assert found == expected > 0


def _schema(engine) -> list:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            return conn.execute(text(
                "SELECT type, name, sql FROM sqlite_master WHERE type IN ('index', 'trigger') "
                "ORDER BY name")).all()
        indexes = conn.execute(text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            "ORDER BY 1")).all()
        keys = conn.execute(text(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
            "FROM pg_constraint WHERE contype = 'f' ORDER BY 1, 2")).all()
        return indexes + keys


@pytest.mark.parametrize("backend", BACKENDS)
def test_ids_continue_after_existing_rows_and_indexes_come_back(backend, databases):
    from crm.extensions import db
    from crm.models import Customer, Invoice, InvoiceLine, User

    url = databases.new(backend)
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    with app.app_context():
        owner = User(email="owner@example.com", role="owner", password_hash="x")
        by_hand = Customer(surname="Hand", first_name="Made", email="made@example.com",
                           address_line_1="1 Test Street", postcode="AB1 2CD")
        db.session.add_all([owner, by_hand])
        db.session.flush()
        invoice = Invoice(customer_id=by_hand.id, number="INV-000001", status="issued",
                          issue_date=func.current_date(), due_date=func.current_date())
        invoice.lines = [InvoiceLine(description="Work", quantity=Decimal("1"),
                                     unit_price=Decimal("10.00"), tax_rate=Decimal("0"))]
        db.session.add(invoice)
        db.session.execute(text(
            "UPDATE document_sequence SET next_value = 2 WHERE name = 'invoice'"))
        db.session.commit()
        assert by_hand.reference == "C-000001"
        db.engine.dispose()
    engine = create_engine(url)
    before = _schema(engine)
    summary = seed_database(engine, customers=60, seed=3, rebuild_indexes=True,
                            parallel=False)
    assert _schema(engine) == before
    with engine.connect() as conn:
        ids = conn.execute(text("SELECT id, reference FROM customer ORDER BY id")).all()
        assert ids[0] == (1, "C-000001")
        assert [i for i, _ in ids] == list(range(1, 62))
        assert ids[-1][1] == "C-000061"
        assert conn.execute(text(
            "SELECT min(number) FROM invoice WHERE id > 1")).scalar() == "INV-000002"
        assert conn.execute(text(
            "SELECT count(*) FROM note WHERE author_id IS NOT NULL")).scalar() > 0
    assert summary["customer"] == 60
    with Session(engine) as session:
        assert ledger.differences(session) == ([], 0)
    engine.dispose()
    # the application's own inserts carry on after the seeded ids and numbers
    with app.app_context():
        later = Customer(surname="Later", address_line_1="2 Test Street", postcode="AB1 2CD")
        db.session.add(later)
        db.session.commit()
        assert later.id == 62 and later.reference == "C-000062"
        assert db.session.execute(select(func.count()).select_from(Customer)).scalar() == 62
        db.engine.dispose()
