"""The normalizers every form, action and the seed share: what is stored, and the sentence a
person reads when the input is refused."""

from datetime import date
from decimal import Decimal

import pytest

from crm.validation import (
    customer_search_text,
    email_domain,
    money,
    normalize_email,
    normalize_phone,
    normalize_postcode,
    phone_search_forms,
    sane_date,
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


# --- money --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "amount"),
    [("120.5", "120.50"), (" 12 ", "12.00"), ("0.01", "0.01"), ("9999999999.99", "9999999999.99"),
     (Decimal("3.1"), "3.10"), (7, "7.00")],
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
     ("1e-1000000", "at most two decimal places"),
     ("NaN", "Enter an amount such as 120.50"),
     ("sNaN", "Enter an amount such as 120.50"),
     ("Infinity", "Enter an amount such as 120.50"),
     ("-inf", "Enter an amount such as 120.50"),
     ("", "Enter an amount such as 120.50"),
     (None, "Enter an amount such as 120.50"),
     ("twelve", "Enter an amount such as 120.50"),
     ("1,000.00", "Enter an amount such as 120.50"),
     ("10000000000", "too large"),
     ("1e12", "too large"),
     ("9" * 40, "too large"),
     ("1e1000000", "too large"),
     ("-1e1000000", "too large")],
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
