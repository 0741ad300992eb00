"""The raise credit note screens: against an invoice (its lines pre-filled, which
the user can reduce or leave out, with a preview of the totals) and standalone on a customer;
every refusal shown on the page with the inputs kept and nothing written; the credit note's
page (PDF link, void with a reason); edit and create refused; owners and admins only; CSRF."""

from datetime import date, datetime
from decimal import Decimal

import pytest

from crm.extensions import db
from crm.formatting import day
from crm.models import Allocation, AuditEvent, CreditNote, Invoice, InvoiceLine
from crm.models.sequence import peek
from tests import factories as f
from tests.integration.helpers import by_testid, count_rows, customer, flashes, load, text_of

D = Decimal


def raise_url(role: str = "owner") -> str:
    return f"/admin/{role}/credit_note/raise/"


def page_url(role: str, page: str) -> str:
    return f"/admin/{role}/credit_note/{page}"


@pytest.fixture
def books(app):
    """A customer with an issued 100.00 invoice of two lines (60.00 labour, 40.00 parts)
    of which 70.00 is paid, and a draft invoice."""
    with app.app_context():
        owner = customer(db.session)
        spare = InvoiceLine(position=1, description="Spare <b>part</b>", category="parts",
                            quantity=D("2"), unit_price=D("20.00"))
        invoice = f.make_invoice(db.session, owner, amount="60.00", lines=[spare])
        payment = f.make_payment(db.session, owner, amount="70.00")
        f.make_allocation(db.session, invoice, payment=payment, amount="70.00")
        draft = f.make_invoice(db.session, owner, status="draft")
        db.session.commit()
        return {"customer": owner.id, "reference": owner.reference, "invoice": invoice.id,
                "draft": draft.id}


def invoice_form(books, **changes) -> dict:
    """What the invoice screen submits as pre-filled, with some fields changed."""
    data = {"invoice_id": str(books["invoice"]), "issue_date": date.today().isoformat(),
            "description": "", "breakdown_style": "none",
            "line-0-include": "1", "line-0-category": "labour", "line-0-description": "Work",
            "line-0-quantity": "1.00", "line-0-unit_price": "60.00", "line-0-tax_rate": "0.00",
            "line-1-include": "1", "line-1-category": "parts",
            "line-1-description": "Spare <b>part</b>", "line-1-quantity": "2.00",
            "line-1-unit_price": "20.00", "line-1-tax_rate": "0.00"}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def standalone_form(books, **changes) -> dict:
    data = {"customer_id": str(books["customer"]), "issue_date": "2026-04-01",
            "description": "Goodwill", "breakdown_style": "by_category"}
    for i in range(5):
        data.update({f"line-{i}-category": "labour", f"line-{i}-description": "",
                     f"line-{i}-quantity": "1", f"line-{i}-unit_price": "",
                     f"line-{i}-tax_rate": "0"})
    data.update(changes)
    return data


def one(html: str, testid: str) -> str:
    [found] = by_testid(html, testid)
    return found


# --- against an invoice -------------------------------------------------------------------
def test_the_invoice_screen_shows_the_summary_and_its_lines(client, login, books):
    login("owner")
    page = client.get(raise_url(), query_string={"invoice_id": books["invoice"]})

    html = text_of(page)
    assert page.status_code == 200
    assert (one(html, "invoice-total"), one(html, "invoice-credited"),
            one(html, "invoice-outstanding")) == ("£100.00", "£0.00", "£30.00")
    assert len(by_testid(html, "raise-line")) == 2
    assert 'name="line-1-description" maxlength="500" value="Spare &lt;b&gt;part&lt;/b&gt;"' in html
    assert 'name="line-1-include" value="1" checked' in html
    assert one(html, "preview-total") == "£100.00"
    assert (one(html, "preview-applied"), one(html, "preview-to-credit")) == ("£30.00", "£70.00")


def test_the_preview_recomputes_and_writes_nothing(app, client, login, books):
    login("owner")
    page = client.post(raise_url(), data=invoice_form(books, **{
        "line-0-quantity": "0.5", "line-1-include": None}))

    html = text_of(page)
    assert page.status_code == 200
    assert one(html, "preview-total") == "£30.00"
    assert (one(html, "preview-applied"), one(html, "preview-to-credit")) == ("£30.00", "£0.00")
    assert 'name="line-0-quantity" value="0.5"' in html
    assert 'name="line-0-include" value="1" checked' in html
    assert 'name="line-1-include" value="1" checked' not in html  # kept unticked
    assert count_rows(app, CreditNote) == 0


def test_raising_with_a_reduced_line_credits_what_is_left(app, client, login, books):
    login("owner")
    saved = client.post(raise_url(), data=invoice_form(books, confirm="1", **{
        "line-0-unit_price": "30.00", "breakdown_style": "full"}))

    assert saved.status_code == 302
    with app.app_context():
        note = db.session.query(CreditNote).one()
        assert (note.number, note.total, note.invoice_id, note.breakdown_style) == (
            "CN-000001", D("70.00"), books["invoice"], "full")
        assert [(ln.description, ln.net_amount) for ln in note.lines] == [
            ("Work", D("30.00")), ("Spare <b>part</b>", D("40.00"))]
        key = note.id
    assert saved.headers["Location"].endswith(f"/admin/owner/credit_note/details/?id={key}")
    details = client.get(saved.headers["Location"])
    html = text_of(details)
    assert flashes(html) == ["CN-000001 raised for £70.00: £30.00 applied to INV-000001, "
                             "£40.00 became account credit."]
    assert f'href="/admin/owner/credit_note/pdf/?id={key}"' in html
    pdf = client.get(f"/admin/owner/credit_note/pdf/?id={key}")
    assert (pdf.status_code, pdf.mimetype) == (200, "application/pdf")
    assert by_testid(html, "void-credit-note") == ["Void…"]
    assert "Spare &lt;b&gt;part&lt;/b&gt;" in html
    assert load(app, Invoice, books["invoice"], "outstanding") == {"outstanding": D("0.00")}


def test_a_line_left_out_is_not_credited(app, client, login, books):
    login("owner")
    saved = client.post(raise_url(), data=invoice_form(books, confirm="1", **{
        "line-0-include": None}))

    assert saved.status_code == 302
    with app.app_context():
        assert [ln.description for ln in db.session.query(CreditNote).one().lines] == [
            "Spare <b>part</b>"]


@pytest.mark.parametrize("typed", ["{day}", "{iso}"])
def test_the_issue_date_is_typed_as_the_pages_show_it(app, client, login, books, typed):
    """Offered as "5 Dec 2026" in a text box (never the browser's mm/dd/yyyy date box);
    ISO still read."""
    login("owner")
    html = text_of(client.get(raise_url(), query_string={"invoice_id": books["invoice"]}))
    assert f'name="issue_date" value="{day(date.today())}"' in html
    assert 'type="date"' not in html

    typed = typed.format(day=day(date.today()), iso=date.today().isoformat())
    saved = client.post(raise_url(), data=invoice_form(books, confirm="1", issue_date=typed))

    assert saved.status_code == 302
    with app.app_context():
        assert db.session.query(CreditNote).one().issue_date == date.today()


# --- standalone --------------------------------------------------------------------------
def test_the_standalone_screen_offers_empty_rows(client, login, books):
    login("owner")
    page = client.get(raise_url(), query_string={"customer_id": books["customer"]})

    html = text_of(page)
    assert page.status_code == 200
    assert len(by_testid(html, "raise-line")) == 5
    assert books["reference"] in one(html, "customer-summary")
    for style in ("none", "by_category", "full", "full_by_category"):
        assert f'<option value="{style}"' in html


def test_a_standalone_credit_note_becomes_account_credit(app, client, login, books):
    login("admin")
    saved = client.post(raise_url("admin"), data=standalone_form(books, confirm="1", **{
        "line-0-description": "Late arrival", "line-0-unit_price": "25.00",
        "line-2-category": "parts", "line-2-description": "Broken string",
        "line-2-unit_price": "5.00", "line-2-tax_rate": "20"}))

    assert saved.status_code == 302
    assert flashes(text_of(client.get(saved.headers["Location"]))) == [
        "CN-000001 raised for £31.00: £31.00 became account credit."]
    with app.app_context():
        note = db.session.query(CreditNote).one()
        assert (note.invoice_id, note.issue_date, note.description, note.breakdown_style,
                len(note.lines)) == (None, date(2026, 4, 1), "Goodwill", "by_category", 2)
        assert db.session.query(Allocation).filter(Allocation.credit_note_id.is_not(None)
                                                   ).count() == 0
        assert db.session.query(AuditEvent).filter_by(verb="raise_credit_note").count() == 1


# --- refusals -----------------------------------------------------------------------------
@pytest.mark.parametrize(("changes", "message"), [
    ({"line-0-unit_price": "60.01"}, "INV-000001 can be credited at most £100.00 more"),
    ({"line-0-quantity": "0"}, "Line 1, quantity: The quantity must be more than zero."),
    ({"line-1-unit_price": "-3"}, "Line 2, unit price: The amount must not be negative."),
    ({"line-0-description": ""}, "Line 1: enter a description."),
    ({"line-0-include": None, "line-1-include": None}, "Add at least one line"),
    ({"issue_date": "31 Feb 2026"}, "Issue date: type a date like 4 Dec 2026."),
    ({"issue_date": "next tuesday"}, "Issue date: type a date like 4 Dec 2026."),
    ({"issue_date": "2001-01-01"}, "cannot be dated before the invoice"),
    ({"breakdown_style": "fancy"}, "The breakdown style is one of"),
], ids=["over-credit", "zero-quantity", "negative-price", "no-description", "no-lines",
        "bad-date", "not-a-date", "before-invoice", "bad-style"])
def test_each_refusal_is_shown_with_the_inputs_kept(app, client, login, books, changes,
                                                    message):
    login("owner")
    page = client.post(raise_url(), data=invoice_form(books, confirm="1", **changes))

    html = text_of(page)
    assert page.status_code == 400
    assert message in one(html, "action-error")
    for key, value in changes.items():
        if value and key.endswith(("quantity", "unit_price", "description", "date")):
            assert f'value="{value}"' in html
    assert one(html, "invoice-outstanding") == "£30.00"
    assert count_rows(app, CreditNote) == 0
    with app.app_context():
        assert peek(db.session, "credit_note") == 1


def test_over_credit_across_two_credit_notes_is_refused(app, client, login, books):
    login("owner")
    client.post(raise_url(), data=invoice_form(books, confirm="1", **{"line-1-include": None}))

    page = client.post(raise_url(), data=invoice_form(books, confirm="1", **{
        "line-0-include": None, "line-1-unit_price": "20.01"}))

    assert page.status_code == 400
    assert "INV-000001 can be credited at most £40.00 more" in one(text_of(page), "action-error")
    assert one(text_of(page), "invoice-credited") == "£60.00"
    assert count_rows(app, CreditNote) == 1


def test_a_draft_invoice_and_a_redacted_customer_are_refused_on_the_page(app, client, login,
                                                                          books):
    login("owner")
    page = client.get(raise_url(), query_string={"invoice_id": books["draft"]})
    assert page.status_code == 400
    assert "is draft: only issued invoices can be credited" in one(text_of(page), "action-error")
    assert "raise-form" not in text_of(page)

    with app.app_context():
        gone = customer(db.session, redacted_at=datetime(2026, 1, 1))
        db.session.commit()
        key = gone.id
    page = client.post(raise_url(), data=standalone_form(
        {"customer": key}, confirm="1", **{"line-0-description": "x",
                                           "line-0-unit_price": "5"}))
    assert page.status_code == 400
    assert "has been redacted" in one(text_of(page), "action-error")
    assert count_rows(app, CreditNote) == 0


@pytest.mark.parametrize("query", [{"invoice_id": "987654"}, {"customer_id": "987654"},
                                   {"invoice_id": "abc"}, {}])
def test_an_unknown_invoice_or_customer_is_not_found(client, login, query):
    login("owner")
    assert client.get(raise_url(), query_string=query).status_code == 404


# --- the credit note's page ------------------------------------------------------------------
@pytest.fixture
def raised(app, client, login, books):
    login("owner")
    client.post(raise_url(), data=invoice_form(books, confirm="1", **{"line-1-include": None}))
    with app.app_context():
        return db.session.query(CreditNote.id).scalar()


def test_void_asks_for_a_reason_then_voids(app, client, raised, books):
    confirm = client.post(page_url("owner", "void/"), data={"id": str(raised)})
    assert confirm.status_code == 200
    assert "30.00 on INV-000001" in text_of(confirm)

    refused = client.post(page_url("owner", "void/"),
                          data={"id": str(raised), "confirm": "1", "reason": " "})
    assert refused.status_code == 400
    assert "Give a reason" in one(text_of(refused), "action-error")
    assert load(app, CreditNote, raised, "status") == {"status": "issued"}

    done = client.post(page_url("owner", "void/"),
                       data={"id": str(raised), "confirm": "1", "reason": "Raised in error"})
    assert done.status_code == 302
    details = text_of(client.get(done.headers["Location"]))
    assert flashes(details) == ["CN-000001 voided; £30.00 is owed again on the invoices it "
                                "paid off."]
    assert by_testid(details, "void-credit-note") == []
    assert load(app, CreditNote, raised, "status") == {"status": "void"}
    assert load(app, Invoice, books["invoice"], "outstanding") == {"outstanding": D("30.00")}


def test_edit_and_create_are_refused(app, client, raised):
    edit = client.get(page_url("owner", f"edit/?id={raised}"))
    assert edit.status_code == 302
    assert edit.headers["Location"].endswith(f"/details/?id={raised}")
    assert any("CN-000001 is issued: a credit note cannot be edited" in message
               for message in flashes(text_of(client.get(edit.headers["Location"]))))
    forged = client.post(page_url("owner", f"edit/?id={raised}"), data={"description": "X"})
    assert forged.status_code == 302
    assert load(app, CreditNote, raised, "description") == {"description": None}

    assert client.get(page_url("owner", "new/")).status_code == 302
    assert 'href="/admin/owner/credit_note/new/' not in text_of(client.get(page_url("owner", "")))


# --- who may, and CSRF --------------------------------------------------------------------------
def test_a_coordinator_gets_403(app, client, login, books, raised):
    client.get("/logout")
    client.csrf_token = None
    login("coordinator")
    assert client.get(raise_url(), query_string={"invoice_id": books["invoice"]}
                      ).status_code == 403
    assert client.post(raise_url(), data=invoice_form(books, confirm="1")).status_code == 403
    assert client.post(page_url("owner", "void/"),
                       data={"id": str(raised), "confirm": "1", "reason": "x"}).status_code == 403
    assert client.get(raise_url("coordinator"),
                      query_string={"invoice_id": books["invoice"]}).status_code == 404
    assert count_rows(app, CreditNote) == 1
    assert load(app, CreditNote, raised, "status") == {"status": "issued"}


def test_a_post_without_the_csrf_token_is_refused(app, client, login, books, raised):
    assert client.post(raise_url(), data=invoice_form(books, confirm="1"),
                       csrf=False).status_code == 400
    assert client.post(page_url("owner", "void/"), csrf=False,
                       data={"id": str(raised), "confirm": "1", "reason": "x"}).status_code == 400
    assert count_rows(app, CreditNote) == 1
    assert load(app, CreditNote, raised, "status") == {"status": "issued"}
