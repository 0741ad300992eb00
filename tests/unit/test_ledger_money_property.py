"""Random ledgers built through the payment actions (record, allocate credit, remove an
allocation), with invoices and credit notes issued and invoices voided along the way: the
balance is always invoices - credit notes - payments, nothing is ever allocated beyond an
invoice's total or a payment's or credit note's amount, and the stored figures agree with
the documents."""

from datetime import date
from decimal import ROUND_DOWN, Decimal

import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from crm import ledger, ledger_totals
from crm.actions import ActionError
from crm.actions.payment import (
    allocate_credit,
    open_invoices,
    record_payment,
    remove_allocation,
    suggest_allocations,
)
from crm.models import Allocation, CreditNote, Customer, Invoice, Payment
from tests.factories import make_credit_note, make_customer, make_invoice

D = Decimal
CENT = D("0.01")
ZERO = D("0.00")

money = st.decimals(min_value=D("0.01"), max_value=D("900.00"), places=2)
who = st.sampled_from([0, 0, 1])  # which of the example's two customers
pick = st.integers(0, 50)  # which existing row (modulo how many there are)
share = st.sampled_from([D("1"), D("0.5"), D("0.33"), D("0.01")])  # of what may be allocated

invoice_op = st.tuples(st.just("invoice"), who, money, st.integers(-60, 30))
pay_op = st.tuples(st.just("pay"), who, money, st.lists(st.tuples(pick, share), max_size=3))
allocate_op = st.tuples(st.just("allocate"), who,
                        st.lists(st.tuples(pick, share), min_size=1, max_size=2))
remove_op = st.tuples(st.just("remove"), pick)
# Every example opens with invoices, payments (some allocated, some on account) and maybe a
# credit note, so that the steps after it have credit to allocate and allocations to remove.
opening = st.tuples(
    st.lists(invoice_op, min_size=1, max_size=3),
    st.lists(pay_op, min_size=1, max_size=2),
    st.lists(st.tuples(st.just("credit_note"), who, money), max_size=1),
).map(lambda parts: [step for part in parts for step in part])
operations = st.one_of(
    invoice_op,
    st.tuples(st.just("credit_note"), who, money),
    pay_op,
    st.tuples(st.just("pay_suggested"), who, money),
    allocate_op,
    allocate_op,
    st.tuples(st.just("over_allocate"), who, pick),
    remove_op,
    remove_op,
    st.tuples(st.just("void"), pick),
)


class Book:
    """Applies one operation through the actions, committing as the screens do; a refusal
    rolls back, as ``run_action`` does."""

    def __init__(self, session, actor):
        self.session, self.actor = session, actor
        self.customers = [make_customer(session).id, make_customer(session).id]
        session.commit()

    def _customer(self, index: int) -> Customer:
        return self.session.get(Customer, self.customers[index])

    def _open(self, index: int) -> list[Invoice]:
        return open_invoices(self.session, self.customers[index])

    def _plan(self, index: int, picks, budget: Decimal | None) -> list[tuple[int, Decimal]]:
        """Allocations within what each picked open invoice owes (and within ``budget``)."""
        invoices, plan, left = self._open(index), {}, budget
        for position, portion in picks:
            if not invoices:
                break
            invoice = invoices[position % len(invoices)]
            room = invoice.outstanding - plan.get(invoice.id, ZERO)
            amount = (room * portion).quantize(CENT, rounding=ROUND_DOWN)
            if left is not None:
                amount = min(amount, left)
                left -= amount
            if amount > 0:
                plan[invoice.id] = plan.get(invoice.id, ZERO) + amount
        return list(plan.items())

    def _run(self, action, **kwargs):
        try:
            result = action(self.session, actor=self.actor, **kwargs)
        except ActionError:
            self.session.rollback()
            raise
        self.session.commit()
        return result

    def invoice(self, index, amount, due_in_days):
        make_invoice(self.session, self._customer(index), amount=str(amount),
                     days_overdue=-due_in_days)
        self.session.commit()

    def credit_note(self, index, amount):
        make_credit_note(self.session, self._customer(index), amount=str(amount))
        self.session.commit()

    def pay(self, index, amount, picks):
        plan = self._plan(index, picks, amount)
        self._run(record_payment, customer_id=self.customers[index], received_on=date.today(),
                  method="card", reference=None, amount=amount, allocations=plan)
        event("payment allocated" if plan else "payment on account")

    def pay_suggested(self, index, amount):
        suggestion = suggest_allocations(self.session, customer_id=self.customers[index],
                                         amount=amount)
        assert sum((take for _, take in suggestion), ZERO) == min(
            amount, sum((i.outstanding for i in self._open(index)), ZERO))
        self._run(record_payment, customer_id=self.customers[index], received_on=date.today(),
                  method="cash", reference="S", amount=amount,
                  allocations=[(invoice.id, take) for invoice, take in suggestion])

    def allocate(self, index, picks):
        credit = self._customer(index).account_credit
        plan = self._plan(index, picks, credit)
        if not plan:
            return
        self._run(allocate_credit, customer_id=self.customers[index], allocations=plan)
        event("credit allocated")

    def over_allocate(self, index, position):
        """One cent beyond what an invoice owes, or beyond the credit: always refused."""
        invoices = self._open(index)
        if not invoices:
            return
        invoice = invoices[position % len(invoices)]
        credit = self._customer(index).account_credit
        too_much = invoice.outstanding + CENT if credit > invoice.outstanding else credit + CENT
        with pytest.raises(ActionError, match="left to pay|of account credit"):
            self._run(allocate_credit, customer_id=self.customers[index],
                      allocations=[(invoice.id, too_much)])
        with pytest.raises(ActionError, match="left to pay"):
            self._run(record_payment, customer_id=self.customers[index], received_on=date.today(),
                      method="card", reference=None, amount=invoice.outstanding + CENT,
                      allocations=[(invoice.id, invoice.outstanding + CENT)])
        event("over-allocation refused")

    def remove(self, position):
        rows = _rows(self.session, Allocation, Allocation.invoice_id.in_(
            select(Invoice.id).where(Invoice.customer_id.in_(self.customers))))
        if rows:
            self._run(remove_allocation, allocation_id=rows[position % len(rows)].id)
            event("allocation removed")

    def void(self, position):
        rows = _rows(self.session, Invoice, Invoice.customer_id.in_(self.customers),
                     Invoice.status == "issued")
        if rows:
            rows[position % len(rows)].status = "void"
            self.session.commit()
            event("invoice voided")


def _rows(session, model, *criteria) -> list:
    return list(session.scalars(select(model).where(*criteria).order_by(model.id)))


def _live(allocation: Allocation) -> bool:
    """The ledger's rule, restated: from a payment or an issued credit note, to an issued
    invoice."""
    note = allocation.credit_note
    return allocation.invoice.status == "issued" and (note is None or note.status == "issued")


def _check(session, customer_ids) -> None:
    session.expire_all()
    assert ledger.differences(session) == ([], 0)
    assert ledger_totals.differences(session) == []
    for customer in _rows(session, Customer, Customer.id.in_(customer_ids)):
        invoices = _rows(session, Invoice, Invoice.customer_id == customer.id)
        notes = _rows(session, CreditNote, CreditNote.customer_id == customer.id)
        payments = _rows(session, Payment, Payment.customer_id == customer.id)
        issued = [i for i in invoices if i.status == "issued"]
        live_notes = [n for n in notes if n.status == "issued"]
        assert customer.balance == (sum((i.total for i in issued), ZERO)
                                    - sum((n.total for n in live_notes), ZERO)
                                    - sum((p.amount for p in payments), ZERO))
        allocations = [a for a in _rows(session, Allocation, Allocation.invoice_id.in_(
            [i.id for i in invoices])) if _live(a)]
        for invoice in invoices:
            assert sum((a.amount for a in allocations if a.invoice_id == invoice.id),
                       ZERO) <= invoice.total
        for payment in payments:
            assert sum((a.amount for a in allocations if a.payment_id == payment.id),
                       ZERO) <= payment.amount
        for note in notes:
            assert sum((a.amount for a in allocations if a.credit_note_id == note.id),
                       ZERO) <= note.total
        assert customer.account_credit >= 0
        assert customer.balance == (sum((i.outstanding for i in issued), ZERO)
                                    - customer.account_credit)


@settings(max_examples=25, deadline=None, database=None, report_multiple_bugs=False,
          phases=[Phase.explicit, Phase.generate, Phase.shrink],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(opening=opening, steps=st.lists(operations, min_size=2, max_size=12))
def test_money_actions_keep_the_ledger_true(session, owner, opening, steps):
    book = Book(session, owner)  # earlier examples' rows stay, and must stay true
    for name, *args in opening + steps:
        getattr(book, name)(*args)
    _check(session, book.customers)
