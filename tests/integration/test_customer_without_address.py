"""Customers without an address on the screens: issuing their invoice is refused with a
sentence naming them (the draft stays a draft); the pages that list customers show an empty
cell, never "None"; the portal's details form saves without an address."""

import re

import pytest

from crm.extensions import db
from crm.models import Customer, Invoice
from tests import factories as f
from tests.integration.helpers import by_testid, customer, flashes, load, text_of
from tests.integration.test_portal import people, portal_client  # noqa: F401 (fixtures)

NO_ADDRESS = dict(address_line_1=None, address_line_2=None, town=None, county=None,
                  postcode=None)


@pytest.fixture
def nomad(app):
    with app.app_context():
        person = customer(db.session, surname="Nomadson", email="nomad@example.com",
                          **NO_ADDRESS)
        twin = customer(db.session, surname="Nomadson", email="nomad2@example.com",
                        **NO_ADDRESS)
        draft = f.make_invoice(db.session, person, status="draft", number=None)
        db.session.commit()
        return {"customer": person.id, "reference": person.reference, "twin": twin.id,
                "draft": draft.id}


def test_issuing_the_invoice_of_a_customer_without_an_address_is_refused(app, client, login,
                                                                         nomad):
    login("owner")
    response = client.post("/admin/owner/invoice/issue/", data={"id": str(nomad["draft"])},
                           follow_redirects=True)

    assert f"{nomad['reference']} has no billing address: add one before issuing an " \
           "invoice." in flashes(text_of(response))
    assert load(app, Invoice, nomad["draft"], "status", "number") == {"status": "draft",
                                                                       "number": None}


@pytest.mark.parametrize("page", [
    "/admin/owner/customer/merge/?ids={customer}&q=nomadson",
    "/admin/owner/payment/record/?q=nomadson",
    "/admin/owner/customer/details/?id={customer}",
    "/admin/owner/duplicates/",
])
def test_pages_that_list_customers_show_no_none_for_a_missing_address(app, client, login,
                                                                      nomad, page):
    login("owner")
    response = client.get(page.format(**nomad))

    assert response.status_code == 200
    html = text_of(response)
    assert "Nomadson" in html
    assert not re.search(r">\s*None\s*<", html)


def test_the_portal_details_save_without_an_address(app, people):  # noqa: F811
    ann = portal_client(app)
    page = text_of(ann.get("/portal/profile"))
    version = re.search(r'name="version" type="hidden" value="(\d+)"', page).group(1)

    saved = ann.post("/portal/profile/details", data={
        "version": version, "phone": "07912 345678", "address_line_1": "", "address_line_2": "",
        "town": "", "county": "", "postcode": ""})

    assert saved.status_code == 302
    with app.app_context():
        row = db.session.get(Customer, people["a"]["customer"])
        assert (row.address_line_1, row.postcode, row.phone) == (None, None, "+447912345678")
    half = ann.post("/portal/profile/details", data={
        "version": str(int(version) + 1), "phone": "", "address_line_1": "", "town": "Leeds",
        "postcode": ""})
    assert half.status_code == 400
    assert "Enter the first line of your address, or leave the address empty." in text_of(half)
    assert by_testid(text_of(ann.get("/portal/profile")), "details-form")
