"""The invoice editor's form, as the browser posts it and as the page shows it.

The lines are a grid: one row per line, ``lines-<n>-<field>`` as Flask-Admin's inline form
names them. What is posted is tidied before the form reads it (``tidy_lines``): rows left
blank are ignored (the page offers a few empty rows, and works without JavaScript), a new
row marked for removal is dropped, an existing line emptied of its description and price
is removed, and every kept line gets its position (1, 2, 3...) from the order it is shown in, so lines
keep the order the user sees (the posted positions are not trusted).

The totals the page shows are a preview of the server's own arithmetic
(``crm.models.finance.LineFields.compute``): the stored totals are always recomputed on save
by the session hooks, whatever the page or its script said.
"""

import re
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import or_, select
from werkzeug.datastructures import MultiDict

from crm import validation
from crm.formatting import percent
from crm.models import Contact, Customer, WorkAddress
from crm.models.base import ZERO
from crm.models.finance import round_money

# The rates offered first in a line's tax select (percent); any other rate a line already
# has is offered too.
TAX_RATES = (Decimal("20"), Decimal("5"), Decimal("0"))
MIN_ROWS = 3  # rows the form shows at least, so that it works without JavaScript
MAX_LINES = 200  # lines an invoice may have
PARTY_LIMIT = 200  # contacts or work addresses a picker lists
LINE_FIELD = re.compile(r"^lines-(\d{1,6})-([a-z_]{1,20})$")
DELETE_FIELD = re.compile(r"^del-lines-(\d{1,6})$")


def tidy_lines(formdata) -> tuple[MultiDict, int]:
    """The posted form with its line rows tidied (see the module docstring), and how many
    lines it keeps. Other fields pass through unchanged."""
    rows: dict[int, dict[str, str]] = {}
    removed: set[int] = set()
    kept_data = MultiDict()
    for key, value in formdata.items(multi=True):
        if match := LINE_FIELD.match(key):
            rows.setdefault(int(match[1]), {})[match[2]] = value
        elif match := DELETE_FIELD.match(key):
            removed.add(int(match[1]))
        else:
            kept_data.add(key, value)
    position = 0  # the kept lines are numbered 1, 2, 3... in the order shown
    for index in sorted(rows):
        row = rows[index]
        existing = bool((row.get("id") or "").strip())
        blank = not (row.get("description") or "").strip() and \
            not (row.get("unit_price") or "").strip()
        if not existing and (blank or index in removed):
            continue
        if existing and (blank or index in removed):
            kept_data.add(f"del-lines-{index}", "y")
        else:
            position += 1
            row["position"] = str(position)
        for name, value in row.items():
            kept_data.add(f"lines-{index}-{name}", value)
    return kept_data, position


@dataclass(frozen=True)
class Totals:
    subtotal: Decimal
    tax_total: Decimal
    total: Decimal


def line_net(entry) -> Decimal | None:
    """A grid row's net amount as the server would compute it, or None until its quantity
    and price read as numbers."""
    form = entry.form
    try:
        quantity = validation.quantity(_raw(form.quantity))
        price = validation.money(_raw(form.unit_price), allow_zero=True)
    except (ValueError, TypeError):
        return None
    return round_money(quantity * price)


def preview_totals(form) -> Totals:
    """The totals of the rows that read as numbers (the page's preview before its script
    runs; the stored figures come from the session hooks)."""
    subtotal = tax = ZERO
    for entry in form.lines.entries:
        if form.lines.should_delete(entry):
            continue
        net = line_net(entry)
        if net is None:
            continue
        try:
            rate = validation.tax_rate(_raw(entry.form.tax_rate))
        except (ValueError, TypeError):
            rate = ZERO
        subtotal += net
        tax += round_money(net * rate / 100)
    return Totals(subtotal, tax, subtotal + tax)


GRID_FIELDS = ("description", "category", "quantity", "unit_price", "tax_rate")


def grid_row(entry) -> dict:
    """A grid row as the page shows it: what was typed (or is stored), the net so far and
    the errors by field."""
    form = entry.form
    stored_quantity = form.quantity.data if not form.quantity.raw_data else None
    return {
        "index": int(entry.id.rsplit("-", 1)[-1]),
        "id": form.id.data or "",
        "description": _raw(form.description),
        "category": form.category.data or "labour",
        "quantity": (_plain(stored_quantity) if isinstance(stored_quantity, Decimal)
                     else _raw(form.quantity)),
        "unit_price": _raw(form.unit_price),
        "tax_rate": _raw(form.tax_rate),
        "net": line_net(entry),
        "errors": {name: [e for e in form[name].errors if isinstance(e, str)]
                   for name in GRID_FIELDS},
    }


def blank_row(index, tax_rate: str) -> dict:
    return {"index": index, "id": "", "description": "", "category": "labour",
            "quantity": "1", "unit_price": "", "tax_rate": tax_rate, "net": None,
            "errors": {}}


def _raw(field) -> str:
    if field.raw_data:
        return field.raw_data[0]
    return "" if field.data is None else str(field.data)


def rate_choices(current: str) -> list[tuple[str, str]]:
    """(value, label) of a line's tax select: the usual rates, and the line's own if it is
    another (a rate typed elsewhere, or an old one)."""
    values = [_plain(rate) for rate in TAX_RATES]
    try:
        own = validation.tax_rate(current) if str(current or "").strip() else None
    except (ValueError, TypeError):
        own = None
    if own is not None and own not in TAX_RATES:
        values.append(_plain(own))
    return [(value, percent(Decimal(value))) for value in values]


def _plain(rate: Decimal) -> str:
    """20.00 -> "20", 17.50 -> "17.5": the value a select posts."""
    return f"{rate.normalize():f}"


def same_rate(a, b: str) -> bool:
    try:
        return Decimal(str(a).strip() or "0") == Decimal(b)
    except ArithmeticError:
        return False


# --- the customer's contacts and work addresses ---------------------------------------------

def contacts_of(session, customer: Customer | None) -> list[Contact]:
    if customer is None or getattr(customer, "id", None) is None:
        return []
    return list(session.scalars(
        select(Contact).where(Contact.customer_id == customer.id)
        .order_by(Contact.is_primary.desc(), Contact.surname, Contact.id).limit(PARTY_LIMIT)))


def work_addresses_of(session, customer: Customer | None) -> list[WorkAddress]:
    """The customer's own work addresses and those it is the landlord of (the only ones a
    draft accepts: ``crm.actions.invoice.draft_problems``)."""
    if customer is None or getattr(customer, "id", None) is None:
        return []
    return list(session.scalars(
        select(WorkAddress)
        .where(or_(WorkAddress.customer_id == customer.id,
                   WorkAddress.landlord_id == customer.id))
        .order_by(WorkAddress.address_line_1, WorkAddress.id).limit(PARTY_LIMIT)))


def contact_label(contact: Contact) -> str:
    label = str(contact)
    if contact.position:
        label += f", {contact.position}"
    return label + (" (primary)" if contact.is_primary else "")


def address_label(address: WorkAddress, customer: Customer) -> str:
    label = str(address)
    return label + (" (as landlord)" if address.customer_id != customer.id else "")
