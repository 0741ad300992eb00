"""Records created in the admin get their human number from the gap-free sequences: a
booking its reference and a credit note its number when created, an invoice its number only
when it is issued."""

import pytest

from crm.extensions import db
from crm.models import Booking, Customer, Invoice
from tests import factories as f
from tests.integration.helpers import customer, flashes, submit, text_of, url


@pytest.fixture
def client_id(app, login):
    login("owner")
    with app.app_context():
        row = customer(db.session)
        db.session.commit()
        return str(row.id)


@pytest.mark.parametrize(("slug", "model", "form", "attribute", "number"), [
    ("booking", Booking, {"title": "Gig", "starts_at": "2026-07-01 19:00:00"}, "reference",
     "B-000001"),
    # Credit notes are numbered by crm.actions.credit_note (tests/unit/test_credit_note.py).
], ids=["booking"])
def test_a_new_record_gets_the_next_number(app, client, client_id, slug, model, form,
                                           attribute, number):
    saved = submit(client, url("owner", slug, "new/"), {"customer": client_id, **form})

    assert saved.status_code == 302, flashes(text_of(saved))
    with app.app_context():
        assert [getattr(row, attribute) for row in db.session.query(model)] == [number]


def test_a_draft_invoice_has_no_number_until_it_is_issued(app, client, client_id):
    submit(client, url("owner", "invoice", "new/"),
           {"customer": client_id, "issue_date": "2026-05-01", "due_date": "2026-05-31",
            "lines-0-description": "Work", "lines-0-quantity": "1",
            "lines-0-unit_price": "10.00", "lines-0-category": "labour"})
    with app.app_context():
        draft = db.session.query(Invoice).one()
        assert draft.number is None
        key = draft.id

    issued = client.post(url("owner", "invoice", "issue/"), data={"id": str(key)})

    assert issued.status_code == 302, flashes(text_of(issued))
    with app.app_context():
        assert db.session.get(Invoice, key).number == "INV-000001"


def test_drafts_are_numbered_in_the_order_they_are_issued(app, client, client_id):
    """Numbers follow issuing, not creation; a refused issue takes no number."""
    with app.app_context():
        owner_customer = db.session.get(Customer, int(client_id))
        first, second = (f.make_invoice(db.session, owner_customer, status="draft")
                         for _ in range(2))
        empty = Invoice(customer=owner_customer, issue_date=first.issue_date,
                        due_date=first.due_date)
        db.session.add(empty)
        db.session.commit()
        keys = [second.id, empty.id, first.id]

    for key in keys:
        client.post(url("owner", "invoice", "issue/"), data={"id": str(key)})

    with app.app_context():
        assert [db.session.get(Invoice, key).number for key in keys] == [
            "INV-000001", None, "INV-000002"]
