"""How numbers, amounts and dates read, everywhere a person reads them: pages, PDFs, e-mails,
exports meant for people. One formatter each, through Babel's locale data:

- ``money(Decimal("1234.5"))`` -> "£1,234.50" (the business's currency, ``CRM_CURRENCY``);
  ``compact_money`` -> "£1.2k" where space is short (a chart's axis);
- ``number(Decimal("10.00"))`` -> "10", ``number(Decimal("2.50"))`` -> "2.5": quantities,
  never "1E+1" or "2.50000";
- ``percent(Decimal("20.00"))`` -> "20%", ``percent(Decimal("17.5"))`` -> "17.5%": a rate
  held in percent, as tax rates are;
- ``day(date)`` -> "4 Dec 2026": the one date style;
- ``moment(datetime)`` -> "4 Dec 2026, 14:05": a stored UTC time (``created_at`` and the
  like) in the business's time zone (``CRM_TIMEZONE``), to the minute;
- ``wall(datetime)`` -> "4 Dec 2026, 09:00": a time kept as the local clock reads it (a
  booking's start and end), shown as it is;
- ``parse_day("4 Dec 2026")`` -> date(2026, 12, 4): a date as a person types it, back the
  other way (the style ``day`` shows, ISO, or numbers in the locale's order).

Outside an application (a script, a unit test) the defaults apply: GBP, en_GB, Europe/London.
Each is also a Jinja filter (``{{ amount|money }}``), registered by ``create_app``.
"""

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

import phonenumbers
from babel.dates import format_date, format_datetime, parse_date
from babel.numbers import (
    format_compact_currency,
    format_currency,
    format_decimal,
    format_percent,
)

DEFAULTS = {"CRM_CURRENCY": "GBP", "CRM_LOCALE": "en_GB", "CRM_TIMEZONE": "Europe/London"}
DATE_PATTERN = "d MMM y"
MOMENT_PATTERN = "d MMM y, HH:mm"


def _setting(name: str) -> str:
    try:
        from flask import current_app

        return current_app.config.get(name) or DEFAULTS[name]
    except RuntimeError:  # no application context
        return DEFAULTS[name]


def _decimal(value) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def money(value, currency: str | None = None) -> str:
    """An amount with its currency: "£1,234.50", "-£12.00"; "" for None."""
    if value is None:
        return ""
    return format_currency(_decimal(value), currency or _setting("CRM_CURRENCY"),
                           locale=_setting("CRM_LOCALE"))


def compact_money(value) -> str:
    """An amount rounded for a chart's axis or a tile: "£152k", "£1.5m", "£950"."""
    if value is None:
        return ""
    return format_compact_currency(_decimal(value), _setting("CRM_CURRENCY"),
                                   locale=_setting("CRM_LOCALE"), fraction_digits=1)


def plain_money(value) -> str:
    """An amount without its currency, for a column whose heading names it: "1,234.50"."""
    if value is None:
        return ""
    return format_decimal(_decimal(value), format="#,##0.00", locale=_setting("CRM_LOCALE"))


def number(value) -> str:
    """A quantity in plain notation, grouped, without trailing zeros: "10", "2.5", "1,000"."""
    if value is None:
        return ""
    return format_decimal(_decimal(value), format="#,##0.####", locale=_setting("CRM_LOCALE"))


def percent(value) -> str:
    """A rate held in percent (20 for twenty per cent): "20%", "17.5%"."""
    if value is None:
        return ""
    return format_percent(_decimal(value) / 100, format="#,##0.####%",
                          locale=_setting("CRM_LOCALE"))


def day(value) -> str:
    """A date: "4 Dec 2026". A datetime is shown as its date in the business's time zone."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = date.fromisoformat(value[:10])
    if isinstance(value, datetime):
        value = _local(value).date()
    return format_date(value, DATE_PATTERN, locale=_setting("CRM_LOCALE"))


MONTH_NAMES = ("january", "february", "march", "april", "may", "june", "july", "august",
               "september", "october", "november", "december")
_DAY_MONTH_YEAR = re.compile(r"(\d{1,2})(?:st|nd|rd|th)?[\s/.-]*([a-z]{3,9})\.?,?[\s/.-]*(\d{4})")
_MONTH_DAY_YEAR = re.compile(r"([a-z]{3,9})\.?\s*(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})")
DATE_EXAMPLE = "4 Dec 2026"
DATE_HINT = f"Type a date like {DATE_EXAMPLE}."


def parse_day(text: str) -> date:
    """A date as a person types it: "4 Dec 2026" (the style every page shows, month named
    in full or short, "Sept" too), "2026-12-04", or in numbers in the business's locale's
    order ("4/12/2026" in the United Kingdom). ValueError if it is none of them."""
    value = " ".join(str(text).strip().lower().split())
    named = _DAY_MONTH_YEAR.fullmatch(value)
    if named:
        day_, month, year = named.groups()
    else:
        named = _MONTH_DAY_YEAR.fullmatch(value)
        if named:
            month, day_, year = named.groups()
    try:
        if named:
            return date(int(year), _month(month), int(day_))
        if re.fullmatch(r"\d{4}-\d{1,2}-\d{1,2}", value):
            year, month_number, day_ = (int(part) for part in value.split("-"))
            return date(year, month_number, day_)
        if re.fullmatch(r"\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}", value):
            return parse_date(value.replace("-", "/"), locale=_setting("CRM_LOCALE"))
    except (IndexError, OverflowError, TypeError) as exc:
        raise ValueError(f"not a date: {text!r}") from exc
    raise ValueError(f"not a date: {text!r}")


MOMENT_EXAMPLE = "4 Dec 2026, 20:00"
MOMENT_HINT = f"Type a date and time like {MOMENT_EXAMPLE}."
_CLOCK = re.compile(r"(.+?)[\s,t]+(\d{1,2})[:.](\d{2})(?::(\d{2}))?\s*(am|pm)?")


def parse_moment(text: str) -> datetime:
    """A date and a time as a person types it, read as the clock reads it (no time zone):
    "4 Dec 2026, 20:00" (the style pages show), "4 Dec 2026 8pm" is not, "4 Dec 2026 8:00 pm"
    is, and so are "2026-12-04 20:00" and "2026-12-04T20:00:00". The date part is anything
    ``parse_day`` reads. ValueError otherwise (a date without its time included)."""
    value = " ".join(str(text).strip().lower().split())
    found = _CLOCK.fullmatch(value)
    if not found:
        raise ValueError(f"not a date and time: {text!r}")
    day_text, hour, minute, second, half = found.groups()
    hour, minute, second = int(hour), int(minute), int(second or 0)
    if half:
        if not 1 <= hour <= 12:
            raise ValueError(f"not a time: {text!r}")
        hour = hour % 12 + (12 if half == "pm" else 0)
    when = parse_day(day_text.rstrip(", "))
    try:
        return datetime(when.year, when.month, when.day, hour, minute, second)
    except ValueError as exc:
        raise ValueError(f"not a time: {text!r}") from exc


def _month(word: str) -> int:
    """1 to 12 for a month's name, in full or cut short ("Dec", "Sept")."""
    for number, name in enumerate(MONTH_NAMES, 1):
        if len(word) >= 3 and name.startswith(word):
            return number
    raise ValueError(f"not a month: {word}")


def moment(value) -> str:
    """A stored time (naive UTC, as every timestamp column holds it) to the minute, in the
    business's time zone: "4 Dec 2026, 14:05". A date alone is shown as a date."""
    if value is None:
        return ""
    if not isinstance(value, datetime):
        return day(value)
    return format_datetime(_local(value), MOMENT_PATTERN, locale=_setting("CRM_LOCALE"))


def wall(value) -> str:
    """A time entered as the local clock reads it (a booking's start), shown as it is, with
    no time-zone conversion: "4 Dec 2026, 09:00"."""
    if value is None:
        return ""
    if not isinstance(value, datetime):
        return day(value)
    return format_datetime(value.replace(tzinfo=None), MOMENT_PATTERN,
                           locale=_setting("CRM_LOCALE"))


@lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_now() -> datetime:
    """The time now in the business's time zone (a greeting, "today" as staff see it)."""
    return datetime.now(UTC).astimezone(_zone(_setting("CRM_TIMEZONE")))


def _local(value: datetime) -> datetime:
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(_zone(_setting("CRM_TIMEZONE")))


@lru_cache(maxsize=4096)
def phone(e164: str | None) -> str:
    """A stored number (E.164, "+447795544804") as people write it: a UK number the
    national way ("07795 544804", "0113 496 0000"), any other the international way
    ("+33 1 23 45 67 89"); anything unreadable as it is."""
    if not e164:
        return ""
    try:
        parsed = phonenumbers.parse(e164, "GB")
    except phonenumbers.NumberParseException:
        return e164
    style = (phonenumbers.PhoneNumberFormat.NATIONAL if parsed.country_code == 44
             else phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return phonenumbers.format_number(parsed, style)



FILTERS = {"money": money, "compact_money": compact_money, "plain_money": plain_money, "number": number, "percent": percent,
           "day": day, "moment": moment, "wall": wall, "phone": phone}
