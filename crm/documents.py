"""Statements, invoices and credit notes as HTML and PDF, rendered from the templates in
``templates/statements`` and ``templates/pdf`` (needs an application context).

The statement fragment (``statements/statement.html``) is the same template in the admin
page, the portal and the PDF, so a statement's numbers cannot disagree between them. Every
PDF carries the business's letterhead (``crm.business.identity``: its logo, name, address,
contact details and registration, from Settings > Business; the ``CRM_BUSINESS_NAME``
setting until that is saved), and invoices and statements end with the payment terms and
the bank details.
"""

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from flask import render_template

from crm.addressing import customer_address, format_invoice_address
from crm.business import identity
from crm.models.finance import BREAKDOWN_STYLES, LINE_CATEGORIES
from crm.pdf import html_to_pdf
from crm.statements import Statement

ZERO = Decimal("0.00")


def business_name() -> str:
    """The business's name as documents print it."""
    return identity().name


# --- statements -------------------------------------------------------------------------

def statement_html(statement: Statement) -> str:
    """The statement fragment shown in the admin (and the portal)."""
    return render_template("statements/statement.html", statement=statement)


def statement_pdf(statement: Statement) -> bytes:
    html = render_template(
        "pdf/statement.html", statement=statement, business=identity(with_logo=True),
        address_lines=customer_address(statement.customer),
    )
    return html_to_pdf(html)


def statement_filename(statement: Statement) -> str:
    """statement-C-000123-2026-11-30.pdf (the date of the position)."""
    return f"statement-{statement.customer.reference}-{statement.as_of.isoformat()}.pdf"


# --- invoices and credit notes ----------------------------------------------------------

@dataclass(frozen=True)
class Row:
    """One row of a document's table: a "line" (with quantity, price and tax rate), a
    "summary" (one amount for several lines), a "heading" or a "subtotal"."""

    kind: str
    description: str
    amount: Decimal = ZERO
    quantity: Decimal | None = None
    unit_price: Decimal | None = None
    tax_rate: Decimal | None = None


def _label(category: str) -> str:
    return category.capitalize()


def breakdown(lines, style: str, summary: str = "") -> list[Row]:
    """The rows a document shows for ``style`` (amounts are net; tax is in the totals):

    - ``none``: one row for the whole document (``summary`` is its description);
    - ``by_category``: one row per category (labour, parts, other) with its sum;
    - ``full``: every line;
    - ``full_by_category``: the lines under a heading per category, each with a subtotal.
    """
    if style not in BREAKDOWN_STYLES:
        raise ValueError(f"Unknown breakdown style {style!r}.")
    lines = list(lines)
    if style == "none":
        return [Row("summary", summary, sum((x.net_amount for x in lines), ZERO))]
    if style == "full":
        return [_line_row(line) for line in lines]
    by_category = defaultdict(list)
    for line in lines:
        by_category[line.category].append(line)
    categories = [c for c in LINE_CATEGORIES if c in by_category]
    categories += sorted(set(by_category) - set(categories))
    rows: list[Row] = []
    for category in categories:
        total = sum((x.net_amount for x in by_category[category]), ZERO)
        if style == "by_category":
            rows.append(Row("summary", _label(category), total))
        else:
            rows.append(Row("heading", _label(category)))
            rows.extend(_line_row(line) for line in by_category[category])
            rows.append(Row("subtotal", f"Subtotal {_label(category).lower()}", total))
    return rows


@dataclass(frozen=True)
class TaxRate:
    """The lines taxed at one rate: their net amount and their tax."""

    rate: Decimal
    net: Decimal
    tax: Decimal


def tax_by_rate(lines) -> list[TaxRate]:
    """The tax of a document by rate, highest rate first ("Tax at 20% on £1,335.00")."""
    net: dict[Decimal, Decimal] = defaultdict(lambda: ZERO)
    tax: dict[Decimal, Decimal] = defaultdict(lambda: ZERO)
    for line in lines:
        rate = Decimal(line.tax_rate or 0)
        net[rate] += line.net_amount or ZERO
        tax[rate] += line.tax_amount or ZERO
    return [TaxRate(rate, net[rate], tax[rate]) for rate in sorted(net, reverse=True)]


def _line_row(line) -> Row:
    return Row("line", line.description, line.net_amount, line.quantity, line.unit_price,
               line.tax_rate)


def invoice_pdf(invoice, *, breakdown_style: str = "full") -> bytes:
    """The invoice, addressed by its address format, every line shown by default."""
    html = render_template(
        "pdf/invoice.html", document=invoice, business=identity(with_logo=True),
        address_lines=format_invoice_address(invoice),
        rows=breakdown(invoice.lines, breakdown_style, summary="Work as agreed"),
        taxes=tax_by_rate(invoice.lines),
        work_address=str(invoice.work_address) if invoice.work_address else "",
    )
    return html_to_pdf(html)


def credit_note_pdf(credit_note) -> bytes:
    """The credit note in its breakdown style, addressed like the invoice it credits (or
    to the customer's own address for a standalone credit note)."""
    addressed = credit_note.invoice if credit_note.invoice is not None else credit_note
    html = render_template(
        "pdf/credit_note.html", document=credit_note, business=identity(with_logo=True),
        address_lines=format_invoice_address(addressed),
        rows=breakdown(credit_note.lines, credit_note.breakdown_style,
                       summary=credit_note.description or "Credit"),
        taxes=tax_by_rate(credit_note.lines),
    )
    return html_to_pdf(html)


def document_filename(document) -> str:
    """INV-000001.pdf, CN-000001.pdf (a draft: invoice-draft-12.pdf)."""
    return f"{document.number}.pdf" if document.number else f"invoice-draft-{document.id}.pdf"
