"""Statement runs (issue 4, item 7): a ZIP of statement PDFs for a selection, and statements
e-mailed to the customers who may get them, with who was skipped and why; one audit trail;
a sending failure part-way stops the run without losing track
of what was already sent."""

import io
import zipfile
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from pypdf import PdfReader
from sqlalchemy import select

import crm.actions.statement_run as run
from crm import mail
from crm.actions import ActionError
from crm.actions.block_email import block_email
from crm.actions.statement_run import email_statements, statements_zip
from crm.formatting import day
from crm.models import AuditEvent, Customer
from crm.pdf import PdfError
from tests import factories as f


@pytest.fixture
def outbox(app, tmp_path, monkeypatch):
    """The outbox backend, in a folder of this test's own."""
    monkeypatch.setitem(app.config, "MAIL_BACKEND", "outbox")
    monkeypatch.setitem(app.config, "MAIL_OUTBOX_DIR", str(tmp_path / "outbox"))
    return mail.Outbox(tmp_path / "outbox")


def pdf_text(content: bytes) -> str:
    return " ".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def audit(session, verb: str) -> list[AuditEvent]:
    return session.scalars(
        select(AuditEvent).where(AuditEvent.verb == verb).order_by(AuditEvent.id)).all()


def make_zip(session, owner, ids, **kwargs):
    out = io.BytesIO()
    result = statements_zip(session, selection=ids, actor=owner, out=out, **kwargs)
    session.commit()
    return zipfile.ZipFile(io.BytesIO(out.getvalue())), result


# --- the ZIP --------------------------------------------------------------------------------

def test_the_zip_holds_one_statement_pdf_per_customer_with_their_figures(session, owner):
    ann = f.make_customer(session, surname="Ann")
    bob = f.make_customer(session, surname="Bob")
    f.make_invoice(session, ann, amount="120.50", days_overdue=10)
    f.make_invoice(session, bob, amount="80.00")
    session.commit()

    archive, result = make_zip(session, owner, [ann.id, bob.id])

    assert sorted(archive.namelist()) == sorted(
        [f"statement-{ann.reference}.pdf", f"statement-{bob.reference}.pdf"])
    ann_pdf = archive.read(f"statement-{ann.reference}.pdf")
    assert ann_pdf.startswith(b"%PDF")
    assert "120.50" in pdf_text(ann_pdf) and ann.reference in pdf_text(ann_pdf)
    assert "80.00" in pdf_text(archive.read(f"statement-{bob.reference}.pdf"))
    assert (result.changed, result.skipped_count) == (2, 0)
    assert set(result.changed_refs) == {ann.reference, bob.reference}
    assert result.message == "2 statements in the ZIP."


def test_the_zip_skips_merged_customers_and_takes_a_whole_filter(session, owner):
    survivor = f.make_customer(session)
    merged = f.make_customer(session, merged_into_id=survivor.id)
    dormant = f.make_customer(session, status="dormant")  # a statement still makes sense
    session.commit()
    every = select(Customer.id).where(Customer.id.in_([survivor.id, merged.id, dormant.id]))

    archive, result = make_zip(session, owner, every)

    assert sorted(archive.namelist()) == sorted(
        [f"statement-{survivor.reference}.pdf", f"statement-{dormant.reference}.pdf"])
    assert result.skipped_count == 1
    assert [str(s) for s in result.skipped] == [
        f"{merged.reference} skipped: merged into another customer"]


def test_the_zip_is_audited_once_with_counts_and_no_personal_data(session, owner):
    customers = [f.make_customer(session) for _ in range(3)]
    session.commit()

    make_zip(session, owner, [c.id for c in customers], as_of=date.today() - timedelta(days=1))

    [event] = audit(session, "statements_zip")
    assert event.actor_id == owner.id
    assert event.details == {"count": 3, "skipped": 0, "kind": "outstanding",
                             "as_of": (date.today() - timedelta(days=1)).isoformat()}


def test_the_zip_can_hold_activity_statements(session, owner):
    ann = f.make_customer(session)
    f.make_payment(session, ann, amount="25.00", reference="PAY-1")
    session.commit()

    archive, result = make_zip(session, owner, [ann.id], kind="activity")

    assert "25.00" in pdf_text(archive.read(f"statement-{ann.reference}.pdf"))
    assert audit(session, "statements_zip")[0].details["kind"] == "activity"


@pytest.mark.parametrize("kwargs, problem", [
    ({"kind": "weekly"}, "Unknown kind of statement"),
    ({"as_of": date.today() + timedelta(days=1)}, "date that has passed"),
])
def test_the_zip_refuses_a_bad_request_before_doing_anything(session, owner, kwargs, problem):
    ann = f.make_customer(session)
    session.commit()
    out = io.BytesIO()

    with pytest.raises(ActionError, match=problem):
        statements_zip(session, selection=[ann.id], actor=owner, out=out, **kwargs)
    assert out.getvalue() == b""


def test_a_pdf_failure_part_way_makes_no_zip_and_leaves_no_audit(session, owner, monkeypatch):
    customers = [f.make_customer(session) for _ in range(3)]
    session.commit()
    real = run.statement_pdf
    made = []

    def fail_on_the_second(statement):
        if made:
            raise PdfError("The PDF font DejaVuSans.ttf is missing.")
        made.append(statement)
        return real(statement)

    monkeypatch.setattr(run, "statement_pdf", fail_on_the_second)

    with pytest.raises(ActionError, match=f"statement of {customers[1].reference} could not"):
        statements_zip(session, selection=[c.id for c in customers], actor=owner,
                       out=io.BytesIO())
    session.rollback()
    assert audit(session, "statements_zip") == []


def test_statements_are_loaded_in_batches(session, owner, monkeypatch):
    monkeypatch.setattr(run, "BATCH", 2)
    customers = [f.make_customer(session) for _ in range(5)]
    session.commit()

    archive, result = make_zip(session, owner, [c.id for c in customers])

    assert len(archive.namelist()) == 5 == result.changed


# --- e-mail ---------------------------------------------------------------------------------

def customers_of_every_kind(session) -> dict[str, Customer]:
    survivor = f.make_customer(session)
    made = {
        "ann": f.make_customer(session, first_name="Ann", email="ann@example.com"),
        "bob": f.make_customer(session, first_name="Bob", email="  bob@example.com "),
        "dormant": f.make_customer(session, status="dormant"),
        "archived": f.make_customer(session, status="archived"),
        "blocked": f.make_customer(session, email="spam@blocked.example"),
        "redacted": f.make_customer(session, redacted_at=datetime(2025, 1, 1), email=None),
        "no_email": f.make_customer(session, email=None),
        "blank_email": f.make_customer(session, email="  "),
        "opted_out": f.make_customer(session, email_opt_in=False),
        "merged": f.make_customer(session, merged_into_id=survivor.id),
    }
    f.make_invoice(session, made["ann"], amount="240.00", days_overdue=45)
    block_email(session, value="@blocked.example", reason="spam", actor=None)
    session.commit()
    return made


def test_statements_are_e_mailed_only_to_those_who_may_get_them(session, owner, outbox):
    made = customers_of_every_kind(session)

    result = email_statements(session, selection=[c.id for c in made.values()], actor=owner)
    session.commit()

    assert result.changed == 2
    assert set(result.changed_refs) == {made["ann"].reference, made["bob"].reference}
    reasons = {s.reference: s.reason for s in result.skipped}
    assert reasons == {
        made["dormant"].reference: "dormant",
        made["archived"].reference: "archived",
        made["blocked"].reference: "e-mail blocked",
        made["redacted"].reference: "redacted",
        made["no_email"].reference: "no e-mail address",
        made["blank_email"].reference: "no e-mail address",
        made["opted_out"].reference: "opted out of e-mail",
        made["merged"].reference: "merged into another customer",
    }
    assert result.skipped_count == 8
    assert result.message == (
        "Sent 2 statements by e-mail; 8 skipped (1 archived, 1 dormant, 1 e-mail blocked, "
        "1 merged into another customer, 2 no e-mail address, 1 opted out of e-mail, "
        "1 redacted).")


def test_each_message_carries_the_customers_statement(session, owner, outbox, app,
                                                      monkeypatch):
    monkeypatch.setitem(app.config, "CRM_BUSINESS_NAME", "Acme Tours")
    made = customers_of_every_kind(session)

    email_statements(session, selection=[made["ann"].id, made["bob"].id], actor=owner)

    messages = {str(m["To"]): m for m in map(outbox.read, outbox.names())}
    assert set(messages) == {"ann@example.com", "bob@example.com"}
    ann = messages["ann@example.com"]
    assert ann["Subject"] == f"Statement of account at {day(date.today())} from Acme Tours"
    text = ann.get_body(("plain",)).get_content()
    assert "Dear Ann Tester" in text and "Balance £240.00, all of it overdue." in text
    assert "Please pay the overdue £240.00" in text and "Acme Tours" in text
    [pdf] = list(ann.iter_attachments())
    assert pdf.get_filename() == f"statement-{made['ann'].reference}.pdf"
    assert pdf.get_content_type() == "application/pdf"
    assert "240.00" in pdf_text(pdf.get_content())


def test_an_e_mail_run_audits_a_summary_and_one_row_per_customer_sent(session, owner, outbox):
    made = customers_of_every_kind(session)

    email_statements(session, selection=[c.id for c in made.values()], actor=owner)
    session.commit()

    events = audit(session, "email_statements")
    [summary] = [e for e in events if e.subject_id is None]
    assert summary.details == {"count": 2, "skipped": 8, "as_of": date.today().isoformat()}
    per_customer = [e for e in events if e.subject_id is not None]
    assert sorted(e.subject_id for e in per_customer) == sorted(
        [made["ann"].id, made["bob"].id])
    assert all(e.details == {"summary_id": summary.id} for e in per_customer)
    assert all(e.actor_id == owner.id for e in events)


def test_one_customer_sent_is_one_event_on_that_customer(session, owner, outbox):
    made = customers_of_every_kind(session)

    email_statements(session, selection=[made["ann"].id, made["dormant"].id], actor=owner)
    session.commit()

    [event] = audit(session, "email_statements")
    assert event.subject_id == made["ann"].id
    assert event.details["count"] == 1 and event.details["skipped"] == 1


def test_nobody_to_send_to_sends_nothing_and_says_why(session, owner, outbox):
    made = customers_of_every_kind(session)

    result = email_statements(session, selection=[made["dormant"].id], actor=owner)
    session.commit()

    assert result.changed == 0
    assert result.message == "Sent 0 statements by e-mail; 1 skipped (1 dormant)."
    assert outbox.names() == []
    assert audit(session, "email_statements") == []


def test_an_unusable_address_is_skipped_and_the_run_goes_on(session, owner, outbox):
    bad = f.make_customer(session, email="not-an-address")
    good = f.make_customer(session)
    session.commit()

    result = email_statements(session, selection=[bad.id, good.id], actor=owner)

    assert result.changed_refs == (good.reference,)
    assert [(s.reference, s.reason) for s in result.skipped] == [
        (bad.reference, "e-mail address not usable")]
    assert len(outbox.names()) == 1


def test_a_sending_failure_part_way_stops_and_reports_what_was_sent(session, owner):
    customers = [f.make_customer(session) for _ in range(4)]
    session.commit()
    sent = []

    def send(message):
        if len(sent) == 1:
            raise mail.MailError("Could not connect to the mail server smtp.example.com:587.")
        sent.append(message.to)
        return "id"

    result = email_statements(session, selection=[c.id for c in customers], actor=owner,
                              send=send)
    session.commit()

    assert sent == [customers[0].email]
    assert result.changed_refs == (customers[0].reference,)
    assert [(s.reference, s.reason) for s in result.skipped] == [
        (customers[1].reference, "sending failed"),
        (customers[2].reference, "not sent: the run stopped at a sending failure"),
        (customers[3].reference, "not sent: the run stopped at a sending failure"),
    ]
    assert "then the one to " + customers[1].reference + " failed: Could not connect" in (
        result.message)
    assert "the 1 already sent cannot be unsent; the 3 from there on were not sent" in (
        result.message)
    [event] = audit(session, "email_statements")  # the message sent stays on the record
    assert event.subject_id == customers[0].id
    assert event.details["stopped_at"] == customers[1].reference


def test_a_pdf_failure_stops_an_e_mail_run_the_same_way(session, owner, outbox, monkeypatch):
    customers = [f.make_customer(session) for _ in range(2)]
    session.commit()

    def broken(statement):
        raise PdfError("The PDF font DejaVuSans.ttf is missing.")

    monkeypatch.setattr(run, "statement_pdf", broken)

    result = email_statements(session, selection=[c.id for c in customers], actor=owner)

    assert result.changed == 0
    assert [s.reason for s in result.skipped] == [
        "statement could not be made", "not sent: the run stopped at a sending failure"]
    assert "DejaVuSans.ttf is missing" in result.message
    assert outbox.names() == []


def test_e_mailed_balance_matches_the_ledger(session, owner, outbox):
    ann = f.make_customer(session, first_name="Ann")
    invoice = f.make_invoice(session, ann, amount="100.00")
    f.make_allocation(session, invoice, payment=f.make_payment(session, ann, amount="70.00"),
                      amount="60.00")
    session.commit()
    assert ann.balance == Decimal("30.00")

    email_statements(session, selection=[ann.id], actor=owner)

    [message] = map(outbox.read, outbox.names())
    assert "balance £30.00." in message.get_body(("plain",)).get_content()
