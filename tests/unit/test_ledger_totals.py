"""The dashboard's business-wide figures (owed by due date, invoiced and received by day,
account credit) follow every write, whatever makes it, and agree with the documents."""

import threading
from datetime import date, timedelta
from decimal import Decimal

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text, update

from crm import ledger, ledger_totals
from crm.actions.invoice import issue_invoice, void_invoice
from crm.actions.payment import record_payment
from crm.cli.ledger import check_ledger, rebuild_ledger_totals
from crm.extensions import db
from crm.ledger_totals import business_figures
from crm.models import Invoice, LedgerDay, Payment
from tests.factories import (
    make_allocation,
    make_credit_note,
    make_customer,
    make_invoice,
    make_payment,
)

TODAY = date.today()
D = Decimal


def day_row(session, day: date) -> dict:
    row = session.execute(select(LedgerDay).where(LedgerDay.day == day)).scalar_one_or_none()
    if row is None:
        return {"outstanding": D("0.00"), "invoiced": D("0.00"), "received": D("0.00")}
    return {"outstanding": row.outstanding, "invoiced": row.invoiced, "received": row.received}


def agrees(session) -> None:
    assert ledger_totals.differences(session) == []


def test_an_issued_invoice_is_owed_on_its_due_date_and_invoiced_on_its_issue_date(session):
    customer = make_customer(session)
    invoice = make_invoice(session, customer, amount="100.00", tax_rate="20")
    session.commit()

    assert day_row(session, invoice.due_date)["outstanding"] == D("120.00")
    assert day_row(session, invoice.issue_date)["invoiced"] == D("120.00")
    figures = business_figures(session)
    assert figures.outstanding == D("120.00")
    assert figures.overdue == D("0.00")
    assert figures.aging["current"] == D("120.00")
    agrees(session)


def test_a_draft_counts_for_nothing_until_issued_then_on_the_day_it_is_issued(session, owner):
    customer = make_customer(session)
    draft = make_invoice(session, customer, amount="60.00", status="draft",
                         issue_date=TODAY - timedelta(days=40),
                         due_date=TODAY - timedelta(days=10))
    session.commit()
    assert business_figures(session).outstanding == D("0.00")
    assert day_row(session, draft.issue_date)["invoiced"] == D("0.00")

    issue_invoice(session, invoice_id=draft.id, actor=owner)
    session.commit()
    assert day_row(session, TODAY)["invoiced"] == D("60.00")
    assert business_figures(session).outstanding == D("60.00")
    agrees(session)


def test_a_payment_is_received_on_its_day_and_lowers_what_is_owed(session, owner):
    customer = make_customer(session)
    invoice = make_invoice(session, customer, amount="100.00", days_overdue=45)
    session.commit()
    assert business_figures(session).aging["31_60"] == D("100.00")

    record_payment(session, customer_id=customer.id, received_on=TODAY - timedelta(days=1),
                   method="bank_transfer", reference="BACS", amount=D("130.00"),
                   allocations=[(invoice.id, D("70.00"))], actor=owner)
    session.commit()

    assert day_row(session, TODAY - timedelta(days=1))["received"] == D("130.00")
    figures = business_figures(session)
    assert figures.aging["31_60"] == D("30.00")
    assert figures.overdue == D("30.00")
    assert figures.account_credit == D("60.00")
    assert figures.balance == D("-30.00")
    agrees(session)


def test_voiding_an_invoice_takes_it_out_of_what_was_invoiced_and_owed(session, owner):
    customer = make_customer(session)
    invoice = make_invoice(session, customer, amount="80.00", days_overdue=5)
    payment = make_payment(session, customer, amount="20.00")
    session.commit()
    make_allocation(session, invoice, payment=payment, amount="20.00")
    session.commit()
    assert business_figures(session).aging["1_30"] == D("60.00")

    void_invoice(session, invoice_id=invoice.id, actor=owner, reason="Sent in error")
    session.commit()

    figures = business_figures(session)
    assert figures.outstanding == D("0.00")
    assert day_row(session, invoice.issue_date)["invoiced"] == D("0.00")
    assert figures.account_credit == D("20.00")  # what was paid against it comes back
    agrees(session)


def test_aging_buckets_split_at_30_60_and_90_days_overdue(session):
    customer = make_customer(session)
    for days, amount in ((0, "1"), (1, "2"), (30, "4"), (31, "8"), (60, "16"), (61, "32"),
                         (90, "64"), (91, "128")):
        make_invoice(session, customer, amount=amount, days_overdue=days)
    session.commit()

    assert business_figures(session).aging == {
        "current": D("1.00"), "1_30": D("6.00"), "31_60": D("24.00"), "61_90": D("96.00"),
        "over_90": D("128.00"),
    }
    assert business_figures(session).overdue == D("254.00")


def test_twelve_months_of_invoiced_and_received_oldest_first(session):
    customer = make_customer(session)
    this_month = TODAY.replace(day=1)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    long_ago = this_month - timedelta(days=400)
    make_invoice(session, customer, amount="100.00", issue_date=this_month,
                 due_date=this_month + timedelta(days=30))
    make_invoice(session, customer, amount="50.00", issue_date=last_month,
                 due_date=last_month + timedelta(days=30))
    make_invoice(session, customer, amount="999.00", issue_date=long_ago,
                 due_date=long_ago + timedelta(days=30))
    make_payment(session, customer, amount="40.00", received_on=last_month)
    session.commit()

    months = business_figures(session).months
    assert len(months) == 12
    assert months[-1].first_day == this_month
    assert months[0].first_day < months[1].first_day
    assert (months[-1].invoiced, months[-1].received) == (D("100.00"), D("0.00"))
    assert (months[-2].invoiced, months[-2].received) == (D("50.00"), D("40.00"))
    assert sum(m.invoiced for m in months) == D("150.00")  # 400 days ago is not shown


def test_writes_that_bypass_the_application_still_keep_the_figures(session):
    """A set-based UPDATE or DELETE (a bulk action, a merge, a hand-made fix) fires the
    database's triggers as a form's write does."""
    customer = make_customer(session)
    invoice = make_invoice(session, customer, amount="100.00", days_overdue=10)
    payment = make_payment(session, customer, amount="30.00")
    credit = make_credit_note(session, customer, amount="15.00")
    session.commit()
    assert business_figures(session).account_credit == D("45.00")

    session.execute(update(Invoice).where(Invoice.id == invoice.id)
                    .values(issue_date=TODAY - timedelta(days=100),
                            due_date=TODAY - timedelta(days=70)))
    session.execute(update(Payment).where(Payment.id == payment.id)
                    .values(received_on=TODAY - timedelta(days=3)))
    session.commit()
    assert business_figures(session).aging["61_90"] == D("100.00")
    assert day_row(session, TODAY - timedelta(days=3))["received"] == D("30.00")
    assert day_row(session, TODAY)["received"] == D("0.00")

    session.execute(text("DELETE FROM payment WHERE id = :id"), {"id": payment.id})
    ledger.recompute(session, [customer.id])
    session.commit()
    assert day_row(session, TODAY - timedelta(days=3))["received"] == D("0.00")
    assert business_figures(session).account_credit == D("15.00")
    assert credit.id
    agrees(session)


def test_a_rolled_back_write_leaves_the_figures_as_they_were(session):
    customer = make_customer(session)
    make_invoice(session, customer, amount="10.00")
    session.commit()
    before = business_figures(session)

    make_invoice(session, customer, amount="500.00")
    session.flush()
    session.rollback()

    assert business_figures(session) == before
    agrees(session)


def test_check_ledger_reports_a_tampered_figure_and_rebuild_puts_it_right(app, session):
    customer = make_customer(session)
    make_invoice(session, customer, amount="100.00")
    session.commit()
    session.execute(update(LedgerDay).values(invoiced=LedgerDay.invoiced + 1))
    session.commit()

    runner = CliRunner()
    with app.app_context():
        result = runner.invoke(check_ledger, [], obj=app)
    assert result.exit_code != 0
    assert "Business-wide invoiced on" in result.output
    assert "stored 101.00, documents say 100.00" in result.output

    with app.app_context():
        result = runner.invoke(rebuild_ledger_totals, [], obj=app)
        assert result.exit_code == 0, result.output
        result = runner.invoke(check_ledger, [], obj=app)
    assert result.exit_code == 0, result.output
    assert "Ledger agrees with the documents." in result.output


def test_rebuild_recreates_dropped_triggers(session):
    customer = make_customer(session)
    ledger_totals.drop_triggers(session.connection())
    session.commit()
    make_invoice(session, customer, amount="25.00")
    session.commit()
    assert business_figures(session).outstanding == D("0.00")  # nothing kept it

    ledger_totals.rebuild(session.connection())
    session.commit()
    assert business_figures(session).outstanding == D("25.00")
    make_invoice(session, customer, amount="5.00")
    session.commit()
    assert business_figures(session).outstanding == D("30.00")  # the triggers are back
    agrees(session)


def test_concurrent_payments_on_the_same_day_are_all_counted(app, session):
    """Two transactions adding to the same day's row at once: neither addition is lost."""
    customers = [make_customer(session) for _ in range(2)]
    session.commit()
    ids = [c.id for c in customers]
    errors: list[BaseException] = []

    def pay(customer_id: int) -> None:
        try:
            with app.app_context():
                for _ in range(10):
                    record_payment(db.session, customer_id=customer_id, received_on=TODAY,
                                   method="cash", reference=None, amount=D("1.25"),
                                   actor=None)
                    db.session.commit()
                db.session.remove()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=pay, args=(cid,)) for cid in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    session.expire_all()
    assert day_row(session, TODAY)["received"] == D("25.00")
    assert business_figures(session).account_credit == D("25.00")
    agrees(session)


@pytest.mark.parametrize("months", [1, 12, 24])
def test_months_run_back_from_this_month_without_gaps(session, months):
    figures = business_figures(session, today=date(2026, 3, 31), months=months)
    starts = [m.first_day for m in figures.months]
    assert len(starts) == months
    assert starts[-1] == date(2026, 3, 1)
    for earlier, later in zip(starts, starts[1:], strict=False):
        assert (later - timedelta(days=1)).replace(day=1) == earlier
