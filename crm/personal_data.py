"""The personal-data registry: what redaction (the right to erasure) does with every text
column of the schema.

Each model declares, next to its columns, a ``__personal_data__`` dict naming every
String/Text/JSON column it maps and one decision for it:

- ``KEEP``: not personal data of the customer (a reference, status, code, number, hash, or
  staff data that customer erasure does not touch);
- ``ERASE``: set NULL; ``erase("…")`` sets a neutral value instead where the column is NOT NULL;
- ``placeholder("Redacted customer {reference}")``: replaced by a text naming the record
  itself (``{column}`` is filled in from the same row), where something must still read
  sensibly, e.g. the name on kept invoices;
- ``DERIVED``: rebuilt from the other columns after they are wiped (the search text).

The declaration sits on the model so that whoever adds a column decides about it there;
``tests/unit/test_personal_data.py`` fails naming any text column that has no decision.
``crm.actions.redact`` turns the decisions into set-based UPDATEs (``wipe_values``).
"""

import string
from dataclasses import dataclass

from sqlalchemy import JSON, String, Table, cast, literal, null
from sqlalchemy.sql.elements import ColumnElement

KEEP_KIND, ERASE_KIND, PLACEHOLDER_KIND, DERIVED_KIND = "keep", "erase", "placeholder", "derived"
ATTRIBUTE = "__personal_data__"


@dataclass(frozen=True)
class Decision:
    """One column's fate on redaction. ``value``: the neutral value of an erased NOT NULL
    column, or the template of a placeholder."""

    kind: str
    value: str | None = None

    def __str__(self) -> str:
        return self.kind if self.value is None else f"{self.kind}({self.value!r})"


KEEP = Decision(KEEP_KIND)
ERASE = Decision(ERASE_KIND)
DERIVED = Decision(DERIVED_KIND)


def erase(neutral: str) -> Decision:
    """Erase a NOT NULL column by writing ``neutral`` (e.g. "Redacted", "") instead of NULL."""
    return Decision(ERASE_KIND, neutral)


def placeholder(template: str) -> Decision:
    """Replace the value by ``template``, whose ``{column}`` fields come from the same row."""
    return Decision(PLACEHOLDER_KIND, template)


def address_decisions() -> dict[str, Decision]:
    """The shared address columns (``AddressFields``): the country alone identifies nobody;
    the NOT NULL line 1 and postcode get neutral values."""
    return {
        "address_line_1": erase("Redacted"),
        "address_line_2": ERASE,
        "town": ERASE,
        "county": ERASE,
        "postcode": erase(""),
        "country": KEEP,
    }


def is_text(column) -> bool:
    """The columns that can hold what a person typed: strings, texts and JSON documents."""
    return isinstance(column.type, String | JSON)


def registry(mappers) -> dict[type, dict[str, Decision]]:
    """Each model among ``mappers`` (e.g. ``Base.registry.mappers``) and its declared
    decisions (model -> column -> decision). The models import this module to declare their
    decisions, so it is handed the mappers rather than reaching for them."""
    found = {}
    for mapper in mappers:
        model = mapper.class_
        found[model] = dict(model.__dict__.get(ATTRIBUTE, {}))
    return found


def decisions_by_table(mappers) -> dict[str, dict[str, Decision]]:
    return {model.__table__.name: decisions for model, decisions in registry(mappers).items()}


def template_columns(template: str) -> list[str]:
    return [field for _, field, _, _ in string.Formatter().parse(template) if field]


def _placeholder_sql(table: Table, template: str) -> ColumnElement:
    expression = None
    for text, field, _, _ in string.Formatter().parse(template):
        parts = []
        if text:
            parts.append(literal(text, String))
        if field:
            column = table.c[field]
            parts.append(column if isinstance(column.type, String) else cast(column, String))
        for part in parts:
            expression = part if expression is None else expression + part
    return expression if expression is not None else literal("", String)


def wipe_values(model) -> dict[str, ColumnElement]:
    """The SET clause that erases (and placeholders) the personal columns of ``model``'s
    rows. Placeholders read the row's other columns as they were before the UPDATE (SQL
    evaluates every SET expression against the old row), so ``{reference}`` stays right."""
    table: Table = model.__table__
    values: dict[str, ColumnElement] = {}
    for name, decision in model.__dict__.get(ATTRIBUTE, {}).items():
        if decision.kind == ERASE_KIND:
            neutral = decision.value
            values[name] = null() if neutral is None else literal(neutral, String)
        elif decision.kind == PLACEHOLDER_KIND:
            values[name] = _placeholder_sql(table, decision.value)
    return values


def personal_columns(model) -> list[str]:
    """The columns of ``model`` that redaction changes (erased, placeholdered or derived)."""
    return [
        name
        for name, decision in model.__dict__.get(ATTRIBUTE, {}).items()
        if decision.kind != KEEP_KIND
    ]
