"""Raise credit note (against an invoice, or standalone) and void one: what is credited,
what is applied to the invoice and what becomes account credit, every refusal, gap-free
numbers, the audit row, and a failure part-way leaving nothing behind."""

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from crm import ledger
from crm.actions import ActionError
from crm.actions.credit_note import (
    credit_note_lines_from,
    raise_credit_note,
    void_credit_note,
)
from crm.models import Allocation, AuditEvent, CreditNote, Customer, Invoice, Note
from crm.models.sequence import peek
from tests.factories import (
    make_allocation,
    make_customer,
    make_invoice,
    make_payment,
)

D = Decimal


def line(price="40.00", quantity="1", tax_rate="0", description="Refund", category="labour"):
    return {"category": category, "description": description, "quantity": quantity,
            "unit_price": price, "tax_rate": tax_rate}


def figures(session, customer) -> tuple[Decimal, Decimal]:
    """(balance, account credit) as stored."""
    row = session.execute(
        select(Customer.balance, Customer.account_credit).where(Customer.id == customer.id)
    ).one()
    return row.balance, row.account_credit


def outstanding(session, invoice) -> Decimal:
    return session.execute(select(Invoice.outstanding).where(Invoice.id == invoice.id)).scalar()


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def assert_ledger_agrees(session):
    assert ledger.differences(session) == ([], 0)


def credit(session, owner, *lines_, **kwargs):
    result = raise_credit_note(session, actor=owner, lines=list(lines_) or [line()], **kwargs)
    session.commit()
    return result


@pytest.fixture
def customer(session):
    return make_customer(session)


@pytest.fixture
def invoice(session, customer):
    made = make_invoice(session, customer, amount="100.00")
    session.commit()
    return made


# --- against an invoice -----------------------------------------------------------------
def test_the_invoice_lines_are_the_defaults(session, customer):
    made = make_invoice(session, customer, amount="80.00", tax_rate="20")
    assert credit_note_lines_from(made) == [
        {"category": "labour", "description": "Work", "quantity": D("1"),
         "unit_price": D("80.00"), "tax_rate": D("20")},
    ]


def test_a_partial_credit_pays_off_part_of_the_invoice(session, owner, customer, invoice):
    result = credit(session, owner, line("40.00"), invoice_id=invoice.id)

    assert result.details == {"credit_note_id": result.details["credit_note_id"],
                              "number": "CN-000001", "total": D("40.00"),
                              "applied": D("40.00"), "to_credit": D("0.00")}
    note = session.get(CreditNote, result.details["credit_note_id"])
    assert (note.invoice_id, note.customer_id, note.status) == (invoice.id, customer.id, "issued")
    assert outstanding(session, invoice) == D("60.00")
    assert figures(session, customer) == (D("60.00"), D("0.00"))
    assert "£40.00 applied to INV-000001" in result.message
    assert_ledger_agrees(session)


def test_a_full_credit_clears_the_invoice(session, owner, customer, invoice):
    credit(session, owner, *[{**row, "description": "Work"}
                             for row in credit_note_lines_from(invoice)], invoice_id=invoice.id)

    assert outstanding(session, invoice) == D("0.00")
    assert figures(session, customer) == (D("0.00"), D("0.00"))
    assert_ledger_agrees(session)


def test_on_a_partly_paid_invoice_the_rest_becomes_account_credit(session, owner, customer,
                                                                   invoice):
    payment = make_payment(session, customer, amount="70.00")
    make_allocation(session, invoice, payment=payment, amount="70.00")
    session.commit()

    result = credit(session, owner, line("50.00"), invoice_id=invoice.id)

    assert (result.details["applied"], result.details["to_credit"]) == (D("30.00"), D("20.00"))
    assert outstanding(session, invoice) == D("0.00")
    assert figures(session, customer) == (D("-20.00"), D("20.00"))
    allocation = session.scalars(select(Allocation).where(Allocation.credit_note_id.is_not(None)))
    assert [a.amount for a in allocation] == [D("30.00")]
    assert "£20.00 became account credit" in result.message
    assert_ledger_agrees(session)


def test_on_a_paid_invoice_all_of_it_becomes_account_credit(session, owner, customer, invoice):
    payment = make_payment(session, customer, amount="100.00")
    make_allocation(session, invoice, payment=payment, amount="100.00")
    session.commit()

    result = credit(session, owner, line("25.00"), invoice_id=invoice.id)

    assert (result.details["applied"], result.details["to_credit"]) == (D("0.00"), D("25.00"))
    assert count(session, Allocation) == 1
    assert figures(session, customer) == (D("-25.00"), D("25.00"))
    assert_ledger_agrees(session)


def test_more_than_the_invoice_total_is_refused(session, owner, invoice):
    with pytest.raises(ActionError, match=r"INV-000001 can be credited at most £100\.00 more"):
        raise_credit_note(session, actor=owner, lines=[line("100.01")], invoice_id=invoice.id)


def test_the_total_of_two_credit_notes_can_never_exceed_the_invoice(session, owner, invoice):
    credit(session, owner, line("60.00"), invoice_id=invoice.id)

    with pytest.raises(ActionError, match=r"can be credited at most £40\.00 more"):
        raise_credit_note(session, actor=owner, lines=[line("30.00"), line("10.01")],
                          invoice_id=invoice.id)
    session.rollback()
    credit(session, owner, line("40.00"), invoice_id=invoice.id)

    with pytest.raises(ActionError, match="already been credited in full"):
        raise_credit_note(session, actor=owner, lines=[line("0.01")], invoice_id=invoice.id)
    session.rollback()
    assert session.scalars(select(CreditNote.number).order_by(CreditNote.id)).all() == [
        "CN-000001", "CN-000002"]


def test_tax_counts_towards_the_cap(session, owner, customer):
    taxed = make_invoice(session, customer, amount="100.00", tax_rate="20")  # 120.00
    session.commit()

    with pytest.raises(ActionError, match=r"at most £120\.00 more"):
        raise_credit_note(session, actor=owner, lines=[line("101.00", tax_rate="20")],
                          invoice_id=taxed.id)
    session.rollback()
    result = credit(session, owner, line("100.00", tax_rate="20"), invoice_id=taxed.id)
    assert result.details["total"] == D("120.00")
    assert outstanding(session, taxed) == D("0.00")


def test_a_void_credit_note_no_longer_counts_towards_the_cap(session, owner, invoice):
    first = credit(session, owner, line("100.00"), invoice_id=invoice.id)
    void_credit_note(session, credit_note_id=first.details["credit_note_id"], actor=owner,
                     reason="Raised in error")
    session.commit()

    result = credit(session, owner, line("100.00"), invoice_id=invoice.id)

    assert result.details["applied"] == D("100.00")
    assert outstanding(session, invoice) == D("0.00")
    assert_ledger_agrees(session)


@pytest.mark.parametrize("status", ["draft", "void"])
def test_a_draft_or_void_invoice_is_refused(session, owner, customer, status):
    made = make_invoice(session, customer, status=status)
    session.commit()

    with pytest.raises(ActionError, match=f"is {status}: only issued invoices can be credited"):
        raise_credit_note(session, actor=owner, lines=[line()], invoice_id=made.id)


def test_an_unknown_invoice_is_refused(session, owner):
    with pytest.raises(ActionError, match="That invoice does not exist"):
        raise_credit_note(session, actor=owner, lines=[line()], invoice_id=987654)


def test_a_credit_note_cannot_be_dated_before_its_invoice(session, owner, invoice):
    with pytest.raises(ActionError, match="cannot be dated before the invoice"):
        raise_credit_note(session, actor=owner, lines=[line()], invoice_id=invoice.id,
                          issue_date=invoice.issue_date - timedelta(days=1))


# --- standalone ---------------------------------------------------------------------------
def test_a_standalone_credit_note_is_all_account_credit(session, owner, customer):
    result = credit(session, owner, line("30.00", category="parts"), line("5.00", tax_rate="20"),
                    customer_id=customer.id, description="Goodwill",
                    issue_date=date(2026, 3, 1), breakdown_style="full_by_category")

    note = session.get(CreditNote, result.details["credit_note_id"])
    assert (note.invoice_id, note.total, note.description, note.breakdown_style,
            note.issue_date) == (None, D("36.00"), "Goodwill", "full_by_category",
                                 date(2026, 3, 1))
    assert [(ln.position, ln.category) for ln in note.lines] == [(1, "parts"), (2, "labour")]
    assert (result.details["applied"], result.details["to_credit"]) == (D("0"), D("36.00"))
    assert figures(session, customer) == (D("-36.00"), D("36.00"))
    assert count(session, Allocation) == 0
    assert "£36.00 became account credit" in result.message
    assert_ledger_agrees(session)


def test_the_issue_date_defaults_to_today(session, owner, customer):
    result = credit(session, owner, customer_id=customer.id)
    assert session.get(CreditNote, result.details["credit_note_id"]).issue_date == date.today()


def test_a_redacted_or_merged_customer_is_refused(session, owner, customer):
    redacted = make_customer(session, redacted_at=datetime(2026, 1, 1))
    merged = make_customer(session, merged_into_id=customer.id)
    session.commit()

    with pytest.raises(ActionError, match="has been redacted"):
        raise_credit_note(session, actor=owner, lines=[line()], customer_id=redacted.id)
    with pytest.raises(ActionError, match=f"merged into {customer.reference}"):
        raise_credit_note(session, actor=owner, lines=[line()], customer_id=merged.id)
    with pytest.raises(ActionError, match="does not exist"):
        raise_credit_note(session, actor=owner, lines=[line()], customer_id=987654)


def test_exactly_one_of_invoice_and_customer(session, owner, customer, invoice):
    with pytest.raises(ActionError, match="either against an invoice or for a customer"):
        raise_credit_note(session, actor=owner, lines=[line()])
    with pytest.raises(ActionError, match="either against an invoice or for a customer"):
        raise_credit_note(session, actor=owner, lines=[line()], invoice_id=invoice.id,
                          customer_id=customer.id)


# --- lines and header ---------------------------------------------------------------------
@pytest.mark.parametrize(("lines", "message"), [
    ([], "Add at least one line"),
    ([line(quantity="0")], "Line 1, quantity: The quantity must be more than zero"),
    ([line(), line(quantity="-1")], "Line 2, quantity: The quantity must not be negative"),
    ([line(quantity="two")], "Line 1, quantity: Enter a quantity"),
    ([line(quantity="100000000")], "Line 1, quantity: That quantity is too large"),
    ([line(price="-5")], "Line 1, unit price: The amount must not be negative"),
    ([line(price="1.234")], "Line 1, unit price: Use at most two decimal places"),
    ([line(price="NaN")], "Line 1, unit price: Enter an amount"),
    ([line(tax_rate="100.5")], "Line 1, tax rate: Enter a tax rate between 0 and 100"),
    ([line(tax_rate="-1")], "Line 1, tax rate: Enter a tax rate between 0 and 100"),
    ([line(description="   ")], "Line 1: enter a description"),
    ([line(description="x" * 501)], "at most 500 characters"),
    ([line(category="travel")], "Line 1: the category is one of labour, parts, other"),
    ([line(price="0")], "comes to £0.00"),
    ([line(price="9999999999.99", quantity="2")], "a line holds at most £9,999,999,999.99"),
    ([line(price="6000000000")] * 2, "That credit note is too large"),
    ([line()] * 201, "at most 200 lines"),
], ids=["none", "zero-qty", "negative-qty", "text-qty", "huge-qty", "negative-price",
        "three-decimals", "nan", "tax-over-100", "negative-tax", "no-description",
        "long-description", "bad-category", "zero-total", "huge-line", "huge-total",
        "too-many-lines"])
def test_bad_lines_are_refused(session, owner, customer, lines, message):
    with pytest.raises(ActionError, match=message):
        raise_credit_note(session, actor=owner, lines=lines, customer_id=customer.id)
    session.rollback()
    assert count(session, CreditNote) == 0


def test_each_line_rounds_half_up_to_the_cent(session, owner, customer):
    result = credit(session, owner,
                    line("0.05", quantity="0.5"),  # 0.025 -> 0.03 (half-even would give 0.02)
                    line("0.10", tax_rate="17.5"),  # tax 0.0175 -> 0.02
                    customer_id=customer.id)

    note = session.get(CreditNote, result.details["credit_note_id"])
    assert [(ln.net_amount, ln.tax_amount) for ln in note.lines] == [
        (D("0.03"), D("0.00")), (D("0.10"), D("0.02"))]
    assert (note.subtotal, note.tax_total, note.total) == (D("0.13"), D("0.02"), D("0.15"))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"breakdown_style": "itemised"}, "breakdown style is one of"),
    ({"description": "y" * 501}, "at most 500 characters"),
    ({"issue_date": date(1850, 1, 1)}, "Issue date: Enter a date between"),
])
def test_a_bad_header_is_refused(session, owner, customer, kwargs, message):
    with pytest.raises(ActionError, match=message):
        raise_credit_note(session, actor=owner, lines=[line()], customer_id=customer.id,
                          **kwargs)


# --- numbers, audit, all-or-nothing ---------------------------------------------------------
def test_numbers_are_gap_free_and_a_refusal_takes_none(session, owner, customer, invoice):
    credit(session, owner, customer_id=customer.id)
    with pytest.raises(ActionError):
        raise_credit_note(session, actor=owner, lines=[line("500.00")], invoice_id=invoice.id)
    session.rollback()
    credit(session, owner, invoice_id=invoice.id)

    assert session.scalars(select(CreditNote.number).order_by(CreditNote.id)).all() == [
        "CN-000001", "CN-000002"]
    assert peek(session, "credit_note") == 3


def test_raising_writes_one_audit_event(session, owner, customer, invoice):
    payment = make_payment(session, customer, amount="90.00")
    make_allocation(session, invoice, payment=payment, amount="90.00")
    session.commit()

    result = credit(session, owner, line("15.00"), invoice_id=invoice.id)

    events = session.scalars(select(AuditEvent).where(AuditEvent.verb == "raise_credit_note"))
    [event] = list(events)
    assert (event.actor_id, event.subject_type, event.subject_id) == (
        owner.id, "Customer", customer.id)
    assert event.details == {"credit_note_id": result.details["credit_note_id"],
                             "number": "CN-000001", "invoice_number": "INV-000001",
                             "total": "15.00", "applied": "10.00", "to_credit": "5.00"}


def test_a_failure_part_way_leaves_nothing(session, owner, customer, invoice, monkeypatch):
    before = figures(session, customer)

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("crm.actions.credit_note.record", broken)
    with pytest.raises(RuntimeError):
        raise_credit_note(session, actor=owner, lines=[line("40.00")], invoice_id=invoice.id)
    session.rollback()

    assert count(session, CreditNote) == 0
    assert count(session, Allocation) == 0
    assert peek(session, "credit_note") == 1
    assert outstanding(session, invoice) == D("100.00")
    assert figures(session, customer) == before
    assert_ledger_agrees(session)


# --- void -----------------------------------------------------------------------------------
def test_voiding_puts_the_invoice_back_to_owing(session, owner, customer, invoice):
    raised = credit(session, owner, line("40.00"), invoice_id=invoice.id)
    key = raised.details["credit_note_id"]

    result = void_credit_note(session, credit_note_id=key, actor=owner, reason="Raised in error")
    session.commit()

    assert session.get(CreditNote, key).status == "void"
    assert result.details == {"credit_note_id": key, "number": "CN-000001",
                              "released": D("40.00")}
    assert "£40.00 is owed again" in result.message
    assert outstanding(session, invoice) == D("100.00")
    assert figures(session, customer) == (D("100.00"), D("0.00"))
    [note] = session.scalars(select(Note).where(Note.customer_id == customer.id))
    assert note.body == "Credit note CN-000001 voided: Raised in error"
    [event] = session.scalars(select(AuditEvent).where(AuditEvent.verb == "void_credit_note"))
    assert (event.subject_id, event.details) == (customer.id, {
        "credit_note_id": key, "number": "CN-000001", "invoice_number": "INV-000001",
        "total": "40.00", "released": "40.00"})
    assert_ledger_agrees(session)


def test_voiding_a_standalone_credit_note_takes_back_the_account_credit(session, owner,
                                                                        customer):
    raised = credit(session, owner, line("30.00"), customer_id=customer.id)

    void_credit_note(session, credit_note_id=raised.details["credit_note_id"], actor=owner,
                     reason="Duplicate")
    session.commit()

    assert figures(session, customer) == (D("0.00"), D("0.00"))
    assert_ledger_agrees(session)


def test_void_refuses_a_void_note_a_missing_one_and_no_reason(session, owner, customer):
    raised = credit(session, owner, customer_id=customer.id)
    key = raised.details["credit_note_id"]

    with pytest.raises(ActionError, match="Give a reason"):
        void_credit_note(session, credit_note_id=key, actor=owner, reason="  ")
    with pytest.raises(ActionError, match="at most|or fewer"):
        void_credit_note(session, credit_note_id=key, actor=owner, reason="r" * 501)
    void_credit_note(session, credit_note_id=key, actor=owner, reason="Duplicate")
    session.commit()
    with pytest.raises(ActionError, match="CN-000001 is already void; nothing changed"):
        void_credit_note(session, credit_note_id=key, actor=owner, reason="Again")
    with pytest.raises(ActionError, match="does not exist"):
        void_credit_note(session, credit_note_id=987654, actor=owner, reason="Gone")
    session.rollback()
    assert session.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.verb == "void_credit_note")
    ) == 1


# --- property: the cap and the split hold for any sequence ------------------------------------
amounts = st.decimals(min_value=D("0.01"), max_value=D("150.00"), places=2)
steps = st.lists(st.one_of(st.tuples(st.just("raise"), amounts),
                           st.tuples(st.just("void"), st.integers(0, 10))), min_size=1,
                 max_size=6)


@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(total=amounts, paid=st.decimals(min_value=D("0"), max_value=D("1"), places=2),
       plan=steps)
def test_any_sequence_never_over_credits_and_keeps_the_ledger(session, owner, total, paid, plan):
    buyer = make_customer(session)
    invoice = make_invoice(session, buyer, amount=str(total))
    paid_amount = (total * paid).quantize(D("0.01"))
    if paid_amount > 0:
        make_allocation(session, invoice, amount=str(paid_amount),
                        payment=make_payment(session, buyer, amount=str(paid_amount)))
    session.commit()
    raised: list[int] = []
    for kind, value in plan:
        owed_before = outstanding(session, invoice)
        if kind == "void":
            if raised:
                void_credit_note(session, credit_note_id=raised.pop(value % len(raised)),
                                 actor=owner, reason="Property test")
                session.commit()
            continue
        credited = session.scalar(select(func.coalesce(func.sum(CreditNote.total), 0)).where(
            CreditNote.invoice_id == invoice.id, CreditNote.status == "issued"))
        try:
            result = raise_credit_note(session, actor=owner, lines=[line(str(value))],
                                       invoice_id=invoice.id)
        except ActionError:
            session.rollback()
            assert credited + value > total
            continue
        session.commit()
        raised.append(result.details["credit_note_id"])
        assert result.details["applied"] == min(value, owed_before)
        assert result.details["applied"] + result.details["to_credit"] == value
    credited = session.scalar(select(func.coalesce(func.sum(CreditNote.total), 0)).where(
        CreditNote.invoice_id == invoice.id, CreditNote.status == "issued"))
    assert credited <= total
    assert_ledger_agrees(session)
