"""List filters for money columns: values parsed as Decimal (never float), bound as numbers
(PostgreSQL refuses numeric > varchar), and a typo is a message, not an error page; and for
integer columns, values within what the column holds (a forged 30-digit id overflowed
the database); and for date columns, a day typed as every page shows it ("4 Dec 2026"; ISO
still read) in a plain text box, not a date picker showing YYYY-MM-DD."""

from datetime import date
from decimal import Decimal

from flask_admin.contrib.sqla import filters as sqla_filters
from flask_admin.model import filters as base_filters
from sqlalchemy import literal

from crm.formatting import parse_day
from crm.validation import money, sane_date

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

    @base_filters.convert("date")
    def conv_date(self, column, name, **kwargs):
        return [f(column, name, **kwargs) for f in DAY_FILTERS]


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


def _typed_day(text) -> date:
    """A day as typed in a filter's box; ValueError for anything else (or out of range)."""
    day = parse_day(str(text)[:40])
    sane_date(day)
    return day


class _TypedDay:
    """Flask-Admin's date filter, typed in a text box ("4 Dec 2026"); what is not a date is
    ignored, as Flask-Admin ignores any filter value that does not validate."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.data_type = None  # a text box: the date picker shows (and sends) YYYY-MM-DD

    def clean(self, value) -> date:
        return _typed_day(value)

    def validate(self, value) -> bool:
        try:
            self.clean(value)
        except (ValueError, TypeError, OverflowError):
            return False
        return True


class DayEqual(_TypedDay, sqla_filters.DateEqualFilter):
    pass


class DayNotEqual(_TypedDay, sqla_filters.DateNotEqualFilter):
    pass


class DayGreater(_TypedDay, sqla_filters.DateGreaterFilter):
    pass


class DaySmaller(_TypedDay, sqla_filters.DateSmallerFilter):
    pass


class DayBetween(_TypedDay, sqla_filters.DateBetweenFilter):
    """"1 Dec 2026 to 31 Dec 2026", the earlier first."""

    def clean(self, value) -> list[date]:
        start, end = (_typed_day(part) for part in str(value).split(" to "))
        if start > end:
            raise ValueError("the earlier day first")
        return [start, end]


class DayNotBetween(DayBetween, sqla_filters.DateNotBetweenFilter):
    pass


DAY_FILTERS = (DayEqual, DayNotEqual, DayGreater, DaySmaller, DayBetween, DayNotBetween,
               sqla_filters.FilterEmpty)


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
