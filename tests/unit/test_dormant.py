"""Set dormant / reactivate / deactivate: the cascade to work addresses and its exact
reversal, the due list, the automated-contact rule, the audit trail, and set-based work
(a constant number of statements whatever the selection)."""

from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

import crm.actions.dormant as dormant_module
from crm.actions import ActionError
from crm.actions.block_email import block_email
from crm.actions.dormant import (
    automated_contact_allowed,
    deactivate,
    due_reminders_query,
    may_contact_automatically,
    reactivate,
    set_dormant,
)
from crm.models import AuditEvent, Customer, Note, WorkAddress
from crm.models.base import utcnow
from tests.factories import make_customer, make_note, make_reminder, make_work_address
from tests.unit.conftest import count_statements as statements


def stored(session, model, obj, *columns):
    row = session.execute(
        select(*(getattr(model, c) for c in columns)).where(model.id == obj.id)
    ).one()
    return tuple(row) if len(columns) > 1 else row[0]


def audit_rows(session):
    return session.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars().all()


def due_ids(session, **kwargs) -> list[int]:
    return [r.id for r in session.execute(due_reminders_query(**kwargs)).scalars()]


def test_a_customer_who_wants_no_service_reminders_stays_on_the_due_list(session):
    """The portal's preference "service reminders": no means no reminder e-mails (the round's
    e-mails skip them, tests/unit/test_reminders.py), not that the service stops being due:
    the due list keeps them, flagged."""
    keen, declined = make_customer(session), make_customer(session, wants_reminders=False)
    wanted = make_reminder(session, make_work_address(session, keen), due_on=date.today())
    unwanted = make_reminder(session, make_work_address(session, declined), due_on=date.today())
    session.flush()

    assert due_ids(session) == [wanted.id, unwanted.id]


# -- set dormant ---------------------------------------------------------------------------


def test_set_dormant_cascades_to_the_active_work_addresses_only(session, owner):
    customer = make_customer(session)
    home = make_work_address(session, customer)
    shop = make_work_address(session, customer)
    closed = make_work_address(session, customer, status="dormant")  # dormant on its own
    landlord = make_customer(session)
    let = make_work_address(session, customer, landlord=landlord)
    bystander = make_customer(session)
    their = make_work_address(session, bystander)
    version = customer.version

    result = set_dormant(session, selection=[customer.id], actor=owner)

    assert (result.verb, result.changed, result.changed_refs) == (
        "set_dormant", 1, (customer.reference,))
    assert result.message == "Set 1 customer dormant."
    assert stored(session, Customer, customer, "status", "version") == ("dormant", version + 1)
    for address in (home, shop, let):
        assert stored(session, WorkAddress, address, "status", "dormant_with_customer") == (
            "dormant", True)
    assert stored(session, WorkAddress, closed, "status", "dormant_with_customer") == (
        "dormant", False)
    assert stored(session, Customer, landlord, "status") == "active"
    assert stored(session, WorkAddress, their, "status") == "active"


def test_loaded_records_follow_and_a_stale_edit_form_is_refused(session, owner):
    customer = make_customer(session)
    address = make_work_address(session, customer)
    version = customer.version

    set_dormant(session, selection=[customer.id], actor=owner)

    # The session's copies are brought up to date: an edit goes through cleanly...
    assert (customer.status, customer.version) == ("dormant", version + 1)
    assert address.status == "dormant"
    customer.town = "York"
    session.flush()
    # ...and a form opened before carries the old version, which the admin refuses.
    assert customer.version == version + 2


def test_one_customer_gets_one_audit_event(session, owner):
    customer = make_customer(session)

    set_dormant(session, selection=[customer.id], actor=owner)

    [row] = audit_rows(session)
    assert (row.verb, row.subject_type, row.subject_id, row.actor_id) == (
        "set_dormant", "Customer", customer.id, owner.id)
    assert row.details == {"count": 1, "skipped": 0}


def test_a_filtered_selection_with_every_skip_reason(session, owner):
    changed = [make_customer(session, postcode="LS2 2BB") for _ in range(3)]
    redacted = make_customer(session, postcode="LS2 2BB", redacted_at=utcnow())
    asleep = make_customer(session, postcode="LS2 2BB", status="dormant")
    archived = make_customer(session, postcode="LS2 2BB", status="archived")
    tombstone = make_customer(session, postcode="LS2 2BB", merged_into_id=changed[0].id)
    elsewhere = make_customer(session, postcode="M1 1AA")

    result = set_dormant(
        session, selection=select(Customer.id).where(Customer.postcode == "LS2 2BB"),
        actor=owner)

    assert result.changed == 4
    assert set(result.changed_refs) == {c.reference for c in changed + [redacted]}
    assert result.skipped_count == 3
    assert {(s.reference, s.reason) for s in result.skipped} == {
        (asleep.reference, "already dormant"),
        (archived.reference, "archived"),
        (tombstone.reference, "merged into another customer"),
    }
    assert result.message == ("Set 4 customers dormant; 3 skipped (1 already dormant, "
                              "1 archived, 1 merged into another customer).")
    assert stored(session, Customer, archived, "status") == "archived"
    assert stored(session, Customer, tombstone, "status") == "active"
    assert stored(session, Customer, elsewhere, "status") == "active"
    summary, *each = audit_rows(session)
    assert (summary.verb, summary.subject_id, summary.details) == (
        "set_dormant", None, {"count": 4, "skipped": 3})
    assert sorted(r.subject_id for r in each) == sorted(c.id for c in changed + [redacted])
    assert {(r.verb, r.subject_type, r.actor_id, r.actor_label) for r in each} == {
        ("set_dormant", "Customer", owner.id, "owner@example.com")}
    assert all(r.details == {"summary_id": summary.id} for r in each)


def test_set_dormant_twice_changes_nothing_and_says_so(session, owner):
    customer = make_customer(session)
    set_dormant(session, selection=[customer.id], actor=owner)
    version = stored(session, Customer, customer, "version")

    again = set_dormant(session, selection=[customer.id], actor=None)

    assert (again.changed, again.skipped_count, again.skipped[0].reason) == (
        0, 1, "already dormant")
    assert again.message == "Set 0 customers dormant; 1 skipped (1 already dormant)."
    assert stored(session, Customer, customer, "version") == version
    assert len(audit_rows(session)) == 1


def test_an_unknown_id_or_empty_selection_changes_nothing(session, owner):
    result = set_dormant(session, selection=[987654321], actor=owner)
    empty = set_dormant(session, selection=[], actor=owner)

    assert (result.changed, result.skipped_count) == (0, 0)
    assert (empty.changed, empty.skipped_count) == (0, 0)
    assert audit_rows(session) == []


def test_a_failure_part_way_leaves_nothing_after_the_rollback(session, owner, monkeypatch):
    customer = make_customer(session)
    address = make_work_address(session, customer)
    session.commit()

    def broken(*args, **kwargs):
        raise RuntimeError("lost the connection")

    monkeypatch.setattr(dormant_module, "set_status", broken)  # after audit and cascade
    with pytest.raises(RuntimeError):
        set_dormant(session, selection=[customer.id], actor=owner)
    session.rollback()

    assert stored(session, Customer, customer, "status") == "active"
    assert stored(session, WorkAddress, address, "status", "dormant_with_customer") == (
        "active", False)
    assert audit_rows(session) == []


# -- the due list ----------------------------------------------------------------------------


def test_dormant_customers_leave_the_due_list_and_come_back(session, owner):
    customer = make_customer(session)
    address = make_work_address(session, customer)
    due = make_reminder(session, address, due_on=date.today())
    closed = make_work_address(session, customer, status="dormant")
    make_reminder(session, closed)  # at an address dormant on its own: never due
    make_reminder(session, address, status="done")
    later = make_reminder(session, address, due_on=date.today() + timedelta(days=30))
    other = make_reminder(session, make_work_address(session, make_customer(session)),
                          due_on=date.today() - timedelta(days=3))
    make_reminder(session, make_work_address(
        session, make_customer(session, merged_into_id=customer.id)))  # a tombstone's

    assert due_ids(session) == [other.id, due.id, later.id]
    assert due_ids(session, until=date.today()) == [other.id, due.id]

    set_dormant(session, selection=[customer.id], actor=owner)
    assert due_ids(session) == [other.id]

    reactivate(session, selection=[customer.id], actor=owner)
    assert due_ids(session) == [other.id, due.id, later.id]


# -- reactivate ----------------------------------------------------------------------------


def test_reactivate_reverses_exactly_what_set_dormant_did(session, owner):
    customer = make_customer(session)
    cascaded = make_work_address(session, customer)
    on_its_own = make_work_address(session, customer, status="dormant")
    pinned = make_note(session, customer, important=True, body="Gate code 1234")
    set_dormant(session, selection=[customer.id], actor=owner)

    result = reactivate(session, selection=[customer.id], actor=owner)

    assert (result.changed, result.message) == (1, "Reactivated 1 customer.")
    assert stored(session, Customer, customer, "status") == "active"
    assert stored(session, WorkAddress, cascaded, "status", "dormant_with_customer") == (
        "active", False)
    assert stored(session, WorkAddress, on_its_own, "status", "dormant_with_customer") == (
        "dormant", False)
    assert stored(session, Note, pinned, "important") is True  # not a do-not-work warning
    assert [r.verb for r in audit_rows(session)] == ["set_dormant", "reactivate"]


def test_reactivate_brings_back_archived_and_skips_the_active(session, owner):
    archived = make_customer(session, status="archived")
    active = make_customer(session)
    tombstone = make_customer(session, status="dormant", merged_into_id=active.id)

    result = reactivate(session, selection=[archived.id, active.id, tombstone.id], actor=owner)

    assert (result.changed, result.changed_refs) == (1, (archived.reference,))
    assert {(s.reference, s.reason) for s in result.skipped} == {
        (active.reference, "already active"),
        (tombstone.reference, "merged into another customer")}
    assert stored(session, Customer, archived, "status") == "active"
    assert stored(session, Customer, tombstone, "status") == "dormant"


def test_reactivate_twice_changes_nothing(session, owner):
    customer = make_customer(session, status="dormant")
    reactivate(session, selection=[customer.id], actor=owner)

    again = reactivate(session, selection=[customer.id], actor=owner)

    assert (again.changed, again.skipped[0].reason) == (0, "already active")
    assert len(audit_rows(session)) == 1


# -- deactivate ----------------------------------------------------------------------------


@pytest.mark.parametrize("reason, message", [("", "Give a reason"), ("  ", "Give a reason"),
                                             ("x" * 501, "500 characters")])
def test_deactivate_needs_a_reason(session, owner, reason, message):
    customer = make_customer(session)

    with pytest.raises(ActionError, match=message):
        deactivate(session, selection=[customer.id], actor=owner, reason=reason)

    assert stored(session, Customer, customer, "status") == "active"
    assert session.execute(select(func.count()).select_from(Note)).scalar_one() == 0


def test_deactivate_pins_a_warning_and_sets_dormant_in_one_step(session, owner):
    customer = make_customer(session)
    address = make_work_address(session, customer)

    result = deactivate(session, selection=[customer.id], actor=owner,
                        reason="  Abusive to staff ")

    assert (result.verb, result.changed, result.message) == (
        "deactivate", 1, "Deactivated 1 customer.")
    assert stored(session, Customer, customer, "status") == "dormant"
    assert stored(session, WorkAddress, address, "status") == "dormant"
    [note] = session.execute(select(Note)).scalars().all()
    assert (note.customer_id, note.kind, note.body, note.important, note.do_not_work_with_again,
            note.author_id, note.version) == (
        customer.id, "note", "Do not work with again: Abusive to staff", True, True, owner.id, 1)
    [row] = audit_rows(session)
    assert (row.verb, row.subject_id, row.details) == (
        "deactivate", customer.id, {"count": 1, "skipped": 0})
    assert "Abusive" not in repr(row.details)


def test_deactivate_skips_only_those_already_warned(session, owner):
    active = make_customer(session)
    asleep = make_customer(session, status="dormant")  # dormant, but no warning yet
    warned = make_customer(session, status="dormant")
    make_note(session, warned, important=True, do_not_work_with_again=True)
    archived = make_customer(session, status="archived")

    result = deactivate(session, selection=[active.id, asleep.id, warned.id, archived.id],
                        actor=None, reason="Unpaid twice")

    assert set(result.changed_refs) == {active.reference, asleep.reference}
    assert {(s.reference, s.reason) for s in result.skipped} == {
        (warned.reference, "already deactivated"), (archived.reference, "archived")}
    notes = session.execute(
        select(Note.customer_id, Note.author_id).where(Note.do_not_work_with_again.is_(True))
    ).all()
    assert sorted(notes) == sorted([(active.id, None), (asleep.id, None), (warned.id, None)])
    summary, *each = audit_rows(session)
    assert (summary.subject_id, summary.details) == (None, {"count": 2, "skipped": 2})
    assert sorted(r.subject_id for r in each) == sorted([active.id, asleep.id])
    assert {r.actor_label for r in each} == {"system"}


def test_an_active_customer_with_an_old_warning_still_gets_a_new_one(session, owner):
    customer = make_customer(session)
    make_note(session, customer, important=True, do_not_work_with_again=True)

    result = deactivate(session, selection=[customer.id], actor=owner, reason="Again")

    assert result.changed == 1
    assert stored(session, Customer, customer, "status") == "dormant"
    assert session.execute(select(func.count()).where(
        Note.customer_id == customer.id, Note.do_not_work_with_again.is_(True))).scalar() == 2
    assert [r.subject_id for r in audit_rows(session)] == [customer.id]


def test_reactivate_reverses_a_deactivation_and_keeps_the_note(session, owner):
    customer = make_customer(session)
    address = make_work_address(session, customer)
    deactivate(session, selection=[customer.id], actor=owner, reason="Abusive")

    reactivate(session, selection=[customer.id], actor=owner)

    assert stored(session, Customer, customer, "status") == "active"
    assert stored(session, WorkAddress, address, "status") == "active"
    [note] = session.execute(select(Note)).scalars().all()
    assert (note.body, note.important, note.do_not_work_with_again, note.version) == (
        "Do not work with again: Abusive", False, False, 2)


# -- automated contact -----------------------------------------------------------------------


def test_automated_contact_rule_in_sql_and_python_agree(session, owner):
    allowed = make_customer(session)
    others = [
        make_customer(session, status="dormant"),
        make_customer(session, status="archived"),
        make_customer(session, merged_into_id=allowed.id),
        make_customer(session, redacted_at=utcnow()),
        make_customer(session, email_opt_in=False),
        make_customer(session, email="blocked@example.com"),
    ]
    block_email(session, value="blocked@example.com", reason="Spam", actor=owner)
    everyone = [allowed, *others]
    ids = [c.id for c in everyone]

    in_sql = set(session.execute(
        select(Customer.id).where(Customer.id.in_(ids), automated_contact_allowed())
    ).scalars())

    assert in_sql == {allowed.id}
    assert {c.id for c in everyone if may_contact_automatically(c)} == in_sql


def test_set_dormant_stops_automated_contact(session, owner):
    customer = make_customer(session)
    assert may_contact_automatically(customer)

    set_dormant(session, selection=[customer.id], actor=owner)

    assert not may_contact_automatically(customer)
    assert session.execute(
        select(Customer.id).where(Customer.id == customer.id, automated_contact_allowed())
    ).first() is None


# -- set-based: statements do not grow with the selection --------------------------------


def _population(session, n: int, postcode: str, status: str) -> None:
    for i in range(n):
        customer = make_customer(session, postcode=postcode, status=status)
        make_reminder(session, make_work_address(session, customer))
        if i % 2:
            make_note(session, customer, do_not_work_with_again=True)
    session.flush()


RUNS = {
    "set_dormant": ("active", lambda s, sel, a: set_dormant(s, selection=sel, actor=a)),
    "reactivate": ("dormant", lambda s, sel, a: reactivate(s, selection=sel, actor=a)),
    "deactivate": ("active",
                   lambda s, sel, a: deactivate(s, selection=sel, actor=a, reason="Bulk")),
}


@pytest.mark.parametrize("verb", sorted(RUNS))
def test_a_hundred_customers_take_as_many_statements_as_ten(session, owner, verb):
    status, run = RUNS[verb]

    def statements_for(n: int, postcode: str) -> int:
        _population(session, n, postcode, status)
        assert owner.email  # loaded before counting
        with statements(session) as seen:
            result = run(session, select(Customer.id).where(Customer.postcode == postcode),
                         owner)
        assert result.changed == n
        return len(seen)

    assert statements_for(10, "AA1 1AA") == statements_for(100, "BB1 1BB")


# -- property: set dormant then reactivate restores every work address ------------------------

state = st.sampled_from(["active", "active", "dormant", "archived"])
addresses = st.lists(st.sampled_from(["active", "dormant"]), max_size=3)


@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(people=st.lists(st.tuples(state, addresses), min_size=1, max_size=6))
def test_dormant_then_reactivate_restores_every_work_address(session, owner, people):
    try:
        postcode = "ZZ9 9ZZ"
        made = []
        for status, statuses in people:
            customer = make_customer(session, status=status, postcode=postcode)
            made += [make_work_address(session, customer, status=s) for s in statuses]
        before = {a.id: a.status for a in made}
        selection = select(Customer.id).where(Customer.postcode == postcode)

        set_dormant(session, selection=selection, actor=owner)
        reactivate(session, selection=selection, actor=owner)

        after = dict(session.execute(
            select(WorkAddress.id, WorkAddress.status).where(WorkAddress.id.in_(before))
        ).all())
        assert after == before
        assert set(session.execute(
            select(Customer.status).where(Customer.postcode == postcode)).scalars()) == {
            "active"}
        assert not session.execute(
            select(WorkAddress.id).where(WorkAddress.dormant_with_customer.is_(True))).first()
    finally:
        session.rollback()
