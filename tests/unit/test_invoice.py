"""Invoices: a draft is issued with the next gap-free number (never shared or skipped, also
when two people issue at once), voided with a reason, and once issued its lines and amounts
cannot change through any code path that uses the ORM."""

import threading
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from crm.actions import ActionError
from crm.actions import invoice as invoice_module
from crm.actions.invoice import (
    default_due_date,
    issue_invoice,
    issue_invoices,
    void_invoice,
)
from crm.actions.redact import CONFIRMATION_WORD, redact_customer
from crm.extensions import db
from crm.ledger import LedgerError
from crm.models import AuditEvent, Customer, Invoice, InvoiceLine
from crm.models.sequence import peek
from tests import factories as f

D = Decimal
TODAY = date.today()


def draft(session, customer=None, *, amount="100.00", lines=1, **overrides) -> Invoice:
    """A draft dated 30 days before it falls due, with ``lines`` lines of ``amount``."""
    customer = customer or f.make_customer(session)
    invoice = Invoice(customer=customer, issue_date=TODAY - timedelta(days=40),
                      due_date=TODAY - timedelta(days=10), **overrides)
    for position in range(lines):
        invoice.lines.append(InvoiceLine(position=position, description=f"Work {position}",
                                         quantity=D("1"), unit_price=D(amount)))
    session.add(invoice)
    session.flush()
    return invoice


def audit(session, verb: str) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.verb == verb)))


def fresh(session, model, key):
    session.expire_all()
    return session.get(model, key)


# --- issue --------------------------------------------------------------------------------

def test_issuing_a_draft_numbers_it_dates_it_today_and_makes_it_owed(session, owner):
    invoice = draft(session, amount="120.00")
    session.commit()

    result = issue_invoice(session, invoice_id=invoice.id, actor=owner)
    session.commit()

    invoice = fresh(session, Invoice, invoice.id)
    assert (invoice.status, invoice.number) == ("issued", "INV-000001")
    assert (invoice.issue_date, invoice.due_date) == (TODAY, TODAY + timedelta(days=30))
    assert invoice.outstanding == D("120.00")
    assert invoice.customer.balance == D("120.00")
    assert result.changed_refs == ("INV-000001",)
    assert "INV-000001 issued" in result.message
    [event] = audit(session, "issue_invoice")
    assert (event.subject_id, event.actor_id) == (invoice.id, owner.id)
    assert event.details == {
        "number": "INV-000001", "customer_id": invoice.customer_id, "total": "120.00",
        "issue_date": TODAY.isoformat(), "due_date": (TODAY + timedelta(days=30)).isoformat()}


def test_an_issue_date_can_be_given_and_the_drafts_terms_move_with_it(session, owner):
    invoice = draft(session)
    invoice.due_date = invoice.issue_date + timedelta(days=7)
    session.commit()

    issue_invoice(session, invoice_id=invoice.id, actor=owner, issue_date=date(2026, 3, 1))
    session.commit()

    invoice = fresh(session, Invoice, invoice.id)
    assert (invoice.issue_date, invoice.due_date) == (date(2026, 3, 1), date(2026, 3, 8))


def test_a_blank_due_date_means_the_customers_creditor_days_or_thirty(session):
    assert default_due_date(f.make_customer(session, creditor_days=14), TODAY) == (
        TODAY + timedelta(days=14))
    assert default_due_date(f.make_customer(session, creditor_days=0), TODAY) == TODAY
    assert default_due_date(f.make_customer(session), TODAY) == TODAY + timedelta(days=30)
    assert default_due_date(None, TODAY) == TODAY + timedelta(days=30)


def test_numbers_are_given_in_the_order_invoices_are_issued_not_created(session, owner):
    first, second = draft(session), draft(session)
    session.commit()

    issue_invoice(session, invoice_id=second.id, actor=owner)
    issue_invoice(session, invoice_id=first.id, actor=owner)
    session.commit()

    assert (fresh(session, Invoice, second.id).number,
            fresh(session, Invoice, first.id).number) == ("INV-000001", "INV-000002")


@pytest.mark.parametrize(("make", "message"), [
    (lambda s: None, "That invoice does not exist."),
    (lambda s: f.make_invoice(s, f.make_customer(s)), "INV-000001 is already issued."),
    (lambda s: f.make_invoice(s, f.make_customer(s), status="void"), "INV-000001 is void"),
    (lambda s: draft(s, lines=0), "has no lines; add at least one"),
], ids=["unknown", "issued", "void", "no-lines"])
def test_issuing_is_refused_with_a_reason(session, owner, make, message):
    invoice = make(session)
    session.commit()
    before = peek(session, "invoice")

    with pytest.raises(ActionError, match=message):
        issue_invoice(session, invoice_id=invoice.id if invoice else 999_999, actor=owner)
    session.rollback()

    assert peek(session, "invoice") == before
    assert audit(session, "issue_invoice") == []


def test_an_invoice_of_a_redacted_customer_cannot_be_issued(session, owner):
    invoice = draft(session)
    session.commit()
    redact_customer(session, customer_id=invoice.customer_id, actor=owner,
                    confirmation=CONFIRMATION_WORD)
    session.commit()

    with pytest.raises(ActionError, match="its customer has been redacted"):
        issue_invoice(session, invoice_id=invoice.id, actor=owner)
    session.rollback()
    assert fresh(session, Invoice, invoice.id).status == "draft"


def test_an_invoice_left_on_a_merged_customer_cannot_be_issued(session, owner):
    invoice = draft(session)
    survivor = f.make_customer(session)
    invoice.customer.merged_into_id = survivor.id
    session.commit()

    with pytest.raises(ActionError, match="merged into another"):
        issue_invoice(session, invoice_id=invoice.id, actor=owner)


def test_a_failure_after_the_number_was_taken_leaves_nothing(session, owner, monkeypatch):
    invoice = draft(session)
    session.commit()

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(invoice_module, "record", broken)
    with pytest.raises(RuntimeError):
        issue_invoice(session, invoice_id=invoice.id, actor=owner)
    session.rollback()

    invoice = fresh(session, Invoice, invoice.id)
    assert (invoice.status, invoice.number) == ("draft", None)
    assert invoice.customer.balance == D("0.00")
    assert peek(session, "invoice") == 1  # the number was given back
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == 0


@settings(max_examples=15, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(outcomes=st.lists(st.booleans(), min_size=1, max_size=8))
def test_numbers_stay_gap_free_whatever_is_rolled_back(session, owner, outcomes):
    """Each issue is committed (True) or rolled back (False): the committed invoices hold
    exactly the next numbers in order, and the sequence's next value follows them."""
    start = peek(session, "invoice")
    drafts = [draft(session) for _ in outcomes]
    session.commit()
    kept = []
    for invoice, commit in zip(drafts, outcomes, strict=True):
        issue_invoice(session, invoice_id=invoice.id, actor=owner)
        if commit:
            session.commit()
            kept.append(invoice.id)
        else:
            session.rollback()

    numbers = [fresh(session, Invoice, key).number for key in kept]
    assert numbers == [f"INV-{n:06d}" for n in range(start, start + len(kept))]
    assert peek(session, "invoice") == start + len(kept)


# --- bulk issue ---------------------------------------------------------------------------

def test_bulk_issue_numbers_drafts_in_id_order_and_says_what_it_skipped(session, owner):
    customer = f.make_customer(session)
    issued = f.make_invoice(session, customer)  # INV-000001
    void = f.make_invoice(session, customer, status="void")  # INV-000002
    first, empty, second = draft(session, customer), draft(session, customer, lines=0), \
        draft(session, customer, amount="50.00")
    session.commit()

    result = issue_invoices(session, selection=[second.id, empty.id, void.id, issued.id,
                                                first.id], actor=owner)
    session.commit()

    assert (fresh(session, Invoice, first.id).number,
            fresh(session, Invoice, second.id).number) == ("INV-000003", "INV-000004")
    assert fresh(session, Invoice, empty.id).status == "draft"
    assert (result.changed, result.changed_refs) == (2, ("INV-000003", "INV-000004"))
    assert {(s.reference, s.reason) for s in result.skipped} == {
        ("INV-000001", "already issued"), ("INV-000002", "void"),
        (f"Draft #{empty.id}", "no lines")}
    assert result.skipped_count == 3
    assert fresh(session, Customer, customer.id).balance == D("250.00")
    [event] = audit(session, "issue_invoices")
    assert event.details == {"invoice_ids": [first.id, second.id],
                             "numbers": ["INV-000003", "INV-000004"], "skipped": 3,
                             "total": "150.00"}


def test_bulk_issue_with_nothing_to_issue_changes_nothing_and_says_so(session, owner):
    issued = f.make_invoice(session, f.make_customer(session))
    session.commit()

    result = issue_invoices(session, selection=[issued.id], actor=owner)
    session.commit()

    assert (result.changed, result.skipped_count) == (0, 1)
    assert result.message == "0 invoices issued."
    assert audit(session, "issue_invoices") == []
    assert peek(session, "invoice") == 2


def test_bulk_issue_takes_a_select_of_ids(session, owner):
    customer = f.make_customer(session)
    drafts = [draft(session, customer) for _ in range(3)]
    session.commit()

    result = issue_invoices(session, selection=select(Invoice.id).where(
        Invoice.customer_id == customer.id), actor=owner)

    assert result.changed_refs == ("INV-000001", "INV-000002", "INV-000003")
    assert [i.status for i in drafts] == ["issued"] * 3


def test_a_failed_bulk_issue_leaves_every_draft_a_draft(session, owner, monkeypatch):
    drafts = [draft(session) for _ in range(3)]
    session.commit()
    monkeypatch.setattr(invoice_module, "record", lambda *a, **k: 1 / 0)

    with pytest.raises(ZeroDivisionError):
        issue_invoices(session, selection=[d.id for d in drafts], actor=owner)
    session.rollback()

    assert [fresh(session, Invoice, d.id).number for d in drafts] == [None] * 3
    assert peek(session, "invoice") == 1


# --- concurrency --------------------------------------------------------------------------

def _race(work, workers: int = 2) -> tuple[list, list[BaseException]]:
    """Run ``work(i)`` in ``workers`` threads released together; results and errors."""
    start = threading.Barrier(workers)
    results: list = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(i):
        try:
            start.wait()
            value = work(i)
            with lock:
                results.append(value)
        except BaseException as exc:  # reported by the test, in its own thread
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


def test_concurrent_issues_never_share_or_skip_a_number(session, owner):
    drafts = [draft(session).id for _ in range(4)]
    session.commit()
    engine = db.engine

    def work(i):
        with Session(engine) as own:
            result = issue_invoice(own, invoice_id=drafts[i], actor=None)
            own.commit()
            return result.changed_refs[0]

    numbers, errors = _race(work, workers=4)

    assert errors == []
    assert sorted(numbers) == ["INV-000001", "INV-000002", "INV-000003", "INV-000004"]
    assert peek(session, "invoice") == 5


def test_the_same_draft_issued_twice_at_once_is_numbered_once(session, owner):
    key = draft(session).id
    session.commit()
    engine = db.engine

    def work(_):
        with Session(engine) as own:
            result = issue_invoice(own, invoice_id=key, actor=None)
            own.commit()
            return result.changed_refs[0]

    numbers, errors = _race(work)

    assert numbers == ["INV-000001"]
    assert [str(e) for e in errors] == ["INV-000001 is already issued."]
    assert fresh(session, Invoice, key).number == "INV-000001"
    assert peek(session, "invoice") == 2


# --- void ---------------------------------------------------------------------------------

def test_voiding_turns_what_was_paid_into_account_credit(session, owner):
    customer = f.make_customer(session)
    invoice = f.make_invoice(session, customer, amount="100.00")
    payment = f.make_payment(session, customer, amount="60.00")
    f.make_allocation(session, invoice, payment=payment, amount="60.00")
    session.commit()

    result = void_invoice(session, invoice_id=invoice.id, actor=owner,
                          reason="  Raised  in error ")
    session.commit()

    invoice = fresh(session, Invoice, invoice.id)
    assert (invoice.status, invoice.number, invoice.outstanding) == (
        "void", "INV-000001", D("0.00"))
    assert invoice.notes == f"Void on {TODAY.isoformat()}: Raised in error"
    customer = invoice.customer
    assert (customer.balance, customer.account_credit) == (D("-60.00"), D("60.00"))
    assert result.details == {"to_account_credit": D("60.00")}
    assert "60.00 paid or credited against it is now account credit" in result.message
    [event] = audit(session, "void_invoice")
    assert event.details["to_account_credit"] == "60.00"
    assert "Raised" not in str(event.details)  # the reason may name people: not audited


def test_a_void_reason_is_added_below_existing_notes(session, owner):
    invoice = f.make_invoice(session, f.make_customer(session), notes="PO 1234")
    session.commit()

    result = void_invoice(session, invoice_id=invoice.id, actor=owner, reason="Duplicate")
    session.commit()

    assert fresh(session, Invoice, invoice.id).notes == (
        f"PO 1234\nVoid on {TODAY.isoformat()}: Duplicate")
    assert result.message == "INV-000001 is void."


@pytest.mark.parametrize(("status", "reason", "message"), [
    ("draft", "Wrong", "is a draft: delete it instead"),
    ("void", "Wrong", "INV-000001 is already void."),
    ("issued", "   ", "Say why INV-000001 is being voided"),
    ("issued", "x" * 501, "Keep the reason to 500 characters"),
], ids=["draft", "void", "no-reason", "long-reason"])
def test_voiding_is_refused_with_a_reason(session, owner, status, reason, message):
    invoice = f.make_invoice(session, f.make_customer(session), status=status)
    session.commit()

    with pytest.raises(ActionError, match=message):
        void_invoice(session, invoice_id=invoice.id, actor=owner, reason=reason)
    session.rollback()

    assert fresh(session, Invoice, invoice.id).status == status
    assert audit(session, "void_invoice") == []


def test_voiding_an_unknown_invoice_is_refused(session, owner):
    with pytest.raises(ActionError, match="does not exist"):
        void_invoice(session, invoice_id=424_242, actor=owner, reason="Wrong")


def test_a_failed_void_leaves_the_invoice_owed(session, owner, monkeypatch):
    invoice = f.make_invoice(session, f.make_customer(session), amount="80.00")
    session.commit()
    monkeypatch.setattr(invoice_module, "record", lambda *a, **k: 1 / 0)

    with pytest.raises(ZeroDivisionError):
        void_invoice(session, invoice_id=invoice.id, actor=owner, reason="Wrong")
    session.rollback()

    invoice = fresh(session, Invoice, invoice.id)
    assert (invoice.status, invoice.notes, invoice.customer.balance) == (
        "issued", None, D("80.00"))


# --- issued invoices are fixed ------------------------------------------------------------

@pytest.fixture
def issued(session):
    """INV-000001: 100.00 of work and 2 x 5.00 of parts."""
    invoice = f.make_invoice_with_lines(session, f.make_customer(session), [
        {"description": "Work", "unit_price": "100.00"},
        {"description": "Parts", "category": "parts", "quantity": "2", "unit_price": "5.00"},
    ])
    session.commit()
    return invoice


def _edit_line(invoice):
    invoice.lines[0].quantity = D("3")


def _describe_line(invoice):
    invoice.lines[0].description = "Something else"


def _add_line(invoice):
    invoice.lines.append(InvoiceLine(description="More", quantity=D("1"), unit_price=D("1")))


def _add_line_by_id(invoice):
    db.session.add(InvoiceLine(invoice_id=invoice.id, description="More", quantity=D("1"),
                               unit_price=D("1")))


def _remove_line(invoice):
    invoice.lines.remove(invoice.lines[0])


def _delete_line(invoice):
    db.session.delete(invoice.lines[1])


@pytest.mark.parametrize("change", [_edit_line, _describe_line, _add_line, _add_line_by_id,
                                    _remove_line, _delete_line])
@pytest.mark.parametrize("status", ["issued", "void"])
def test_the_lines_of_an_issued_or_void_invoice_cannot_change(session, issued, change,
                                                              status):
    if status == "void":
        issued.status = "void"
        session.commit()

    change(issued)
    with pytest.raises(LedgerError, match=f"INV-000001 is {status}: its lines cannot change; "
                                          "raise a credit note"):
        session.commit()
    session.rollback()

    invoice = fresh(session, Invoice, issued.id)
    assert [(line.description, line.quantity) for line in invoice.lines] == [
        ("Work", D("1.00")), ("Parts", D("2.00"))]
    assert invoice.total == D("110.00")


@pytest.mark.parametrize(("field", "value", "shown"), [
    ("due_date", TODAY + timedelta(days=99), "due date"),
    ("issue_date", TODAY, "issue date"),
    ("number", "INV-999999", "number"),
    ("status", "draft", "status"),
    ("address_format", "[customer_name]", "address format"),
])
def test_the_document_fields_of_an_issued_invoice_cannot_change(session, issued, field, value,
                                                               shown):
    setattr(issued, field, value)

    with pytest.raises(LedgerError, match=f"its {shown} cannot change"):
        session.commit()
    session.rollback()
    assert getattr(fresh(session, Invoice, issued.id), field) != value


def test_who_an_issued_invoice_is_addressed_to_cannot_change(session, issued):
    contact = f.make_contact(session, issued.customer)
    session.commit()

    issued.contact = contact
    with pytest.raises(LedgerError, match="its contact cannot change"):
        session.commit()


def test_a_total_typed_over_is_put_back_from_the_lines(session, issued):
    issued.total = D("1.00")
    session.commit()

    assert fresh(session, Invoice, issued.id).total == D("110.00")


def test_a_void_invoice_cannot_be_issued_again(session, issued):
    issued.status = "void"
    session.commit()

    issued.status = "issued"
    with pytest.raises(LedgerError, match="INV-000001 is void: its status cannot change"):
        session.commit()


@pytest.mark.parametrize("status", ["issued", "void"])
def test_an_issued_or_void_invoice_cannot_be_deleted(session, issued, status):
    issued.status = status  # (setting "issued" again is no change)
    session.commit()

    session.delete(issued)
    with pytest.raises(LedgerError, match="kept for the records and cannot be deleted"):
        session.commit()
    session.rollback()
    assert fresh(session, Invoice, issued.id) is not None


def test_what_may_still_change_on_an_issued_invoice(session, issued):
    other = f.make_customer(session)
    issued.notes = "Chased by phone"
    issued.customer_id = other.id
    session.commit()

    invoice = fresh(session, Invoice, issued.id)
    assert (invoice.notes, invoice.customer_id) == ("Chased by phone", other.id)
    assert invoice.customer.balance == D("110.00")


def test_a_draft_can_change_freely_and_be_deleted(session):
    invoice = draft(session)
    session.commit()

    invoice.lines[0].quantity = D("2")
    _add_line(invoice)
    invoice.due_date = TODAY
    session.commit()
    assert fresh(session, Invoice, invoice.id).total == D("201.00")

    session.delete(fresh(session, Invoice, invoice.id))
    session.commit()
    assert session.scalar(select(func.count()).select_from(InvoiceLine)) == 0


def test_the_lines_can_be_set_in_the_same_flush_that_issues_a_draft(session):
    invoice = draft(session)
    session.commit()

    invoice.lines[0].unit_price = D("90.00")  # (reading the lines first: no autoflush between)
    invoice.status, invoice.number = "issued", "INV-000001"
    session.commit()

    assert fresh(session, Invoice, invoice.id).total == D("90.00")


def test_redaction_still_wipes_the_line_descriptions_of_issued_invoices(session, issued, owner):
    void = f.make_invoice(session, issued.customer, status="void")
    session.commit()

    redact_customer(session, customer_id=issued.customer_id, actor=owner,
                    confirmation=CONFIRMATION_WORD)
    session.commit()

    descriptions = session.scalars(select(InvoiceLine.description).where(
        InvoiceLine.invoice_id.in_([issued.id, void.id]))).all()
    assert set(descriptions) == {"[redacted]"}
    assert fresh(session, Invoice, issued.id).total == D("110.00")


def test_a_stale_second_issue_of_the_same_invoice_is_refused_by_its_version(session, owner):
    """Without the sequence lock the invoice's version column is the last line of defence."""
    key = draft(session).id
    session.commit()
    with Session(db.engine) as other:
        stale = other.get(Invoice, key)
        stale.lines  # noqa: B018  (loaded while still a draft)
        issue_invoice(session, invoice_id=key, actor=owner)
        session.commit()

        stale.status, stale.number = "issued", "INV-000099"
        with pytest.raises(StaleDataError):
            other.commit()
