"""Edits made after money was allocated cannot leave an impossible ledger."""

from decimal import Decimal

import pytest

from crm.ledger import LedgerError
from crm.models import Customer, Invoice, Payment
from tests import factories as f


@pytest.fixture
def paid(session):
    """A 100.00 invoice with 60.00 of a 60.00 payment allocated to it."""
    customer = f.make_customer(session)
    invoice = f.make_invoice(session, customer, amount="100.00")
    payment = f.make_payment(session, customer, amount="60.00")
    f.make_allocation(session, invoice, payment=payment, amount="60.00")
    session.commit()
    return customer.id, invoice.id, payment.id


def _balance(session, customer_id) -> Decimal:
    session.expire_all()
    return session.get(Customer, customer_id).balance


def test_lowering_a_payment_below_what_is_allocated_is_refused(session, paid):
    customer_id, _, payment_id = paid
    session.get(Payment, payment_id).amount = Decimal("50.00")
    with pytest.raises(LedgerError, match="more would be allocated than was paid"):
        session.commit()
    session.rollback()
    assert session.get(Payment, payment_id).amount == Decimal("60.00")
    assert _balance(session, customer_id) == Decimal("40.00")


def test_cutting_an_issued_invoice_is_refused(session, paid):
    """An issued invoice's lines cannot change at all (a credit note changes what is owed);
    the ledger's own check would refuse cutting it below what is allocated anyway."""
    customer_id, invoice_id, _ = paid
    session.get(Invoice, invoice_id).lines[0].unit_price = Decimal("50.00")
    with pytest.raises(LedgerError, match="its lines cannot change"):
        session.commit()
    session.rollback()
    assert session.get(Invoice, invoice_id).total == Decimal("100.00")
    assert _balance(session, customer_id) == Decimal("40.00")


def test_moving_an_allocated_invoice_to_another_customer_is_refused(session, paid):
    customer_id, invoice_id, _ = paid
    other = f.make_customer(session)
    session.commit()
    session.get(Invoice, invoice_id).customer_id = other.id
    with pytest.raises(LedgerError, match="another customer's invoice"):
        session.commit()
    session.rollback()
    assert session.get(Invoice, invoice_id).customer_id == customer_id
    assert _balance(session, other.id) == Decimal("0.00")


def test_an_edit_within_the_allocations_is_accepted(session, paid):
    customer_id, _, payment_id = paid
    session.get(Payment, payment_id).amount = Decimal("75.00")
    session.commit()
    session.expire_all()
    customer = session.get(Customer, customer_id)
    assert (customer.balance, customer.account_credit) == (Decimal("25.00"), Decimal("15.00"))


@pytest.mark.parametrize("parts", [("0.10", "0.20"), ("33.33", "66.67"), ("0.01",) * 30])
def test_an_invoice_paid_off_in_parts_is_closed_to_the_cent(session, parts):
    total = sum(Decimal(p) for p in parts)
    customer = f.make_customer(session)
    invoice = f.make_invoice(session, customer, amount=str(total), days_overdue=10)
    for part in parts:
        payment = f.make_payment(session, customer, amount=part)
        f.make_allocation(session, invoice, payment=payment, amount=part)
    session.commit()
    session.expire_all()
    customer = session.get(Customer, customer.id)
    assert session.get(Invoice, invoice.id).outstanding == Decimal("0.00")
    assert (customer.balance, customer.overdue_amount) == (Decimal("0.00"), Decimal("0.00"))
    assert customer.oldest_overdue_on is None
