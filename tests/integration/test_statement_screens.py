"""The statement tab of a customer (HTML and PDF) and the invoice and credit note PDFs:
owners and admins only, 404 for what does not exist, a message for bad dates, and the same
number of SQL statements whatever the number of documents.

The endpoints come from mixins (crm.admin_views.statements) the lead adds to the views; until
they are in the registry, this module builds its own app with them mixed in."""

from datetime import date, timedelta
from io import BytesIO

import pytest
from pypdf import PdfReader

import crm.admin_views as admin_views
import tests.conftest as root
from crm.admin_views.statements import CreditNotePdfMixin, InvoicePdfMixin, StatementMixin
from crm.extensions import db
from tests import factories as f
from tests.integration.conftest import sign_in
from tests.integration.helpers import statements, text_of

TODAY = date.today()
MIXINS = {"customer": StatementMixin, "invoice": InvoicePdfMixin,
          "credit_note": CreditNotePdfMixin}


def _wired(registry):
    """The registry with the mixins added to the views that lack them."""
    wired = []
    for spec, name, category, slug in registry:
        mixin = MIXINS.get(slug)
        if mixin is not None and not issubclass(spec, mixin):
            spec = type(spec.__name__, (mixin, spec), {})
        wired.append((spec, name, category, slug))
    return tuple(wired)


@pytest.fixture(scope="module")
def wired_app(app, database_url):
    original = admin_views.REGISTRY
    admin_views.REGISTRY = _wired(original)
    try:
        application = root.make_app(database_url)
    finally:
        admin_views.REGISTRY = original
    return application


@pytest.fixture
def browser(wired_app):
    def sign(role="owner"):
        wired_app.test_client_class = root.CrmClient
        client = wired_app.test_client()
        sign_in(wired_app, client, role)
        return client

    return sign


@pytest.fixture
def ledger(wired_app):
    """A customer with an overdue invoice for a contact, a paid one, a payment on account and
    a credit note; its id and the documents' ids."""
    with wired_app.app_context():
        s = db.session
        customer = f.make_customer(s, first_name="<b>Bob", surname="Tenant")
        contact = f.make_contact(s, customer, first_name="Sam", surname="Clerk")
        overdue = f.make_invoice(s, customer, amount="1500.00", days_overdue=45, contact=contact)
        paid = f.make_invoice(s, customer, amount="40.00", days_overdue=2)
        payment = f.make_payment(s, customer, amount="100.00", reference="BACS 7")
        f.make_allocation(s, paid, payment=payment, amount="40.00")
        note = f.make_credit_note(s, customer, amount="25.00", invoice=overdue)
        s.commit()
        return {"customer": customer.id, "invoice": overdue.id, "credit_note": note.id,
                "reference": customer.reference, "number": overdue.number,
                "note_number": note.number}


def page(role, slug, path, **args):
    query = "&".join(f"{k}={v}" for k, v in args.items())
    return f"/admin/{role}/{slug}/{path}?{query}"


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_the_outstanding_statement_page(browser, ledger, role):
    client = browser(role)
    response = client.get(page(role, "customer", "statement/", id=ledger["customer"]))
    html = text_of(response)
    assert response.status_code == 200
    assert 'data-testid="statement"' in html and ledger["number"] in html
    assert 'data-testid="balance"><strong>£1,415.00' in html  # 1,540 invoiced - 100 paid - 25 credited
    assert 'data-testid="overdue">£1,500.00' in html
    assert 'data-testid="account-credit">£85.00' in html
    assert "&lt;b&gt;Bob Tenant" in html and "<b>Bob" not in html
    assert "statement/pdf/?id=" in html  # the Download PDF link
    # each document opens its own page in this role's panel
    invoice_page = f'/admin/{role}/invoice/details/?id={ledger["invoice"]}'
    assert f'<a href="{invoice_page}">{ledger["number"]}</a>' in html


def test_an_activity_statement_grouped_by_contact(browser, ledger):
    client = browser("owner")
    start = (TODAY - timedelta(days=120)).isoformat()
    response = client.get(page("owner", "customer", "statement/", id=ledger["customer"],
                               kind="activity", start=start, end=TODAY.isoformat(), group=1))
    html = text_of(response)
    assert response.status_code == 200
    assert "Opening balance" in html and "Sam Clerk" in html and "No contact" in html
    assert 'data-testid="closing-balance"><strong>£1,415.00' in html


@pytest.mark.parametrize(("args", "message"), [
    ({"as_of": "2026-13-01"}, "As at: enter a date such as 4 Dec 2026."),
    ({"kind": "activity", "start": "yesterday"}, "From: enter a date such as 4 Dec 2026."),
    ({"kind": "activity", "start": "2026-02-01", "end": "2026-01-01"},
     "The start date is after the end date."),
    ({"kind": "weekly"}, "Choose an outstanding or an activity statement."),
    ({"as_of": "0001-01-01"}, "As at: Enter a date between 1900 and 2100."),
    ({"kind": "activity", "start": "2101-01-01", "end": "2101-02-01"},
     "From: Enter a date between 1900 and 2100."),
])
@pytest.mark.parametrize("path", ["statement/", "statement/pdf/"])
def test_bad_input_is_a_message_not_an_error(browser, ledger, args, message, path):
    client = browser("owner")
    response = client.get(page("owner", "customer", path, id=ledger["customer"], **args))
    assert response.status_code == 400
    assert f'data-testid="statement-error">{message}' in text_of(response)


def test_the_statement_pdf(browser, ledger):
    client = browser("owner")
    response = client.get(page("owner", "customer", "statement/pdf/", id=ledger["customer"],
                               as_of=TODAY.isoformat()))
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="statement-{ledger["reference"]}-{TODAY.isoformat()}.pdf"')
    text = "\n".join(p.extract_text() for p in PdfReader(BytesIO(response.data)).pages)
    assert "1,415.00" in text and ledger["number"] in text and "<b>Bob Tenant" in text


@pytest.mark.parametrize(("slug", "key", "number"), [
    ("invoice", "invoice", "number"), ("credit_note", "credit_note", "note_number")])
def test_document_pdfs(browser, ledger, slug, key, number):
    client = browser("admin")
    response = client.get(page("admin", slug, "pdf/", id=ledger[key]))
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert f'filename="{ledger[number]}.pdf"' in response.headers["Content-Disposition"]
    text = PdfReader(BytesIO(response.data)).pages[0].extract_text()
    assert ledger[number] in text and "<b>Bob Tenant" in text


@pytest.mark.parametrize(("slug", "path"), [
    ("customer", "statement/"), ("customer", "statement/pdf/"), ("invoice", "pdf/"),
    ("credit_note", "pdf/")])
def test_missing_records_are_404(browser, ledger, slug, path):
    client = browser("owner")
    for bad in ("999999", "abc", "", "99999999999999"):
        assert client.get(page("owner", slug, path, id=bad)).status_code == 404


def test_a_coordinator_gets_no_statement(browser, ledger):
    client = browser("coordinator")
    for path in ("statement/", "statement/pdf/"):
        response = client.get(page("coordinator", "customer", path, id=ledger["customer"]))
        assert response.status_code == 403
    for slug in ("invoice", "credit_note"):
        # There is no coordinator view of money at all.
        assert client.get(page("coordinator", slug, "pdf/", id=ledger[slug])).status_code == 404
    html = text_of(client.get(page("coordinator", "customer", "details/",
                                   id=ledger["customer"])))
    assert "tab-statement" not in html


def test_the_views_have_the_endpoints(wired_app):
    endpoints = set(wired_app.view_functions)
    for role in ("owner", "admin"):
        assert {f"customer_{role}.statement_view", f"customer_{role}.statement_pdf_view",
                f"invoice_{role}.pdf_view", f"credit_note_{role}.pdf_view"} <= endpoints


def test_the_statement_page_costs_the_same_statements_with_one_or_forty_invoices(
        browser, wired_app):
    client = browser("owner")
    counts = []
    for n in (1, 40):
        with wired_app.app_context():
            customer = f.make_customer(db.session)
            contact = f.make_contact(db.session, customer)
            for i in range(n):
                invoice = f.make_invoice(db.session, customer, amount="10.00", days_overdue=i,
                                         contact=contact if i % 2 else None)
                payment = f.make_payment(db.session, customer, amount="4.00")
                f.make_allocation(db.session, invoice, payment=payment, amount="3.00")
            db.session.commit()
            key = customer.id
        for kind in ("outstanding", "activity"):
            response = client.get(page("owner", "customer", "statement/", id=key, kind=kind,
                                       start="2000-01-01", group=1))
            assert response.status_code == 200
            counts.append(statements(response))
    assert counts[:2] == counts[2:], counts
