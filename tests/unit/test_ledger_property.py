"""Random sequences of money operations, each committed through the ORM as the admin and the
actions do, must leave every stored ledger figure equal to what the documents say."""

from datetime import date, timedelta
from decimal import ROUND_DOWN, Decimal

import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from crm import ledger, ledger_totals
from crm.models import Allocation, CreditNote, Customer, Invoice, InvoiceLine, Payment
from crm.models.finance import round_money
from crm.models.sequence import next_number
from tests.factories import make_credit_note, make_customer, make_payment

D = Decimal
CENT = D("0.01")
ZERO = D("0.00")

money = st.decimals(min_value=D("1.00"), max_value=D("2000.00"), places=2)
line = st.tuples(
    st.decimals(min_value=D("0.25"), max_value=D("10.00"), places=2),  # quantity
    st.decimals(min_value=D("1.00"), max_value=D("999.99"), places=2),  # unit price
    st.sampled_from([D("0"), D("5"), D("17.5"), D("20")]),  # tax rate
)
who = st.sampled_from([0, 0, 0, 1])  # which of the two customers (mostly the first)
pick = st.integers(0, 50)  # which existing document (modulo how many there are)
share = st.sampled_from([D("1"), D("0.5"), D("0.33")])  # of what may still be allocated

invoice_op = st.tuples(st.just("invoice"), who, st.lists(line, min_size=1, max_size=3),
                       st.integers(-60, 60), st.booleans())
payment_op = st.tuples(st.just("payment"), who, money)
credit_note_op = st.tuples(st.just("credit_note"), who, money)
allocate_op = st.tuples(st.just("allocate"), pick, pick, share, st.booleans())
# Every example opens with some documents and allocations between them, then goes on with
# more of the same and the corrections that must give allocated money back (void, delete,
# move, edit, rollback).
opening = st.tuples(
    st.lists(invoice_op, min_size=1, max_size=4),
    st.lists(payment_op, min_size=1, max_size=3),
    st.lists(credit_note_op, max_size=2),
    st.lists(allocate_op, min_size=1, max_size=3),
).map(lambda parts: [step for part in parts for step in part])
operations = st.one_of(
    allocate_op,
    invoice_op,
    payment_op,
    credit_note_op,
    st.tuples(st.just("issue_draft"), pick),
    st.tuples(st.just("void_invoice"), pick),
    st.tuples(st.just("void_credit_note"), pick),
    st.tuples(st.just("delete_payment"), pick),
    st.tuples(st.just("move_invoice"), pick),
    st.tuples(st.just("change_line"), pick, st.decimals(min_value=D("0.5"), max_value=D("3"),
                                                        places=1)),
    st.tuples(st.just("rolled_back_payment"), who, money),
)


def _all(session, model, *criteria):
    return list(session.execute(select(model).where(*criteria).order_by(model.id)).scalars())


def _live_allocated(session, *criteria) -> Decimal:
    """What live allocations add up to, worked out in Python from the rows."""
    total = ZERO
    for allocation in _all(session, Allocation, *criteria):
        note_ok = allocation.credit_note is None or allocation.credit_note.status == "issued"
        if allocation.invoice.status == "issued" and note_ok:
            total += allocation.amount
    return total


def _allocatable(session, invoice, source) -> Decimal:
    left_on_invoice = invoice.total - _live_allocated(session, Allocation.invoice_id == invoice.id)
    if isinstance(source, Payment):
        left_on_source = source.amount - _live_allocated(
            session, Allocation.payment_id == source.id)
    else:
        left_on_source = source.total - _live_allocated(
            session, Allocation.credit_note_id == source.id)
    return min(left_on_invoice, left_on_source)


class Book:
    """Applies one operation to the database, committing as a user's save would."""

    def __init__(self, session):
        self.session = session
        self.customers = [make_customer(session).id, make_customer(session).id]
        session.commit()

    def customer(self, index: int) -> Customer:
        return self.session.get(Customer, self.customers[index])

    def _nth(self, model, index: int, *criteria):
        """One of this example's documents (earlier examples' rows are left alone)."""
        rows = _all(self.session, model, model.customer_id.in_(self.customers), *criteria)
        return rows[index % len(rows)] if rows else None

    def invoice(self, who, lines, due_in_days, draft):
        due = date.today() + timedelta(days=due_in_days)
        invoice = Invoice(customer=self.customer(who), issue_date=due - timedelta(days=30),
                          due_date=due, status="draft" if draft else "issued",
                          number=None if draft else next_number(self.session, "invoice"))
        for position, (quantity, price, rate) in enumerate(lines):
            invoice.lines.append(InvoiceLine(position=position, description="Work",
                                             quantity=quantity, unit_price=price, tax_rate=rate))
        self.session.add(invoice)

    def issue_draft(self, index):
        draft = self._nth(Invoice, index, Invoice.status == "draft")
        if draft is not None:
            draft.status, draft.number = "issued", next_number(self.session, "invoice")

    def payment(self, who, amount):
        make_payment(self.session, self.customer(who), amount=str(amount))

    def credit_note(self, who, amount):
        make_credit_note(self.session, self.customer(who), amount=str(amount))

    def allocate(self, invoice_index, source_index, portion, from_credit_note):
        invoice = self._nth(Invoice, invoice_index, Invoice.status == "issued")
        if invoice is None:
            return
        model = CreditNote if from_credit_note else Payment
        criteria = [model.customer_id == invoice.customer_id]
        if model is CreditNote:
            criteria.append(CreditNote.status == "issued")
        source = self._nth(model, source_index, *criteria)
        if source is None:
            return
        most = _allocatable(self.session, invoice, source)
        amount = (most * portion).quantize(CENT, rounding=ROUND_DOWN)
        kind = "credit_note" if from_credit_note else "payment"
        too_much = Allocation(invoice=invoice, amount=most + CENT, **{kind: source})
        with pytest.raises(ValueError):
            ledger.check_allocation(self.session, too_much)
        if amount <= 0:
            return
        allocation = Allocation(invoice=invoice, amount=amount, **{kind: source})
        ledger.check_allocation(self.session, allocation)  # within the limits: accepted
        self.session.add(allocation)
        event(f"allocated from {kind}")

    def void_invoice(self, index):
        invoice = self._nth(Invoice, index, Invoice.status != "void")
        if invoice is not None:
            if invoice.status == "draft":
                invoice.number = next_number(self.session, "invoice")
            invoice.status = "void"

    def void_credit_note(self, index):
        note = self._nth(CreditNote, index, CreditNote.status == "issued")
        if note is not None:
            note.status = "void"

    def delete_payment(self, index):
        payment = self._nth(Payment, index)
        if payment is not None:
            for allocation in _all(self.session, Allocation, Allocation.payment_id == payment.id):
                self.session.delete(allocation)
            self.session.flush()
            self.session.delete(payment)

    def move_invoice(self, index):
        """Re-assign an invoice nothing is allocated to (as correcting a wrong customer)."""
        invoice = self._nth(Invoice, index)
        if invoice is None or _all(self.session, Allocation, Allocation.invoice_id == invoice.id):
            return
        other = [c for c in self.customers if c != invoice.customer_id][0]
        self.session.expire(invoice)  # as when it was loaded before an earlier commit
        invoice.customer_id = other

    def change_line(self, index, quantity):
        invoice = self._nth(Invoice, index, Invoice.status == "draft")
        if invoice is not None:
            invoice.lines[0].quantity = quantity

    def rolled_back_payment(self, who, amount):
        before = _stored(self.session)
        make_payment(self.session, self.customer(who), amount=str(amount))
        self.session.flush()
        self.session.rollback()
        assert _stored(self.session) == before


def _stored(session) -> list:
    return session.execute(
        select(Customer.id, Customer.balance, Customer.account_credit, Customer.overdue_amount)
        .order_by(Customer.id)
    ).all()


def _expected_total(document) -> Decimal:
    total = ZERO
    for item in document.lines:
        net = round_money(item.quantity * item.unit_price)
        total += net + round_money(net * item.tax_rate / 100)
    return total


def _check_invariants(session, customer_ids):
    assert ledger.differences(session) == ([], 0)
    assert ledger_totals.differences(session) == []
    for customer in _all(session, Customer, Customer.id.in_(customer_ids)):
        invoices = _all(session, Invoice, Invoice.customer_id == customer.id)
        notes = _all(session, CreditNote, CreditNote.customer_id == customer.id)
        payments = _all(session, Payment, Payment.customer_id == customer.id)
        for document in invoices + notes:
            assert document.total == _expected_total(document)
        issued = [i for i in invoices if i.status == "issued"]
        assert customer.balance == (
            sum((i.total for i in issued), ZERO)
            - sum((n.total for n in notes if n.status == "issued"), ZERO)
            - sum((p.amount for p in payments), ZERO)
        )
        assert customer.account_credit >= 0
        assert customer.overdue_amount <= customer.balance + customer.account_credit
        # What a statement shows: unpaid invoices less unallocated credit is the balance.
        assert all(i.outstanding >= 0 for i in invoices)
        assert customer.balance == (
            sum((i.outstanding for i in issued), ZERO) - customer.account_credit
        )


@settings(max_examples=30, deadline=None, database=None, report_multiple_bugs=False,
          phases=[Phase.explicit, Phase.generate, Phase.shrink],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(opening=opening, steps=st.lists(operations, min_size=2, max_size=12))
def test_random_money_operations_leave_the_ledger_true(session, opening, steps):
    book = Book(session)  # two new customers: earlier examples' rows stay and must stay true
    for name, *args in opening + steps:
        getattr(book, name)(*args)
        session.commit()
    _check_invariants(session, book.customers)
