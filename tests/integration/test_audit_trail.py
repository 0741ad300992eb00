"""What the audit trail says about form edits, and who may read it: every create and update
names the fields it changed (never their values), inline contacts included; the customer's
timeline says what changed; and a coordinator reads neither money actions nor the names of
money fields there."""

import re
from datetime import timedelta
from html import unescape

from crm.extensions import db
from crm.formatting import local_now
from crm.models import AuditEvent, Customer
from tests import factories as f
from tests.integration.helpers import by_testid, customer, submit, text_of, url, view_for


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


# --- the audit log screen ------------------------------------------------------------------------
def _log_rows(html: str) -> list[str]:
    """The audit log's rows as text ("5 Dec 2026, 14:05 Owner set C-000001 dormant")."""
    table = html.split('model-list', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)[1:]
    return [" ".join(unescape(re.sub(r"<[^>]+>", " ", row)).split()) for row in rows]


def _filter_arg(app, name: str, operation: str = "") -> str:
    view = view_for(app, "audit_event", "owner")
    return next(arg for arg, (_, flt) in view._filter_args.items()
                if flt.name == name and operation in str(flt.operation()))


def test_the_audit_log_reads_as_sentences_naming_who_and_which_customer(app, client, login):
    with app.app_context():
        rows = [customer(db.session, surname=f"Logged{i}") for i in range(2)]
        db.session.commit()
        keys, refs = [r.id for r in rows], [r.reference for r in rows]
    login("owner")
    client.post(url("owner", "customer", "bulk/set_dormant/"),
                data={"ids": [str(k) for k in keys], "confirm": "1"})
    submit(client, url("owner", "customer", f"edit/?id={keys[0]}"), {"county": "Somerset"})

    html = text_of(client.get(url("owner", "audit_event")))
    log = _log_rows(html)

    assert any(row.endswith("Owner set 2 customers dormant") for row in log), log
    assert any(row.endswith(f"Owner set {refs[1]} dormant") for row in log), log
    assert any(row.endswith(f"Owner changed County on {refs[0]}") for row in log), log
    # the customer named opens its record; the colleague opens their staff page
    assert f'<a href="/admin/owner/customer/details/?id={keys[1]}">{refs[1]}</a>' in html
    assert re.search(r'<a href="/admin/owner/user/details/\?id=\d+">Owner</a> set', html)
    # a person reads sentences, never the stored JSON or an e-mail address for a colleague
    assert not any("{" in row or "owner@example.com" in row or "Somerset" in row for row in log)


def test_the_audit_log_filters_by_what_was_done_who_did_it_and_the_day(app, client, login,
                                                                      other_client):
    with app.app_context():
        rows = [customer(db.session, surname=f"Filtered{i}") for i in range(2)]
        db.session.commit()
        keys, refs = [r.id for r in rows], [r.reference for r in rows]
    coordinator = other_client("coordinator")
    coordinator.post(url("coordinator", "customer", "note/"),
                     data={"customer_id": str(keys[1]), "kind": "note", "body": "Hello."})
    login("owner")
    client.post(url("owner", "customer", "status/reactivate/"), data={"id": str(keys[0])})
    client.post(url("owner", "customer", "bulk/set_dormant/"),
                data={"ids": [str(keys[0])], "confirm": "1"})
    with app.app_context():  # the note was written yesterday
        note = db.session.query(AuditEvent).filter_by(verb="add_note").one()
        note.created_at -= timedelta(days=1)
        coordinator_id = note.actor_id
        db.session.commit()
        today = local_now().date()  # the business's calendar day, as the filter reads it

    def log(**query) -> list[str]:
        return _log_rows(text_of(client.get(url("owner", "audit_event"), query_string=query)))

    verb = _filter_arg(app, "What was done")
    assert log(**{f"flt0_{verb}": "set_dormant"}) == [
        row for row in log() if "dormant" in row] != []
    assert all("dormant" in row for row in log(**{f"flt0_{verb}": "set_dormant"}))
    by_coordinator = log(**{f"flt0_{_filter_arg(app, 'Who')}": str(coordinator_id)})
    assert len(by_coordinator) == 1 and by_coordinator[0].endswith(
        f"Coordinator added a note to {refs[1]}")
    since_today = log(**{f"flt0_{_filter_arg(app, 'Day', 'after')}": today.isoformat()})
    assert since_today and not any("note" in row for row in since_today)
    before_today = log(**{f"flt0_{_filter_arg(app, 'Day', 'before')}":
                          (today - timedelta(days=1)).strftime("%d %b %Y")})
    assert len(before_today) == 1 and "added a note" in before_today[0]
    # a day that is not a day is ignored, never an error
    assert client.get(url("owner", "audit_event"), query_string={
        f"flt0_{_filter_arg(app, 'Day', 'after')}": "31 Feb 2026"}).status_code == 200


def test_an_audit_event_page_lists_what_it_holds_without_json(app, client, login):
    key = _person(app)
    login("owner")
    submit(client, url("owner", "customer", f"edit/?id={key}"), {"county": "Somerset",
                                                                  "town": "Bath"})
    with app.app_context():
        event = db.session.query(AuditEvent.id).filter_by(verb="update").scalar()

    page = text_of(client.get(url("owner", "audit_event", f"details/?id={event}")))
    text = " ".join(unescape(re.sub(r"<[^>]+>", " ", page)).split())
    assert "Owner changed County, Town on C-" in text
    assert "Fields County, Town" in text
    assert "{" not in text.split("Audit log", 2)[-1] and "'fields'" not in text
