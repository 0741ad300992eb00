"""Normalizers shared by forms, models, the seed and the actions. Each raises ValueError
with a sentence a person can read."""

from datetime import date
from decimal import Decimal, InvalidOperation

import phonenumbers
from email_validator import EmailNotValidError, validate_email

MONEY_MAX = Decimal("9999999999.99")


def normalize_email(value: str | None) -> str | None:
    """Syntax-check an address and return it in the form it is stored and matched in."""
    if value is None or not value.strip():
        return None
    try:
        info = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"Not a valid e-mail address: {exc}") from None
    return info.normalized.lower()


def normalize_phone(value: str | None, region: str = "GB") -> str | None:
    """Return the number in E.164 (+447700900123)."""
    if value is None or not value.strip():
        return None
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        raise ValueError("Not a phone number: use digits, with the country code if abroad.") from None
    if not phonenumbers.is_possible_number(number) or not phonenumbers.is_valid_number(number):
        raise ValueError("Not a valid phone number for that country.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_postcode(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    return " ".join(value.upper().split())


def money(value, *, allow_zero: bool = False, allow_negative: bool = False) -> Decimal:
    """A positive amount with at most two decimals."""
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ValueError("Enter an amount such as 120.50.") from None
    if not amount.is_finite():
        raise ValueError("Enter an amount such as 120.50.")
    if amount.as_tuple().exponent < -2:
        raise ValueError("Use at most two decimal places.")
    if amount.copy_abs() > MONEY_MAX:  # abs() would overflow the context on 1e1000000
        raise ValueError("That amount is too large.")
    if amount < 0 and not allow_negative:
        raise ValueError("The amount must not be negative.")
    if amount == 0 and not allow_zero:
        raise ValueError("The amount must be more than zero.")
    return amount.quantize(Decimal("0.01"))


def sane_date(value: date | None, *, earliest: int = 1900, latest: int = 2100) -> date | None:
    if value is None:
        return None
    if not earliest <= value.year <= latest:
        raise ValueError(f"Enter a date between {earliest} and {latest}.")
    return value


def email_domain(normalized: str) -> str:
    return normalized.rsplit("@", 1)[-1]


def phone_search_forms(e164: str | None) -> str:
    """The forms someone might type a phone number in: +447700900123, 447700900123, 07700900123."""
    if not e164:
        return ""
    digits = e164.lstrip("+")
    forms = [e164, digits]
    if e164.startswith("+44"):
        forms.append("0" + e164[3:])
    elif e164.startswith("+1"):
        forms.append(e164[2:])
    return " ".join(forms)


def customer_search_text(
    reference, first_name, surname, company_name, email, phone, postcode
) -> str:
    """The words the customer search index holds (lower case)."""
    parts = [reference, first_name, surname, company_name, email, phone_search_forms(phone)]
    if postcode:
        parts += [postcode, postcode.replace(" ", "")]
    return " ".join(p for p in parts if p).lower()
