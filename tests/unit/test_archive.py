"""Archive instead of delete: a customer with anything attached is archived, one with nothing
attached is really deleted (with its contacts, branches and tags); the confirmation page's
plan says which and why; set-based, with a constant number of statements."""

import pytest
from sqlalchemy import func, inspect, select

import crm.actions.archive as archive_module
import crm.actions.bulk as bulk_module
from crm.actions.archive import ATTACHED, OWN, delete_customers, deletion_plan
from crm.models import (
    AuditEvent,
    Base,
    Branch,
    Contact,
    Customer,
    CustomerMerge,
    SentMessage,
    Tag,
    customer_tag,
)
from crm.models.base import utcnow
from tests import factories as f
from tests.unit.conftest import count_statements as statements


def exists(session, customer) -> bool:
    return session.execute(select(Customer.id).where(Customer.id == customer.id)).first() \
        is not None


def status(session, customer) -> str:
    return session.execute(select(Customer.status).where(Customer.id == customer.id)).scalar()


def rows(session, model_or_table, *where) -> int:
    return session.execute(select(func.count()).select_from(model_or_table).where(*where)) \
        .scalar_one()


def audit_rows(session):
    return session.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars().all()


def test_every_foreign_key_to_a_customer_is_known_to_archive():
    """A new table pointing at customers must decide: attached (archive) or owned (deleted
    with the customer)."""
    columns = [c for _, _, c in ATTACHED] + list(OWN)
    # getattr(..., "original"): the merged-away customers are read through an alias.
    known = {(getattr(c.table, "original", c.table).name, c.name) for c in columns}
    pointing = {
        (table.name, fk.parent.name)
        for table in Base.metadata.sorted_tables
        for fk in table.foreign_keys
        if fk.column.table.name == "customer"
    }
    assert pointing == known


# Each way a customer can have something attached, and how the plan says it.
ATTACHMENTS = {
    "booking": (lambda s, c: f.make_booking(s, c), "has 1 booking"),
    "invoice": (lambda s, c: f.make_invoice(s, c), "has 1 invoice"),
    "credit note": (lambda s, c: f.make_credit_note(s, c), "has 1 credit note"),
    "payment": (lambda s, c: f.make_payment(s, c), "has 1 payment"),
    "note": (lambda s, c: f.make_note(s, c), "has 1 note"),
    "work address": (lambda s, c: f.make_work_address(s, c), "has 1 work address"),
    "landlord": (lambda s, c: f.make_work_address(s, f.make_customer(s), landlord=c),
                 "has 1 work address as landlord"),
    "lead": (lambda s, c: f.make_lead(s, customer=c), "has 1 lead"),
    "portal account": (lambda s, c: f.make_portal_account(s, c), "has 1 portal account"),
    "e-mail sent": (lambda s, c: s.add(SentMessage(customer_id=c.id, kind="statement",
                                                   backend="smtp", reference="<1@x>")),
                    "has 1 e-mail sent"),
    "merge": (lambda s, c: s.add(CustomerMerge(survivor_id=c.id, duplicate_ids=[])),
              "has 1 merge"),
    "tombstone": (lambda s, c: f.make_customer(s, merged_into_id=c.id), "has 1 merged customer"),
}


@pytest.mark.parametrize("kind", sorted(ATTACHMENTS))
def test_anything_attached_means_archive(session, owner, kind):
    attach, reason = ATTACHMENTS[kind]
    customer = f.make_customer(session)
    attach(session, customer)
    session.flush()

    plan = deletion_plan(session, selection=[customer.id])
    result = delete_customers(session, selection=[customer.id], actor=owner)

    assert (plan.delete, plan.archive, plan.already_archived) == (0, 1, 0)
    assert [(r.reference, r.reason) for r in plan.reasons] == [(customer.reference, reason)]
    assert result.message == "0 deleted, 1 archived (they have bookings, money or notes)."
    assert status(session, customer) == "archived"


def test_a_customer_with_only_its_own_contacts_branches_and_tags_is_deleted(session, owner):
    customer = f.make_customer(session)
    f.make_contact(session, customer, is_primary=True)
    f.make_contact(session, customer)
    f.make_branch(session, customer)
    tag = f.make_tag(session)
    customer.tags.append(tag)
    session.flush()
    key = customer.id

    plan = deletion_plan(session, selection=[key])
    result = delete_customers(session, selection=[key], actor=owner)

    assert (plan.delete, plan.archive, plan.reasons) == (1, 0, ())
    assert (result.verb, result.changed, result.changed_refs) == (
        "delete_customers", 1, (customer.reference,))
    assert result.message == "1 deleted, 0 archived."
    assert rows(session, Customer, Customer.id == key) == 0
    assert rows(session, Contact, Contact.customer_id == key) == 0
    assert rows(session, Branch, Branch.customer_id == key) == 0
    assert rows(session, customer_tag, customer_tag.c.customer_id == key) == 0
    assert rows(session, Tag, Tag.id == tag.id) == 1  # the tag itself stays
    assert inspect(customer).was_deleted or inspect(customer).detached
    session.commit()  # nothing loaded in the session still points at the deleted rows
    [row] = audit_rows(session)
    assert (row.verb, row.subject_type, row.subject_id, row.actor_id) == (
        "delete", "Customer", key, owner.id)
    assert row.details == {"count": 1, "skipped": 0, "delete": 1}


def test_the_plan_lists_every_kind_of_attachment_with_counts(session, owner):
    customer = f.make_customer(session)
    f.make_booking(session, customer)
    f.make_booking(session, customer)
    f.make_invoice(session, customer)
    f.make_note(session, customer)

    plan = deletion_plan(session, selection=[customer.id])

    assert plan.reasons[0].reason == "has 2 bookings, 1 invoice, 1 note"


def test_a_mixed_selection_from_a_filter(session, owner):
    bare = [f.make_customer(session, postcode="LS3 3CC") for _ in range(2)]
    busy = [f.make_customer(session, postcode="LS3 3CC") for _ in range(3)]
    for customer in busy:
        f.make_note(session, customer)
    stored_away = f.make_customer(session, postcode="LS3 3CC", status="archived")
    f.make_booking(session, stored_away)
    emptied_archive = f.make_customer(session, postcode="LS3 3CC", status="archived")
    tombstone = f.make_customer(session, postcode="LS3 3CC", merged_into_id=busy[0].id)
    redacted = f.make_customer(session, postcode="LS3 3CC", redacted_at=utcnow())
    f.make_invoice(session, redacted)
    keep = f.make_customer(session, postcode="M1 1AA")
    selection = select(Customer.id).where(Customer.postcode == "LS3 3CC")

    plan = deletion_plan(session, selection=selection)
    result = delete_customers(session, selection=selection, actor=owner)

    assert (plan.delete, plan.archive, plan.already_archived, plan.merged) == (3, 4, 1, 1)
    assert {r.reference for r in plan.reasons} == {c.reference for c in busy + [redacted]}
    assert (result.changed, result.skipped_count) == (7, 2)
    assert result.message == ("3 deleted, 4 archived (they have bookings, money or notes); "
                              "1 already archived, 1 merged into another customer.")
    assert {(s.reference, s.reason) for s in result.skipped} == {
        (stored_away.reference, "already archived"),
        (tombstone.reference, "merged into another customer")}
    assert result.details == {"deleted": 3, "archived": 4, "skipped": 2}
    assert not any(exists(session, c) for c in bare + [emptied_archive])
    assert {status(session, c) for c in busy + [redacted, stored_away]} == {"archived"}
    assert exists(session, tombstone) and status(session, keep) == "active"
    summary, *each = audit_rows(session)
    assert (summary.verb, summary.subject_id, summary.details) == (
        "delete_customers", None, {"count": 7, "skipped": 2, "archive": 4, "delete": 3})
    assert sorted((r.verb, r.subject_id) for r in each) == sorted(
        [("archive", c.id) for c in busy + [redacted]]
        + [("delete", c.id) for c in bare + [emptied_archive]])
    assert all(r.details == {"summary_id": summary.id} for r in each)


def test_the_plan_samples_reasons_but_counts_exactly(session, owner, monkeypatch):
    monkeypatch.setattr(bulk_module, "SAMPLE", 3)
    for _ in range(5):
        f.make_note(session, f.make_customer(session, postcode="LS4 4DD"))

    plan = deletion_plan(session, selection=select(Customer.id).where(
        Customer.postcode == "LS4 4DD"))

    assert plan.archive == 5
    assert len(plan.reasons) == 3


def test_deleting_an_archived_customer_again_changes_nothing(session, owner):
    customer = f.make_customer(session)
    f.make_booking(session, customer)
    delete_customers(session, selection=[customer.id], actor=owner)
    version = session.execute(select(Customer.version).where(Customer.id == customer.id)) \
        .scalar()

    again = delete_customers(session, selection=[customer.id], actor=owner)

    assert (again.changed, again.skipped_count, again.skipped[0].reason) == (
        0, 1, "already archived")
    assert again.message == "0 deleted, 0 archived; 1 already archived."
    assert session.execute(select(Customer.version).where(Customer.id == customer.id)) \
        .scalar() == version
    assert len(audit_rows(session)) == 1


def test_a_failure_part_way_leaves_nothing_after_the_rollback(session, owner, monkeypatch):
    attached = f.make_customer(session)
    f.make_note(session, attached)
    bare = f.make_customer(session)
    f.make_contact(session, bare)
    session.commit()

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(archive_module, "_delete", broken)  # after audit and archive
    with pytest.raises(RuntimeError):
        delete_customers(session, selection=[attached.id, bare.id], actor=owner)
    session.rollback()

    assert status(session, attached) == "active"
    assert exists(session, bare)
    assert rows(session, Contact, Contact.customer_id == bare.id) == 1
    assert audit_rows(session) == []


def _population(session, n: int, postcode: str) -> None:
    for i in range(n):
        customer = f.make_customer(session, postcode=postcode)
        f.make_contact(session, customer)
        if i % 2:
            f.make_booking(session, customer)
    session.flush()


def test_a_hundred_customers_take_as_many_statements_as_ten(session, owner):
    def statements_for(n: int, postcode: str) -> tuple[int, int]:
        _population(session, n, postcode)
        selection = select(Customer.id).where(Customer.postcode == postcode)
        assert owner.email  # loaded before counting
        with statements(session) as planning:
            plan = deletion_plan(session, selection=selection)
        with statements(session) as deleting:
            result = delete_customers(session, selection=selection, actor=owner)
        assert (plan.archive, plan.delete) == (n // 2, n // 2)
        assert result.changed == n
        return len(planning), len(deleting)

    assert statements_for(10, "AA1 1AA") == statements_for(100, "BB1 1BB")
