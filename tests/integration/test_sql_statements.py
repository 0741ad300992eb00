"""SQL statements per page: a list page costs the same few statements whatever
its size and however many related rows each row has; so does a customer's details page."""

import pytest

from crm.admin_views import MODEL_VIEWS
from crm.extensions import db
from tests import factories as f
from tests.integration.helpers import customer, list_row_ids, seed, statements, text_of, url

MOST = 10
LISTS = [pytest.param(slug, "owner", id=slug) for _, _, _, slug in MODEL_VIEWS]
LISTS.append(pytest.param("customer", "coordinator", id="customer-coordinator"))


@pytest.mark.parametrize(("slug", "role"), LISTS)
def test_a_list_page_costs_the_same_statements_at_any_page_size(app, client, login, slug,
                                                                 role):
    login(role)
    seed(app, slug, 120)

    small = client.get(url(role, slug, "?page_size=20"))
    large = client.get(url(role, slug, "?page_size=100"))

    assert (len(list_row_ids(text_of(small))), len(list_row_ids(text_of(large)))) == (20, 100)
    assert statements(small) == statements(large), (statements(small), statements(large))
    assert statements(large) <= MOST


def _attach(session, owner, n: int) -> None:
    """``n`` rows of every kind the record page shows."""
    tags = [f.make_tag(session) for _ in range(min(n, 5))]
    owner.tags.extend(tags)
    for i in range(n):
        f.make_contact(session, owner, surname=f"Contact{i}", is_primary=i == 0)
        f.make_note(session, owner, body=f"Note{i}", important=i % 3 == 0)
        f.make_booking(session, owner, title=f"Gig{i}")
        f.make_branch(session, owner, name=f"Branch{i}")
        f.make_work_address(session, owner, address_line_1=f"{i} Work Lane")
        f.make_invoice(session, owner, amount="10.00")
        f.make_payment(session, owner, amount="5.00")


# The record page has twelve sections (summary and pinned notes, contacts, branches, work
# addresses, bookings, notes, timeline, duplicates, money, the portal account, the portal's
# open questions, related people), one statement each at most.
RECORD_MOST = 14


@pytest.mark.parametrize("role", ["owner", "coordinator"])
def test_the_customer_record_page_costs_the_same_with_one_or_thirty_of_everything(
        app, client, login, role):
    with app.app_context():
        few, many = customer(db.session), customer(db.session)
        _attach(db.session, few, 1)
        _attach(db.session, many, 30)
        db.session.commit()
        few, many = few.id, many.id
    login(role)

    one = client.get(url(role, "customer", f"details/?id={few}"))
    thirty = client.get(url(role, "customer", f"details/?id={many}"))

    page = text_of(thirty)
    assert all(f"{kind}29" in page for kind in ("Contact", "Note", "Gig", "Branch"))
    assert statements(one) == statements(thirty) <= RECORD_MOST


# A work address's page: the signed-in user, the address, its customer and landlord (one
# statement), its notes, its service reminders and its bookings (both parts in one).
WORK_ADDRESS_MOST = 6


@pytest.mark.parametrize("role", ["owner", "coordinator"])
def test_a_work_address_page_costs_the_same_with_one_or_thirty_of_everything(
        app, client, login, role):
    with app.app_context():
        keys = []
        for n in (1, 30):
            owner, landlord = customer(db.session), customer(db.session)
            address = f.make_work_address(db.session, owner, landlord=landlord)
            for i in range(n):
                f.make_booking(db.session, owner, work_address=address, title=f"Gig{i}",
                               status="completed" if i % 2 else "confirmed")
                f.make_note(db.session, None, work_address=address, body=f"Note{i}")
                f.make_reminder(db.session, address, description=f"Service{i}")
            keys.append(address.id)
        db.session.commit()
    login(role)

    one, thirty = (client.get(url(role, "work_address", f"details/?id={key}")) for key in keys)

    page = text_of(thirty)
    assert all(f"{kind}29" in page for kind in ("Gig", "Note", "Service"))
    assert statements(one) == statements(thirty) <= WORK_ADDRESS_MOST


def test_customer_search_page_costs_the_same_at_any_page_size(app, client, login):
    login("owner")
    seed(app, "customer", 120)

    small = client.get(url("owner", "customer", "?search=row&page_size=20"))
    large = client.get(url("owner", "customer", "?search=row&page_size=100"))

    assert len(list_row_ids(text_of(large))) == 100
    assert statements(small) == statements(large) <= MOST
