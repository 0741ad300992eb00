"""Records created in the admin get their human number from the gap-free sequences (DESIGN
§3): a booking its reference, an issued invoice and a credit note their numbers."""

import pytest

from crm.extensions import db
from crm.models import Booking, CreditNote, Invoice
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
    ("invoice", Invoice, {"status": "issued", "issue_date": "2026-05-01",
                          "due_date": "2026-05-31"}, "number", "INV-000001"),
    ("credit_note", CreditNote, {"issue_date": "2026-05-01"}, "number", "CN-000001"),
], ids=["booking", "issued-invoice", "credit-note"])
def test_a_new_record_gets_the_next_number(app, client, client_id, slug, model, form,
                                           attribute, number):
    saved = submit(client, url("owner", slug, "new/"), {"customer": client_id, **form})

    assert saved.status_code == 302, flashes(text_of(saved))
    with app.app_context():
        assert [getattr(row, attribute) for row in db.session.query(model)] == [number]


def test_a_draft_invoice_has_no_number_until_it_is_issued(app, client, client_id):
    submit(client, url("owner", "invoice", "new/"),
           {"customer": client_id, "status": "draft", "issue_date": "2026-05-01",
            "due_date": "2026-05-31"})
    with app.app_context():
        draft = db.session.query(Invoice).one()
        assert draft.number is None
        key = draft.id

    saved = submit(client, url("owner", "invoice", f"edit/?id={key}"), {"status": "issued"})

    assert saved.status_code == 302, flashes(text_of(saved))
    with app.app_context():
        assert db.session.get(Invoice, key).number == "INV-000001"
