"""Deleting a customer: never from a bare POST — a confirmation page says
what will be deleted and what archived instead; only a customer with nothing attached is
really deleted. Other models delete from their record page as before."""

from crm.extensions import db
from crm.models import Customer, Tag
from tests import factories as f
from tests.integration.helpers import count_rows, list_row_ids, load, text_of


def _customer_id(app, **overrides) -> int:
    with app.app_context():
        customer = f.make_customer(db.session, **overrides)
        db.session.commit()
        return customer.id


def test_the_record_page_offers_delete_as_a_post_to_the_confirmation_page(app, client, login):
    login("owner")
    key = _customer_id(app)
    page = text_of(client.get(f"/admin/owner/customer/details/?id={key}"))
    assert 'action="/admin/owner/customer/bulk/delete/"' in page
    assert "/admin/owner/customer/delete/" not in page


def test_a_bare_delete_post_only_shows_the_confirmation_page(app, client, login):
    login("owner")
    key = _customer_id(app)
    response = client.post("/admin/owner/customer/delete/", data={"id": str(key)})
    assert response.status_code == 200
    assert "will be deleted" in text_of(response)
    assert count_rows(app, Customer, Customer.id == key) == 1


def test_owner_deletes_a_customer_with_nothing_attached(app, client, login):
    login("owner")
    key = _customer_id(app)
    confirm = client.post("/admin/owner/customer/bulk/delete/", data={"ids": str(key)})
    assert "1</strong> will be deleted" in text_of(confirm)
    done = client.post("/admin/owner/customer/bulk/delete/", data={"ids": str(key), "confirm": "1"})
    assert done.status_code == 200
    assert count_rows(app, Customer, Customer.id == key) == 0


def test_a_customer_with_records_attached_is_archived_and_the_page_says_so(app, client, login):
    login("owner")
    with app.app_context():
        customer = f.make_customer(db.session)
        f.make_note(db.session, customer)
        db.session.commit()
        key = customer.id
    confirm = text_of(client.post("/admin/owner/customer/bulk/delete/", data={"ids": str(key)}))
    assert "will be archived instead" in confirm
    client.post("/admin/owner/customer/bulk/delete/", data={"ids": str(key), "confirm": "1"})
    assert load(app, Customer, key, "status") == {"status": "archived"}
    # hidden from the default list, found with the status filter
    assert key not in list_row_ids(text_of(client.get("/admin/owner/customer/")))
    filtered = client.get("/admin/owner/customer/?flt0_0=archived")
    assert key in list_row_ids(text_of(filtered))


def test_a_coordinator_cannot_delete_a_customer(app, client, login):
    login("coordinator")
    key = _customer_id(app)
    page = text_of(client.get(f"/admin/coordinator/customer/details/?id={key}"))
    assert "bulk/delete/" not in page
    response = client.post("/admin/coordinator/customer/bulk/delete/",
                           data={"ids": str(key), "confirm": "1"})
    assert response.status_code == 403
    client.post("/admin/coordinator/customer/delete/", data={"id": str(key)})
    assert count_rows(app, Customer, Customer.id == key) == 1


def test_a_coordinator_may_delete_a_tag(app, client, login):
    login("coordinator")
    with app.app_context():
        key = f.make_tag(db.session).id
        db.session.commit()
    client.post("/admin/coordinator/tag/delete/", data={"id": str(key)})
    assert count_rows(app, Tag, Tag.id == key) == 0
