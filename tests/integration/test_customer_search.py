"""Customer search: by a fragment of the surname or e-mail, the reference, the
phone as people type it (national or E.164) and the postcode with or without its space.
A word shorter than three characters is ignored with a warning, never an error."""

import pytest

from crm.extensions import db
from tests.integration.helpers import customer, flashes, list_row_ids, text_of, url


@pytest.fixture
def people(app, login):
    login("owner")
    with app.app_context():
        wanted = customer(db.session, first_name="Maud", surname="Fothergill",
                          email="m.fothergill@mailbox.example", phone="+447911123456",
                          postcode="YO1 7HH")
        others = [
            customer(db.session, first_name="Ann", surname="Fotheringham",
                     email="ann@elsewhere.example", phone="+447911654321", postcode="YO10 5DD"),
            customer(db.session, first_name="Bob", surname="Gill", email="bob@mailbag.example",
                     phone="+442079460000", postcode="LS1 1AA"),
        ]
        db.session.commit()
        return {"wanted": wanted.id, "reference": wanted.reference,
                "others": [c.id for c in others]}


def _search(client, term: str):
    page = client.get(url("owner", "customer"), query_string={"search": term})
    assert page.status_code == 200
    return page


@pytest.mark.parametrize("term", [
    "thergi", "FOTHERGILL", "fothergill maud", "mailbox", "m.fothergill@mailbox",
    "07911 123456", "07911123456", "+447911123456", "447911123456",
    "YO1 7HH", "yo17hh", "YO17HH",
], ids=["surname-fragment", "surname-any-case", "two-words", "email-fragment", "email-start",
        "phone-national-spaced", "phone-national", "phone-e164", "phone-digits",
        "postcode", "postcode-no-space-lower", "postcode-no-space"])
def test_search_finds_exactly_the_customer(client, people, term):
    assert list_row_ids(text_of(_search(client, term))) == [people["wanted"]]


def test_search_by_reference(client, people):
    for term in (people["reference"], people["reference"].lower()):
        assert list_row_ids(text_of(_search(client, term))) == [people["wanted"]]


def test_a_fragment_shared_by_two_customers_finds_both(client, people):
    found = list_row_ids(text_of(_search(client, "fother")))

    assert sorted(found) == sorted([people["wanted"], people["others"][0]])


def test_a_word_that_matches_nobody_finds_nobody(client, people):
    assert list_row_ids(text_of(_search(client, "zzyzx"))) == []


@pytest.mark.parametrize("term", ["ab", "7", "Fothergill yo"])
def test_a_short_word_gives_a_warning_not_an_error(client, people, term):
    page = text_of(_search(client, term))

    warnings = [m for m in flashes(page) if "at least 3 characters" in m]
    assert warnings, flashes(page)
    assert 'alert-warning' in page


def test_a_short_word_beside_a_long_one_still_searches_by_the_long_one(client, people):
    page = text_of(_search(client, "Fothergill yo"))

    assert list_row_ids(page) == [people["wanted"]]
