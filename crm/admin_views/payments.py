"""Payments and allocations (owner and admin only)."""

from flask_admin.contrib.sqla import filters as sqla_filters
from wtforms.validators import InputRequired, ValidationError

from crm.admin_views.customers import CustomerLookup, customer_link
from crm.admin_views.forms import Money, SaneDate, choices
from crm.admin_views.money import MoneyView
from crm.admin_views.work import _export_str
from crm.extensions import db
from crm.models import Allocation, Payment
from crm.models.finance import (
    PAYMENT_METHODS,
)


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
