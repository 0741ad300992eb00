"""Amounts at and past what the money columns hold: draft invoices (lines written as the
form writes them), issuing, payments and credit notes with quantities, prices, tax rates and
totals at the bounds and beyond. Whatever is refused is refused with a sentence and changes
nothing; whatever is accepted keeps every figure within its column; and the ledger check
finds no difference, on SQLite as on PostgreSQL.

An attack once issued a line of 9,999,999,999.99 x 9,999,999,999.99: the customer's balance
became 1.0e20 and the ledger check reported a difference."""

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from crm import ledger
from crm.actions import ActionError
from crm.actions.credit_note import raise_credit_note
from crm.actions.invoice import issue_invoice
from crm.actions.payment import record_payment
from crm.ledger import LedgerError
from crm.models import Customer, Invoice, InvoiceLine
from crm.validation import MONEY_MAX, QUANTITY_MAX
from tests.factories import make_customer

D = Decimal

# Values a person (or an attacker) might type, around every bound.
amounts = st.sampled_from([
    "0.01", "1", "999.99", "5000000000.00", "9999999999.99", "10000000000", "10000000000.00",
    "99999999999999999999.99", "9999999999.999", "-1", "0", "1e5", "1_000",
])
quantities = st.sampled_from([
    "1", "2", "3.5", "99999999.99", "100000000", "9999999999.99", "0", "-2", "0.001",
])
rates = st.sampled_from(["0", "20", "100", "100.01", "5000", "-5", ""])
who = st.sampled_from([0, 0, 1])

draft_op = st.tuples(st.just("draft"), who,
                     st.lists(st.tuples(quantities, amounts, rates), min_size=1, max_size=3))
operations = st.one_of(
    draft_op,
    st.tuples(st.just("issue"), st.integers(0, 20)),
    st.tuples(st.just("pay"), who, amounts),
    st.tuples(st.just("credit"), who, quantities, amounts, rates),
)


class Book:
    def __init__(self, session, actor):
        self.session, self.actor = session, actor
        self.customers = [make_customer(session).id, make_customer(session).id]
        session.commit()

    def _refused(self, exc: Exception) -> None:
        """A refusal: a sentence for a person, and nothing written."""
        self.session.rollback()
        message = str(exc)
        assert message and "Traceback" not in message and "sqlite3" not in message
        assert "psycopg" not in message
        event(f"refused: {type(exc).__name__}")

    def draft(self, index, lines):
        """A draft as the invoice form saves it: the form's own checks are skipped here on
        purpose, so the database-side rules are what stands."""
        invoice = Invoice(customer_id=self.customers[index], status="draft",
                          issue_date=date.today(), due_date=date.today())
        for position, (quantity, price, rate) in enumerate(lines):
            try:
                values = dict(quantity=D(quantity), unit_price=D(price), tax_rate=D(rate or "0"))
            except ArithmeticError:
                continue  # not even a number: the form refuses it before the database
            invoice.lines.append(InvoiceLine(position=position, description="Work", **values))
        self.session.add(invoice)
        try:
            self.session.commit()
            event("draft saved")
        except (LedgerError, ActionError) as exc:
            self._refused(exc)
        except Exception as exc:  # a database constraint (quantity > 0, unit price >= 0)
            from sqlalchemy.exc import IntegrityError

            assert isinstance(exc, IntegrityError), repr(exc)
            self.session.rollback()
            event("refused by a constraint")

    def issue(self, pick):
        drafts = self.session.scalars(
            select(Invoice.id).where(Invoice.customer_id.in_(self.customers),
                                     Invoice.status == "draft").order_by(Invoice.id)).all()
        if not drafts:
            return
        self._run(issue_invoice, invoice_id=drafts[pick % len(drafts)])

    def pay(self, index, amount):
        self._run(record_payment, customer_id=self.customers[index], received_on=date.today(),
                  method="card", reference=None, amount=amount, allocations=[])

    def credit(self, index, quantity, price, rate):
        self._run(raise_credit_note, customer_id=self.customers[index], lines=[
            {"description": "Goodwill", "quantity": quantity, "unit_price": price,
             "tax_rate": rate}])

    def _run(self, action, **kwargs):
        try:
            action(self.session, actor=self.actor, **kwargs)
            self.session.commit()
            event(f"{action.__name__} done")
        except (ActionError, LedgerError) as exc:
            self._refused(exc)


def _largest(session, *columns) -> Decimal:
    return max(session.scalar(select(func.max(func.abs(c)))) or D(0) for c in columns)


@settings(max_examples=30, deadline=None, database=None, report_multiple_bugs=False,
          phases=[Phase.explicit, Phase.generate, Phase.shrink],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=st.lists(operations, min_size=3, max_size=12))
def test_money_at_and_past_its_bounds_never_breaks_the_ledger(session, owner, steps):
    book = Book(session, owner)
    for name, *args in steps:
        getattr(book, name)(*args)

    session.expire_all()
    assert ledger.differences(session) == ([], 0)
    assert _largest(session, Customer.balance, Customer.account_credit,
                    Customer.overdue_amount) <= MONEY_MAX
    assert _largest(session, Invoice.total, InvoiceLine.net_amount) <= MONEY_MAX
    assert _largest(session, InvoiceLine.quantity) <= QUANTITY_MAX
    assert _largest(session, InvoiceLine.tax_rate) <= 100


def _draft(session, customer_id: int, **line) -> Invoice:
    """A draft with one line, added to the session as the invoice form would."""
    invoice = Invoice(customer_id=customer_id, status="draft", issue_date=date.today(),
                      due_date=date.today())
    invoice.lines.append(InvoiceLine(description="Work", **{k: D(v) for k, v in line.items()}))
    session.add(invoice)
    return invoice


@pytest.mark.parametrize(("line", "message"), [
    # The line of the attack run: 9,999,999,999.99 x 9,999,999,999.99.
    ({"quantity": "99999999.99", "unit_price": "9999999999.99"},
     "a line holds at most £9,999,999,999.99"),
    ({"quantity": "1", "unit_price": "10", "tax_rate": "5000"},
     "a tax rate is between 0 and 100"),
], ids=["attack-line", "tax-5000"])
def test_a_line_past_the_bounds_is_refused_with_a_sentence(session, owner, line, message):
    customer = make_customer(session)
    session.commit()
    _draft(session, customer.id, **line)

    with pytest.raises(LedgerError, match=message):
        session.commit()
    session.rollback()


def test_two_invoices_that_each_fit_cannot_take_a_balance_past_what_it_holds(session, owner):
    customer = make_customer(session)
    session.commit()
    for _ in range(2):
        _draft(session, customer.id, quantity="1", unit_price="6000000000.00")
    session.commit()
    first, second = session.scalars(select(Invoice.id).order_by(Invoice.id)).all()[-2:]
    issue_invoice(session, invoice_id=first, actor=owner)
    session.commit()

    with pytest.raises(LedgerError, match=r"past £9,999,999,999.99, the most an account holds"):
        issue_invoice(session, invoice_id=second, actor=owner)
        session.commit()
    session.rollback()
    assert session.get(Invoice, second).status == "draft"
    assert session.get(Customer, customer.id).balance == D("6000000000.00")
