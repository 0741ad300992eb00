"""Invoices (owner and admin only): create and edit drafts with their lines; issue them from
the record page or in bulk from the list; void an issued one with a reason.

The form makes drafts only (no status, no number): numbers are given by
``crm.actions.invoice.issue_invoice`` and an issued or void invoice is never edited again
(the edit page sends the user to its details; the session guard in ``crm.session_hooks``
refuses the change whatever the path). Every endpoint requires the ``invoice`` capability
again on each request."""

from decimal import Decimal

from flask import abort, flash, redirect, request
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.contrib.sqla import filters as sqla_filters
from wtforms.validators import InputRequired, Optional

from crm.admin_views.access import require
from crm.admin_views.adapters import record_id, record_ids, run_action
from crm.admin_views.customers import CustomerLookup
from crm.admin_views.filters import MoneyGreater
from crm.admin_views.formatters import customer_link, export_str
from crm.admin_views.forms import SaneDate, choices
from crm.admin_views.money import LineInline, MoneyView
from crm.admin_views.statements import InvoicePdfMixin
from crm.extensions import db
from crm.models import Invoice, InvoiceLine
from crm.models.base import ZERO
from crm.models.finance import INVOICE_STATUSES
from crm.validation import MONEY_MAX, line_amounts


def locked_message(invoice: Invoice) -> str:
    if invoice.status == "void":
        return f"{invoice.number} is void; it can no longer be changed."
    return f"{invoice.number} is issued; raise a credit note to change what is owed."


def _address_help() -> str:
    from crm.addressing import TAGS

    return ("Blank: the customer's name and address. Otherwise one address line per line, "
            "with tags that are filled in and skipped when blank, e.g. "
            "\"[landlord_name] c/o [customer_name]\". Tags: "
            + ", ".join(f"[{tag}]" for tag in TAGS) + ".")


def _add_error(field, message: str) -> None:
    field.errors = [*field.errors, message]


def _lines_fit(form) -> bool:
    """Each line, and the invoice, within what an amount holds (the same rule as the
    session hook that refuses it in any other path), with the message next to the line."""
    total, ok, last = ZERO, True, None
    for entry in form.lines.entries:
        if form.lines.should_delete(entry):
            continue
        line = entry.form
        values = (line.quantity.data, line.unit_price.data, line.tax_rate.data or ZERO)
        if line.errors or not all(isinstance(v, Decimal) for v in values):
            continue  # already refused next to its field
        try:
            net, tax = line_amounts(*values)
        except ValueError as exc:
            _add_error(line.unit_price, str(exc))
            ok = False
            continue
        total, last = total + net + tax, line
    if last is not None and total > MONEY_MAX:
        _add_error(last.unit_price, f"The invoice would come to {total:,.2f}; an invoice "
                                    f"holds at most {MONEY_MAX:,}.")
        ok = False
    return ok


class InvoiceView(InvoicePdfMixin, MoneyView):
    model_class = Invoice
    guard_redacted = True
    details_template = "admin/crm/document.html"
    document_kind = "invoice"
    create_capability = edit_capability = delete_capability = "invoice"
    column_list = ["number", "customer", "status", "issue_date", "due_date", "total",
                   "outstanding"]
    column_details_list = column_list + ["subtotal", "tax_total", "contact", "work_address",
                                         "address_format", "notes", "created_at",
                                         "updated_at"]
    column_export_list = column_list + ["subtotal", "tax_total"]
    form_columns = ["customer", "contact", "work_address", "issue_date", "due_date", "notes",
                    "address_format", "lines"]
    column_sortable_list = ["number", "status", "issue_date", "due_date", "total",
                            "outstanding"]
    column_searchable_list = ["number"]
    column_filters = [sqla_filters.FilterEqual(Invoice.status, "Status",
                                               options=choices(INVOICE_STATUSES)),
                      "issue_date", "due_date",
                      MoneyGreater(Invoice.outstanding, "Outstanding")]
    column_default_sort = ("issue_date", True)
    column_labels = {"address_format": "Address format", "work_address": "Work address"}
    column_formatters = {"customer": customer_link}
    column_formatters_export = {"customer": export_str("customer")}
    column_descriptions = {"due_date": "Blank: the customer's creditor days after the issue "
                                       "date (30 if none are set). Issuing the invoice keeps "
                                       "this gap from the day it is issued."}
    form_args = {"customer": {"validators": [InputRequired()]},
                 "issue_date": {"validators": [InputRequired(), SaneDate()]},
                 "due_date": {"validators": [Optional(), SaneDate()]},
                 "address_format": {"validators": [Optional()]}}
    form_ajax_refs = {"customer": CustomerLookup("customer"),
                      "contact": {"fields": ["surname", "first_name"], "page_size": 10},
                      "work_address": {"fields": ["postcode", "address_line_1"],
                                       "page_size": 10}}
    inline_models = [LineInline(InvoiceLine)]
    field_order_rules = (("due_date", "issue_date",
                          "The due date cannot be before the issue date."),)
    action_capabilities = {"issue": "invoice", "delete": "invoice"}

    eager = (Invoice.lines,)

    # --- the draft form -------------------------------------------------------------------
    def create_form(self, obj=None):
        form = super().create_form(obj)
        form.address_format.description = _address_help()
        return form

    def edit_form(self, obj=None):
        form = super().edit_form(obj)
        form.address_format.description = _address_help()
        return form

    def validate_form(self, form) -> bool:
        ok = super().validate_form(form)
        if not hasattr(form, "address_format"):
            return ok  # the delete form
        from crm.actions.invoice import draft_problems

        problems, stored = draft_problems(
            customer=form.customer.data, contact=form.contact.data,
            work_address=form.work_address.data, address_format=form.address_format.data,
        )
        for field, message in problems.items():
            _add_error(getattr(form, field), message)
        if "address_format" not in problems:
            form.address_format.data = stored
        return ok and not problems and _lines_fit(form)

    def on_model_change(self, form, model, is_created):
        from crm.actions.invoice import default_due_date

        if model.due_date is None and model.issue_date is not None:
            model.due_date = default_due_date(model.customer, model.issue_date)
        super().on_model_change(form, model, is_created)

    @expose("/edit/", methods=("GET", "POST"))
    @require("invoice")
    def edit_view(self):
        """Only drafts are edited; an issued or void invoice's edit page (or a forged POST to
        it) goes to its details with the reason, changing nothing."""
        key = request.args.get("id", type=record_id)
        invoice = db.session.get(Invoice, key) if key else None
        if invoice is not None and invoice.status != "draft":
            flash(locked_message(invoice), "error")
            return redirect(self.get_url(".details_view", id=invoice.id))
        return super().edit_view()

    # --- issue and void -------------------------------------------------------------------
    @expose("/issue/", methods=("POST",))
    @require("invoice")
    def issue_view(self):
        from crm.actions.invoice import issue_invoice

        key = request.form.get("id", type=record_id)
        if key is None:
            abort(404)
        result, error = run_action(issue_invoice, invoice_id=key)
        flash(error or result.message, "error" if error else "success")
        return redirect(self.get_url(".details_view", id=key))

    @expose("/void/", methods=("GET", "POST"))
    @require("invoice")
    def void_view(self):
        """GET (or the details page's POST) asks for the reason; POST with ``confirm``
        voids."""
        from crm.actions.invoice import void_invoice

        source = request.form if request.method == "POST" else request.args
        key = source.get("id", type=record_id)
        invoice = db.session.get(Invoice, key) if key else None
        if invoice is None:
            abort(404)
        reason = (source.get("reason") or "").strip()
        error = None
        if request.method == "POST" and source.get("confirm") == "1":
            result, error = run_action(void_invoice, invoice_id=key, reason=reason)
            if not error:
                flash(result.message, "success")
                return redirect(self.get_url(".details_view", id=key))
            invoice = db.session.get(Invoice, key)
        return self.render("admin/crm/void.html", kind="invoice", document=invoice,
                           reason=reason, error=error), (400 if error else 200)

    @action("issue", "Issue selected drafts",
            "Issue the selected drafts? Each gets the next invoice number and becomes owed.")
    def action_issue(self, ids):
        from crm.actions.invoice import issue_invoices

        result, error = run_action(issue_invoices, selection=record_ids(ids))
        if error:
            flash(error, "error")
            return redirect(self.get_url(".index_view"))
        return self.render("admin/crm/results.html", result=result, changed_word="issued",
                           title="Issue selected drafts", list_url=self.get_url(".index_view"))
