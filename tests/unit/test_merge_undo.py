"""Undoing a merge puts back exactly what the merge changed, and refuses, saying what is
unsafe, whenever putting back would lose or tangle something done since."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from crm import ledger
from crm.actions import ActionError
from crm.actions import merge_undo as undo_module
from crm.actions.merge import merge_customers
from crm.actions.merge_undo import UNDO_DAYS, undo_check, undo_merge
from crm.models import AuditEvent, Booking, CreditNote, Customer, CustomerMerge, Note
from crm.models.base import utcnow
from tests.conftest import create_user
from tests.factories import (
    make_allocation,
    make_booking,
    make_contact,
    make_customer,
    make_invoice,
)
from tests.unit.test_merge import LOG_TABLES, build_world, snapshot

# What undo may change besides the rows it puts back: versions and edit times move forward.
IGNORE = ("version", "updated_at")


@pytest.fixture
def owner(session):
    return create_user("owner")


@pytest.fixture
def world(session):
    return build_world(session)


def _merge(session, survivor, dups, actor, **kwargs) -> int:
    result = merge_customers(session, survivor_id=survivor.id, duplicate_ids=[d.id for d in dups],
                             actor=actor, **kwargs)
    session.commit()
    return result.merge_id


def _undo(session, merge_id, actor, **kwargs):
    result = undo_merge(session, merge_id=merge_id, actor=actor, **kwargs)
    session.commit()
    return result


def _refused(session, merge_id, actor, message, **kwargs):
    """Undo refuses with ``message``, undo_check gives the same reason, nothing changes."""
    before = snapshot(session)
    assert any(message in reason for reason in undo_check(session, merge_id=merge_id, **kwargs))
    with pytest.raises(ActionError, match=message):
        undo_merge(session, merge_id=merge_id, actor=actor, **kwargs)
    session.rollback()
    assert snapshot(session) == before


def test_undo_puts_back_every_row_exactly(session, world, owner):
    w = world
    before = snapshot(session, ignore=IGNORE, skip=LOG_TABLES)
    merge_id = _merge(session, w["survivor"], [w["dup"]], owner,
                      field_choices={"email": w["dup"].id, "first_name": w["dup"].id})
    assert snapshot(session, ignore=IGNORE, skip=LOG_TABLES) != before
    result = _undo(session, merge_id, owner)
    assert snapshot(session, ignore=IGNORE, skip=LOG_TABLES) == before
    assert ledger.differences(session)[1] == 0
    assert result.verb == "merge_undo" and result.changed_refs == (w["dup"].reference,)
    assert result.details["restored"]["contacts"] == 2
    assert result.details["restored"]["landlord_work_addresses"] == 1
    assert f"{w['dup'].reference} restored" in result.message


def test_undo_re_promotes_the_demoted_primary_and_restores_tags(session, world, owner):
    w = world
    merge_id = _merge(session, w["survivor"], [w["dup"]], owner)
    _undo(session, merge_id, owner)
    dup = session.get(Customer, w["dup"].id)
    assert dup.merged_into_id is None
    assert [c.id for c in dup.contacts if c.is_primary] == [w["dup_primary"].id]
    assert sorted(t.name for t in dup.tags) == sorted(t.name for t in w["dup"].tags)
    assert len(session.get(Customer, w["survivor"].id).tags) == 2


def test_undo_gives_a_duplicate_back_its_primary_kept_on_the_survivor(session, owner):
    survivor, dup = make_customer(session), make_customer(session)
    primary = make_contact(session, dup, is_primary=True)
    session.commit()
    merge_id = _merge(session, survivor, [dup], owner)
    assert session.get(Customer, survivor.id).contacts[0].is_primary
    _undo(session, merge_id, owner)
    restored = session.get(Customer, dup.id).contacts
    assert [(c.id, c.is_primary) for c in restored] == [(primary.id, True)]


def test_undo_writes_one_audit_event_and_marks_the_merge(session, world, owner):
    w = world
    merge_id = _merge(session, w["survivor"], [w["dup"]], owner)
    when = utcnow() + timedelta(days=3)
    _undo(session, merge_id, owner, now=when)
    event = session.scalars(select(AuditEvent).where(AuditEvent.verb == "merge_undo")).one()
    assert (event.subject_type, event.subject_id, event.actor_id) == (
        "Customer", w["survivor"].id, owner.id)
    assert event.details["merge_id"] == merge_id
    assert event.details["duplicates"] == [w["dup"].reference]
    assert "Keeper" not in str(event.details) and "example.com" not in str(event.details)
    merge = session.get(CustomerMerge, merge_id)
    assert (merge.undone_at, merge.undone_by_id) == (when, owner.id)


def test_undo_check_is_empty_while_undo_is_safe(session, world, owner):
    merge_id = _merge(session, world["survivor"], [world["dup"]], owner)
    assert undo_check(session, merge_id=merge_id) == []


# -- refusals ----------------------------------------------------------------------------


def test_refuses_an_unknown_merge(session, owner):
    _refused(session, 987654, owner, "There is no merge #987654.")


def test_refuses_twice(session, world, owner):
    merge_id = _merge(session, world["survivor"], [world["dup"]], owner)
    _undo(session, merge_id, owner)
    _refused(session, merge_id, owner, f"Merge #{merge_id} was already undone")


def test_refuses_after_the_undo_window(session, world, owner):
    merge_id = _merge(session, world["survivor"], [world["dup"]], owner)
    late = utcnow() + timedelta(days=UNDO_DAYS, minutes=1)
    _refused(session, merge_id, owner, f"more than {UNDO_DAYS} days ago", now=late)
    assert undo_check(session, merge_id=merge_id, now=late - timedelta(minutes=2)) == []


def test_refuses_once_the_survivor_was_edited(session, world, owner):
    w = world
    merge_id = _merge(session, w["survivor"], [w["dup"]], owner)
    session.get(Customer, w["survivor"].id).town = "York"
    session.commit()
    _refused(session, merge_id, owner,
             f"{w['survivor'].reference} was edited after the merge; undoing would lose those "
             "edits.")


def test_refuses_once_the_survivor_was_redacted(session, world, owner):
    w = world
    merge_id = _merge(session, w["survivor"], [w["dup"]], owner)
    session.get(Customer, w["survivor"].id).redacted_at = utcnow()
    session.commit()
    merge = session.get(CustomerMerge, merge_id)
    merge.survivor_version = session.get(Customer, w["survivor"].id).version
    session.commit()
    _refused(session, merge_id, owner, f"{w['survivor'].reference} has been redacted")


def test_refuses_once_a_duplicate_was_redacted(session, world, owner):
    w = world
    merge_id = _merge(session, w["survivor"], [w["dup"]], owner)
    session.get(Customer, w["dup"].id).redacted_at = utcnow()
    session.get(CustomerMerge, merge_id).survivor_before = None
    session.commit()
    _refused(session, merge_id, owner, f"{w['dup'].reference} has been redacted since the merge")


def test_refuses_while_a_later_merge_into_the_survivor_stands(session, world, owner):
    w = world
    first = _merge(session, w["survivor"], [w["dup"]], owner)
    later = _merge(session, w["survivor"], [w["other"]], owner,
                   field_choices={"surname": w["other"].id})
    _refused(session, first, owner, f"undo merge #{later} first")
    _undo(session, later, owner)
    _undo(session, first, owner)  # the survivor is back as the first merge left it
    assert session.get(Customer, w["dup"].id).merged_into_id is None


def test_refuses_while_the_survivor_is_merged_into_another(session, world, owner):
    w = world
    first = _merge(session, w["survivor"], [w["dup"]], owner)
    later = _merge(session, w["other"], [w["survivor"]], owner)
    _refused(session, first, owner,
             f"{w['survivor'].reference} has since been merged into {w['other'].reference}; "
             f"undo merge #{later} first.")
    assert session.get(Customer, w["dup"].id).merged_into_id == w["other"].id
    _undo(session, later, owner)
    assert session.get(Customer, w["dup"].id).merged_into_id == w["survivor"].id
    _undo(session, first, owner)
    assert session.get(Customer, w["dup"].id).merged_into_id is None


def test_refuses_when_a_moved_row_was_deleted(session, world, owner):
    w = world
    extra = make_booking(session, w["dup"])
    session.commit()
    merge_id = _merge(session, w["survivor"], [w["dup"]], owner)
    session.delete(session.get(Booking, extra.id))
    session.delete(session.get(Booking, w["booking"].id))
    session.commit()
    _refused(session, merge_id, owner,
             "2 bookings moved by the merge have since been deleted or moved.")


def test_refuses_when_a_moved_row_was_moved_on(session, world, owner):
    w = world
    merge_id = _merge(session, w["survivor"], [w["dup"]], owner)
    session.get(Note, w["note"].id).customer_id = w["other"].id
    session.commit()
    _refused(session, merge_id, owner,
             "1 note moved by the merge has since been deleted or moved.")


def test_refuses_when_an_allocation_would_link_two_customers_money(session, world, owner):
    w = world
    merge_id = _merge(session, w["survivor"], [w["dup"]], owner)
    # The duplicate's credit note, now the survivor's, pays off one of the survivor's own.
    survivor = session.get(Customer, w["survivor"].id)
    invoice = make_invoice(session, survivor, amount="15.00")
    moved_note = session.scalars(
        select(CreditNote).where(CreditNote.customer_id == survivor.id)
    ).one()
    make_allocation(session, invoice, credit_note=moved_note, amount="15.00")
    session.commit()
    _refused(session, merge_id, owner, "1 allocation made since the merge links a payment")


def test_refuses_when_a_new_primary_contact_sits_on_the_tombstone(session, world, owner):
    w = world
    merge_id = _merge(session, w["survivor"], [w["dup"]], owner)
    make_contact(session, session.get(Customer, w["dup"].id), is_primary=True)
    session.commit()
    _refused(session, merge_id, owner,
             f"{w['dup'].reference} has a new primary contact since the merge.")


# -- rollback ----------------------------------------------------------------------------


@pytest.mark.parametrize("step", ["_restore_tags", "_revive", "recompute_ledger"])
def test_a_failure_part_way_leaves_the_merge_in_place(session, world, owner, monkeypatch, step):
    merge_id = _merge(session, world["survivor"], [world["dup"]], owner)
    before = snapshot(session)

    def fail(*args, **kwargs):
        raise RuntimeError("connection lost")

    monkeypatch.setattr(undo_module, step, fail)
    with pytest.raises(RuntimeError):
        undo_merge(session, merge_id=merge_id, actor=owner)
    session.rollback()
    assert snapshot(session) == before
    count = session.scalar(select(func.count()).select_from(AuditEvent))
    assert count == 1  # the merge's own
