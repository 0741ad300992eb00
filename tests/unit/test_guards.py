"""The shared refusals (crm.actions.guards): a live customer or a sentence saying why not,
and nothing hanging off a redacted customer may be added or changed."""

from datetime import datetime

import pytest

from crm.actions import ActionError
from crm.actions.guards import ensure_not_redacted, ensure_record_not_redacted, live_customer
from tests.factories import make_contact, make_customer, make_note, make_work_address


def test_a_live_customer_is_returned(session):
    customer = make_customer(session)
    session.commit()

    assert live_customer(session, customer.id, doing="add notes") is customer


@pytest.mark.parametrize("key", [987654, "12", None, True])
def test_an_unknown_customer_is_refused(session, key):
    with pytest.raises(ActionError, match="^That customer does not exist.$"):
        live_customer(session, key, doing="add notes")


def test_a_merged_away_customer_is_refused_naming_its_survivor(session):
    survivor = make_customer(session)
    merged = make_customer(session, merged_into_id=survivor.id)
    session.commit()

    with pytest.raises(ActionError) as refused:
        live_customer(session, merged.id, doing="record money")

    assert str(refused.value) == (f"{merged.reference} was merged into {survivor.reference}: "
                                  "record money there instead.")


def test_a_redacted_customer_is_refused_unless_the_caller_allows_it(session):
    redacted = make_customer(session, redacted_at=datetime(2026, 1, 1))
    session.commit()

    with pytest.raises(ActionError, match="has been redacted; you cannot add notes for it"):
        live_customer(session, redacted.id, doing="add notes")
    assert live_customer(session, redacted.id, doing="record money",
                         allow_redacted=True) is redacted
    with pytest.raises(ActionError, match="has been redacted; it can no longer be edited"):
        ensure_not_redacted(redacted)


def test_records_of_a_redacted_customer_are_refused_directly_or_through_their_address(session):
    live = make_customer(session)
    redacted = make_customer(session, redacted_at=datetime(2026, 1, 1))
    address = make_work_address(session, redacted)
    session.commit()
    note_on_address = make_note(session, None, work_address=address)

    for record in (make_contact(session, redacted), note_on_address):
        with pytest.raises(ActionError, match="its records can no longer be added to"):
            ensure_record_not_redacted(record)
    ensure_record_not_redacted(make_contact(session, live))  # no refusal
