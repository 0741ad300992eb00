"""Invoices (owner and admin only)."""

from flask_admin.contrib.sqla import filters as sqla_filters
from wtforms.validators import InputRequired

from crm.admin_views.customers import CustomerLookup, customer_link
from crm.admin_views.filters import MoneyGreater
from crm.admin_views.forms import SaneDate, choices
from crm.admin_views.money import LineInline, MoneyView
from crm.admin_views.work import _export_str
from crm.extensions import db
from crm.models import Invoice, InvoiceLine
from crm.models.finance import (
    INVOICE_STATUSES,
)
from crm.models.sequence import next_number


class InvoiceView(MoneyView):
    model_class = Invoice
    column_list = ["number", "customer", "status", "issue_date", "due_date", "total",
                   "outstanding"]
    column_details_list = column_list + ["subtotal", "tax_total", "notes", "lines",
                                         "created_at", "updated_at"]
    column_export_list = column_list + ["subtotal", "tax_total"]
    form_columns = ["customer", "status", "issue_date", "due_date", "notes", "lines"]
    column_sortable_list = ["number", "status", "issue_date", "due_date", "total",
                            "outstanding"]
    column_searchable_list = ["number"]
    column_filters = [sqla_filters.FilterEqual(Invoice.status, "Status",
                                               options=choices(INVOICE_STATUSES)),
                      "issue_date", "due_date",
                      MoneyGreater(Invoice.outstanding, "Outstanding")]
    column_default_sort = ("issue_date", True)
    column_formatters = {"customer": customer_link}
    column_formatters_export = {"customer": _export_str("customer")}
    form_choices = {"status": choices(INVOICE_STATUSES)}
    form_args = {"customer": {"validators": [InputRequired()]},
                 "issue_date": {"validators": [InputRequired(), SaneDate()]},
                 "due_date": {"validators": [InputRequired(), SaneDate()]}}
    form_ajax_refs = {"customer": CustomerLookup("customer")}
    inline_models = [LineInline(InvoiceLine)]
    field_order_rules = (("due_date", "issue_date", "The due date cannot be before the issue date."),)

    eager = (Invoice.lines,)

    def on_model_change(self, form, model, is_created):
        if model.status != "draft" and not model.number:
            model.number = next_number(db.session, "invoice")
        super().on_model_change(form, model, is_created)
