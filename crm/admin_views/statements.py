"""The statement tab of a customer (HTML and PDF) and the PDF of an invoice or credit note:
mixins for the customer, invoice and credit note views. Each endpoint requires its
capability (``statements``; ``see_money`` for a document's PDF) on every request; records
are loaded through the view's own ``get_one`` (404 for what the view cannot see)."""

from datetime import date

from flask import Response, abort, request
from flask_admin import expose

from crm.admin_views.access import require
from crm.admin_views.record_links import details_url
from crm.documents import (
    credit_note_pdf,
    document_filename,
    invoice_pdf,
    statement_filename,
    statement_pdf,
)
from crm.extensions import db
from crm.formatting import DATE_EXAMPLE, day, parse_day
from crm.statements import KINDS, StatementError, build_statement


def _pdf_response(content: bytes, filename: str) -> Response:
    return Response(content, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Cache-Control": "private, no-store",
    })


class _Loads:
    def _load(self):
        """The record named by ?id=, or 404."""
        record = self.get_one(request.args.get("id", ""))
        if record is None:
            abort(404)
        return record


def _date_arg(name: str, label: str) -> date | None:
    value = (request.args.get(name) or "").strip()
    if not value:
        return None
    try:
        return parse_day(value)
    except ValueError:
        raise StatementError(f"{label}: enter a date such as {DATE_EXAMPLE}.") from None


def _statement_options() -> dict:
    """The statement asked for by the query string (raises StatementError on bad input).
    An outstanding statement is at a date (``as_of``: blank is now); an activity statement
    covers a period (``start``, ``end``: blank is the last three months to today). Neither
    reads the other's dates."""
    kind = request.args.get("kind") or "outstanding"
    if kind not in KINDS:
        raise StatementError("Choose an outstanding or an activity statement.")
    options = {"kind": kind, "group_by_contact": request.args.get("group") == "1"}
    if kind == "activity":
        options.update(start=_date_arg("start", "From"), end=_date_arg("end", "To"))
    else:
        options["as_of"] = _date_arg("as_of", "As at")
    return options  # the dates' range is build_statement's rule, like every caller's


class StatementMixin(_Loads):
    """For the customer view: /statement/?id= (the page) and /statement/pdf/?id=."""

    @expose("/statement/")
    @require("statements")
    def statement_view(self):
        customer = self._load()
        statement, error = None, None
        try:
            statement = build_statement(db.session, customer_id=customer.id,
                                        **_statement_options())
        except StatementError as exc:
            error = str(exc)
        return self.render(
            "statements/page.html", customer=customer, statement=statement, error=error,
            args=request.args, today_example=day(date.today()),
            document_url=self._document_url,
        ), (400 if error else 200)

    def _document_url(self, line) -> str | None:
        """Where a statement's line opens in this role's panel: its invoice, credit note or
        payment (records that link)."""
        model = {"invoice": "Invoice", "credit_note": "CreditNote",
                 "payment": "Payment"}.get(line.kind)
        return details_url(self.role, model, line.id) if model and line.id else None

    @expose("/statement/pdf/")
    @require("statements")
    def statement_pdf_view(self):
        customer = self._load()
        try:
            statement = build_statement(db.session, customer_id=customer.id,
                                        **_statement_options())
        except StatementError as exc:
            return self.render(
                "statements/page.html", customer=customer, statement=None, error=str(exc),
                args=request.args, today_example=day(date.today()),
            ), 400
        return _pdf_response(statement_pdf(statement), statement_filename(statement))


class InvoicePdfMixin(_Loads):
    """For the invoice view: /pdf/?id= (its address format, every line)."""

    @expose("/pdf/")
    @require("see_money")
    def pdf_view(self):
        invoice = self._load()
        return _pdf_response(invoice_pdf(invoice), document_filename(invoice))


class CreditNotePdfMixin(_Loads):
    """For the credit note view: /pdf/?id= (its breakdown style)."""

    @expose("/pdf/")
    @require("see_money")
    def pdf_view(self):
        note = self._load()
        return _pdf_response(credit_note_pdf(note), document_filename(note))
