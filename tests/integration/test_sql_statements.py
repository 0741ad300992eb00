"""SQL statements per page (DESIGN §8): a list page costs the same few statements whatever
its size and however many related rows each row has; so does a customer's details page."""

import pytest

from crm.admin_views import REGISTRY
from crm.extensions import db
from tests import factories as f
from tests.integration.helpers import customer, list_row_ids, seed, statements, text_of, url

MOST = 10
LISTS = [pytest.param(slug, "owner", id=slug) for _, _, _, slug in REGISTRY]
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


def test_customer_details_cost_the_same_with_one_or_thirty_contacts(app, client, login):
    with app.app_context():
        few, many = customer(db.session), customer(db.session)
        tags = [f.make_tag(db.session) for _ in range(5)]
        f.make_contact(db.session, few, is_primary=True)
        few.tags.append(tags[0])
        for i in range(30):
            f.make_contact(db.session, many, surname=f"Contact{i}", is_primary=i == 0)
        many.tags.extend(tags)
        db.session.commit()
        few, many = few.id, many.id
    login("owner")

    one = client.get(url("owner", "customer", f"details/?id={few}"))
    thirty = client.get(url("owner", "customer", f"details/?id={many}"))

    assert "Contact29" in text_of(thirty)
    assert statements(one) == statements(thirty) <= MOST


def test_customer_search_page_costs_the_same_at_any_page_size(app, client, login):
    login("owner")
    seed(app, "customer", 120)

    small = client.get(url("owner", "customer", "?search=row&page_size=20"))
    large = client.get(url("owner", "customer", "?search=row&page_size=100"))

    assert len(list_row_ids(text_of(large))) == 100
    assert statements(small) == statements(large) <= MOST
