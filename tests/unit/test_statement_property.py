"""Random ledgers: the statement agrees with the stored ledger figures and with the documents,
at any date, and its PDF shows the same numbers as its HTML."""

import re
from datetime import date, timedelta
from decimal import ROUND_DOWN, Decimal
from html import unescape
from io import BytesIO

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader

from crm.documents import statement_html, statement_pdf
from crm.models import Customer
from crm.statements import build_statement
from tests.factories import (
    make_allocation,
    make_credit_note,
    make_customer,
    make_invoice,
    make_payment,
)

D = Decimal
ZERO = D("0.00")
TODAY = date.today()
MONEY_RE = re.compile(r"-?\d{1,3}(?:,\d{3})*\.\d\d")

money = st.decimals(min_value=D("0.01"), max_value=D("5000.00"), places=2)
day = st.integers(0, 150)  # days before today
ledgers = st.fixed_dictionaries({
    "invoices": st.lists(st.tuples(money, day, st.integers(0, 60), st.booleans()),
                         min_size=1, max_size=6),
    "payments": st.lists(st.tuples(money, day), max_size=4),
    "notes": st.lists(st.tuples(money, day, st.booleans()), max_size=3),
    "allocations": st.lists(
        st.tuples(st.integers(0, 20), st.integers(0, 20), st.booleans(),
                  st.sampled_from([D("1"), D("0.5"), D("0.37")])),
        max_size=6),
})
SETTINGS = dict(deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


def build_ledger(session, ledger) -> Customer:
    """Documents and valid allocations for a new customer; some invoices and credit notes are
    voided after money was allocated to or from them. Committed, so the ledger is stored."""
    customer = make_customer(session)
    invoices = []
    for amount, ago, term, void in ledger["invoices"]:
        issued = TODAY - timedelta(days=ago)
        invoice = make_invoice(session, customer, amount=str(amount), issue_date=issued,
                               due_date=issued + timedelta(days=term))
        invoices.append((invoice, void))
    payments = [make_payment(session, customer, amount=str(a),
                             received_on=TODAY - timedelta(days=ago))
                for a, ago in ledger["payments"]]
    notes = [(make_credit_note(session, customer, amount=str(a),
                               issue_date=TODAY - timedelta(days=ago)), void)
             for a, ago, void in ledger["notes"]]
    left = {("i", inv.id): inv.total for inv, _ in invoices}
    left.update({("p", p.id): p.amount for p in payments})
    left.update({("n", n.id): n.total for n, _ in notes})
    for invoice_pick, source_pick, from_payment, share in ledger["allocations"]:
        sources = [("p", p) for p in payments] if from_payment else [("n", n) for n, _ in notes]
        if not sources:
            continue
        invoice = invoices[invoice_pick % len(invoices)][0]
        tag, source = sources[source_pick % len(sources)]
        amount = (min(left[("i", invoice.id)], left[(tag, source.id)]) * share).quantize(
            D("0.01"), rounding=ROUND_DOWN)
        if amount <= 0:
            continue
        left[("i", invoice.id)] -= amount
        left[(tag, source.id)] -= amount
        make_allocation(session, invoice, amount=str(amount),
                        **({"payment": source} if tag == "p" else {"credit_note": source}))
    for document, void in [*invoices, *notes]:
        if void:
            document.status = "void"
    session.commit()
    session.expire_all()
    return session.get(Customer, customer.id)


def from_documents(ledger) -> Decimal:
    invoiced = sum((a for a, _, _, void in ledger["invoices"] if not void), ZERO)
    credited = sum((a for a, _, void in ledger["notes"] if not void), ZERO)
    paid = sum((a for a, _ in ledger["payments"]), ZERO)
    return invoiced - credited - paid


@settings(max_examples=40, **SETTINGS)
@given(ledger=ledgers, end_ago=day, length=st.integers(0, 90))
def test_statements_agree_with_the_ledger_and_each_other(session, ledger, end_ago, length):
    customer = build_ledger(session, ledger)

    now = build_statement(session, customer_id=customer.id)
    assert now.balance == customer.balance == from_documents(ledger)
    assert now.account_credit == customer.account_credit
    assert now.overdue == customer.overdue_amount
    assert sum(amount for _, amount in now.overdue_aging) == now.overdue
    assert sum(amount for _, amount in now.aging) == now.invoiced_outstanding
    assert all(line.outstanding > 0 for line in now.open_invoices)
    assert all(line.outstanding < 0 for line in now.open_credits)
    assert build_statement(session, customer_id=customer.id, as_of=TODAY).balance == now.balance

    end = TODAY - timedelta(days=end_ago)
    start = end - timedelta(days=length)
    activity = build_statement(session, customer_id=customer.id, kind="activity", start=start,
                               end=end)
    at_end = build_statement(session, customer_id=customer.id, as_of=end)
    before = build_statement(session, customer_id=customer.id, as_of=start - timedelta(days=1))
    assert activity.closing_balance == at_end.balance == activity.balance
    assert activity.opening_balance == before.balance
    assert activity.closing_balance == activity.opening_balance + sum(
        (line.amount for line in activity.lines), ZERO)
    assert sum(amount for _, amount in at_end.overdue_aging) == at_end.overdue


def amounts_in(text: str) -> list[str]:
    return MONEY_RE.findall(text)


@settings(max_examples=8, **SETTINGS)
@given(ledger=ledgers, kind=st.sampled_from(["outstanding", "activity"]), grouped=st.booleans())
def test_the_pdf_shows_the_same_numbers_as_the_html(session, ledger, kind, grouped):
    customer = build_ledger(session, ledger)
    statement = build_statement(session, customer_id=customer.id, kind=kind,
                                start=TODAY - timedelta(days=200), group_by_contact=grouped)

    html_text = unescape(re.sub(r"<[^>]+>", " ", statement_html(statement)))
    pdf_text = "\n".join(page.extract_text() for page in
                         PdfReader(BytesIO(statement_pdf(statement))).pages)

    # The PDF ends with what to pay and how (a block the page does not have); above it, the
    # statement itself must read exactly as the page does.
    # After the statement: "Please pay £X now: it is overdue." (never more than the balance) in
    # the payment block, or "Your account is £X in credit".
    body, _, pay = pdf_text.partition("PAYMENT\n")
    page_amounts = amounts_in(html_text)
    body_amounts = amounts_in(body)
    assert body_amounts[:len(page_amounts)] == page_amounts
    closing = [f"{-statement.balance:,.2f}"] if statement.balance < 0 else []
    assert body_amounts[len(page_amounts):] == closing
    asked = min(statement.overdue, statement.balance)
    assert amounts_in(pay) == ([f"{asked:,.2f}"] if statement.balance > 0 and asked > 0 else [])
    for total in (statement.balance, statement.overdue, statement.account_credit):
        # A negative balance reads "£X in credit", never "-£X".
        assert f"{abs(total):,.2f}" in amounts_in(pdf_text)
    if statement.balance < 0:
        assert "in credit" in pdf_text
