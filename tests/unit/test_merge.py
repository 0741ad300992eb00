"""Merging customers: the preview, every guard, everything that moves, the audit row, money,
and a failure part-way leaving nothing changed."""

import json
from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import event, func, select

from crm import ledger
from crm.actions import ActionError
from crm.actions import merge as merge_module
from crm.actions.block_email import block_email
from crm.actions.merge import (
    MAX_RECORDS,
    live_customer_id,
    merge_customers,
    merge_preview,
)
from crm.actions.merge_records import FIELDS, KINDS
from crm.extensions import db
from crm.models import (
    AuditEvent,
    Base,
    Booking,
    Branch,
    Contact,
    CreditNote,
    Customer,
    CustomerMerge,
    CustomerMergeMove,
    Invoice,
    Lead,
    Note,
    Payment,
    PortalAccount,
    SentMessage,
    WorkAddress,
    customer_tag,
)
from tests.conftest import create_user
from tests.factories import (
    make_allocation,
    make_booking,
    make_branch,
    make_contact,
    make_credit_note,
    make_customer,
    make_invoice,
    make_lead,
    make_note,
    make_payment,
    make_portal_account,
    make_tag,
    make_work_address,
)

D = Decimal
# Bookkeeping every merge and undo adds to; the rest of the schema must end as it began.
LOG_TABLES = ("customer_merge", "customer_merge_move", "audit_event")


def snapshot(session, *, ignore=(), skip=()) -> dict:
    """Every row of every table (sorted by key), without the columns in ``ignore`` and the
    tables in ``skip``: what "nothing changed" is compared against."""
    state = {}
    for table in Base.metadata.sorted_tables:
        if table.name in skip:
            continue
        columns = [c for c in table.c if c.name not in ignore]
        rows = session.execute(select(*columns).order_by(*table.primary_key.columns)).all()
        state[table.name] = [tuple(row) for row in rows]
    return state


@pytest.fixture
def owner(session):
    return create_user("owner")


@pytest.fixture
def world(session):
    return build_world(session)


def build_world(session) -> dict:
    """A survivor and a duplicate with one or more rows of every kind that moves."""
    survivor = make_customer(session, first_name="Sam", surname="Keeper", email="keep@example.com",
                             notes=None, town="Leeds", creditor_days=30)
    dup = make_customer(session, first_name="Samuel", surname="Keeper", email="dup@example.com",
                        notes="Prefers mornings", town=None, price_book="Trade")
    other = make_customer(session, surname="Owner")
    shared, only_survivor, only_dup = make_tag(session), make_tag(session), make_tag(session)
    survivor.tags.extend([shared, only_survivor])
    dup.tags.extend([shared, only_dup])
    w = {
        "survivor": survivor, "dup": dup, "other": other,
        "survivor_primary": make_contact(session, survivor, surname="Primary", is_primary=True),
        "survivor_contact": make_contact(session, survivor, surname="Plain"),
        "dup_primary": make_contact(session, dup, surname="DupPrimary", is_primary=True),
        "dup_contact": make_contact(session, dup, surname="DupPlain"),
        "branch": make_branch(session, dup),
        "work_address": make_work_address(session, dup),
        "let_address": make_work_address(session, other, landlord=dup),
        "booking": make_booking(session, dup),
        "lead": make_lead(session, customer=dup),
        "note": make_note(session, dup),
        "earlier": make_customer(session, surname="Earlier", merged_into_id=dup.id),
        "portal": make_portal_account(session, dup),
        "spouse": make_customer(session, surname="Spouse", hidden=True, related_to_id=dup.id),
    }
    survivor_invoice = make_invoice(session, survivor, amount="100.00")
    make_allocation(session, survivor_invoice,
                    payment=make_payment(session, survivor, amount="30.00"), amount="30.00")
    dup_invoice = make_invoice(session, dup, amount="200.00", days_overdue=10)
    make_allocation(session, dup_invoice, payment=make_payment(session, dup, amount="50.00"),
                    amount="50.00")
    make_credit_note(session, dup, amount="20.00")
    session.flush()
    session.add(SentMessage(customer_id=dup.id, kind="statement", backend="smtp",
                            reference="<statement@example.com>"))
    session.commit()
    return w


def _merge(session, w, actor, **kwargs):
    result = merge_customers(session, survivor_id=w["survivor"].id, duplicate_ids=[w["dup"].id],
                             actor=actor, **kwargs)
    session.commit()
    return result


def _count(session, model, *criteria):
    return session.scalar(select(func.count()).select_from(model).where(*criteria))


# -- the merge ---------------------------------------------------------------------------


def test_every_related_row_moves_to_the_survivor(session, world, owner):
    w = world
    s_id, d_id = w["survivor"].id, w["dup"].id
    result = _merge(session, w, owner)

    for model in (Contact, Branch, WorkAddress, Booking, Lead, Note, Invoice, CreditNote,
                  Payment, PortalAccount, SentMessage):
        assert _count(session, model, model.customer_id == d_id) == 0, model.__name__
        assert _count(session, model, model.customer_id == s_id) > 0, model.__name__
    let = session.get(WorkAddress, w["let_address"].id)
    assert (let.customer_id, let.landlord_id) == (w["other"].id, s_id)
    assert session.get(Customer, w["earlier"].id).merged_into_id == s_id
    assert session.get(Customer, w["spouse"].id).related_to_id == s_id
    assert result.moved == {
        "contacts": 2, "branches": 1, "work_addresses": 1, "landlord_work_addresses": 1,
        "bookings": 1, "leads": 1, "notes": 1, "invoices": 1, "credit_notes": 1, "payments": 1,
        "portal_account": 1, "sent_messages": 1, "tags": 2, "merged_records": 1,
        "related_people": 1,
    }
    assert result.changed == 1 and result.changed_refs == (w["dup"].reference,)
    assert result.survivor_reference == w["survivor"].reference
    assert "Merged" in result.message and "2 contacts" in result.message


def test_duplicate_becomes_a_tombstone_that_keeps_its_own_values(session, world, owner):
    w = world
    _merge(session, w, owner)
    dup = session.get(Customer, w["dup"].id)
    assert dup.merged_into_id == w["survivor"].id
    assert (dup.first_name, dup.email, dup.notes) == ("Samuel", "dup@example.com",
                                                      "Prefers mornings")
    assert live_customer_id(session, dup.id) == w["survivor"].id
    assert live_customer_id(session, w["earlier"].id) == w["survivor"].id
    assert live_customer_id(session, w["survivor"].id) == w["survivor"].id


def test_survivor_gets_the_union_of_tags_once_each(session, world, owner):
    w = world
    tags_before = {t.id for t in w["survivor"].tags} | {t.id for t in w["dup"].tags}
    _merge(session, w, owner)
    rows = session.execute(
        select(customer_tag.c.tag_id).where(customer_tag.c.customer_id == w["survivor"].id)
    ).scalars().all()
    assert sorted(rows) == sorted(tags_before)
    assert _count(session, customer_tag, customer_tag.c.customer_id == w["dup"].id) == 0


def test_exactly_one_primary_contact_remains_the_survivors(session, world, owner):
    w = world
    _merge(session, w, owner)
    primaries = session.scalars(
        select(Contact.id).where(Contact.customer_id == w["survivor"].id, Contact.is_primary)
    ).all()
    assert primaries == [w["survivor_primary"].id]
    demoted = session.scalars(select(CustomerMergeMove).where(CustomerMergeMove.kind == "demote"))
    assert [(m.row_id, m.from_customer_id) for m in demoted] == [
        (w["dup_primary"].id, w["dup"].id)
    ]


def test_without_a_survivor_primary_the_first_duplicate_in_order_keeps_its_own(session, owner):
    survivor = make_customer(session)
    first, second = make_customer(session), make_customer(session)
    make_contact(session, survivor)
    second_primary = make_contact(session, second, is_primary=True)
    first_primary = make_contact(session, first, is_primary=True)
    session.commit()
    merge_customers(session, survivor_id=survivor.id, duplicate_ids=[second.id, first.id],
                    actor=owner)
    session.commit()
    primaries = session.scalars(
        select(Contact.id).where(Contact.customer_id == survivor.id, Contact.is_primary)
    ).all()
    assert primaries == [second_primary.id]
    assert not session.get(Contact, first_primary.id).is_primary


def test_balances_add_up_and_tombstones_end_at_zero(session, world, owner):
    w = world
    before = w["survivor"].balance + w["dup"].balance
    credit = w["survivor"].account_credit + w["dup"].account_credit
    assert before == D("70.00") + D("130.00")
    _merge(session, w, owner)
    survivor, dup = session.get(Customer, w["survivor"].id), session.get(Customer, w["dup"].id)
    assert survivor.balance == before
    assert survivor.account_credit == credit
    assert survivor.overdue_amount == D("150.00")
    assert (dup.balance, dup.account_credit, dup.overdue_amount) == (D("0"), D("0"), D("0"))
    assert ledger.differences(session)[1] == 0


def test_three_way_merge(session, owner):
    survivor, a, b = (make_customer(session) for _ in range(3))
    for customer in (survivor, a, b):
        make_booking(session, customer)
        make_invoice(session, customer, amount="40.00")
    session.commit()
    result = merge_customers(session, survivor_id=survivor.id, duplicate_ids=[a.id, b.id],
                             actor=owner)
    session.commit()
    assert result.changed_refs == (a.reference, b.reference)
    assert result.moved["bookings"] == 2 and result.moved["invoices"] == 2
    assert _count(session, Booking, Booking.customer_id == survivor.id) == 3
    assert session.get(Customer, survivor.id).balance == D("120.00")
    assert {session.get(Customer, i).merged_into_id for i in (a.id, b.id)} == {survivor.id}


def test_survivor_keeps_its_values_and_fills_its_gaps_by_default(session, world, owner):
    w = world
    _merge(session, w, owner)
    survivor = session.get(Customer, w["survivor"].id)
    assert survivor.email == "keep@example.com"  # its own, not empty
    assert survivor.notes == "Prefers mornings"  # empty on the survivor: the duplicate's
    assert (survivor.creditor_days, survivor.price_book) == (30, "Trade")


def test_field_choices_pick_the_value_per_field(session, world, owner):
    w = world
    _merge(session, w, owner, field_choices={"email": w["dup"].id, "first_name": w["dup"].id,
                                             "notes": w["survivor"].id})
    survivor = session.get(Customer, w["survivor"].id)
    assert (survivor.email, survivor.first_name, survivor.notes) == (
        "dup@example.com", "Samuel", None)
    assert "samuel" in survivor.search_text


def test_the_block_goes_with_the_email_address_chosen(session, owner):
    survivor = make_customer(session)
    dup = make_customer(session)
    block_email(session, value=dup.email, reason="abuse", actor=owner)
    session.commit()
    assert not survivor.email_blocked
    merge_customers(session, survivor_id=survivor.id, duplicate_ids=[dup.id], actor=owner,
                    field_choices={"email": dup.id})
    session.commit()
    assert session.get(Customer, survivor.id).email_blocked is True


@pytest.mark.parametrize("choices, message", [
    ({"balance": 1}, "“balance” is not a field"),
    ({"reference": 1}, "“reference” is not a field"),
    ({"email": -1}, "must come from one of the records being merged"),
])
def test_field_choices_must_name_a_field_and_a_merged_record(session, world, owner, choices,
                                                             message):
    before = snapshot(session)
    with pytest.raises(ActionError, match=message):
        merge_customers(session, survivor_id=world["survivor"].id,
                        duplicate_ids=[world["dup"].id], actor=owner, field_choices=choices)
    session.rollback()
    assert snapshot(session) == before


def test_one_audit_event_without_personal_data(session, world, owner):
    w = world
    result = _merge(session, w, owner)
    events = session.scalars(select(AuditEvent)).all()
    assert len(events) == 1
    event = events[0]
    assert (event.verb, event.subject_type, event.subject_id, event.actor_id) == (
        "merge", "Customer", w["survivor"].id, owner.id)
    assert event.details == {"merge_id": result.merge_id, "duplicates": [w["dup"].reference],
                             "moved": result.moved}
    text = json.dumps(event.details)
    for personal in ("Sam", "Keeper", "example.com", "+44", "Prefers", "High Street", "LS1"):
        assert personal not in text


def test_the_merge_record_keeps_what_undo_needs(session, world, owner):
    w = world
    result = _merge(session, w, owner)
    merge = session.get(CustomerMerge, result.merge_id)
    survivor = session.get(Customer, w["survivor"].id)
    assert merge.survivor_id == survivor.id and merge.duplicate_ids == [w["dup"].id]
    assert merge.actor_id == owner.id and merge.undone_at is None
    assert merge.survivor_version == survivor.version
    assert merge.survivor_before["notes"] is None
    assert merge.survivor_before["email"] == "keep@example.com"
    moves = _count(session, CustomerMergeMove, CustomerMergeMove.merge_id == merge.id,
                   CustomerMergeMove.kind == "move")
    assert moves == sum(n for kind, n in result.moved.items() if kind != "tags")


def test_moved_rows_are_versioned_so_a_stale_form_cannot_pull_them_back(session, world, owner):
    w = world
    version = w["booking"].version
    _merge(session, w, owner)
    assert session.get(Booking, w["booking"].id).version == version + 1


def _statements(session, fn) -> int:
    seen = []

    def count(*_args):
        seen.append(1)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        fn()
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    return len(seen)


def test_the_merge_is_set_based_its_statements_do_not_grow_with_the_rows(session, owner):
    def merge_with(rows: int) -> int:
        survivor, dup = make_customer(session), make_customer(session)
        for _ in range(rows):
            make_booking(session, dup)
            make_note(session, dup)
            make_contact(session, dup)
            make_invoice(session, dup)
        session.commit()
        return _statements(session, lambda: merge_customers(
            session, survivor_id=survivor.id, duplicate_ids=[dup.id], actor=owner))

    assert merge_with(1) == merge_with(12)


def test_a_system_merge_has_no_actor(session, world):
    result = _merge(session, world, None)
    event = session.scalars(select(AuditEvent)).one()
    assert (event.actor_id, event.actor_label) == (None, "system")
    assert session.get(CustomerMerge, result.merge_id).actor_id is None


# -- guards ------------------------------------------------------------------------------


def _ids(session, *customers):
    session.commit()
    return [c.id for c in customers]


def test_guard_needs_a_duplicate(session, owner):
    survivor = make_customer(session)
    with pytest.raises(ActionError, match="at least one duplicate"):
        merge_customers(session, survivor_id=survivor.id, duplicate_ids=[], actor=owner)
    with pytest.raises(ActionError, match="at least one duplicate"):
        merge_preview(session, survivor_id=survivor.id, duplicate_ids=[])


def test_guard_survivor_among_duplicates(session, owner):
    survivor, dup = make_customer(session), make_customer(session)
    with pytest.raises(ActionError, match=f"{survivor.reference} cannot be merged into itself"):
        merge_customers(session, survivor_id=survivor.id, duplicate_ids=[dup.id, survivor.id],
                        actor=owner)


def test_guard_unknown_id(session, owner):
    survivor = make_customer(session)
    with pytest.raises(ActionError, match="There is no customer with id 987654"):
        merge_customers(session, survivor_id=survivor.id, duplicate_ids=[987654], actor=owner)
    with pytest.raises(ActionError, match="There is no customer with id 987654"):
        merge_preview(session, survivor_id=987654, duplicate_ids=[survivor.id])


def test_guard_too_many_records(session, owner):
    survivor = make_customer(session)
    with pytest.raises(ActionError, match=f"At most {MAX_RECORDS} customers"):
        merge_customers(session, survivor_id=survivor.id,
                        duplicate_ids=list(range(10_000, 10_000 + MAX_RECORDS)), actor=owner)


def test_merging_a_tombstone_again_refuses_and_changes_nothing(session, world, owner):
    w = world
    _merge(session, w, owner)
    before = snapshot(session)
    for survivor, dup in ((w["survivor"], w["dup"]), (w["dup"], w["other"])):
        with pytest.raises(ActionError, match=(
                f"{w['dup'].reference} was already merged into {w['survivor'].reference}")):
            merge_customers(session, survivor_id=survivor.id, duplicate_ids=[dup.id],
                            actor=owner)
        session.rollback()
    assert snapshot(session) == before


def test_a_tombstone_names_the_live_survivor(session, world, owner):
    w = world
    _merge(session, w, owner)
    with pytest.raises(ActionError, match=(
            f"{w['earlier'].reference} was already merged into {w['survivor'].reference}")):
        merge_preview(session, survivor_id=w["other"].id, duplicate_ids=[w["earlier"].id])


def test_guard_redacted(session, owner):
    survivor = make_customer(session)
    redacted = make_customer(session, redacted_at=datetime(2026, 1, 1))
    for s, d in ((survivor, redacted), (redacted, survivor)):
        with pytest.raises(ActionError, match=(
                f"{redacted.reference} has been redacted and cannot be merged")):
            merge_customers(session, survivor_id=s.id, duplicate_ids=[d.id], actor=owner)


def test_portal_accounts_on_both_sides_block_the_merge(session, owner):
    survivor, dup = make_customer(session), make_customer(session)
    make_portal_account(session, survivor)
    make_portal_account(session, dup)
    session.commit()
    preview = merge_preview(session, survivor_id=survivor.id, duplicate_ids=[dup.id])
    assert len(preview.blocking) == 1 and "portal account" in preview.blocking[0]
    assert preview.blocking[0] in preview.conflicts
    before = snapshot(session)
    with pytest.raises(ActionError, match="each have a portal account"):
        merge_customers(session, survivor_id=survivor.id, duplicate_ids=[dup.id], actor=owner)
    session.rollback()
    assert snapshot(session) == before


def test_a_portal_account_on_one_side_moves(session, owner):
    survivor, dup = make_customer(session), make_customer(session)
    account = make_portal_account(session, dup)
    session.commit()
    assert merge_preview(session, survivor_id=survivor.id, duplicate_ids=[dup.id]).blocking == []
    merge_customers(session, survivor_id=survivor.id, duplicate_ids=[dup.id], actor=owner)
    session.commit()
    assert session.get(PortalAccount, account.id).customer_id == survivor.id


# -- rollback ----------------------------------------------------------------------------


@pytest.mark.parametrize("step", ["_unite_tags", "_tombstone", "recompute_ledger"])
def test_a_failure_part_way_leaves_nothing_changed(session, world, owner, monkeypatch, step):
    before = snapshot(session)

    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(merge_module, step, fail)
    with pytest.raises(RuntimeError):
        merge_customers(session, survivor_id=world["survivor"].id,
                        duplicate_ids=[world["dup"].id], actor=owner)
    session.rollback()
    assert snapshot(session) == before
    assert _count(session, CustomerMerge) == 0 and _count(session, AuditEvent) == 0


# -- the preview -------------------------------------------------------------------------


def test_preview_shows_the_records_side_by_side(session, world):
    w = world
    preview = merge_preview(session, survivor_id=w["survivor"].id, duplicate_ids=[w["dup"].id])
    assert [c.id for c in preview.customers] == [w["survivor"].id, w["dup"].id]
    assert [f.name for f in preview.fields] == [name for name, _label in FIELDS]
    by_name = {f.name: f for f in preview.fields}
    email = by_name["email"]
    assert email.values == {w["survivor"].id: "keep@example.com", w["dup"].id: "dup@example.com"}
    assert (email.default_id, email.differs, email.label) == (w["survivor"].id, True, "E-mail")
    assert by_name["notes"].default_id == w["dup"].id  # the survivor's is empty
    assert not by_name["surname"].differs
    assert {f.name for f in preview.fields if f.finance_only} == {
        "creditor_days", "price_book", "third_party_reference"}


def test_preview_counts_every_kind_per_customer(session, world):
    w = world
    preview = merge_preview(session, survivor_id=w["survivor"].id, duplicate_ids=[w["dup"].id])
    assert preview.kinds == KINDS
    dup = preview.counts[w["dup"].id]
    assert dup == {
        "contacts": 2, "branches": 1, "work_addresses": 1, "landlord_work_addresses": 1,
        "bookings": 1, "leads": 1, "notes": 1, "invoices": 1, "credit_notes": 1, "payments": 1,
        "portal_account": 1, "sent_messages": 1, "tags": 2, "merged_records": 1, "related_people": 1,
    }
    assert preview.counts[w["survivor"].id]["contacts"] == 2
    assert preview.counts[w["survivor"].id]["branches"] == 0
    assert preview.moving == dup


def test_preview_takes_as_many_statements_for_six_records_as_for_two(session):
    customers = [make_customer(session) for _ in range(6)]
    for customer in customers:
        make_booking(session, customer)
        make_contact(session, customer, is_primary=True)
    session.commit()
    ids = [c.id for c in customers]

    def preview(n):
        session.expire_all()
        return _statements(session, lambda: merge_preview(
            session, survivor_id=ids[0], duplicate_ids=ids[1:n]))

    assert preview(2) == preview(6)
    assert _statements(session, lambda: merge_module._counts(session, ids)) == 1


def test_preview_conflicts_say_what_to_check(session, owner):
    survivor = make_customer(session, status="dormant", email="a@example.com")
    dup = make_customer(session, email="b@example.com")
    block_email(session, value="b@example.com", reason="abuse", actor=owner)
    make_contact(session, survivor, first_name="Pat", surname="Stays", is_primary=True)
    make_contact(session, dup, surname="Goes", is_primary=True)
    session.commit()
    preview = merge_preview(session, survivor_id=survivor.id, duplicate_ids=[dup.id])
    text = " ".join(preview.conflicts)
    assert "Pat Stays" in text and f"({survivor.reference}) stays primary" in text
    assert "different e-mail addresses" in text
    assert f"The e-mail address of {dup.reference} is blocked" in text
    assert "different statuses (active, dormant)" in text
    assert preview.blocking == []


def test_preview_of_identical_records_has_no_conflicts(session):
    survivor = make_customer(session, email="same@example.com")
    dup = make_customer(session, email="same@example.com")
    preview = merge_preview(session, survivor_id=survivor.id, duplicate_ids=[dup.id])
    assert preview.conflicts == [] and preview.blocking == []
