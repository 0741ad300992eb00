"""Money menu (the ``see_money`` capability: owners and admins): invoices with lines, credit
notes with lines, payments and allocations. Totals and balances are kept by the session hooks
and the ledger (``crm.session_hooks``, ``crm.ledger``).

This module holds what the money views share; each view lives in its own module
(invoices, credit_notes, payments)."""

from flask_admin.model.form import InlineFormAdmin
from wtforms.validators import InputRequired, NumberRange, Optional

from crm.admin_views.forms import Money, Quantity, TaxRate, choices
from crm.admin_views.spec import CrmModelView
from crm.models.finance import LINE_CATEGORIES

MAX_POSITION = 10_000

LINE_ARGS = {
    "description": {"validators": [InputRequired()]},
    "quantity": {"validators": [InputRequired(), Quantity()]},
    "unit_price": {"validators": [InputRequired(), Money(allow_zero=True)]},
    "tax_rate": {"validators": [TaxRate()]},
    "position": {"validators": [Optional(), NumberRange(min=0, max=MAX_POSITION)]},
}


class LineInline(InlineFormAdmin):
    form_columns = ("id", "position", "category", "description", "quantity", "unit_price",
                    "tax_rate")
    form_choices = {"category": choices(LINE_CATEGORIES)}
    form_args = LINE_ARGS


class MoneyView(CrmModelView):
    capability = "see_money"


