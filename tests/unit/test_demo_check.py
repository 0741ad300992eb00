"""The seed's ledger check (``demo.check``): the figures the seed stores come from a Python copy
of crm/ledger.py's rules, and every seed ends with ``crm.ledger.differences`` over what it
wrote, all of it up to 100,000 customers and a spread sample above. Runs on the test
database of tests/conftest.py (PostgreSQL when CRM_TEST_DATABASE_URL is set)."""

from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

import demo.related
from crm import ledger
from crm.extensions import db
from demo.check import LedgerCheck, LedgerMismatch, sample_ids, verify_ledger
from demo.cli import register
from demo.seeding import seed_database

COUNT = 40


@pytest.fixture
def engine(app):
    with app.app_context():
        yield db.engine


def _seed(engine, customers: int = COUNT):
    return seed_database(engine, customers=customers, seed=5, batch=100, parallel=False)


def _customer(engine, sql: str, **params) -> tuple:
    with engine.connect() as conn:
        return tuple(conn.execute(text(sql), params).one())


def _execute(engine, sql: str, **params) -> None:
    with engine.begin() as conn:
        conn.execute(text(sql), params)


def test_a_clean_seed_passes_and_says_how_many_customers_were_checked(engine):
    summary = _seed(engine)
    assert summary.ledger_check == LedgerCheck(checked=COUNT, customers=COUNT)
    assert summary.ledger_check.line() == (
        f"Ledger check: all {COUNT} customers agree with crm.ledger.")
    assert set(summary) >= {"customer", "invoice", "tag"}  # still {table: rows}
    assert verify_ledger(engine) == LedgerCheck(COUNT, COUNT)


def test_a_corrupted_balance_fails_the_check_naming_the_customer(engine):
    _seed(engine)
    first, _ = _customer(engine, "SELECT min(id), 0 FROM customer")
    cid, reference = _customer(engine, "SELECT id, reference FROM customer "
                                       "ORDER BY id LIMIT 1 OFFSET 17")
    _execute(engine, "UPDATE customer SET balance = balance + 1.25 WHERE id = :id", id=cid)

    with pytest.raises(LedgerMismatch) as failed:
        verify_ledger(engine)
    message = str(failed.value)
    assert f"{reference}: balance stored" in message
    assert "1 difference(s) in 40 customers checked" in message
    assert [d.customer_id for d in failed.value.differences] == [cid]
    # the same check over the seeded ids only, and over ids that leave the customer out
    with pytest.raises(LedgerMismatch):
        verify_ledger(engine, range(first, first + COUNT))
    assert verify_ledger(engine, range(first, cid)) == LedgerCheck(cid - first, cid - first)


def test_the_invoice_check_is_limited_to_the_customers_asked_for(engine):
    _seed(engine)
    invoice, owner = _customer(engine, "SELECT id, customer_id FROM invoice "
                                       "WHERE status = 'issued' ORDER BY id LIMIT 1")
    other, _ = _customer(engine, "SELECT min(id), 0 FROM customer WHERE id <> :id", id=owner)
    _execute(engine, "UPDATE invoice SET outstanding = outstanding + 3 WHERE id = :id",
             id=invoice)
    with Session(engine) as session:
        found, total = ledger.differences(session, customer_ids=[owner])
        # the invoice, and the customer's figures read from its stored outstanding amount
        assert found[0].reference == f"invoice {invoice}" and total == len(found)
        assert {d.customer_id for d in found} == {owner}
        assert ledger.differences(session, customer_ids=[other]) == ([], 0)
        assert ledger.differences(session) == (found, total)
        assert ledger.differences(session, customer_ids=[]) == ([], 0)


def test_above_the_full_size_a_spread_sample_is_checked(engine):
    _seed(engine)
    first, last = _customer(engine, "SELECT min(id), max(id) FROM customer")
    picked = sample_ids(first, last, 8)
    check = verify_ledger(engine, full_up_to=10, sample=8)
    assert check == LedgerCheck(checked=8, customers=COUNT) and check.sampled
    assert "8 of 40 customers (a sample spread over the ids)" in check.line()
    # a difference outside the sample goes unseen, one inside it is found
    outside = next(i for i in range(first, last + 1) if i not in picked)
    _execute(engine, "UPDATE customer SET account_credit = 99 WHERE id = :id", id=outside)
    verify_ledger(engine, full_up_to=10, sample=8)
    _execute(engine, "UPDATE customer SET account_credit = 99 WHERE id = :id", id=picked[3])
    with pytest.raises(LedgerMismatch, match="account_credit stored"):
        verify_ledger(engine, full_up_to=10, sample=8)


def test_a_second_seed_checks_only_its_own_customers(engine):
    _seed(engine, 30)
    cid, _ = _customer(engine, "SELECT min(id), 0 FROM customer")
    # a figure the seed did not write: the next seed's check does not look at it
    _execute(engine, "UPDATE customer SET balance = balance + 1 WHERE id = :id", id=cid)
    summary = _seed(engine, 20)
    assert summary.ledger_check == LedgerCheck(checked=20, customers=20)


def test_the_sample_is_spread_over_the_ids_and_deterministic():
    ids = sample_ids(1, 1_000_000)
    assert len(ids) == 20_000 == len(set(ids))
    assert ids == sorted(ids) and ids[0] == 1 and ids[-1] == 1_000_000
    # one id in every slice of 50: no part of the range is left out
    assert [(i - 1) // 50 for i in ids] == list(range(20_000))
    assert max(b - a for a, b in zip(ids, ids[1:], strict=False)) < 100
    # not a fixed stride, which would land on the same place in every batch
    assert len({i % 5000 for i in ids}) > 1000
    assert sample_ids(1, 1_000_000) == ids
    assert sample_ids(101, 1_000_100) != [i + 100 for i in ids]
    assert sample_ids(7, 26, 50) == list(range(7, 27))  # fewer ids than the sample: all


def test_flask_crm_seed_reports_the_check(app):
    register(app)
    result = app.test_cli_runner().invoke(args=["crm", "seed", "--customers", "50"])
    assert result.exit_code == 0, result.output
    assert "customer: 50" in result.output
    assert "Ledger check: all 50 customers agree with crm.ledger." in result.output


def test_flask_crm_seed_fails_when_the_copy_of_the_rules_drifts(app, monkeypatch):
    """A copy of the ledger rules that forgets credit notes in the balance: the seed writes
    its rows, then exits non-zero naming the customers whose figures are wrong."""
    money_rows = demo.related.Generator.money_rows

    def drifted(self, cid, c, out):
        figures = money_rows(self, cid, c, out)
        credited = sum((Decimal(str(row[10])) for row in out["credit_note"]
                        if row[1] == cid and row[4] == "issued"), Decimal(0))
        return (figures[0] + credited, *figures[1:])

    monkeypatch.setattr(demo.related.Generator, "money_rows", drifted)
    register(app)
    result = app.test_cli_runner().invoke(args=["crm", "seed", "--customers", "200"])
    assert result.exit_code == 1
    assert "The seeded ledger disagrees with crm.ledger" in result.output
    assert ": balance stored" in result.output and "Ledger check" not in result.output
