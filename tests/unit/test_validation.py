"""The normalizers every form, action and the seed share: what is stored, and the sentence a
person reads when the input is refused."""

from datetime import date
from decimal import Decimal

import pytest

from crm.validation import (
    customer_search_text,
    email_domain,
    line_amounts,
    money,
    normalize_email,
    normalize_phone,
    normalize_postcode,
    phone_search_forms,
    quantity,
    sane_date,
    tax_rate,
)

# --- e-mail -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "stored"),
    [(" Jo.Bloggs@Example.COM ", "jo.bloggs@example.com"),
     ("JO@EXAMPLE.COM", "jo@example.com"),
     ("jo+quotes@sub.example.co.uk", "jo+quotes@sub.example.co.uk"),
     ("jo@BÜCHER.de", "jo@bücher.de")],
)
def test_an_email_is_stored_in_one_form(typed, stored):
    assert normalize_email(typed) == stored


@pytest.mark.parametrize("blank", [None, "", "   "])
def test_a_blank_email_is_no_email(blank):
    assert normalize_email(blank) is None


@pytest.mark.parametrize(
    ("typed", "reason"),
    [("no-at-sign", "must have an @-sign"),
     ("jo@localhost", "not valid"),
     ("jo@example", "should have a period"),
     ("jo..bloggs@example.com", "two periods in a row"),
     ("jo bloggs@example.com", "invalid characters"),
     ("x" * 250 + "@example.com", "too long")],  # longer than the column (254)
)
def test_a_malformed_email_is_refused_with_a_reason(typed, reason):
    with pytest.raises(ValueError) as refused:
        normalize_email(typed)

    message = str(refused.value)
    assert message.startswith("Not a valid e-mail address")
    assert reason in message


def test_email_domain():
    assert email_domain("jo@mail.example.com") == "mail.example.com"


# --- phone --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "region", "e164"),
    [("07911 123456", "GB", "+447911123456"),
     ("+44 7911 123456", "GB", "+447911123456"),
     ("+44 (0)20 7946 0018", "GB", "+442079460018"),
     ("020-7946-0018", "GB", "+442079460018"),
     ("+1 415 555 2671", "GB", "+14155552671"),
     ("(415) 555-2671", "US", "+14155552671")],
)
def test_a_phone_number_is_stored_in_e164(typed, region, e164):
    assert normalize_phone(typed, region) == e164


@pytest.mark.parametrize("blank", [None, "", "  "])
def test_a_blank_phone_is_no_phone(blank):
    assert normalize_phone(blank) is None


@pytest.mark.parametrize(
    ("typed", "message"),
    [("call me", "Not a phone number"),
     ("1" * 300, "Not a phone number"),
     ("123", "Not a valid phone number for that country."),
     ("07911 12345", "Not a valid phone number for that country.")],
)
def test_a_wrong_phone_number_is_refused_with_a_message(typed, message):
    with pytest.raises(ValueError, match=message):
        normalize_phone(typed)


# --- postcode -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "stored"),
    [(" ls6  2ab ", "LS6 2AB"), ("SW1A 1AA", "SW1A 1AA"), ("m1\t1aa", "M1 1AA"),
     ("", None), (None, None), ("   ", None)],
)
def test_a_postcode_is_stored_upper_case_with_single_spaces(typed, stored):
    assert normalize_postcode(typed) == stored


@pytest.mark.parametrize(
    ("typed", "country"),
    [("<>{}", "GB"), ("SW1A 1AA<>", "GB"), ("ZZ1 1ZZ", "GB"), ("12345", "GB"),
     ("1234", "DE"), ("ABCDE", "US"), ("SW1A 1AA", "DE")],
)
def test_a_postcode_that_is_not_one_of_its_country_is_refused(typed, country):
    with pytest.raises(ValueError, match="Not a valid postcode for"):
        normalize_postcode(typed, country)


@pytest.mark.parametrize(
    ("typed", "country", "stored"),
    [("10115", "DE", "10115"), ("22162-1010", "US", "22162-1010"), ("a65 f4e2", "IE", "A65 F4E2"),
     ("1234 ab", "NL", "1234 AB"), ("bfpo 61", "GB", "BFPO 61")],
)
def test_a_postcode_is_checked_against_its_own_country(typed, country, stored):
    assert normalize_postcode(typed, country) == stored


def test_an_unknown_country_is_refused_with_a_message():
    with pytest.raises(ValueError, match="Unknown country"):
        normalize_postcode("12345", "XX")


# --- money --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "amount"),
    [("120.5", "120.50"), (" 12 ", "12.00"), ("0.01", "0.01"), ("9999999999.99", "9999999999.99"),
     (Decimal("3.1"), "3.10"), (7, "7.00"), ("1,234.50", "1234.50"), (".5", "0.50"),
     ("1,000,000", "1000000.00")],
)
def test_an_amount_becomes_a_decimal_with_two_places(typed, amount):
    result = money(typed)

    assert isinstance(result, Decimal)
    assert result == Decimal(amount)
    assert result.as_tuple().exponent == -2


@pytest.mark.parametrize(
    ("typed", "message"),
    [("0", "must be more than zero"),
     ("0.00", "must be more than zero"),
     ("-0", "must be more than zero"),
     ("-5", "must not be negative"),
     ("-0.01", "must not be negative"),
     ("1.005", "at most two decimal places"),
     ("0.001", "at most two decimal places"),
     ("1e-1000000", "Enter an amount such as 120.50"),
     ("NaN", "Enter an amount such as 120.50"),
     ("sNaN", "Enter an amount such as 120.50"),
     ("Infinity", "Enter an amount such as 120.50"),
     ("-inf", "Enter an amount such as 120.50"),
     ("", "Enter an amount such as 120.50"),
     (None, "Enter an amount such as 120.50"),
     ("twelve", "Enter an amount such as 120.50"),
     ("1,00", "Enter an amount such as 120.50"),
     ("1.000,00", "Enter an amount such as 120.50"),
     ("10000000000", "too large"),
     ("9" * 40, "too large"),
     # Only plain decimal notation in ASCII digits: Decimal() would take all of these.
     ("1e5", "Enter an amount such as 120.50"),
     ("1e12", "Enter an amount such as 120.50"),
     ("1e1000000", "Enter an amount such as 120.50"),
     ("-1e1000000", "Enter an amount such as 120.50"),
     ("1_000", "Enter an amount such as 120.50"),
     ("+5", "Enter an amount such as 120.50"),
     ("\uff11\uff12\uff13", "Enter an amount such as 120.50"),  # full-width 123
     ("\u0661\u0662\u0663", "Enter an amount such as 120.50"),  # Arabic-Indic 123
     ("1.5\x00", "Enter an amount such as 120.50")],
)
def test_a_wrong_amount_is_refused_with_a_message(typed, message):
    with pytest.raises(ValueError, match=message):
        money(typed)


def test_zero_and_negative_amounts_are_allowed_only_when_asked_for():
    assert money("0", allow_zero=True) == Decimal("0.00")
    assert money("-12.5", allow_negative=True) == Decimal("-12.50")
    with pytest.raises(ValueError, match="too large"):
        money("-10000000000", allow_negative=True)


def test_a_float_never_brings_its_binary_error_into_an_amount():
    assert money(0.1) == Decimal("0.10")
    with pytest.raises(ValueError, match="at most two decimal places"):
        money(0.1 + 0.2)  # 0.30000000000000004: refused rather than silently rounded


# --- dates --------------------------------------------------------------------------------


def test_sane_date_refuses_typos_in_the_year():
    assert sane_date(date(2026, 5, 1)) == date(2026, 5, 1)
    assert sane_date(None) is None
    with pytest.raises(ValueError, match="between 1900 and 2100"):
        sane_date(date(0o202, 5, 1))
    with pytest.raises(ValueError, match="between 1900 and 2100"):
        sane_date(date(2206, 5, 1))


# --- what the search index holds ----------------------------------------------------------


def test_phone_search_forms_are_what_people_type():
    assert phone_search_forms("+447911123456").split() == [
        "+447911123456", "447911123456", "07911123456"]
    assert phone_search_forms("+14155552671").split() == [
        "+14155552671", "14155552671", "4155552671"]
    assert phone_search_forms("+33123456789").split() == ["+33123456789", "33123456789"]
    assert phone_search_forms(None) == ""


def test_customer_search_text_holds_every_searchable_word_in_lower_case():
    text = customer_search_text("C-000042", "Joanna", "Pennington", "Acme Ltd",
                                "jo@acme.example", "+447911123456", "LS6 2AB")

    assert text == ("c-000042 joanna pennington acme ltd jo@acme.example "
                    "+447911123456 447911123456 07911123456 ls6 2ab ls62ab")


def test_customer_search_text_leaves_out_what_is_missing():
    assert customer_search_text("C-000001", None, "Smith", None, None, None, None) == \
        "c-000001 smith"
    assert customer_search_text("C-000002", "", None, "Acme", None, "", "") == "c-000002 acme"


# --- quantities, tax rates and lines ------------------------------------------------------


@pytest.mark.parametrize(("typed", "stored"), [("1", "1.00"), ("2.5", "2.50"),
                                               ("99999999.99", "99999999.99")])
def test_a_quantity_fits_its_column(typed, stored):
    assert quantity(typed) == Decimal(stored)


@pytest.mark.parametrize(("typed", "message"), [
    ("100000000", "too large"), ("9999999999.99", "too large"), ("0", "more than zero"),
    ("-1", "must not be negative"), ("1e3", "Enter a quantity"), ("1.001", "two decimal")])
def test_a_wrong_quantity_is_refused(typed, message):
    with pytest.raises(ValueError, match=message):
        quantity(typed)


@pytest.mark.parametrize(("typed", "stored"), [("20", "20.00"), ("0", "0.00"), ("", "0.00"),
                                               (None, "0.00"), ("100", "100.00"),
                                               ("17.5", "17.50")])
def test_a_tax_rate_is_a_percentage(typed, stored):
    assert tax_rate(typed) == Decimal(stored)


@pytest.mark.parametrize(("typed", "message"), [("100.01", "between 0 and 100"),
                                                ("5000", "between 0 and 100"),
                                                ("-1", "between 0 and 100"),
                                                ("20%", "Enter a tax rate such as 20")])
def test_a_tax_rate_past_100_or_below_0_is_refused(typed, message):
    with pytest.raises(ValueError, match=message):
        tax_rate(typed)


def test_a_line_too_large_for_an_amount_is_refused():
    assert line_amounts(Decimal("3"), Decimal("10.005"), Decimal("20")) == (
        Decimal("30.02"), Decimal("6.00"))
    assert line_amounts(Decimal("1"), Decimal("8333333333.32"), Decimal("20"))[1] == Decimal(
        "1666666666.66")
    with pytest.raises(ValueError, match="a line holds at most £9,999,999,999.99"):
        line_amounts(Decimal("99999999.99"), Decimal("9999999999.99"), Decimal("0"))
    with pytest.raises(ValueError, match="a line holds at most"):
        line_amounts(Decimal("1"), Decimal("9999999999.99"), Decimal("1"))
