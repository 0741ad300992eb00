"""The stored ledger figures (balance, account credit, overdue, dates) follow every money
write in the same commit, re-age with the calendar, and agree with `flask crm check-ledger`."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, text, update

from crm import ledger
from crm.extensions import db
from crm.models import Allocation, Customer, Invoice, InvoiceLine
from crm.models.sequence import next_number
from tests.factories import (
    make_allocation,
    make_credit_note,
    make_customer,
    make_invoice,
    make_payment,
)

TODAY = date.today()
D = Decimal


def figures(session, customer) -> dict:
    """The customer's stored figures as the database holds them now."""
    row = session.execute(
        select(Customer.balance, Customer.account_credit, Customer.overdue_amount,
               Customer.oldest_overdue_on, Customer.next_due_on)
        .where(Customer.id == customer.id)
    ).one()
    return row._asdict()


def outstanding(session, invoice) -> Decimal:
    return session.execute(select(Invoice.outstanding).where(Invoice.id == invoice.id)).scalar()


def assert_ledger_agrees(session, today=None):
    found, total = ledger.differences(session, today=today)
    assert (found, total) == ([], 0)


@pytest.fixture
def customer(session):
    return make_customer(session)


def test_issuing_an_invoice_updates_the_stored_figures_in_the_same_commit(session, customer):
    invoice = make_invoice(session, customer, amount="100.00", tax_rate="20")
    session.commit()

    # Another connection sees the figures as soon as the invoice is committed.
    with db.engine.connect() as other:
        balance = other.execute(
            select(Customer.balance).where(Customer.id == customer.id)
        ).scalar()
    assert balance == D("120.00")
    assert figures(session, customer) == {
        "balance": D("120.00"), "account_credit": D("0.00"), "overdue_amount": D("0.00"),
        "oldest_overdue_on": None, "next_due_on": invoice.due_date,
    }
    assert outstanding(session, invoice) == D("120.00")
    assert_ledger_agrees(session)


def test_an_overdue_invoice_counts_as_overdue_from_the_day_after_it_is_due(session, customer):
    late = make_invoice(session, customer, amount="80.00", days_overdue=10)
    due_today = make_invoice(session, customer, amount="5.00", days_overdue=0)
    session.commit()

    assert figures(session, customer) == {
        "balance": D("85.00"), "account_credit": D("0.00"), "overdue_amount": D("80.00"),
        "oldest_overdue_on": late.due_date, "next_due_on": due_today.due_date,
    }


def test_a_draft_invoice_counts_for_nothing_until_it_is_issued(session, customer):
    draft = make_invoice(session, customer, amount="60.00", status="draft")
    session.commit()
    assert figures(session, customer)["balance"] == D("0.00")

    draft.status, draft.number = "issued", next_number(session, "invoice")
    session.commit()

    assert figures(session, customer)["balance"] == D("60.00")
    assert outstanding(session, draft) == D("60.00")


def test_a_payment_lowers_the_balance_and_unallocated_it_is_account_credit(session, customer):
    make_invoice(session, customer, amount="100.00", days_overdue=5)
    make_payment(session, customer, amount="30.00")
    session.commit()

    found = figures(session, customer)
    assert found["balance"] == D("70.00")
    assert found["account_credit"] == D("30.00")
    assert found["overdue_amount"] == D("100.00")  # nothing allocated to the invoice yet


def test_an_allocation_lowers_overdue_and_what_is_outstanding(session, customer):
    invoice = make_invoice(session, customer, amount="100.00", days_overdue=5)
    payment = make_payment(session, customer, amount="30.00")
    session.commit()

    make_allocation(session, invoice, payment=payment, amount="30.00")
    session.commit()

    assert outstanding(session, invoice) == D("70.00")
    found = figures(session, customer)
    assert (found["balance"], found["account_credit"], found["overdue_amount"]) == (
        D("70.00"), D("0.00"), D("70.00"))


def test_paying_an_invoice_in_full_clears_it_from_overdue(session, customer):
    invoice = make_invoice(session, customer, amount="100.00", days_overdue=5)
    payment = make_payment(session, customer, amount="100.00")
    make_allocation(session, invoice, payment=payment, amount="100.00")
    session.commit()

    assert figures(session, customer) == {
        "balance": D("0.00"), "account_credit": D("0.00"), "overdue_amount": D("0.00"),
        "oldest_overdue_on": None, "next_due_on": None,
    }


def test_more_paid_than_owed_leaves_a_negative_balance_and_account_credit(session, customer):
    invoice = make_invoice(session, customer, amount="40.00")
    payment = make_payment(session, customer, amount="100.00")
    make_allocation(session, invoice, payment=payment, amount="40.00")
    session.commit()

    found = figures(session, customer)
    assert (found["balance"], found["account_credit"]) == (D("-60.00"), D("60.00"))


def test_a_credit_note_lowers_the_balance(session, customer):
    make_invoice(session, customer, amount="100.00")
    make_credit_note(session, customer, amount="25.00")
    session.commit()

    found = figures(session, customer)
    assert (found["balance"], found["account_credit"]) == (D("75.00"), D("25.00"))


def test_a_credit_note_allocated_to_an_invoice_lowers_what_is_overdue(session, customer):
    invoice = make_invoice(session, customer, amount="100.00", days_overdue=3)
    note = make_credit_note(session, customer, amount="25.00", invoice=invoice)
    make_allocation(session, invoice, credit_note=note, amount="25.00")
    session.commit()

    found = figures(session, customer)
    assert (found["balance"], found["account_credit"], found["overdue_amount"]) == (
        D("75.00"), D("0.00"), D("75.00"))


def test_voiding_an_invoice_removes_it(session, customer):
    kept = make_invoice(session, customer, amount="10.00")
    voided = make_invoice(session, customer, amount="100.00", days_overdue=3)
    session.commit()

    voided.status = "void"
    session.commit()

    assert figures(session, customer) == {
        "balance": D("10.00"), "account_credit": D("0.00"), "overdue_amount": D("0.00"),
        "oldest_overdue_on": None, "next_due_on": kept.due_date,
    }
    assert outstanding(session, voided) == D("0.00")


def test_voiding_a_paid_invoice_turns_its_payment_into_account_credit(session, customer):
    invoice = make_invoice(session, customer, amount="100.00")
    payment = make_payment(session, customer, amount="100.00")
    make_allocation(session, invoice, payment=payment, amount="100.00")
    session.commit()

    invoice.status = "void"
    session.commit()

    found = figures(session, customer)
    # The customer paid 100 and owes nothing: the 100 is theirs to use or have refunded.
    assert (found["balance"], found["account_credit"]) == (D("-100.00"), D("100.00"))
    assert_ledger_agrees(session)


def test_voiding_an_allocated_credit_note_puts_the_invoice_back_to_owing(session, customer):
    invoice = make_invoice(session, customer, amount="100.00")
    note = make_credit_note(session, customer, amount="30.00", invoice=invoice)
    make_allocation(session, invoice, credit_note=note, amount="30.00")
    session.commit()

    note.status = "void"
    session.commit()

    assert outstanding(session, invoice) == D("100.00")
    found = figures(session, customer)
    assert (found["balance"], found["account_credit"]) == (D("100.00"), D("0.00"))


def test_deleting_a_payment_restores_the_balance(session, customer):
    make_invoice(session, customer, amount="100.00")
    payment = make_payment(session, customer, amount="40.00")
    session.commit()
    assert figures(session, customer)["balance"] == D("60.00")

    session.delete(payment)
    session.commit()

    found = figures(session, customer)
    assert (found["balance"], found["account_credit"]) == (D("100.00"), D("0.00"))


def test_deleting_an_allocation_gives_the_payment_back_as_credit(session, customer):
    invoice = make_invoice(session, customer, amount="100.00", days_overdue=1)
    payment = make_payment(session, customer, amount="40.00")
    allocation = make_allocation(session, invoice, payment=payment, amount="40.00")
    session.commit()

    session.delete(allocation)
    session.commit()

    assert outstanding(session, invoice) == D("100.00")
    found = figures(session, customer)
    assert (found["account_credit"], found["overdue_amount"]) == (D("40.00"), D("100.00"))


def test_moving_an_invoice_to_another_customer_recomputes_both(session, customer):
    other = make_customer(session)
    invoice = make_invoice(session, customer, amount="100.00", days_overdue=2)
    session.commit()

    invoice.customer_id = other.id
    session.commit()

    assert figures(session, customer)["balance"] == D("0.00")
    assert figures(session, customer)["overdue_amount"] == D("0.00")
    assert figures(session, other)["balance"] == D("100.00")
    assert figures(session, other)["overdue_amount"] == D("100.00")

    invoice.customer = customer  # and back, through the relationship this time
    session.commit()

    assert figures(session, customer)["balance"] == D("100.00")
    assert figures(session, other)["balance"] == D("0.00")


def _issue(session, invoice) -> None:
    from crm.actions.invoice import issue_invoice

    issue_invoice(session, invoice_id=invoice.id, actor=None)
    session.commit()


def test_changing_a_draft_line_changes_its_total_and_issuing_it_the_balance(session, customer):
    invoice = make_invoice(session, customer, amount="100.00", tax_rate="20", status="draft")
    session.commit()

    invoice.lines[0].quantity = D("2.5")
    session.commit()

    assert (invoice.subtotal, invoice.tax_total, invoice.total) == (
        D("250.00"), D("50.00"), D("300.00"))
    assert figures(session, customer)["balance"] == D("0.00")  # a draft owes nothing yet
    _issue(session, invoice)
    assert figures(session, customer)["balance"] == D("300.00")


def test_adding_and_removing_draft_lines_changes_the_invoice_total(session, customer):
    invoice = make_invoice(session, customer, amount="100.00", status="draft")
    session.commit()
    extra = InvoiceLine(description="Parts", category="parts", quantity=D("1"),
                        unit_price=D("19.99"))
    invoice.lines.append(extra)
    session.commit()
    assert session.get(Invoice, invoice.id).total == D("119.99")

    session.delete(extra)
    session.commit()

    assert session.get(Invoice, invoice.id).total == D("100.00")
    _issue(session, invoice)
    assert figures(session, customer)["balance"] == D("100.00")
    assert_ledger_agrees(session)


def test_a_rolled_back_money_write_changes_nothing(session, customer):
    invoice = make_invoice(session, customer, amount="100.00")
    session.commit()
    before = figures(session, customer)

    payment = make_payment(session, customer, amount="100.00")
    make_allocation(session, invoice, payment=payment, amount="100.00")
    invoice.status = "void"
    session.flush()
    session.rollback()

    assert figures(session, customer) == before
    assert outstanding(session, invoice) == D("100.00")
    # and the next commit does not recompute anything left over from the rolled-back work
    session.commit()
    assert figures(session, customer) == before


def test_a_bulk_update_that_bypasses_the_hooks_is_repaired_by_recompute(session, customer):
    invoice = make_invoice(session, customer, amount="100.00")
    session.commit()
    session.execute(update(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id)
                    .values(unit_price=D("50.00")))
    session.execute(update(Invoice).where(Invoice.id == invoice.id).values(total=D("50.00")))
    session.commit()
    assert ledger.differences(session)[1] > 0

    ledger.recompute(session, [customer.id])
    session.commit()

    assert figures(session, customer)["balance"] == D("50.00")
    assert_ledger_agrees(session)


# --- the calendar --------------------------------------------------------------------------

def test_an_invoice_whose_due_date_passes_becomes_overdue_after_refresh(session, customer):
    invoice = make_invoice(session, customer, amount="100.00")  # due in 14 days
    session.commit()
    later = invoice.due_date + timedelta(days=1)
    assert figures(session, customer)["overdue_amount"] == D("0.00")
    assert ledger.differences(session, today=later)[1] > 0  # yesterday's figure is stale

    changed = ledger.refresh_stale(session, today=later)
    session.commit()

    assert changed == 1
    assert figures(session, customer) == {
        "balance": D("100.00"), "account_credit": D("0.00"), "overdue_amount": D("100.00"),
        "oldest_overdue_on": invoice.due_date, "next_due_on": None,
    }
    assert_ledger_agrees(session, today=later)


def test_refresh_leaves_customers_with_nothing_newly_due_alone(session, customer):
    make_invoice(session, customer, amount="100.00")  # due in 14 days
    paid_up = make_customer(session)
    session.commit()

    assert ledger.refresh_stale(session, today=TODAY) == 0
    assert ledger.refresh_stale(session, today=TODAY + timedelta(days=14)) == 0
    assert ledger.refresh_stale(session, today=TODAY + timedelta(days=15)) == 1
    session.commit()
    assert figures(session, paid_up)["overdue_amount"] == D("0.00")


def test_a_stored_next_due_date_in_the_past_is_re_aged_by_refresh(session, customer):
    invoice = make_invoice(session, customer, amount="100.00", days_overdue=3)
    session.commit()
    # As if the figures were last computed before the due date passed.
    session.execute(update(Customer).where(Customer.id == customer.id).values(
        overdue_amount=0, oldest_overdue_on=None, next_due_on=invoice.due_date))
    session.commit()

    ledger.refresh_stale(session)
    session.commit()

    assert figures(session, customer)["overdue_amount"] == D("100.00")
    assert figures(session, customer)["oldest_overdue_on"] == invoice.due_date


# --- flask crm check-ledger ---------------------------------------------------------------

def test_check_ledger_agrees_on_a_consistent_database(app, session, customer):
    invoice = make_invoice(session, customer, amount="100.00", days_overdue=4)
    payment = make_payment(session, customer, amount="30.00")
    make_allocation(session, invoice, payment=payment, amount="20.00")
    make_credit_note(session, make_customer(session), amount="5.00")
    session.commit()

    result = app.test_cli_runner().invoke(args=["crm", "check-ledger"])

    assert result.exit_code == 0, result.output
    assert "Ledger agrees" in result.output


def test_check_ledger_lists_a_tampered_figure_and_fails(app, session, customer):
    make_invoice(session, customer, amount="100.00")
    session.commit()
    session.execute(text("UPDATE customer SET balance = 999"))
    session.commit()

    result = app.test_cli_runner().invoke(args=["crm", "check-ledger"])

    assert result.exit_code != 0
    assert f"{customer.reference}: balance stored 999" in result.output
    assert "expected 100" in result.output
    assert "1 ledger difference(s) found" in result.output


def test_check_ledger_reports_a_tampered_invoice_outstanding(app, session, customer):
    invoice = make_invoice(session, customer, amount="100.00")
    session.commit()
    session.execute(text("UPDATE invoice SET outstanding = 1 WHERE id = :id"), {"id": invoice.id})
    session.commit()

    result = app.test_cli_runner().invoke(args=["crm", "check-ledger"])

    assert result.exit_code != 0
    assert "outstanding" in result.output


# --- allocations that must be refused ------------------------------------------------------

def _refusal(session, **kwargs) -> str:
    allocation = Allocation(**{"amount": D("10.00"), **kwargs})
    with pytest.raises(ValueError) as refused:
        ledger.check_allocation(session, allocation)
    return str(refused.value)


def test_check_allocation_refuses_more_than_is_left_on_the_invoice(session, customer):
    invoice = make_invoice(session, customer, amount="100.00")
    first = make_payment(session, customer, amount="80.00")
    second = make_payment(session, customer, amount="80.00")
    make_allocation(session, invoice, payment=first, amount="80.00")
    session.commit()

    message = _refusal(session, invoice=invoice, payment=second, amount=D("20.01"))

    assert "20.00 is left to pay" in message
    ledger.check_allocation(session, Allocation(invoice=invoice, payment=second,
                                                amount=D("20.00")))


def test_check_allocation_refuses_more_than_the_payment_has_left(session, customer):
    first = make_invoice(session, customer, amount="100.00")
    second = make_invoice(session, customer, amount="100.00")
    payment = make_payment(session, customer, amount="50.00")
    make_allocation(session, first, payment=payment, amount="30.00")
    session.commit()

    message = _refusal(session, invoice=second, payment=payment, amount=D("20.01"))

    assert "20.00 of that payment or credit note is unallocated" in message


def test_check_allocation_refuses_a_payment_of_another_customer(session, customer):
    invoice = make_invoice(session, customer, amount="100.00")
    payment = make_payment(session, make_customer(session), amount="50.00")
    session.commit()

    assert "different customers" in _refusal(session, invoice=invoice, payment=payment)


def test_check_allocation_refuses_a_draft_or_void_invoice(session, customer):
    draft = make_invoice(session, customer, status="draft")
    void = make_invoice(session, customer, status="void")
    payment = make_payment(session, customer, amount="50.00")
    session.commit()

    assert "is draft" in _refusal(session, invoice=draft, payment=payment)
    assert "is void" in _refusal(session, invoice=void, payment=payment)


def test_check_allocation_refuses_a_void_credit_note_and_a_missing_source(session, customer):
    invoice = make_invoice(session, customer, amount="100.00")
    note = make_credit_note(session, customer, amount="20.00", status="void")
    payment = make_payment(session, customer, amount="50.00")
    session.commit()

    assert "void credit note" in _refusal(session, invoice=invoice, credit_note=note)
    assert "either a payment or a credit note" in _refusal(session, invoice=invoice)
    assert "either a payment or a credit note" in _refusal(
        session, invoice=invoice, payment=payment, credit_note=make_credit_note(session, customer))


def test_check_allocation_allows_an_edit_of_an_existing_allocation(session, customer):
    invoice = make_invoice(session, customer, amount="100.00")
    payment = make_payment(session, customer, amount="100.00")
    allocation = make_allocation(session, invoice, payment=payment, amount="100.00")
    session.commit()

    allocation.amount = D("90.00")
    ledger.check_allocation(session, allocation)  # its own old amount does not count
    session.commit()
    assert outstanding(session, invoice) == D("10.00")
