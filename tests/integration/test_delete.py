"""Deleting from a record's page: a POST with the CSRF token, for the roles allowed to."""

from crm.extensions import db
from crm.models import Customer, Tag
from tests import factories as f
from tests.integration.helpers import count_rows, flashes, text_of


def _customer_id(app, **overrides) -> int:
    with app.app_context():
        customer = f.make_customer(db.session, **overrides)
        db.session.commit()
        return customer.id


def test_owner_deletes_a_customer_from_its_page(app, client, login):
    login("owner")
    key = _customer_id(app)
    page = text_of(client.get(f"/admin/owner/customer/details/?id={key}"))
    assert "/admin/owner/customer/delete/" in page
    response = client.post("/admin/owner/customer/delete/", data={"id": str(key)})
    assert response.status_code == 302
    assert count_rows(app, Customer, Customer.id == key) == 0


def test_the_list_has_no_per_row_delete_form(app, client, login):
    login("owner")
    _customer_id(app)
    page = text_of(client.get("/admin/owner/customer/"))
    assert "/admin/owner/customer/delete/" not in page


def test_a_customer_with_records_attached_is_kept_with_a_readable_message(app, client, login):
    login("owner")
    with app.app_context():
        customer = f.make_customer(db.session)
        f.make_note(db.session, customer)
        db.session.commit()
        key = customer.id
    response = client.post("/admin/owner/customer/delete/", data={"id": str(key)},
                           follow_redirects=True)
    assert response.status_code == 200
    assert any("still refer" in message for message in flashes(text_of(response)))
    assert count_rows(app, Customer, Customer.id == key) == 1


def test_a_coordinator_cannot_delete_a_customer(app, client, login):
    login("coordinator")
    key = _customer_id(app)
    page = text_of(client.get(f"/admin/coordinator/customer/details/?id={key}"))
    assert "/customer/delete/" not in page
    client.post("/admin/coordinator/customer/delete/", data={"id": str(key)})
    assert count_rows(app, Customer, Customer.id == key) == 1


def test_a_coordinator_may_delete_a_tag(app, client, login):
    login("coordinator")
    with app.app_context():
        key = f.make_tag(db.session).id
        db.session.commit()
    client.post("/admin/coordinator/tag/delete/", data={"id": str(key)})
    assert count_rows(app, Tag, Tag.id == key) == 0
