"""Cell formatters shared by the views: amounts, a related record as plain text in exports,
and the customer of a row as a link to that customer in the same role's panel."""

from flask import url_for
from markupsafe import Markup


def money_format(_view, value, _name=None) -> str:
    return f"{value:,.2f}"


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
