"""What the audit trail says about form edits, and who may read it: every create and update
names the fields it changed (never their values), inline contacts included; the customer's
timeline says what changed; and a coordinator reads neither money actions nor the names of
money fields there."""

from crm.extensions import db
from crm.models import AuditEvent, Customer
from tests import factories as f
from tests.integration.helpers import by_testid, customer, submit, text_of, url


def _events(app, subject_type: str, key: int, verb: str) -> list[dict]:
    with app.app_context():
        return [e.details for e in db.session.query(AuditEvent).filter_by(
            subject_type=subject_type, subject_id=key, verb=verb).order_by(AuditEvent.id)]


def _timeline(client, role: str, key: int) -> str:
    page = client.get(f"/admin/{role}/customer/details/?id={key}")
    assert page.status_code == 200
    return by_testid(text_of(page), "timeline")[0]


def _person(app, **overrides) -> int:
    with app.app_context():
        row = customer(db.session, surname="Audited", town="Leeds", county="West Yorkshire",
                       **overrides)
        db.session.commit()
        return row.id


def test_an_edit_records_the_names_of_the_changed_fields_and_not_their_values(app, client,
                                                                               login):
    key = _person(app)
    login("owner")

    response = submit(client, url("owner", "customer", f"edit/?id={key}"),
                      {"county": "North Yorkshire", "town": "Harrogate"})

    assert response.status_code == 302
    (details,) = _events(app, "Customer", key, "update")
    assert details["fields"] == ["county", "town"]
    assert "Harrogate" not in str(details) and "North Yorkshire" not in str(details)


def test_an_unchanged_save_names_no_field(app, client, login):
    key = _person(app)
    login("owner")

    submit(client, url("owner", "customer", f"edit/?id={key}"), {})

    assert _events(app, "Customer", key, "update") == [{"fields": []}]


def test_a_create_names_the_fields_given(app, client, login):
    login("coordinator")
    response = client.post(url("coordinator", "tag", "new/"), data={"name": "VIP"})

    assert response.status_code == 302
    with app.app_context():
        event = db.session.query(AuditEvent).filter_by(subject_type="Tag", verb="create").one()
    assert event.details == {"fields": ["name"]}


def test_inline_contact_changes_are_recorded(app, client, login):
    with app.app_context():
        row = customer(db.session, surname="WithContacts")
        f.make_contact(db.session, row, surname="Keeps", email="keeps@example.com")
        f.make_contact(db.session, row, surname="Goes")
        db.session.commit()
        key = row.id
    login("owner")
    form_url = url("owner", "customer", f"edit/?id={key}")
    page = text_of(client.get(form_url))
    assert 'name="contacts-1-surname"' in page

    response = submit(client, form_url, {
        "contacts-0-email": "changed@example.com",
        "del-contacts-1": "y",
        "contacts-2-surname": "Arrives",
    })

    assert response.status_code == 302, text_of(response)[:2000]
    (details,) = _events(app, "Customer", key, "update")
    assert details["related"] == {"contacts": {"added": 1, "removed": 1, "fields": ["email"]}}
    assert "changed@example.com" not in str(details)


def test_the_timeline_says_what_changed(app, client, login):
    key = _person(app)
    login("owner")
    submit(client, url("owner", "customer", f"edit/?id={key}"), {"county": "Somerset"})

    timeline = _timeline(client, "owner", key)

    assert "changed County Owner" in timeline  # what changed (not to what), and who did it
    assert "Somerset" not in timeline


def test_a_coordinator_does_not_see_money_fields_named_on_the_timeline(app, client, login,
                                                                       other_client):
    key = _person(app)
    owner = other_client("owner")
    submit(owner, url("owner", "customer", f"edit/?id={key}"),
           {"creditor_days": "45", "price_book": "Trade", "county": "Dorset"})
    submit(owner, url("owner", "customer", f"edit/?id={key}"), {"creditor_days": "60"})
    login("coordinator")

    timeline = _timeline(client, "coordinator", key)
    owners = _timeline(owner, "owner", key)

    assert "changed County Owner" in timeline
    assert "credit days" not in timeline.lower() and "price book" not in timeline.lower()
    assert timeline.count("changed") == 1  # the edit of credit days alone is not shown at all
    assert "changed County, Credit days, Price book Owner" in owners
    assert "changed Credit days Owner" in owners


def test_a_coordinator_does_not_see_money_actions_on_the_timeline(app, client, login,
                                                                  other_client):
    key = _person(app)
    with app.app_context():
        f.make_invoice(db.session, db.session.get(Customer, key), amount="100.00")
        db.session.commit()
    owner = other_client("owner")
    recorded = owner.post(url("owner", "payment", "record/"), data={
        "customer_id": str(key), "received_on": "2026-01-05", "method": "card",
        "reference": "", "amount": "40.00", "confirm": "1"})
    assert recorded.status_code == 302
    assert "recorded a payment of £40.00 Owner" in _timeline(owner, "owner", key)
    login("coordinator")

    timeline = _timeline(client, "coordinator", key)

    assert "payment" not in timeline.lower()
