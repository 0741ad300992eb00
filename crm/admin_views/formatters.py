"""Cell formatters shared by the views: amounts, a related record as plain text in exports,
and the customer of a row as a link to that customer in the same role's panel.

Every amount a list or a details page shows goes through ``money_format``, which reads it
with ``crm.formatting`` ("£1,234.50") and marks it up so that the stylesheet
(``static/css/lists.css``) right-aligns it, greys a zero and reddens an overdue amount. The
quantities and tax rates of document lines are decimals too, and read as such."""


from flask import url_for
from markupsafe import Markup
from sqlalchemy import Numeric

from crm.formatting import money, number, percent
from crm.formatting import phone as phone_display  # noqa: F401  (the list's name for it)

# Decimal columns that are not amounts: how each reads instead.
NOT_MONEY = {"quantity": number, "tax_rate": percent}


def money_cell(value, *, alert: bool = False) -> Markup:
    """An amount as a list cell: "£1,234.50" in a span the stylesheet aligns; a zero greyed,
    and, with ``alert``, anything above zero in red (an overdue amount)."""
    if value is None:
        return Markup("")
    kind = "money"
    if value == 0:
        kind += " zero"
    elif value < 0:
        kind += " negative"
    elif alert:
        kind += " alert"
    return Markup('<span class="{}">{}</span>').format(kind, money(value))


def money_format(_view, value, name=None):
    if name in NOT_MONEY:
        return NOT_MONEY[name](value)
    return money_cell(value)


def is_money_column(view, name: str) -> bool:
    """Whether list column ``name`` of ``view`` holds an amount (a Decimal model column that
    is not a quantity or a rate): its header is right-aligned like its cells."""
    if name in NOT_MONEY:
        return False
    prop = getattr(getattr(view.model, name, None), "property", None)
    return any(isinstance(getattr(column, "type", None), Numeric) and column.type.asdecimal
               for column in getattr(prop, "columns", ()))


def export_str(attr: str):
    """Export formatter: the related record ``attr`` as text (blank when there is none)."""
    return lambda v, c, m, n: str(getattr(m, attr) or "")


def customer_link(view, context, model, name):
    customer = getattr(model, "customer", None)
    if customer is None:
        return ""
    return Markup('<a href="{}">{}</a>').format(
        url_for(f"customer_{view.role}.details_view", id=customer.id), str(customer)
    )
