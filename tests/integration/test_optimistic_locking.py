"""Concurrent edits: two people open the same record; the first saves; the
second's save is refused with a clear message and never overwrites the first's change."""

from crm.admin_views.adapters import STALE_MESSAGE
from crm.extensions import db
from crm.models import Booking, Customer
from tests import factories as f
from tests.integration.helpers import customer, flashes, form_values, load, text_of, url


def _open(client, form_url: str) -> dict:
    page = client.get(form_url)
    assert page.status_code == 200
    return form_values(text_of(page))


def test_the_second_save_of_a_customer_is_refused(app, client, login, other_client):
    login("owner")
    colleague = other_client("admin")
    with app.app_context():
        row = customer(db.session, surname="Original", town="Leeds")
        db.session.commit()
        key = row.id
    mine = _open(client, url("owner", "customer", f"edit/?id={key}"))
    theirs = _open(colleague, url("admin", "customer", f"edit/?id={key}"))

    first = client.post(url("owner", "customer", f"edit/?id={key}"),
                        data={**mine, "surname": "First", "town": "York"})
    second = colleague.post(url("admin", "customer", f"edit/?id={key}"),
                            data={**theirs, "surname": "Second"})

    assert first.status_code == 302
    assert second.status_code == 200
    assert STALE_MESSAGE in flashes(text_of(second))
    assert load(app, Customer, key, "surname", "town") == {"surname": "First", "town": "York"}


def test_the_refused_editor_can_reload_and_save(app, client, login, other_client):
    login("owner")
    colleague = other_client("coordinator")
    with app.app_context():
        row = customer(db.session, surname="Original")
        db.session.commit()
        key = row.id
    mine = _open(client, url("owner", "customer", f"edit/?id={key}"))
    theirs = _open(colleague, url("coordinator", "customer", f"edit/?id={key}"))
    client.post(url("owner", "customer", f"edit/?id={key}"), data={**mine, "surname": "First"})
    colleague.post(url("coordinator", "customer", f"edit/?id={key}"),
                   data={**theirs, "surname": "Second"})

    reloaded = _open(colleague, url("coordinator", "customer", f"edit/?id={key}"))
    again = colleague.post(url("coordinator", "customer", f"edit/?id={key}"),
                           data={**reloaded, "surname": "Second"})

    assert reloaded["surname"] == "First"
    assert again.status_code == 302
    assert load(app, Customer, key, "surname") == {"surname": "Second"}


def test_the_second_save_of_a_booking_is_refused(app, client, login, other_client):
    login("owner")
    colleague = other_client("coordinator")
    with app.app_context():
        booking = f.make_booking(db.session, customer(db.session), title="Original")
        db.session.commit()
        key = booking.id
    mine = _open(client, url("owner", "booking", f"edit/?id={key}"))
    theirs = _open(colleague, url("coordinator", "booking", f"edit/?id={key}"))

    client.post(url("owner", "booking", f"edit/?id={key}"), data={**mine, "title": "First"})
    second = colleague.post(url("coordinator", "booking", f"edit/?id={key}"),
                            data={**theirs, "title": "Second"})

    assert STALE_MESSAGE in flashes(text_of(second))
    assert load(app, Booking, key, "title") == {"title": "First"}


def test_a_save_without_the_version_it_was_loaded_at_is_refused(app, client, login,
                                                                 other_client):
    """Leaving out (or emptying) the hidden version must not skip the check: the save
    would silently revert the colleague's change."""
    login("owner")
    colleague = other_client("admin")
    with app.app_context():
        row = customer(db.session, surname="Original", town="Leeds")
        db.session.commit()
        key = row.id
    mine = _open(client, url("owner", "customer", f"edit/?id={key}"))
    colleague.post(url("admin", "customer", f"edit/?id={key}"),
                   data={**_open(colleague, url("admin", "customer", f"edit/?id={key}")),
                         "town": "York"})

    without = {k: v for k, v in mine.items() if k != "edit_version"}
    omitted = client.post(url("owner", "customer", f"edit/?id={key}"),
                          data={**without, "surname": "Reverted"})
    emptied = client.post(url("owner", "customer", f"edit/?id={key}"),
                          data={**mine, "edit_version": "", "surname": "Reverted"})

    for response in (omitted, emptied):
        assert response.status_code == 200
        assert STALE_MESSAGE in flashes(text_of(response))
    assert load(app, Customer, key, "surname", "town") == {"surname": "Original", "town": "York"}
