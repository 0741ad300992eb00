"""One formatter for every amount, quantity, rate and date a person reads."""

from datetime import date, datetime
from decimal import Decimal

import pytest

from crm.config import ConfigError, load_config
from crm.formatting import day, moment, money, number, percent, plain_money, wall

D = Decimal


@pytest.mark.parametrize(("value", "text"), [
    (D("1234.5"), "£1,234.50"), (D("0"), "£0.00"), (D("-55.31"), "-£55.31"),
    (D("1E+1"), "£10.00"), (None, ""),
])
def test_money_reads_with_the_currency_and_two_places(value, text):
    assert money(value) == text


def test_money_in_another_currency():
    assert money(D("10"), "EUR") == "€10.00"
    assert plain_money(D("1234.5")) == "1,234.50"


@pytest.mark.parametrize(("value", "text"), [
    (D("10"), "10"), (D("1E+1"), "10"), (D("10.00"), "10"), (D("2.50"), "2.5"),
    (D("1000"), "1,000"), (D("0.25"), "0.25"), (None, ""),
])
def test_a_quantity_never_reads_in_scientific_notation(value, text):
    assert number(value) == text


@pytest.mark.parametrize(("value", "text"), [
    (D("20"), "20%"), (D("2E+1"), "20%"), (D("17.50"), "17.5%"), (D("0"), "0%"), (D("5.25"), "5.25%"),
])
def test_a_rate_held_in_percent_reads_as_a_percentage(value, text):
    assert percent(value) == text


def test_one_date_style_and_times_to_the_minute_in_the_business_time_zone():
    assert day(date(2026, 12, 3)) == "3 Dec 2026"
    assert day("2026-12-03") == "3 Dec 2026"
    # Stored times are UTC: 23:30 UTC on 30 June is 00:30 on 1 July in London (summer time).
    assert moment(datetime(2026, 6, 30, 23, 30)) == "1 Jul 2026, 00:30"
    assert moment(datetime(2026, 12, 3, 9, 5, 59)) == "3 Dec 2026, 09:05"
    assert moment(date(2026, 12, 3)) == "3 Dec 2026"  # a date alone has no time to show


@pytest.mark.parametrize(("name", "value", "says"), [
    ("CRM_CURRENCY", "XYZ", "ISO 4217"), ("CRM_LOCALE", "nowhere", "locale"),
    ("CRM_TIMEZONE", "Mars/Olympus", "time zone"),
])
def test_a_mistyped_setting_stops_the_start_with_a_clear_message(monkeypatch, tmp_path, name,
                                                                  value, says):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=says):
        load_config(str(tmp_path))


def test_a_wall_clock_time_is_shown_as_entered():
    # A booking at 09:00 is at 09:00 whatever the season: no conversion from UTC.
    assert wall(datetime(2026, 7, 1, 9, 0)) == "1 Jul 2026, 09:00"
    assert wall(None) == ""
