"""Blocked e-mails through the admin screens: an address or a domain
blocked from the Settings form cannot create a customer, lead or booking, however it is typed
(case, spaces); the form says why and nothing is created. Customers whose address is blocked
carry a "blocked" badge in the list, on their record, and answer the list's "E-mail blocked"
filter."""

import pytest

from crm.extensions import db
from crm.models import BlockedEmail, Booking, Customer, Lead
from tests import factories as f
from tests.integration.helpers import (
    by_testid,
    cells,
    count_rows,
    customer,
    filter_arg,
    flashes,
    form_values,
    list_row_ids,
    load,
    submit,
    text_of,
    url,
)

ADDRESS = "sam.spam@example.com"
TYPED = ("sam.spam@example.com", "  SAM.Spam@Example.COM  ", "Sam.Spam@EXAMPLE.com")
NEW_CUSTOMER = {"customer_type": "private", "surname": "Spammer", "address_line_1": "1 Main St",
                "postcode": "LS1 1AA"}


def block_through_the_form(client, value: str, role: str = "owner"):
    return submit(client, url(role, "blocked_email", "new/"),
                  {"address": value, "reason": "abuse", "note": "Fake bookings"})


@pytest.fixture
def blocked(app, client, login):
    """The owner signed in, with ADDRESS blocked through Settings → Blocked e-mails."""
    login("owner")
    response = block_through_the_form(client, ADDRESS)
    assert response.status_code == 302, flashes(text_of(response))
    return ADDRESS


def refusal(response) -> str:
    """The page a refused create form comes back as: the form again, with the message."""
    assert response.status_code == 200
    html = text_of(response)
    assert 'class="admin-form' in html
    return " ".join(flashes(html))


# --- the block itself -------------------------------------------------------------------------
def test_a_block_keeps_only_a_hash_of_the_address(app, client, blocked):
    with app.app_context():
        block = db.session.query(BlockedEmail).one()
        assert (block.kind, block.domain) == ("address", None)
        assert block.address_hash and ADDRESS not in block.address_hash
    assert ADDRESS not in text_of(client.get(url("owner", "blocked_email")))


def test_an_invalid_address_is_refused_by_the_block_form(app, client, login):
    login("owner")
    page = block_through_the_form(client, "not an address")
    assert page.status_code == 200
    assert "Not a valid e-mail address" in " ".join(flashes(text_of(page)))
    assert count_rows(app, BlockedEmail) == 0


# --- creating with a blocked address ---------------------------------------------------------
@pytest.mark.parametrize("typed", TYPED)
def test_a_customer_cannot_be_created_with_a_blocked_address(app, client, blocked, typed):
    response = submit(client, url("owner", "customer", "new/"), {**NEW_CUSTOMER, "email": typed})

    message = refusal(response)
    assert f"The e-mail address {ADDRESS} is blocked; a customer cannot be created with it." \
        in message
    assert form_values(text_of(response))["surname"] == "Spammer"
    assert count_rows(app, Customer) == 0


def test_another_address_still_creates_a_customer(app, client, blocked):
    response = submit(client, url("owner", "customer", "new/"),
                      {**NEW_CUSTOMER, "email": "sam.real@example.com"})
    assert response.status_code == 302
    assert count_rows(app, Customer, Customer.email == "sam.real@example.com") == 1


def test_an_existing_customer_cannot_be_given_a_blocked_address(app, client, blocked):
    with app.app_context():
        key = customer(db.session, email="sam.real@example.com").id
        db.session.commit()

    response = submit(client, url("owner", "customer", f"edit/?id={key}"),
                      {"email": " SAM.SPAM@example.com"})
    assert f"The e-mail address {ADDRESS} is blocked" in refusal(response)
    assert load(app, Customer, key, "email") == {"email": "sam.real@example.com"}


@pytest.mark.parametrize("typed", TYPED)
def test_a_lead_cannot_be_created_with_a_blocked_address(app, client, blocked, typed):
    response = submit(client, url("owner", "lead", "new/"),
                      {"surname": "Spammer", "email": typed, "message": "Book me"})

    assert f"The e-mail address {ADDRESS} is blocked; a lead cannot be created with it." \
        in refusal(response)
    assert count_rows(app, Lead) == 0


@pytest.mark.parametrize("typed", TYPED)
def test_a_booking_cannot_be_created_with_a_blocked_address(app, client, blocked, typed):
    with app.app_context():
        key = customer(db.session, email="booker@example.com").id
        db.session.commit()

    response = submit(client, url("owner", "booking", "new/"),
                      {"customer": str(key), "title": "Wedding", "contact_email": typed,
                       "starts_at": "2026-07-01 19:00:00"})

    assert f"The e-mail address {ADDRESS} is blocked; a booking cannot be created with it." \
        in refusal(response)
    assert count_rows(app, Booking) == 0


def test_a_coordinator_is_refused_too(app, client, login, other_client):
    owner = other_client("owner")
    block_through_the_form(owner, ADDRESS)
    login("coordinator")

    response = submit(client, url("coordinator", "lead", "new/"),
                      {"surname": "Spammer", "email": ADDRESS.upper()})
    assert "is blocked" in refusal(response)
    assert count_rows(app, Lead) == 0


def test_a_blocked_domain_refuses_every_address_on_it(app, client, login):
    login("owner")
    assert block_through_the_form(client, "@Spam.Example").status_code == 302

    refused = submit(client, url("owner", "customer", "new/"),
                     {**NEW_CUSTOMER, "email": "Anyone@SPAM.example "})
    assert "The e-mail address anyone@spam.example is blocked" in refusal(refused)
    assert count_rows(app, Customer) == 0
    # a subdomain is someone else's: it is not covered
    allowed = submit(client, url("owner", "customer", "new/"),
                     {**NEW_CUSTOMER, "email": "anyone@mail.spam.example"})
    assert allowed.status_code == 302
    assert count_rows(app, Customer) == 1


# --- the flag: badge and filter ---------------------------------------------------------------
def blocked_filter(app, role: str) -> str:
    return filter_arg(app, role, "E-mail blocked")


def test_blocking_from_the_list_flags_the_customer_with_a_badge_and_filter(app, client, login,
                                                                           other_client):
    with app.app_context():
        spammer = customer(db.session, surname="Spammer", email=ADDRESS)
        twin = customer(db.session, surname="Spammer-Twin", email=ADDRESS)
        clean = customer(db.session, surname="Clean", email="clean@example.com")
        db.session.commit()
        ids = {"spammer": spammer.id, "twin": twin.id, "clean": clean.id}
    login("coordinator")
    client.post("/admin/coordinator/customer/bulk/block_email/",
                data={"ids": [str(ids["spammer"])], "confirm": "1", "block_reason": "spam"})

    for role, browser in (("coordinator", client), ("owner", other_client("owner"))):
        arg = blocked_filter(app, role)
        flagged = text_of(browser.get(url(role, "customer"), query_string={arg: "1"}))
        assert sorted(list_row_ids(flagged)) == sorted([ids["spammer"], ids["twin"]])
        # the flag is a badge beside the status
        assert cells(flagged, "status") == ["active blocked", "active blocked"]
        assert flagged.count('<span class="badge status-blocked">blocked</span>') == 2
        unflagged = text_of(browser.get(url(role, "customer"), query_string={arg: "0"}))
        assert list_row_ids(unflagged) == [ids["clean"]]
        assert cells(unflagged, "status") == ["active"]

    record = text_of(client.get(url("coordinator", "customer", f"details/?id={ids['spammer']}")))
    assert by_testid(record, "blocked-badge") == ["e-mail blocked"]
    assert 'data-testid="block-email"' not in record


def test_blocking_through_the_settings_form_flags_customers_already_on_file(app, client, login):
    """The Settings form is the other way to block: the customers who already use the
    address must get the same flag as when the block comes from the list."""
    with app.app_context():
        key = customer(db.session, surname="Spammer", email=ADDRESS).id
        db.session.commit()
    login("owner")
    assert block_through_the_form(client, "Sam.Spam@Example.com").status_code == 302

    assert load(app, Customer, key, "email_blocked") == {"email_blocked": True}
    flagged = text_of(client.get(url("owner", "customer"),
                                 query_string={blocked_filter(app, "owner"): "1"}))
    assert list_row_ids(flagged) == [key]


def test_a_customer_saved_by_another_path_under_a_domain_block_shows_the_badge(app, client,
                                                                               login):
    """A customer stored without the create form (an import, say) under a blocked domain
    still carries the badge on its record."""
    with app.app_context():
        from crm.actions.block_email import block_email

        block_email(db.session, value="@spam.example", reason="Spam", actor=None)
        row = f.make_customer(db.session, email="x@spam.example")
        db.session.commit()
        key = row.id
    login("owner")
    record = text_of(client.get(url("owner", "customer", f"details/?id={key}")))
    assert by_testid(record, "blocked-badge") == ["e-mail blocked"]


def test_a_booking_with_an_address_that_is_not_blocked_is_created(app, client, blocked):
    """The control for the booking refusal above: the check itself must not get in the way."""
    with app.app_context():
        key = customer(db.session, email="booker@example.com").id
        db.session.commit()

    response = submit(client, url("owner", "booking", "new/"),
                      {"customer": str(key), "title": "Wedding",
                       "contact_email": "booker@example.com",
                       "starts_at": "2026-07-01 19:00:00"})

    assert response.status_code == 302, flashes(text_of(response))
    assert count_rows(app, Booking, Booking.contact_email == "booker@example.com") == 1


def test_a_customer_whose_own_address_is_blocked_gets_no_new_booking(app, client, blocked):
    """Even with no contact e-mail on the booking: the customer is the blocked one."""
    with app.app_context():
        row = customer(db.session, email="sam.spam@example.com")
        db.session.commit()
        key, reference = row.id, row.reference
        assert row.email_blocked is True

    response = submit(client, url("owner", "booking", "new/"),
                      {"customer": str(key), "title": "Wedding",
                       "starts_at": "2026-07-01 19:00:00"})

    assert response.status_code == 200
    assert f"{reference} has a blocked e-mail address: no new bookings" in refusal(response)
    assert count_rows(app, Booking) == 0
