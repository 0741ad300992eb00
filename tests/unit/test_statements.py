"""The statement builder: what is outstanding at a date (with aging by due date) and the
activity of a period, agreeing with the customer's stored ledger figures."""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from crm.models import Customer
from crm.statements import StatementError, build_statement
from tests.factories import (
    make_allocation,
    make_contact,
    make_credit_note,
    make_customer,
    make_invoice,
    make_payment,
)
from tests.unit.conftest import count_statements

D = Decimal
TODAY = date.today()


@pytest.fixture
def customer(session):
    return make_customer(session)


def stored(session, customer) -> Customer:
    session.commit()
    session.expire_all()
    return session.get(Customer, customer.id)


def test_outstanding_lists_unpaid_invoices_and_unallocated_credits(session, customer):
    overdue = make_invoice(session, customer, amount="100.00", days_overdue=10)
    paid = make_invoice(session, customer, amount="40.00", days_overdue=5)
    upcoming = make_invoice(session, customer, amount="25.00", tax_rate="20")
    payment = make_payment(session, customer, amount="70.00", reference="BACS 1")
    make_allocation(session, paid, payment=payment, amount="40.00")
    make_allocation(session, overdue, payment=payment, amount="20.00")
    note = make_credit_note(session, customer, amount="15.00")
    c = stored(session, customer)

    s = build_statement(session, customer_id=customer.id)

    assert [(x.number, x.outstanding, x.days_overdue) for x in s.open_invoices] == [
        (overdue.number, D("80.00"), 10), (upcoming.number, D("30.00"), 0)]
    assert [(x.kind, x.number, x.outstanding) for x in s.open_credits] == [
        ("credit_note", note.number, D("-15.00")), ("payment", "BACS 1", D("-10.00"))]
    assert s.lines == s.open_invoices + s.open_credits
    assert s.invoiced_outstanding == D("110.00")
    assert s.account_credit == D("25.00") == c.account_credit
    assert s.balance == D("85.00") == c.balance
    assert s.overdue == D("80.00") == c.overdue_amount
    assert s.as_of == TODAY and s.kind == "outstanding" and not s.is_activity


@pytest.mark.parametrize(("days", "bucket"), [
    (-5, 0), (0, 0), (1, 1), (30, 1), (31, 2), (60, 2), (61, 3), (90, 3), (91, 4), (400, 4),
])
def test_aging_bucket_boundaries(session, customer, days, bucket):
    make_invoice(session, customer, amount="10.00", days_overdue=days)
    s = build_statement(session, customer_id=customer.id)
    assert [label for label, _ in s.aging] == [
        "Current", "1–30 days", "31–60 days", "61–90 days", "Over 90 days"]
    assert [amount for _, amount in s.aging] == [
        D("10.00") if i == bucket else D("0.00") for i in range(5)]
    assert s.overdue == (D("0.00") if bucket == 0 else D("10.00"))
    assert s.open_invoices[0].days_overdue == max(days, 0)


def test_buckets_sum_to_the_stored_overdue_amount(session, customer):
    for days in (0, 1, 30, 31, 60, 61, 90, 91):
        make_invoice(session, customer, amount=f"{days + 1}.00", days_overdue=days)
    c = stored(session, customer)
    s = build_statement(session, customer_id=customer.id)
    assert sum(a for _, a in s.overdue_aging) == s.overdue == c.overdue_amount == D("371.00")
    assert sum(a for _, a in s.aging) == s.invoiced_outstanding == c.balance


def test_void_documents_are_left_out_and_their_allocations_with_them(session, customer):
    void = make_invoice(session, customer, amount="100.00", status="void")
    payment = make_payment(session, customer, amount="30.00")
    make_allocation(session, void, payment=payment, amount="30.00")
    live = make_invoice(session, customer, amount="50.00")
    dead_note = make_credit_note(session, customer, amount="20.00", status="void")
    make_allocation(session, live, credit_note=dead_note, amount="20.00")
    c = stored(session, customer)

    s = build_statement(session, customer_id=customer.id)

    assert [x.number for x in s.open_invoices] == [live.number]
    assert s.open_invoices[0].outstanding == D("50.00")  # the void note paid nothing off
    assert [(x.kind, x.outstanding) for x in s.open_credits] == [("payment", D("-30.00"))]
    assert (s.balance, s.account_credit) == (c.balance, c.account_credit) == (D("20.00"),
                                                                                 D("30.00"))
    activity = build_statement(session, customer_id=customer.id, kind="activity",
                               start=TODAY - timedelta(days=365))
    assert void.number not in [x.number for x in activity.lines]
    assert dead_note.number not in [x.number for x in activity.lines]


def test_a_statement_in_the_past(session, customer):
    old = make_invoice(session, customer, amount="100.00", issue_date=TODAY - timedelta(days=60),
                       due_date=TODAY - timedelta(days=30))
    make_invoice(session, customer, amount="70.00", issue_date=TODAY - timedelta(days=5),
                 due_date=TODAY + timedelta(days=25))
    early = make_payment(session, customer, amount="40.00", received_on=TODAY - timedelta(days=40))
    late = make_payment(session, customer, amount="60.00", received_on=TODAY - timedelta(days=2))
    make_allocation(session, old, payment=early, amount="40.00")
    make_allocation(session, old, payment=late, amount="60.00")
    as_of = TODAY - timedelta(days=10)

    s = build_statement(session, customer_id=customer.id, as_of=as_of)

    # The later invoice and payment did not exist yet; the early payment's allocation did.
    assert [(x.number, x.outstanding, x.days_overdue) for x in s.open_invoices] == [
        (old.number, D("60.00"), 20)]
    assert s.open_credits == [] and s.balance == D("60.00") and s.as_of == as_of
    assert s.aging[1] == ("1–30 days", D("60.00"))
    # Today it is all paid off but the new invoice.
    now = build_statement(session, customer_id=customer.id)
    assert now.balance == D("70.00") and now.overdue == D("0.00")


def test_an_allocation_counts_from_the_later_of_its_two_documents(session, customer):
    invoice = make_invoice(session, customer, amount="50.00",
                           issue_date=TODAY - timedelta(days=5), due_date=TODAY)
    prepaid = make_payment(session, customer, amount="50.00",
                           received_on=TODAY - timedelta(days=20))
    make_allocation(session, invoice, payment=prepaid, amount="50.00")

    before = build_statement(session, customer_id=customer.id, as_of=TODAY - timedelta(days=10))
    assert before.open_invoices == [] and before.account_credit == D("50.00")
    assert before.balance == D("-50.00")
    after = build_statement(session, customer_id=customer.id, as_of=TODAY - timedelta(days=5))
    assert after.open_invoices == [] and after.open_credits == [] and after.balance == 0


def test_activity_opening_running_and_closing_balance(session, customer):
    start, end = TODAY - timedelta(days=30), TODAY - timedelta(days=1)
    make_invoice(session, customer, amount="200.00", issue_date=start - timedelta(days=5),
                 due_date=start)
    make_payment(session, customer, amount="50.00", received_on=start - timedelta(days=1))
    inv = make_invoice(session, customer, amount="100.00", issue_date=start,
                       due_date=start + timedelta(days=14))
    note = make_credit_note(session, customer, amount="30.00", issue_date=start + timedelta(days=3))
    pay = make_payment(session, customer, amount="120.00", received_on=end, reference="CHQ")
    make_payment(session, customer, amount="5.00", received_on=TODAY)  # after the period

    s = build_statement(session, customer_id=customer.id, kind="activity", start=start, end=end)

    assert s.opening_balance == D("150.00")
    assert [(x.kind, x.number, x.amount, x.balance) for x in s.lines] == [
        ("invoice", inv.number, D("100.00"), D("250.00")),
        ("credit_note", note.number, D("-30.00"), D("220.00")),
        ("payment", pay.reference, D("-120.00"), D("100.00")),
    ]
    assert s.closing_balance == D("100.00")
    assert (s.invoiced, s.credited, s.paid) == (D("100.00"), D("30.00"), D("120.00"))
    assert (s.start, s.end, s.as_of) == (start, end, end)
    # The closing balance is the outstanding balance at the end date.
    assert build_statement(session, customer_id=customer.id, as_of=end).balance == D("100.00")
    assert s.balance == s.closing_balance


def test_activity_defaults_to_the_last_three_months(session, customer):
    s = build_statement(session, customer_id=customer.id, kind="activity")
    assert (s.start, s.end) == ((TODAY - timedelta(days=91)).replace(day=1), TODAY)


def test_same_day_documents_are_ordered_invoice_credit_payment(session, customer):
    day = TODAY - timedelta(days=3)
    pay = make_payment(session, customer, amount="5.00", received_on=day)
    note = make_credit_note(session, customer, amount="5.00", issue_date=day)
    inv = make_invoice(session, customer, amount="5.00", issue_date=day, due_date=day)
    s = build_statement(session, customer_id=customer.id, kind="activity", start=day, end=day)
    assert [x.id for x in s.lines] == [inv.id, note.id, pay.id]


def test_grouping_by_contact(session, customer):
    zoe = make_contact(session, customer, first_name="Zoe", surname="Young")
    adam = make_contact(session, customer, first_name="Adam", surname="Ash")
    a1 = make_invoice(session, customer, amount="10.00", contact=zoe)
    a2 = make_invoice(session, customer, amount="20.00", contact=adam)
    a3 = make_invoice(session, customer, amount="30.00")
    a4 = make_invoice(session, customer, amount="40.00", contact=adam)
    make_credit_note(session, customer, amount="5.00", invoice=a4)
    make_payment(session, customer, amount="1.00")

    s = build_statement(session, customer_id=customer.id, group_by_contact=True)

    assert [(g.label, [x.id for x in g.lines], g.total) for g in s.groups] == [
        ("Adam Ash", [a2.id, a4.id], D("60.00")),
        ("Zoe Young", [a1.id], D("10.00")),
        ("No contact", [a3.id], D("30.00")),
    ]
    assert s.grouped and len(s.open_credits) == 2  # credits are listed once, ungrouped

    activity = build_statement(session, customer_id=customer.id, kind="activity",
                               start=TODAY - timedelta(days=365), group_by_contact=True)
    # A credit note goes with its invoice's contact; a payment has none.
    assert [(g.label, g.total) for g in activity.groups] == [
        ("Adam Ash", D("55.00")), ("Zoe Young", D("10.00")), ("No contact", D("29.00"))]
    assert sum(g.total for g in activity.groups) == activity.closing_balance - \
        activity.opening_balance
    assert not build_statement(session, customer_id=customer.id).groups


def _ledger(session, customer, n):
    for i in range(n):
        invoice = make_invoice(session, customer, amount="10.00", days_overdue=i)
        payment = make_payment(session, customer, amount="4.00")
        make_allocation(session, invoice, payment=payment, amount="3.00")
        note = make_credit_note(session, customer, amount="2.00")
        make_allocation(session, invoice, credit_note=note, amount="1.00")


@pytest.mark.parametrize("kind", ["outstanding", "activity"])
def test_a_constant_number_of_sql_statements(session, kind):
    counts = []
    for n in (1, 40):
        customer = make_customer(session)
        _ledger(session, customer, n)
        session.commit()
        session.expire_all()
        with count_statements(session) as seen:
            s = build_statement(session, customer_id=customer.id, kind=kind,
                                start=TODAY - timedelta(days=400), group_by_contact=True)
            assert s.customer.display_name  # loaded, not lazily later
        counts.append(len(seen))
    assert counts[0] == counts[1] <= 5


def test_refusals(session, customer):
    with pytest.raises(StatementError, match="outstanding or activity"):
        build_statement(session, customer_id=customer.id, kind="weekly")
    with pytest.raises(StatementError, match="start date is after the end date"):
        build_statement(session, customer_id=customer.id, kind="activity",
                        start=TODAY, end=TODAY - timedelta(days=1))
    with pytest.raises(StatementError, match="No such customer"):
        build_statement(session, customer_id=customer.id + 1000)


def test_a_customer_with_no_documents(session, customer):
    s = build_statement(session, customer_id=customer.id)
    assert (s.lines, s.balance, s.overdue, s.account_credit) == ([], 0, 0, 0)
    assert all(amount == 0 for _, amount in s.aging)
