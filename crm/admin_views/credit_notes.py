"""Credit notes (owner and admin only).

A credit note is only ever made by the "raise credit note" screens (against an invoice, or
standalone on a customer), which call ``crm.actions.credit_note``; the plain create form is
off. An issued credit note is a finished document: it cannot be edited or deleted, only
voided (with a reason). The screens require the ``raise_credit_note`` capability again on
every request."""

import re
from datetime import date

from flask import abort, flash, redirect, request
from flask_admin import expose
from flask_admin.contrib.sqla import filters as sqla_filters
from sqlalchemy import select

from crm.actions import ActionError
from crm.actions.credit_note import (
    MAX_LINES,
    credit_note_lines_from,
    customer_for_credit,
    invoice_position,
    price_lines,
    raise_credit_note,
    void_credit_note,
)
from crm.admin_views.access import require
from crm.admin_views.adapters import record_id, run_action
from crm.admin_views.customers import CustomerLookup
from crm.admin_views.formatters import customer_link, export_str
from crm.admin_views.forms import choices
from crm.admin_views.money import LineInline, MoneyView
from crm.admin_views.statements import CreditNotePdfMixin
from crm.extensions import db
from crm.formatting import DATE_EXAMPLE, day, money, parse_day
from crm.models import Allocation, CreditNote, CreditNoteLine, Customer, Invoice
from crm.models.finance import BREAKDOWN_STYLES, CREDIT_NOTE_STATUSES, LINE_CATEGORIES

BLANK_ROWS = 5  # rows offered by the standalone screen
STYLE_LABELS = {"none": "None (one total)", "by_category": "By category",
                "full": "Full (every line)", "full_by_category": "Full, by category"}
LINE_FIELDS = ("category", "description", "quantity", "unit_price", "tax_rate")
LINE_KEY = re.compile(r"^line-(\d{1,3})-description$")


class CreditNoteView(CreditNotePdfMixin, MoneyView):
    model_class = CreditNote
    can_create = False  # the raise screens make credit notes
    can_edit = False  # an issued credit note is final: void it and raise another
    can_delete = False  # a deleted number would leave a gap in the CN- sequence
    details_template = "admin/crm/document.html"
    document_kind = "credit-note"
    column_list = ["number", "customer", "invoice", "status", "issue_date", "total"]
    column_details_list = column_list + ["description", "breakdown_style", "subtotal",
                                         "tax_total", "created_at"]
    column_export_list = column_list + ["description", "breakdown_style", "subtotal",
                                        "tax_total"]
    form_columns = ["customer", "invoice", "status", "issue_date", "description",
                    "breakdown_style", "lines"]
    column_sortable_list = ["number", "issue_date", "total"]
    column_searchable_list = ["number"]
    column_filters = [sqla_filters.FilterEqual(CreditNote.status, "Status",
                                               options=choices(CREDIT_NOTE_STATUSES)),
                      "issue_date"]
    column_default_sort = ("issue_date", True)
    column_formatters = {"customer": customer_link}
    column_formatters_export = {"customer": export_str("customer"),
                                "invoice": export_str("invoice")}
    form_choices = {"status": choices(CREDIT_NOTE_STATUSES),
                    "breakdown_style": choices(BREAKDOWN_STYLES)}
    form_ajax_refs = {"customer": CustomerLookup("customer"), "invoice": {"fields": ["number"],
                                                             "page_size": 10}}
    inline_models = [LineInline(CreditNoteLine)]

    eager = (CreditNote.lines,)

    def applied_to(self, note: CreditNote) -> list:
        """(invoice number, amount, counts) of each allocation from the note, for its page."""
        return db.session.execute(
            select(Invoice.number, Allocation.amount, Invoice.status)
            .join(Invoice, Invoice.id == Allocation.invoice_id)
            .where(Allocation.credit_note_id == note.id)
            .order_by(Allocation.id)
        ).all()

    # --- edit: refused ------------------------------------------------------------------
    @expose("/edit/", methods=("GET", "POST"))
    def edit_view(self):
        note = self.get_one(request.args.get("id", ""))
        if note is None:
            return redirect(self.get_url(".index_view"))
        flash(f"{note.number} is {note.status}: a credit note cannot be edited. Void it and "
              "raise a new one instead.", "error")
        return redirect(self.get_url(".details_view", id=note.id))

    # --- raise ----------------------------------------------------------------------------
    @expose("/raise/", methods=("GET", "POST"))
    @require("raise_credit_note")
    def raise_view(self):
        invoice_id = request.values.get("invoice_id", type=record_id)
        customer_id = request.values.get("customer_id", type=record_id)
        if invoice_id is not None:
            invoice = db.session.get(Invoice, invoice_id)
            if invoice is None:
                abort(404)
            page = {"invoice": invoice, "customer": invoice.customer}
            try:
                page["position"] = invoice_position(db.session, invoice_id)
            except ActionError as exc:
                return self._raise_page(page, error=str(exc), refused=True), 400
        elif customer_id is not None:
            customer = db.session.get(Customer, customer_id)
            if customer is None:
                abort(404)
            page = {"invoice": None, "customer": customer}
            try:
                customer_for_credit(db.session, customer_id)
            except ActionError as exc:
                return self._raise_page(page, error=str(exc), refused=True), 400
        else:
            abort(404)
        if request.method == "POST":
            return self._raise_posted(page)
        form = {"issue_date": day(date.today()), "description": "",
                "breakdown_style": "none"}
        if page["invoice"] is None:  # blank rows: nothing to price, nothing to refuse yet
            return self._raise_page(page, rows=[_row(i) for i in range(BLANK_ROWS)], form=form)
        rows = _rows_from(credit_note_lines_from(page["invoice"]))
        return self._raise_page(page, rows=rows, form=form, priced=self._preview(page, rows))

    def _raise_posted(self, page: dict):
        rows = _rows_posted(request.form, included_by_default=page["invoice"] is None)
        form = {key: request.form.get(key, "").strip()
                for key in ("issue_date", "description", "breakdown_style")}
        try:
            issue_date = parse_day(form["issue_date"][:40]) \
                if form["issue_date"] else None
        except ValueError:
            return self._raise_page(page, rows=rows, form=form,
                                    error=f"Issue date: type a date like {DATE_EXAMPLE}."), 400
        if request.form.get("confirm") != "1":
            return self._raise_page(page, rows=rows, form=form, priced=self._preview(page, rows))
        target = ({"invoice_id": page["invoice"].id} if page["invoice"]
                  else {"customer_id": page["customer"].id})
        result, error = run_action(
            raise_credit_note, lines=_chosen(rows), issue_date=issue_date,
            description=form["description"], breakdown_style=form["breakdown_style"] or "none",
            **target,
        )
        if error:
            if page["invoice"] is not None:
                try:  # the figures now (another user may have credited or voided meanwhile)
                    page["position"] = invoice_position(db.session, page["invoice"].id)
                except ActionError as exc:
                    return self._raise_page(page, error=str(exc), refused=True), 400
            return self._raise_page(page, rows=rows, form=form, error=error), 400
        flash(result.message, "success")
        return redirect(self.get_url(".details_view", id=result.details["credit_note_id"]))

    def _preview(self, page: dict, rows: list[dict]) -> dict | None:
        """Totals of the chosen lines as they would be raised, or the reason they cannot be."""
        try:
            priced = price_lines(_chosen(rows))
        except ActionError as exc:
            return {"error": str(exc)}
        preview = {"subtotal": priced.subtotal, "tax_total": priced.tax_total,
                   "total": priced.total, "error": None}
        position = page.get("position")
        if position is not None:
            preview["applied"], preview["to_credit"] = position.split(priced.total)
            if priced.total > position.creditable:
                preview["error"] = (f"{position.number} can be credited at most "
                                    f"{money(position.creditable)} more.")
        else:
            preview["applied"], preview["to_credit"] = None, priced.total
        return preview

    def _raise_page(self, page: dict, *, rows=(), form=None, priced=None, error=None,
                    refused=False):
        return self.render(
            "admin/credit_note/raise.html", invoice=page["invoice"], customer=page["customer"],
            position=page.get("position"), rows=rows, form=form or {}, priced=priced,
            error=error, refused=refused, categories=LINE_CATEGORIES,
            styles=[(s, STYLE_LABELS[s]) for s in BREAKDOWN_STYLES],
        )

    # --- void -----------------------------------------------------------------------------
    @expose("/void/", methods=("GET", "POST"))
    @require("raise_credit_note")
    def void_view(self):
        note = self.get_one(request.values.get("id", ""))
        if note is None:
            abort(404)
        error, status = None, 200
        reason = request.form.get("reason", "")
        if request.method == "POST" and request.form.get("confirm") == "1":
            result, error = run_action(void_credit_note, credit_note_id=note.id, reason=reason)
            if not error:
                flash(result.message, "success")
                return redirect(self.get_url(".details_view", id=note.id))
            note, status = self.get_one(str(note.id)), 400
        return self.render("admin/crm/void.html", kind="credit-note", document=note,
                           reason=reason, error=error, applied=self.applied_to(note)), status


def _row(index: int, values: dict | None = None, include: bool = True) -> dict:
    values = values or {}
    row = {"index": index, "include": include}
    for name in LINE_FIELDS:
        value = values.get(name)
        row[name] = "" if value is None else str(value)
    row["category"] = row["category"] or "labour"
    if not values:
        row.update(quantity="1", tax_rate="0")
    return row


def _rows_from(lines: list[dict]) -> list[dict]:
    return [_row(i, line) for i, line in enumerate(lines)]


def _rows_posted(data, *, included_by_default: bool) -> list[dict]:
    """The line rows as typed, in order (at most ``MAX_LINES``; more are not read)."""
    indexes = sorted({int(m.group(1)) for key in data if (m := LINE_KEY.match(key))})
    rows = []
    for index in indexes[:MAX_LINES]:
        values = {name: data.get(f"line-{index}-{name}", "").strip() for name in LINE_FIELDS}
        include = included_by_default or data.get(f"line-{index}-include") == "1"
        rows.append(_row(index, values, include))
    return rows


def _chosen(rows: list[dict]) -> list[dict]:
    """The rows to raise: those ticked (against an invoice), blank rows left out. Each
    chosen row is numbered as the action will number it, so "Line 2: ..." finds its row."""
    chosen = []
    for row in rows:
        row["number"] = None
        if row["include"] and (row["description"] or row["unit_price"]):
            chosen.append({name: row[name] for name in LINE_FIELDS})
            row["number"] = len(chosen)
    return chosen
