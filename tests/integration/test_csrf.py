"""CSRF: a POST without the session's token, or with a forged one, is refused
with 400 and changes nothing: admin create, edit, delete, bulk action, inline edit, and the
staff login."""

import pytest

from crm.extensions import db
from crm.models import Customer
from tests.conftest import PASSWORD
from tests.integration.helpers import count_rows, customer, load, text_of, url


@pytest.fixture
def victim(app, login):
    login("owner")
    with app.app_context():
        row = customer(db.session, surname="Victim")
        db.session.commit()
        return row.id


@pytest.fixture(params=["missing", "forged"])
def token(request):
    return {} if request.param == "missing" else {"csrf_token": "forged-token"}


def test_create_without_the_token_is_refused(app, client, victim, token):
    response = client.post(url("owner", "customer", "new/"), csrf=False,
                           data={"surname": "Forged", "address_line_1": "1 St",
                                 "postcode": "LS1 1AA", "customer_type": "private", **token})

    assert response.status_code == 400
    assert count_rows(app, Customer) == 1


def test_edit_without_the_token_is_refused(app, client, victim, token):
    response = client.post(url("owner", "customer", f"edit/?id={victim}"), csrf=False,
                           data={"surname": "Forged", "address_line_1": "1 St",
                                 "postcode": "LS1 1AA", "customer_type": "private", **token})

    assert response.status_code == 400
    assert load(app, Customer, victim, "surname") == {"surname": "Victim"}


def test_delete_without_the_token_is_refused(app, client, victim, token):
    response = client.post(url("owner", "customer", "delete/"), csrf=False,
                           data={"id": str(victim), **token})

    assert response.status_code == 400
    assert count_rows(app, Customer) == 1


def test_bulk_action_without_the_token_is_refused(app, client, victim, token):
    response = client.post(url("owner", "customer", "action/"), csrf=False,
                           data={"action": "delete", "rowid": [str(victim)], **token})

    assert response.status_code == 400
    assert count_rows(app, Customer) == 1


def test_inline_edit_without_the_token_is_refused(app, client, victim, token):
    response = client.post(url("owner", "customer", "ajax/update/"), csrf=False,
                           data={"list_form_pk": str(victim), "surname": "Forged", **token})

    assert response.status_code == 400
    assert load(app, Customer, victim, "surname") == {"surname": "Victim"}


def test_confirmed_delete_without_the_token_is_refused(app, client, victim, token):
    response = client.post(url("owner", "customer", "bulk/delete/"), csrf=False,
                           data={"ids": str(victim), "confirm": "1", **token})

    assert response.status_code == 400
    assert count_rows(app, Customer) == 1


def test_the_same_delete_with_the_token_works(app, client, victim):
    """The control: the requests above fail for want of the token, not for another reason."""
    response = client.post(url("owner", "customer", "bulk/delete/"),
                           data={"ids": str(victim), "confirm": "1"})

    assert response.status_code == 200
    assert count_rows(app, Customer) == 0


def test_login_without_the_token_is_refused(client, login, token):
    login("owner")
    client.get("/logout")

    response = client.post("/login", csrf=False,
                           data={"email": "owner@example.com",
                                 "password": PASSWORD, **token})

    assert response.status_code == 400
    assert client.get(url("owner", "customer")).status_code == 302
    assert "Sign in" in text_of(client.get("/login"))
