"""Random customers with random related rows and money, merged at random: money is
preserved, no row is lost, and undo puts every foreign key back exactly."""

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from crm import ledger, ledger_totals
from crm.actions.merge import merge_customers
from crm.actions.merge_records import FIELDS, REFERENCES
from crm.actions.merge_undo import undo_merge
from crm.models import Contact, Customer, customer_tag
from tests.factories import (
    make_allocation,
    make_booking,
    make_branch,
    make_contact,
    make_credit_note,
    make_customer,
    make_invoice,
    make_note,
    make_payment,
    make_portal_account,
    make_tag,
    make_work_address,
)

D = Decimal
money = st.decimals(min_value=D("1.00"), max_value=D("500.00"), places=2)
customer_spec = st.fixed_dictionaries({
    "contacts": st.integers(0, 3),
    "primary": st.booleans(),
    "branches": st.integers(0, 1),
    "addresses": st.integers(0, 2),
    "let_to_next": st.integers(0, 1),  # addresses of the next customer it is landlord of
    "bookings": st.integers(0, 2),
    "notes": st.integers(0, 2),
    "tags": st.sets(st.integers(0, 3)),
    "invoices": st.lists(st.tuples(money, money, st.booleans()), max_size=3),
    "credit_notes": st.lists(st.tuples(money, st.booleans()), max_size=2),
    "email": st.sampled_from([None, "shared@example.com", "own"]),
})
PLAIN = [ref for ref in REFERENCES if ref.column.table is not customer_tag]


def _build(session, specs, portal_owner: int) -> list[Customer]:
    emails = {None: None, "shared@example.com": "shared@example.com"}
    customers = [
        make_customer(session, email=emails.get(s["email"], f"own{i}@example.com"))
        for i, s in enumerate(specs)
    ]
    tags = [make_tag(session) for _ in range(4)]
    for i, (customer, spec) in enumerate(zip(customers, specs, strict=True)):
        for n in range(spec["contacts"]):
            make_contact(session, customer, is_primary=spec["primary"] and n == 0)
        for _ in range(spec["branches"]):
            make_branch(session, customer)
        for _ in range(spec["addresses"]):
            make_work_address(session, customer)
        for _ in range(spec["let_to_next"]):
            make_work_address(session, customers[(i + 1) % len(customers)], landlord=customer)
        for _ in range(spec["bookings"]):
            make_booking(session, customer)
        for _ in range(spec["notes"]):
            make_note(session, customer)
        customer.tags.extend(tags[t] for t in sorted(spec["tags"]))
        for amount, paid, allocate in spec["invoices"]:
            invoice = make_invoice(session, customer, amount=str(amount))
            payment = make_payment(session, customer, amount=str(paid))
            if allocate:
                make_allocation(session, invoice, payment=payment, amount=str(min(amount, paid)))
        for amount, allocate in spec["credit_notes"]:
            note = make_credit_note(session, customer, amount=str(amount))
            if allocate:
                invoice = make_invoice(session, customer, amount=str(amount))
                make_allocation(session, invoice, credit_note=note, amount=str(amount))
        if i == portal_owner:
            make_portal_account(session, customer)
    session.commit()
    return customers


def _state(session, ids: list[int]) -> dict:
    """Every reference to these customers, primary flags, tags, chosen fields and balances."""
    state = {}
    for ref in PLAIN:
        table = ref.column.table
        state[ref.kind] = session.execute(
            select(table.c.id, ref.column).where(ref.column.in_(ids)).order_by(table.c.id)
        ).all()
    state["primary"] = session.execute(
        select(Contact.id, Contact.is_primary).where(Contact.customer_id.in_(ids))
        .order_by(Contact.id)
    ).all()
    state["tags"] = sorted(session.execute(
        select(customer_tag.c.customer_id, customer_tag.c.tag_id)
        .where(customer_tag.c.customer_id.in_(ids))
    ).all())
    fields = [getattr(Customer, name) for name, _label in FIELDS]
    state["customers"] = session.execute(
        select(Customer.id, Customer.merged_into_id, Customer.balance, Customer.account_credit,
               *fields).where(Customer.id.in_(ids)).order_by(Customer.id)
    ).all()
    return state


def _total_balance(session, ids) -> Decimal:
    return session.scalar(select(func.sum(Customer.balance)).where(Customer.id.in_(ids)))


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(specs=st.lists(customer_spec, min_size=2, max_size=4), data=st.data())
def test_merge_preserves_money_and_rows_and_undo_restores_every_reference(session, specs, data):
    portal_owner = data.draw(st.integers(-1, len(specs) - 1), label="portal owner")
    customers = _build(session, specs, portal_owner)
    ids = [c.id for c in customers]
    survivor = data.draw(st.sampled_from(ids), label="survivor")
    others = [i for i in ids if i != survivor]
    dups = data.draw(st.lists(st.sampled_from(others), min_size=1, unique=True), label="dups")
    choices = data.draw(st.dictionaries(st.sampled_from([n for n, _l in FIELDS]),
                                        st.sampled_from([survivor, *dups]), max_size=4))

    before = _state(session, ids)
    balance = _total_balance(session, ids)
    tags_before = {tag for cid, tag in before["tags"] if cid in [survivor, *dups]}

    result = merge_customers(session, survivor_id=survivor, duplicate_ids=dups, actor=None,
                             field_choices=choices)
    session.commit()
    after = _state(session, ids)
    assert _total_balance(session, ids) == balance
    assert all(session.get(Customer, d).balance == 0 for d in dups)
    for ref in PLAIN:  # every row is still there, now on the survivor or where it was
        if ref.kind != "merged_records":
            assert [row.id for row in after[ref.kind]] == [row.id for row in before[ref.kind]]
            assert not [row for row in after[ref.kind] if row[1] in dups], ref.kind
    had_primary = {cid for cid, s in zip(ids, specs, strict=True) if s["contacts"] and s["primary"]}
    merged = {survivor, *dups}
    expected = len(had_primary - merged) + bool(had_primary & merged)
    assert sum(1 for _id, primary in after["primary"] if primary) == expected
    assert {tag for cid, tag in after["tags"] if cid == survivor} == tags_before
    assert ledger.differences(session)[1] == 0
    assert ledger_totals.differences(session) == []

    undo_merge(session, merge_id=result.merge_id, actor=None)
    session.commit()
    assert _state(session, ids) == before
    assert ledger.differences(session)[1] == 0
    assert ledger_totals.differences(session) == []
