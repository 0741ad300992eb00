"""Invoice address formats: every tag fills from the invoice, blank tags are skipped with the
text that belongs to them, and an unknown tag is refused with the list of tags."""

import pytest

from crm.addressing import (
    DEFAULT_FORMAT,
    TAGS,
    customer_address,
    format_address,
    format_invoice_address,
    tag_values,
    validate_address_format,
)
from tests.factories import (
    make_contact,
    make_customer,
    make_invoice,
    make_work_address,
)


@pytest.fixture
def invoice(session):
    customer = make_customer(session, first_name="Bob", surname="Tenant",
                             address_line_1="1 Flat Row", address_line_2="Upper floor",
                             town="Leeds", county="West Yorkshire", postcode="LS1 1AA")
    landlord = make_customer(session, first_name="Jane", surname="Lord",
                             address_line_1="9 Manor Road", address_line_2=None,
                             town="York", county="North Yorkshire", postcode="YO1 1AA")
    work = make_work_address(session, customer, landlord=landlord, address_line_1="2 Work Lane",
                             address_line_2="Unit 4", town="Bradford", county="West Yorks",
                             postcode="BD1 1AA", occupier_first_name="Olly",
                             occupier_surname="Occupant")
    contact = make_contact(session, customer, first_name="Sam", surname="Clerk")
    # A draft: an issued invoice's address format is frozen (crm.session_hooks).
    return make_invoice(session, customer, status="draft", work_address=work, contact=contact)


def test_every_tag_has_a_value_from_the_invoice(invoice):
    values = tag_values(invoice)
    assert set(values) == set(TAGS)
    assert values == {
        "customer_name": "Bob Tenant",
        "customer_address_line_1": "1 Flat Row",
        "customer_address_line_2": "Upper floor",
        "customer_town": "Leeds",
        "customer_county": "West Yorkshire",
        "customer_postcode": "LS1 1AA",
        "contact_name": "Sam Clerk",
        "landlord_name": "Jane Lord",
        "landlord_address_line_1": "9 Manor Road",
        "landlord_address_line_2": "",
        "landlord_town": "York",
        "landlord_county": "North Yorkshire",
        "landlord_postcode": "YO1 1AA",
        "work_address_line_1": "2 Work Lane",
        "work_address_line_2": "Unit 4",
        "work_address_town": "Bradford",
        "work_address_county": "West Yorks",
        "work_address_postcode": "BD1 1AA",
        "occupier_name": "Olly Occupant",
    }


def test_each_tag_renders_on_its_own(invoice):
    values = tag_values(invoice)
    for tag in TAGS:
        expected = [values[tag]] if values[tag] else []
        assert format_address(f"[{tag}]", values) == expected, tag


def test_the_default_format_is_the_customers_name_and_address(invoice):
    assert format_invoice_address(invoice) == [
        "Bob Tenant", "1 Flat Row", "Upper floor", "Leeds", "West Yorkshire", "LS1 1AA",
    ]
    assert format_address(DEFAULT_FORMAT, tag_values(invoice)) == format_invoice_address(invoice)


def test_landlord_care_of_tenant(session, invoice):
    invoice.address_format = (
        "[landlord_name] c/o [customer_name]\n[work_address_line_1]\n[work_address_postcode]"
    )
    assert format_invoice_address(invoice) == ["Jane Lord c/o Bob Tenant", "2 Work Lane",
                                               "BD1 1AA"]
    invoice.work_address.landlord = None
    session.flush()
    # No landlord: the "c/o" goes with the blank tag; no one is "cared of" by nobody.
    assert format_invoice_address(invoice) == ["Bob Tenant", "2 Work Lane", "BD1 1AA"]


def test_blank_tags_and_empty_lines_are_skipped(invoice):
    invoice.address_format = "[customer_name]\n[landlord_address_line_2]\n[customer_postcode]"
    assert format_invoice_address(invoice) == ["Bob Tenant", "LS1 1AA"]


@pytest.mark.parametrize(("fmt", "values", "expected"), [
    ("FAO [contact_name]", {"contact_name": "Sam"}, ["FAO Sam"]),
    ("FAO [contact_name]", {}, []),  # text before a blank first tag goes with it
    ("[customer_name] (tenant)", {}, []),  # text after a blank last tag goes with it
    ("[customer_name] (tenant)", {"customer_name": "Bob"}, ["Bob (tenant)"]),
    ("[customer_town], [customer_county], [customer_postcode]",
     {"customer_town": "Leeds", "customer_postcode": "LS1"}, ["Leeds, LS1"]),
    ("[customer_name] c/o [landlord_name]", {"customer_name": "Bob"}, ["Bob"]),
    ("Private & confidential\n[customer_name]", {}, ["Private & confidential"]),
    ("[CUSTOMER_NAME]", {"customer_name": "Bob"}, ["Bob"]),  # tags ignore case
    ("  [customer_name]   and   [contact_name]  ", {"customer_name": "A", "contact_name": "B"},
     ["A and B"]),
])
def test_literal_text_rules(fmt, values, expected):
    assert format_address(fmt, values) == expected


def test_a_blank_format_is_the_default():
    values = {"customer_name": "Bob", "customer_postcode": "LS1"}
    assert format_address("  \n ", values) == format_address(None, values) == ["Bob", "LS1"]


def test_validation_refuses_an_unknown_tag_and_lists_the_tags():
    with pytest.raises(ValueError, match=r"Unknown tag \[foo\]; use one of \[customer_name\]"):
        validate_address_format("[customer_name]\n[foo]")


def test_validation_normalises_line_ends_and_blank_lines():
    assert validate_address_format("[customer_name]  \r\n\r\n[Customer_Postcode]\n") == (
        "[customer_name]\n[Customer_Postcode]"
    )
    assert validate_address_format(None) == ""
    assert validate_address_format("Attn: accounts [contact_name]") == (
        "Attn: accounts [contact_name]"
    )


def test_a_credit_note_without_work_address_has_those_tags_blank(session):
    from tests.factories import make_credit_note

    customer = make_customer(session, company_name="Acme Ltd", customer_type="company",
                             address_line_2=None)
    note = make_credit_note(session, customer)
    assert tag_values(note)["landlord_name"] == ""
    assert format_invoice_address(note) == ["Acme Ltd", customer.address_line_1, "Leeds",
                                            "LS1 1AA"]


def test_customer_address_for_statements(session):
    customer = make_customer(session, first_name="Ann", surname="Smith", address_line_2=None,
                             county=None)
    assert customer_address(customer) == ["Ann Smith", customer.address_line_1, "Leeds",
                                          "LS1 1AA"]
