"""WTForms validators wrapping crm.validation, so every error shows next to its field; and
``DayField``, the one way a person types a date into a form."""

from datetime import date, datetime

from flask import current_app
from flask_admin.contrib.sqla.form import AdminModelConverter
from flask_admin.form import BaseForm
from flask_admin.model.form import converts
from wtforms import Field
from wtforms.validators import ValidationError
from wtforms.widgets import TextInput

from crm import validation
from crm.formatting import (
    DATE_EXAMPLE,
    DATE_HINT,
    MOMENT_EXAMPLE,
    MOMENT_HINT,
    day,
    parse_day,
    parse_moment,
    wall,
)

DAY_INPUT = {"inputmode": "text", "autocomplete": "off", "placeholder": f"e.g. {DATE_EXAMPLE}"}


class DayField(Field):
    """A date typed as every page shows it ("4 Dec 2026"; ISO and the locale's numbers are
    read too), in a plain text box: shown through ``day``, read through ``parse_day``. What
    is not a date is kept as typed, with "Type a date like 4 Dec 2026." next to it."""

    widget = TextInput()
    kind = date  # what the field holds, shown by ``show`` and read by ``parse``
    show = staticmethod(day)
    parse = staticmethod(parse_day)
    hint = DATE_HINT
    example = DATE_EXAMPLE

    def __init__(self, label=None, validators=None, render_kw=None, **kwargs):
        kwargs.pop("format", None)  # a DateField's; the style here is the one style
        kwargs.pop("widget", None)  # no date picker: it shows another style
        typed = {**DAY_INPUT, "placeholder": f"e.g. {self.example}"}
        super().__init__(label, validators, render_kw={**typed, **(render_kw or {})}, **kwargs)

    def _value(self) -> str:
        if self.raw_data:
            return self.raw_data[0]
        return self.show(self.data) if isinstance(self.data, self.kind) else ""

    def process_formdata(self, valuelist):
        text = (valuelist[0] if valuelist else "") or ""
        self.data = None
        if not text.strip():
            return
        try:
            self.data = self.parse(text[:40])
        except ValueError:
            raise ValueError(self.hint) from None


class MomentField(DayField):
    """A date and time typed as pages show them ("4 Dec 2026, 20:00"; ISO read too), in a
    plain text box, as the clock reads it (a booking's start: no time-zone conversion)."""

    kind = datetime
    show = staticmethod(wall)
    parse = staticmethod(parse_moment)
    hint = MOMENT_HINT
    example = MOMENT_EXAMPLE


class CrmModelConverter(AdminModelConverter):
    """Flask-Admin's converter, with a date column typed into a ``DayField`` and a date and
    time into a ``MomentField`` (no picker: each shows another style)."""

    @converts("Date")
    def convert_date(self, field_args, **extra):
        return DayField(**field_args)

    @converts("DateTime")
    def convert_datetime(self, field_args, **extra):
        return MomentField(**field_args)


class Normalized:
    """Run a crm.validation normalizer on the field; store its result or show its error."""

    def __init__(self, normalizer, **kwargs):
        self.normalizer = normalizer
        self.kwargs = kwargs

    def normalize(self, value):
        return self.normalizer(value, **self.kwargs)

    def __call__(self, form, field):
        try:
            field.data = self.normalize(field.data)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class Email(Normalized):
    def __init__(self):
        super().__init__(validation.normalize_email)


class Phone(Normalized):
    """E.164; numbers typed without a country code are read in CRM_DEFAULT_REGION."""

    def __init__(self):
        super().__init__(validation.normalize_phone)

    def normalize(self, value):
        return validation.normalize_phone(value, current_app.config["CRM_DEFAULT_REGION"])


class Postcode(Normalized):
    """Checked against the country given on the same form (else CRM_DEFAULT_REGION)."""

    def __init__(self):
        super().__init__(validation.normalize_postcode)

    def __call__(self, form, field):
        country = getattr(form, "country", None)
        code = (country.data if country is not None else None) or \
            current_app.config["CRM_DEFAULT_REGION"]
        try:
            field.data = validation.normalize_postcode(field.data, code)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class Typed(Normalized):
    """Checks what was typed, not what a DecimalField made of it (Decimal() reads "1e5",
    "1_000" and full-width digits)."""

    def __call__(self, form, field):
        raw = field.raw_data[0] if field.raw_data else field.data
        field.errors.clear()  # the DecimalField's own parse error: ours says it better
        try:
            field.data = self.normalize(raw)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class Quantity(Typed):
    def __init__(self):
        super().__init__(validation.quantity)


class TaxRate(Typed):
    """0 to 100 per cent; blank is 0."""

    def __init__(self):
        super().__init__(validation.tax_rate)


class Money:
    """Positive, at most two decimals; checks what was typed, not the parsed float."""

    def __init__(self, allow_zero: bool = False):
        self.allow_zero = allow_zero

    def __call__(self, form, field):
        raw = field.raw_data[0] if field.raw_data else field.data
        if raw in (None, ""):
            return
        field.errors.clear()  # the DecimalField's own parse error: ours says it better
        try:
            field.data = validation.money(raw, allow_zero=self.allow_zero)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class SaneDate:
    def __call__(self, form, field):
        try:
            validation.sane_date(field.data)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class NameRequiredForm(BaseForm):
    """A company needs its company name; anyone else needs a surname."""

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        kind = getattr(self, "customer_type", None)
        surname = getattr(self, "surname", None)
        company = getattr(self, "company_name", None)
        if kind is None or surname is None or company is None:
            return ok
        if kind.data == "company" and not (company.data or "").strip():
            company.errors = [*company.errors, "A company needs its company name."]
            return False
        if kind.data != "company" and not (surname.data or "").strip():
            surname.errors = [*surname.errors, "A surname is required (or choose type Company)."]
            return False
        return ok


class CustomerForm(NameRequiredForm):
    """A customer: a name (``NameRequiredForm``) and one way to reach them (an e-mail, a
    phone number or an address); the address is optional, but one begun needs its first
    line and postcode (``crm.validation.address_problems``). Each sentence goes next to its
    field, all at once."""

    def validate(self, extra_validators=None) -> bool:
        ok = super().validate(extra_validators)
        fields = {name: getattr(self, name, None) for name in validation.ADDRESS_PARTS}
        if any(field is None for field in fields.values()):
            return ok
        for name, message in validation.address_problems(
                {name: field.data for name, field in fields.items()}).items():
            fields[name].errors = [*fields[name].errors, message]
            ok = False
        email, phone = getattr(self, "email", None), getattr(self, "phone", None)
        if email is not None and phone is not None and validation.unreachable(
                email.data, phone.data, fields["address_line_1"].data):
            email.errors = [*email.errors, validation.NO_WAY_TO_REACH]
            ok = False
        return ok


def choices(values, labels: dict | None = None) -> list[tuple[str, str]]:
    labels = labels or {}
    return [(v, labels.get(v, v.replace("_", " ").capitalize())) for v in values]
