"""Money menu (owner and admin only): invoices with lines, credit notes with lines,
payments and allocations. Totals and balances are computed by crm.models.events/crm.ledger."""

from flask_admin.contrib.sqla import filters as sqla_filters
from flask_admin.model.form import InlineFormAdmin
from wtforms.validators import InputRequired, Optional, ValidationError

from crm.admin_views.base import FINANCE, CrmModelView
from crm.admin_views.customers import CustomerLookup, customer_link
from crm.admin_views.filters import MoneyGreater
from crm.admin_views.forms import Money, SaneDate, choices
from crm.admin_views.work import _export_str
from crm.extensions import db
from crm.models import Allocation, CreditNote, CreditNoteLine, Invoice, InvoiceLine, Payment
from crm.models.finance import (
    BREAKDOWN_STYLES,
    CREDIT_NOTE_STATUSES,
    INVOICE_STATUSES,
    LINE_CATEGORIES,
    PAYMENT_METHODS,
)
from crm.models.sequence import next_number

LINE_ARGS = {
    "description": {"validators": [InputRequired()]},
    "quantity": {"validators": [InputRequired(), Money()]},
    "unit_price": {"validators": [InputRequired(), Money(allow_zero=True)]},
    "tax_rate": {"validators": [Optional(), Money(allow_zero=True)]},
}


class LineInline(InlineFormAdmin):
    form_columns = ("id", "position", "category", "description", "quantity", "unit_price",
                    "tax_rate")
    form_choices = {"category": choices(LINE_CATEGORIES)}
    form_args = LINE_ARGS


class MoneyView(CrmModelView):
    roles = FINANCE


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


class CreditNoteView(MoneyView):
    model_class = CreditNote
    column_list = ["number", "customer", "invoice", "status", "issue_date", "total"]
    column_details_list = column_list + ["description", "breakdown_style", "subtotal",
                                         "tax_total", "lines", "created_at"]
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
    column_formatters_export = {"customer": _export_str("customer"),
                                "invoice": _export_str("invoice")}
    form_choices = {"status": choices(CREDIT_NOTE_STATUSES),
                    "breakdown_style": choices(BREAKDOWN_STYLES)}
    form_args = {"customer": {"validators": [InputRequired()]},
                 "issue_date": {"validators": [InputRequired(), SaneDate()]}}
    form_ajax_refs = {"customer": CustomerLookup("customer"), "invoice": {"fields": ["number"],
                                                             "page_size": 10}}
    inline_models = [LineInline(CreditNoteLine)]

    eager = (CreditNote.lines,)

    def on_model_change(self, form, model, is_created):
        if model.invoice is not None and model.invoice.customer_id != model.customer.id:
            raise ValidationError("The invoice belongs to another customer.")
        if not model.number:
            model.number = next_number(db.session, "credit_note")
        super().on_model_change(form, model, is_created)


class PaymentView(MoneyView):
    model_class = Payment
    column_list = ["received_on", "customer", "method", "reference", "amount"]
    column_details_list = column_list + ["created_at", "updated_at"]
    column_export_list = column_list
    form_columns = ["customer", "received_on", "method", "reference", "amount"]
    column_sortable_list = ["received_on", "method", "amount"]
    column_searchable_list = ["reference"]
    column_filters = [sqla_filters.FilterEqual(Payment.method, "Method",
                                               options=choices(PAYMENT_METHODS)),
                      "received_on", "amount"]
    column_default_sort = ("received_on", True)
    column_formatters = {"customer": customer_link}
    column_formatters_export = {"customer": _export_str("customer")}
    form_choices = {"method": choices(PAYMENT_METHODS)}
    form_args = {"customer": {"validators": [InputRequired()]},
                 "received_on": {"validators": [InputRequired(), SaneDate()]},
                 "amount": {"validators": [InputRequired(), Money()]}}
    form_ajax_refs = {"customer": CustomerLookup("customer")}


class AllocationView(MoneyView):
    model_class = Allocation
    column_list = ["invoice", "payment", "credit_note", "amount", "created_at"]
    column_details_list = column_list + ["updated_at"]
    column_export_list = column_list
    form_columns = ["invoice", "payment", "credit_note", "amount"]
    column_sortable_list = ["amount", "created_at"]
    column_searchable_list = []
    column_filters = ["amount", "created_at"]
    column_formatters_export = {"invoice": _export_str("invoice"),
                                "payment": _export_str("payment"),
                                "credit_note": _export_str("credit_note")}
    form_args = {"invoice": {"validators": [InputRequired()]},
                 "amount": {"validators": [InputRequired(), Money()]}}
    form_ajax_refs = {"invoice": {"fields": ["number"], "page_size": 10},
                      "payment": {"fields": ["reference"], "page_size": 10},
                      "credit_note": {"fields": ["number"], "page_size": 10}}

    def on_model_change(self, form, model, is_created):
        from crm.ledger import check_allocation

        try:
            with db.session.no_autoflush:  # the new row must not count against itself
                check_allocation(db.session, model)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        super().on_model_change(form, model, is_created)
