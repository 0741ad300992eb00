"""Recording payments, allocating them and account credit, removing allocations."""

import threading
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from crm import ledger
from crm.actions import ActionError
from crm.actions import payment as actions
from crm.actions.payment import (
    allocate_credit,
    credit_sources,
    record_payment,
    remove_allocation,
    suggest_allocations,
)
from crm.extensions import db
from crm.models import Allocation, AuditEvent, CreditNote, Customer, Invoice, Payment, User
from tests import factories as f

D = Decimal
TODAY = date.today()


def _pay(session, owner, customer_id, amount="100.00", allocations=(), **overrides):
    values = dict(customer_id=customer_id, received_on=TODAY, method="bank_transfer",
                  reference="BACS 1", amount=amount, allocations=allocations, actor=owner)
    values.update(overrides)
    return record_payment(session, **values)


def _figures(session, customer_id) -> tuple:
    session.expire_all()
    customer = session.get(Customer, customer_id)
    return customer.balance, customer.account_credit, customer.overdue_amount


def _outstanding(session, invoice_id) -> Decimal:
    session.expire_all()
    return session.get(Invoice, invoice_id).outstanding


def _count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def _audit(session, verb) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.verb == verb)))


@pytest.fixture
def debtor(session):
    """A customer owing three invoices: 100.00 due 40 days ago, 50.00 due 10 days ago and
    80.00 due in 14 days (the oldest due first in this tuple of ids)."""
    customer = f.make_customer(session)
    old = f.make_invoice(session, customer, amount="100.00", days_overdue=40)
    middle = f.make_invoice(session, customer, amount="50.00", days_overdue=10)
    new = f.make_invoice(session, customer, amount="80.00")
    session.commit()
    return customer.id, (old.id, middle.id, new.id)


# --- record_payment ----------------------------------------------------------------------
def test_a_payment_pays_several_invoices_in_part_or_in_full_and_the_rest_is_credit(
        session, owner, debtor):
    customer_id, (old, middle, new) = debtor

    result = _pay(session, owner, customer_id, amount="200.00",
                  allocations=[(old, D("100.00")), (middle, D("30.00"))])
    session.commit()

    assert result.details["allocated"] == D("130.00")
    assert result.details["left_as_credit"] == D("70.00")
    assert "£70.00 left as account credit" in result.message
    assert _outstanding(session, old) == D("0.00")
    assert _outstanding(session, middle) == D("20.00")
    assert _outstanding(session, new) == D("80.00")
    # balance = 230 invoiced - 200 paid; what it still owes is 100, less 70 on account.
    assert _figures(session, customer_id) == (D("30.00"), D("70.00"), D("20.00"))
    payment = session.get(Payment, result.details["payment_id"])
    assert (payment.amount, payment.method, payment.reference) == (
        D("200.00"), "bank_transfer", "BACS 1")
    assert _count(session, Allocation) == 2
    assert ledger.differences(session) == ([], 0)


def test_a_payment_without_allocations_is_all_account_credit(session, owner, debtor):
    customer_id, _ = debtor

    result = _pay(session, owner, customer_id, amount="25.00")
    session.commit()

    assert (result.details["allocated"], result.details["left_as_credit"]) == (
        D("0.00"), D("25.00"))
    assert _figures(session, customer_id)[:2] == (D("205.00"), D("25.00"))


def test_the_same_invoice_named_twice_gets_the_sum_in_one_allocation(session, owner, debtor):
    customer_id, (old, _, _) = debtor

    _pay(session, owner, customer_id, allocations=[(old, "40.00"), (old, "60.00")])
    session.commit()

    assert [a.amount for a in session.scalars(select(Allocation))] == [D("100.00")]
    assert _outstanding(session, old) == D("0.00")


def test_recording_a_payment_is_audited_without_its_reference(session, owner, debtor):
    customer_id, (old, _, _) = debtor

    result = _pay(session, owner, customer_id, amount="120.00", reference="J SMITH",
                  allocations=[(old, D("100.00"))])
    session.commit()

    (event,) = _audit(session, "record_payment")
    assert (event.subject_type, event.subject_id, event.actor_id) == (
        "Customer", customer_id, owner.id)
    assert event.details == {
        "payment_id": result.details["payment_id"], "amount": "120.00",
        "method": "bank_transfer", "allocated": "100.00", "left_as_credit": "20.00",
        "invoices": ["INV-000001"],
    }
    assert "SMITH" not in str(event.details)


def _refused(session, fragment: str, call) -> None:
    with pytest.raises(ActionError, match=fragment):
        call()
    session.rollback()
    assert (_count(session, Payment), _count(session, Allocation)) == (0, 0)
    assert _audit(session, "record_payment") == []


@pytest.mark.parametrize(("amount", "fragment"), [
    ("0", "more than zero"), ("0.00", "more than zero"), ("-5.00", "must not be negative"),
    ("ten", "an amount such as"), ("10.555", "two decimal places"), ("NaN", "an amount such"),
])
def test_a_payment_amount_must_be_money_above_zero(session, owner, debtor, amount, fragment):
    customer_id, _ = debtor
    _refused(session, fragment, lambda: _pay(session, owner, customer_id, amount=amount))


@pytest.mark.parametrize(("overrides", "fragment"), [
    ({"method": "bitcoin"}, "one of: bank_transfer"),
    ({"received_on": date(1850, 1, 1)}, "between 1900 and 2100"),
    ({"received_on": None}, "date the payment was received"),
    ({"reference": "x" * 101}, "at most 100 characters"),
    ({"customer": 2**31 - 1}, "customer does not exist"),
])
def test_a_payment_with_bad_details_is_refused(session, owner, debtor, overrides, fragment):
    customer_id = overrides.pop("customer", debtor[0])
    _refused(session, fragment, lambda: _pay(session, owner, customer_id, **overrides))


@pytest.mark.parametrize(("allocation", "fragment"), [
    (D("0.00"), "more than zero"),
    (D("-1.00"), "must not be negative"),
    (D("100.01"), "Only £100.00 is left to pay on INV-000001"),
])
def test_an_allocation_must_be_above_zero_and_within_what_is_owed(session, owner, debtor,
                                                                   allocation, fragment):
    customer_id, (old, _, _) = debtor
    _refused(session, fragment, lambda: _pay(session, owner, customer_id, amount="500.00",
                                             allocations=[(old, allocation)]))


def test_allocations_cannot_add_up_to_more_than_the_payment(session, owner, debtor):
    customer_id, (old, middle, _) = debtor
    _refused(session, "add up to £130.00, more than the payment of £120.00",
             lambda: _pay(session, owner, customer_id, amount="120.00",
                          allocations=[(old, "100.00"), (middle, "30.00")]))


def test_what_an_earlier_payment_paid_off_cannot_be_paid_again(session, owner, debtor):
    customer_id, (old, _, _) = debtor
    _pay(session, owner, customer_id, amount="60.00", allocations=[(old, "60.00")])
    session.commit()

    with pytest.raises(ActionError, match="Only £40.00 is left to pay"):
        _pay(session, owner, customer_id, amount="50.00", allocations=[(old, "50.00")])
    session.rollback()
    assert _count(session, Payment) == 1


@pytest.mark.parametrize("kind", ["draft", "void", "other customer's", "unknown"])
def test_only_the_customers_own_issued_invoices_can_be_paid(session, owner, debtor, kind):
    customer_id, _ = debtor
    customer = session.get(Customer, customer_id)
    if kind == "draft":
        target, fragment = f.make_invoice(session, customer, status="draft").id, "is a draft"
    elif kind == "void":
        target, fragment = f.make_invoice(session, customer, status="void").id, "is void"
    elif kind == "unknown":
        target, fragment = 2**31 - 1, "no invoice"
    else:
        stranger = f.make_customer(session)
        target, fragment = f.make_invoice(session, stranger).id, "belongs to another customer"
    session.commit()
    _refused(session, fragment, lambda: _pay(session, owner, customer_id,
                                             allocations=[(target, "10.00")]))


def test_a_merged_away_customer_cannot_be_paid(session, owner, debtor):
    customer_id, _ = debtor
    survivor = f.make_customer(session)
    session.get(Customer, customer_id).merged_into_id = survivor.id
    session.commit()
    _refused(session, f"merged into {survivor.reference}",
             lambda: _pay(session, owner, customer_id))


def test_a_failure_after_the_writes_leaves_the_ledger_unchanged(session, owner, debtor,
                                                                monkeypatch):
    customer_id, (old, _, _) = debtor
    before = _figures(session, customer_id)

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(actions, "record", broken)
    with pytest.raises(RuntimeError):
        _pay(session, owner, customer_id, amount="150.00", allocations=[(old, "100.00")])
    assert _count(session, Allocation) == 1  # it had got as far as the allocation
    session.rollback()

    assert (_count(session, Payment), _count(session, Allocation)) == (0, 0)
    assert _figures(session, customer_id) == before
    assert _outstanding(session, old) == D("100.00")


# --- suggest_allocations -------------------------------------------------------------------
@pytest.mark.parametrize(("amount", "expected"), [
    ("120.00", [("100.00"), ("20.00")]),
    ("100.00", [("100.00")]),
    ("1000.00", [("100.00"), ("50.00"), ("80.00")]),
    ("0.00", []),
])
def test_the_suggestion_pays_the_oldest_due_first(session, debtor, amount, expected):
    customer_id, ids = debtor

    suggestion = suggest_allocations(session, customer_id=customer_id, amount=D(amount))

    assert [(invoice.id, take) for invoice, take in suggestion] == list(
        zip(ids, map(D, expected), strict=False))


def test_the_suggestion_skips_what_is_paid_off_and_what_is_not_issued(session, owner, debtor):
    customer_id, (old, middle, new) = debtor
    customer = session.get(Customer, customer_id)
    f.make_invoice(session, customer, status="draft", days_overdue=99)
    f.make_invoice(session, customer, status="void", days_overdue=98)
    session.commit()
    _pay(session, owner, customer_id, amount="100.00", allocations=[(old, "100.00")])
    session.commit()

    suggestion = suggest_allocations(session, customer_id=customer_id, amount=D("500.00"))

    assert [(i.id, take) for i, take in suggestion] == [(middle, D("50.00")), (new, D("80.00"))]


# --- allocate_credit ---------------------------------------------------------------------
@pytest.fixture
def in_credit(session, debtor):
    """The debtor with 30.00 paid on account 5 days ago, then a 20.00 credit note today."""
    customer_id, ids = debtor
    customer = session.get(Customer, customer_id)
    f.make_payment(session, customer, amount="30.00", received_on=TODAY - timedelta(days=5))
    f.make_credit_note(session, customer, amount="20.00")
    session.commit()
    return customer_id, ids


def test_account_credit_is_drawn_oldest_first_across_payments_and_credit_notes(
        session, owner, in_credit):
    customer_id, (old, middle, _) = in_credit

    result = allocate_credit(session, customer_id=customer_id,
                             allocations=[(middle, D("40.00"))], actor=owner)
    session.commit()

    rows = list(session.scalars(select(Allocation).order_by(Allocation.id)))
    assert [(a.payment_id is not None, a.amount) for a in rows] == [
        (True, D("30.00")), (False, D("10.00"))]
    assert (result.details["allocated"], result.details["credit_left"]) == (
        D("40.00"), D("10.00"))
    assert _outstanding(session, middle) == D("10.00")
    assert _figures(session, customer_id)[1] == D("10.00")
    assert [s.left for s in credit_sources(session, customer_id)] == [D("10.00")]
    (event,) = _audit(session, "allocate_credit")
    assert event.details == {"allocation_ids": result.details["allocation_ids"],
                             "allocated": "40.00", "invoices": ["INV-000002"],
                             "credit_left": "10.00"}
    assert ledger.differences(session) == ([], 0)


def test_allocating_more_credit_than_there_is_is_refused(session, owner, in_credit):
    customer_id, (old, _, _) = in_credit

    with pytest.raises(ActionError, match="has £50.00 of account credit; £50.01 cannot"):
        allocate_credit(session, customer_id=customer_id,
                        allocations=[(old, D("50.01"))], actor=owner)
    session.rollback()
    assert _count(session, Allocation) == 0


def test_allocating_credit_beyond_what_an_invoice_owes_is_refused(session, owner, in_credit):
    customer_id, (_, middle, _) = in_credit

    with pytest.raises(ActionError, match="Only £50.00 is left to pay on INV-000002"):
        allocate_credit(session, customer_id=customer_id,
                        allocations=[(middle, D("50.01"))], actor=owner)
    session.rollback()
    assert _count(session, Allocation) == 0


@pytest.mark.parametrize(("allocations", "fragment"), [
    ([], "at least one invoice"), ([(1, "0")], "more than zero"),
])
def test_allocating_nothing_is_refused(session, owner, in_credit, allocations, fragment):
    customer_id, _ = in_credit
    with pytest.raises(ActionError, match=fragment):
        allocate_credit(session, customer_id=customer_id, allocations=allocations, actor=owner)


def test_a_void_credit_note_is_no_account_credit(session, owner, in_credit):
    customer_id, (old, _, _) = in_credit
    for note in session.scalars(select(CreditNote)):
        note.status = "void"
    session.commit()

    with pytest.raises(ActionError, match="has £30.00 of account credit"):
        allocate_credit(session, customer_id=customer_id,
                        allocations=[(old, D("30.01"))], actor=owner)


# --- remove_allocation ---------------------------------------------------------------------
def test_removing_an_allocation_gives_the_money_back_as_account_credit(session, owner, debtor):
    customer_id, (old, _, _) = debtor
    _pay(session, owner, customer_id, amount="100.00", allocations=[(old, "100.00")])
    session.commit()
    allocation_id = session.scalar(select(Allocation.id))

    result = remove_allocation(session, allocation_id=allocation_id, actor=owner)
    session.commit()

    assert "100.00 to INV-000001 removed" in result.message
    assert _count(session, Allocation) == 0
    assert _outstanding(session, old) == D("100.00")
    assert _figures(session, customer_id)[:2] == (D("130.00"), D("100.00"))
    (event,) = _audit(session, "remove_allocation")
    assert event.details["allocation_id"] == allocation_id
    assert event.details["amount"] == "100.00"
    assert ledger.differences(session) == ([], 0)

    with pytest.raises(ActionError, match="does not exist"):
        remove_allocation(session, allocation_id=allocation_id, actor=owner)


# --- two payments at the same moment -------------------------------------------------------
def _blocked_backends(session) -> int:
    return session.execute(text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND cardinality(pg_blocking_pids(pid)) > 0"
    )).scalar_one()


def test_two_payments_at_once_cannot_over_allocate_one_invoice(app, session, owner, debtor):
    """The first payment holds the invoices' locks while the second one starts: the second
    waits (PostgreSQL: seen blocked in pg_stat_activity) or is serialized behind the first
    writer (SQLite), and is then refused; the invoice is never over-allocated."""
    customer_id, (old, _, _) = debtor
    engine, owner_id = db.engine, owner.id
    outcome: list[BaseException | str] = []

    def second():
        with Session(engine) as own:
            try:
                _pay(own, own.get(User, owner_id), customer_id, amount="80.00",
                     allocations=[(old, "80.00")])
                own.commit()
                outcome.append("recorded")
            except (ActionError, ledger.LedgerError) as exc:
                outcome.append(exc)

    with Session(engine) as first:
        _pay(first, first.get(User, owner_id), customer_id, amount="70.00",
             allocations=[(old, "70.00")])
        thread = threading.Thread(target=second)
        thread.start()
        if engine.dialect.name == "postgresql":
            with Session(engine) as watcher:
                for _ in range(10_000):  # until the second transaction waits on the lock
                    if _blocked_backends(watcher):
                        break
                    watcher.rollback()
                assert _blocked_backends(watcher) == 1
        first.commit()
        thread.join()

    assert len(outcome) == 1 and isinstance(outcome[0], ActionError | ledger.LedgerError)
    assert "Only £30.00 is left" in str(outcome[0]) or "more allocated" in str(outcome[0])
    assert _outstanding(session, old) == D("30.00")
    assert _count(session, Payment) == 1
    assert ledger.differences(session) == ([], 0)
