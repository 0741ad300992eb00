"""PDFs of statements, invoices and credit notes: the embedded font, escaping, the address
format, the credit note's breakdown style, the business name and long statements."""

from datetime import date, timedelta
from decimal import Decimal
from io import BytesIO

import pytest
from pypdf import PdfReader

from crm import pdf as pdf_module
from crm.documents import (
    breakdown,
    credit_note_pdf,
    document_filename,
    invoice_pdf,
    statement_filename,
    statement_html,
    statement_pdf,
)
from crm.models import CreditNote, CreditNoteLine, Invoice, InvoiceLine
from crm.models.sequence import next_number
from crm.pdf import PdfError, html_to_pdf
from crm.statements import build_statement
from tests.factories import make_customer, make_invoice, make_payment, make_work_address

D = Decimal
TODAY = date.today()
LINES = (  # category, description, quantity, unit price, tax rate
    ("labour", "Fit boiler", "3", "45.00", "20"),
    ("parts", "Boiler", "1", "1200.00", "20"),
    ("labour", "Call-out", "1", "60.00", "0"),
    ("other", "Parking", "2", "4.50", "0"),
)


def text_of(content: bytes) -> str:
    assert content.startswith(b"%PDF-")
    return "\n".join(page.extract_text() for page in PdfReader(BytesIO(content)).pages)


def fonts_of(content: bytes) -> set[str]:
    names = set()
    for page in PdfReader(BytesIO(content)).pages:
        for font in page["/Resources"]["/Font"].values():
            names.add(str(font.get_object()["/BaseFont"]))
    return names


def _lines(model):
    return [model(category=c, description=d, quantity=D(q), unit_price=D(p), tax_rate=D(t),
                  position=i) for i, (c, d, q, p, t) in enumerate(LINES)]


def make_note(session, customer, style, **values) -> CreditNote:
    note = CreditNote(customer=customer, number=next_number(session, "credit_note"),
                      issue_date=TODAY, breakdown_style=style, description="Goodwill",
                      lines=_lines(CreditNoteLine), **values)
    session.add(note)
    session.flush()
    return note


def make_full_invoice(session, customer, **values) -> Invoice:
    invoice = Invoice(customer=customer, status="issued", number=next_number(session, "invoice"),
                      issue_date=TODAY, due_date=TODAY + timedelta(days=30),
                      lines=_lines(InvoiceLine), **values)
    session.add(invoice)
    session.commit()  # what is outstanding is stored at commit (crm.session_hooks)
    return invoice


def test_statement_pdf_embeds_the_font_and_formats_money(session):
    customer = make_customer(session)
    make_invoice(session, customer, amount="1234567.50", days_overdue=3)
    statement = build_statement(session, customer_id=customer.id)

    content = statement_pdf(statement)

    assert any("DejaVuSans" in name for name in fonts_of(content))
    text = text_of(content)
    assert "1,234,567.50" in text and "1–30 days" in text  # an en dash: the font has it
    assert customer.reference in text and customer.address_line_1 in text
    assert statement_filename(statement) == f"statement-{customer.reference}-{TODAY}.pdf"


def test_a_customer_name_with_markup_is_escaped(session):
    customer = make_customer(session, first_name="<b>&amp;", surname="<i>Smith")
    invoice = make_invoice(session, customer, amount="10.00")
    statement = build_statement(session, customer_id=customer.id)

    html = statement_html(statement)
    assert "&lt;b&gt;&amp;amp; &lt;i&gt;Smith" in html and "<b>" not in html
    assert "<b>&amp; <i>Smith" in text_of(statement_pdf(statement))
    assert "<b>&amp; <i>Smith" in text_of(invoice_pdf(invoice))


@pytest.mark.parametrize(("style", "shown", "hidden"), [
    ("none", ["Goodwill", "1,404.00"], ["Fit boiler", "Labour"]),
    ("by_category", ["Labour", "195.00", "Parts", "1,200.00", "Other", "9.00"],
     ["Fit boiler", "Subtotal labour"]),
    ("full", ["Fit boiler", "Boiler", "Call-out", "Parking", "135.00"], ["Subtotal labour"]),
    ("full_by_category", ["Labour", "Fit boiler", "Call-out", "Subtotal labour", "195.00",
                          "Parts", "Subtotal parts", "Other", "Subtotal other"], []),
])
def test_credit_note_pdf_follows_its_breakdown_style(session, style, shown, hidden):
    note = make_note(session, make_customer(session), style)
    text = text_of(credit_note_pdf(note))
    for expected in shown:
        assert expected in text, expected
    for unexpected in hidden:
        assert unexpected not in text, unexpected
    # Whatever the style, the totals are the document's: net 1,404.00 + tax 267.00.
    assert "1,404.00" in text and "267.00" in text and "1,671.00" in text
    assert note.number in text and document_filename(note) == f"{note.number}.pdf"


@pytest.mark.parametrize("style", ["none", "by_category", "full", "full_by_category"])
def test_invoice_pdf_in_each_breakdown_style(session, style):
    invoice = make_full_invoice(session, make_customer(session))
    rows = breakdown(invoice.lines, style)
    assert sum(row.amount for row in rows if row.kind in ("line", "summary")) == invoice.subtotal
    text = text_of(invoice_pdf(invoice, breakdown_style=style))
    assert invoice.number in text and "1,671.00" in text
    assert "Amount due" not in text  # nothing paid yet: the total is what is due
    assert ("Fit boiler" in text) == style.startswith("full")


def test_unknown_breakdown_style_is_refused():
    with pytest.raises(ValueError, match="Unknown breakdown style"):
        breakdown([], "fancy")


def test_invoice_pdf_uses_the_address_format_and_shows_what_is_due(session):
    tenant = make_customer(session, first_name="Bob", surname="Tenant")
    landlord = make_customer(session, first_name="Jane", surname="Lord")
    work = make_work_address(session, tenant, landlord=landlord, address_line_1="7 Rented Row")
    invoice = make_invoice(session, tenant, amount="300.00", work_address=work,
                           address_format="[landlord_name] c/o [customer_name]\n"
                                          "[work_address_line_1]\n[work_address_postcode]")
    from tests.factories import make_allocation

    make_allocation(session, invoice, payment=make_payment(session, tenant, amount="100.00"),
                    amount="100.00")
    session.commit()

    text = text_of(invoice_pdf(invoice))

    assert "Jane Lord c/o Bob Tenant\n7 Rented Row\nB1 1AA" in text
    assert "Amount due" in text and "200.00" in text


def test_a_standalone_credit_note_is_addressed_to_the_customer(session):
    customer = make_customer(session, company_name="Acme Ltd", customer_type="company")
    text = text_of(credit_note_pdf(make_note(session, customer, "none")))
    assert "Acme Ltd" in text and customer.address_line_1 in text


def test_a_credit_note_against_an_invoice_is_addressed_like_it(session):
    tenant = make_customer(session, first_name="Bob", surname="Tenant")
    invoice = make_invoice(session, tenant, address_format="FAO accounts\n[customer_name]")
    text = text_of(credit_note_pdf(make_note(session, tenant, "none", invoice=invoice)))
    assert "FAO accounts\nBob Tenant" in text and invoice.number in text


def test_the_business_name_comes_from_the_settings(session, app, monkeypatch):
    monkeypatch.setitem(app.config, "CRM_BUSINESS_NAME", "Acme Heating & Sons")
    invoice = make_invoice(session, make_customer(session))
    assert "Acme Heating & Sons" in text_of(invoice_pdf(invoice))
    monkeypatch.setitem(app.config, "CRM_BUSINESS_NAME", "")
    assert "Our business" in text_of(invoice_pdf(invoice))


def test_a_statement_of_sixty_lines_runs_over_pages(session):
    customer = make_customer(session)
    invoices = [make_invoice(session, customer, amount=f"{i + 1}.00", days_overdue=i * 2)
                for i in range(60)]
    statement = build_statement(session, customer_id=customer.id)
    assert len(statement.lines) == 60

    content = statement_pdf(statement)

    assert len(PdfReader(BytesIO(content)).pages) >= 2
    text = text_of(content)
    assert all(invoice.number in text for invoice in invoices)
    assert "1,830.00" in text  # 1 + 2 + ... + 60


def test_an_activity_statement_pdf(session):
    customer = make_customer(session)
    make_invoice(session, customer, amount="80.00", issue_date=TODAY - timedelta(days=3),
                 due_date=TODAY)
    make_payment(session, customer, amount="30.00", reference="BACS 9")
    statement = build_statement(session, customer_id=customer.id, kind="activity",
                                start=TODAY - timedelta(days=7))
    text = text_of(statement_pdf(statement))
    assert "Opening balance" in text and "Closing balance" in text and "BACS 9" in text
    assert "50.00" in text


def test_a_missing_font_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(pdf_module, "FONTS", tmp_path)
    with pytest.raises(PdfError, match="DejaVuSans.ttf.*is missing"):
        html_to_pdf("<p>x</p>")


def _images(content: bytes) -> int:
    found = 0
    for page in PdfReader(BytesIO(content)).pages:
        objects = page["/Resources"].get("/XObject") or {}
        found += sum(1 for x in objects.values() if x.get_object()["/Subtype"] == "/Image")
    return found


def test_the_renderer_reads_no_file_outside_the_fonts(tmp_path, monkeypatch):
    from PIL import Image

    picture = tmp_path / "elsewhere.png"
    Image.new("RGB", (4, 4), "red").save(picture)
    html = f'<html><body><img src="{picture}" width="40" height="40"><p>x</p></body></html>'
    assert _images(html_to_pdf(html)) == 0
    # The same document under no policy would have read it (the test can tell).
    from xhtml2pdf.config.resources import PERMISSIVE_POLICY

    monkeypatch.setattr(pdf_module, "_POLICY", PERMISSIVE_POLICY)
    assert _images(html_to_pdf(html)) == 1
