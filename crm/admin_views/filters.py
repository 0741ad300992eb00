"""List filters for money columns: values parsed as Decimal (never float), bound as numbers
(PostgreSQL refuses numeric > varchar), and a typo is a message, not an error page."""

from decimal import Decimal

from flask_admin.contrib.sqla import filters as sqla_filters
from flask_admin.model import filters as base_filters

from crm.validation import money


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
