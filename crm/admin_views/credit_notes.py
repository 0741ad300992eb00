"""Credit notes (owner and admin only)."""

from flask_admin.contrib.sqla import filters as sqla_filters
from wtforms.validators import InputRequired, ValidationError

from crm.admin_views.customers import CustomerLookup, customer_link
from crm.admin_views.forms import SaneDate, choices
from crm.admin_views.money import LineInline, MoneyView
from crm.admin_views.work import _export_str
from crm.extensions import db
from crm.models import CreditNote, CreditNoteLine
from crm.models.finance import (
    BREAKDOWN_STYLES,
    CREDIT_NOTE_STATUSES,
)
from crm.models.sequence import next_number


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
