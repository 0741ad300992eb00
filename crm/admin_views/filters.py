"""List filters for money columns: values parsed as Decimal (never float), bound as numbers
(PostgreSQL refuses numeric > varchar), and a typo is a message, not an error page; and for
integer columns, values within what the column holds (a forged 30-digit id overflowed
the database)."""

from decimal import Decimal

from flask_admin.contrib.sqla import filters as sqla_filters
from flask_admin.model import filters as base_filters
from sqlalchemy import literal

from crm.validation import money

INT_MAX = 2**31 - 1  # PostgreSQL's integer, the type of every integer column here


def _whole_number(text: str) -> int:
    """A whole number in ASCII digits within an integer column; ValueError otherwise."""
    text = text.strip()
    digits = text.removeprefix("-")
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 10:
        raise ValueError(f"not a whole number: {text[:20]!r}")
    number = int(text)
    if abs(number) > INT_MAX:
        raise ValueError("out of range")
    return number


class BoundedInt(base_filters.BaseFilter):
    def clean(self, value) -> int:
        return _whole_number(value)


class BoundedIntList(base_filters.BaseFilter):
    def clean(self, value) -> list[int]:
        return [_whole_number(v) for v in value.split(",") if v.strip()]


class BaseMoneyFilter(base_filters.BaseFilter):
    def validate(self, value) -> bool:
        try:
            money(value, allow_zero=True, allow_negative=True)
        except ValueError:
            return False
        return True

    def clean(self, value) -> Decimal:
        return money(value, allow_zero=True, allow_negative=True)


class MoneyEqual(sqla_filters.FilterEqual, BaseMoneyFilter):
    pass


class MoneyNotEqual(sqla_filters.FilterNotEqual, BaseMoneyFilter):
    pass


class MoneyGreater(sqla_filters.FilterGreater, BaseMoneyFilter):
    pass


class MoneySmaller(sqla_filters.FilterSmaller, BaseMoneyFilter):
    pass


class FilterConverter(sqla_filters.FilterConverter):
    """Numeric columns named as strings in ``column_filters`` get the money filters."""

    money_filters = (MoneyEqual, MoneyNotEqual, MoneyGreater, MoneySmaller,
                     sqla_filters.FilterEmpty)

    @base_filters.convert("float", "real", "decimal", "numeric", "double_precision", "double")
    def conv_float(self, column, name, **kwargs):
        return [f(column, name, **kwargs) for f in self.money_filters]

    @base_filters.convert("integer", "smallinteger", "biginteger")
    def conv_int(self, column, name, **kwargs):
        return [f(column, name, **kwargs) for f in INT_FILTERS]


class IntEqual(sqla_filters.FilterEqual, BoundedInt):
    pass


class IntNotEqual(sqla_filters.FilterNotEqual, BoundedInt):
    pass


class IntGreater(sqla_filters.FilterGreater, BoundedInt):
    pass


class IntSmaller(sqla_filters.FilterSmaller, BoundedInt):
    pass


class IntInList(BoundedIntList, sqla_filters.FilterInList):
    pass


class IntNotInList(BoundedIntList, sqla_filters.FilterNotInList):
    pass


INT_FILTERS = (IntEqual, IntNotEqual, IntGreater, IntSmaller, sqla_filters.FilterEmpty,
               IntInList, IntNotInList)


class ChoiceEqual(sqla_filters.FilterEqual):
    """Equal to one of the filter's own options (a status), written into the SQL as a
    literal: SQLite can then use a partial index on that value (``WHERE status = 'draft'``),
    which a bound parameter never proves. Only a listed option gets this far (``validate``),
    so nothing typed reaches the SQL text."""

    def validate(self, value) -> bool:
        return value in {key for key, _ in (self.options or ())}

    def apply(self, query, value, alias=None):
        column = self.get_column(alias)
        return query.filter(column == literal(value, literal_execute=True))
