"""Block / unblock e-mail: an address (kept only as a keyed hash) or a whole domain; the
customers who use it are flagged, the flag follows every later create, edit and unblock, and
a blocked address cannot be used to create a customer."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

import crm.actions.block_email as block_module
from crm.actions import SAMPLE, ActionError
from crm.actions.block_email import (
    block_customer_emails,
    block_email,
    ensure_not_blocked,
    unblock_email,
)
from crm.blocklist import is_email_blocked
from crm.models import AuditEvent, BlockedEmail, Customer
from crm.security import email_block_hash
from tests.factories import make_customer
from tests.unit.conftest import count_statements as statements


def flag(session, customer) -> bool:
    return session.execute(
        select(Customer.email_blocked).where(Customer.id == customer.id)
    ).scalar_one()


def audit_rows(session, verb=None):
    query = select(AuditEvent).order_by(AuditEvent.id)
    if verb:
        query = query.where(AuditEvent.verb == verb)
    return session.execute(query).scalars().all()


def count(session, model) -> int:
    return session.execute(select(func.count()).select_from(model)).scalar_one()


# -- block an address or a domain ----------------------------------------------------------


def test_blocking_an_address_flags_its_customers_and_keeps_only_a_hash(session, owner):
    sam = make_customer(session, email="sam@example.com")
    twin = make_customer(session, email="sam@example.com")
    other = make_customer(session, email="other@example.com")

    result = block_email(session, value="  Sam@Example.COM ", reason="chargeback", actor=owner,
                         note="Three disputed card payments")

    assert result.changed == 1
    assert "2 customers flagged" in result.message
    assert (flag(session, sam), flag(session, twin), flag(session, other)) == (True, True, False)
    block = session.execute(select(BlockedEmail)).scalar_one()
    assert block.kind == "address"
    assert block.address_hash == email_block_hash("sam@example.com")
    assert block.domain is None
    assert (block.reason, block.note, block.created_by_id) == (
        "chargeback", "Three disputed card payments", owner.id)
    assert "sam@" not in str(block) and "sam@" not in result.message
    # Loaded objects see the new flag without a reload.
    assert sam.email_blocked is True


def test_the_audit_row_says_what_kind_and_how_many_but_never_the_address(session, owner):
    make_customer(session, email="sam@example.com")

    result = block_email(session, value="sam@example.com", reason="Abuse", actor=owner)

    [row] = audit_rows(session)
    assert (row.verb, row.subject_type, row.subject_id) == (
        "block_email", "BlockedEmail", result.details["block_id"])
    assert row.details == {"kind": "address", "block_id": result.details["block_id"],
                           "customers_flagged": 1}
    assert row.actor_id == owner.id
    assert "sam" not in repr(row.details) and "abuse" not in repr(row.details)


def test_blocking_a_domain_flags_that_exact_domain_only(session, owner):
    on_domain = make_customer(session, email="a@spam.example")
    other_on_domain = make_customer(session, email="b@SPAM.example")
    subdomain = make_customer(session, email="c@mail.spam.example")
    lookalike = make_customer(session, email="d@notspam.example")
    no_email = make_customer(session, email=None)

    result = block_email(session, value="@Spam.Example", reason="other", actor=owner)

    assert result.changed_refs == ("@spam.example",)
    assert [flag(session, c) for c in (on_domain, other_on_domain, subdomain, lookalike,
                                       no_email)] == [True, True, False, False, False]
    block = session.execute(select(BlockedEmail)).scalar_one()
    assert (block.kind, block.domain, block.address_hash) == ("domain", "spam.example", None)
    [row] = audit_rows(session)
    assert row.details == {"kind": "domain", "domain": "spam.example",
                           "block_id": block.id, "customers_flagged": 2}


def test_merged_away_customers_are_not_flagged(session, owner):
    survivor = make_customer(session, email="keep@example.com")
    tombstone = make_customer(session, email="gone@example.com", merged_into_id=survivor.id)

    block_email(session, value="gone@example.com", reason="other", actor=owner)

    assert flag(session, tombstone) is False


@pytest.mark.parametrize(
    "value, reason, message",
    [
        ("sam@example.com", "", "Choose the reason for the block"),
        ("sam@example.com", "   ", "Choose the reason for the block"),
        ("sam@example.com", "Sam Smith was abusive", "Choose the reason for the block"),
        ("", "Spam", "Nothing to block"),
        ("not an address", "Spam", "Not a valid e-mail address: "),
        ("@", "Spam", "Not a valid domain: "),
        ("@no_dot", "Spam", "Not a valid domain: "),
        ("@a_%.example", "Spam", "Not a valid domain: "),
        ("example.com", "Spam", "@example.com"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(session, owner, value, reason, message):
    customer = make_customer(session, email="sam@example.com")

    with pytest.raises(ActionError, match=message):
        block_email(session, value=value, reason=reason, actor=owner)

    assert count(session, BlockedEmail) == 0
    assert audit_rows(session) == []
    assert flag(session, customer) is False


def test_blocking_twice_changes_nothing_and_says_so(session, owner):
    first = block_email(session, value="sam@example.com", reason="Spam", actor=owner)
    again = block_email(session, value="SAM@example.com", reason="other", actor=owner)
    domain = block_email(session, value="@example.com", reason="Spam", actor=owner)
    domain_again = block_email(session, value="@EXAMPLE.com", reason="other", actor=owner)

    assert (again.changed, again.skipped_count) == (0, 1)
    assert again.skipped[0].reason == "already blocked"
    assert f"block #{first.details['block_id']}" in again.message
    assert domain_again.skipped[0].reason == "already blocked"
    assert domain_again.details["block_id"] == domain.details["block_id"]
    assert count(session, BlockedEmail) == 2
    assert len(audit_rows(session)) == 2


def test_an_unblocked_value_can_be_blocked_again(session, owner):
    first = block_email(session, value="sam@example.com", reason="Spam", actor=owner)
    unblock_email(session, block_id=first.details["block_id"], actor=owner)

    again = block_email(session, value="sam@example.com", reason="other", actor=owner)

    assert again.changed == 1
    assert count(session, BlockedEmail) == 2


def test_a_failure_part_way_leaves_nothing_after_the_rollback(session, owner, monkeypatch):
    customer = make_customer(session, email="sam@example.com")
    session.commit()

    def broken(*args, **kwargs):
        raise RuntimeError("audit store down")

    monkeypatch.setattr(block_module, "record", broken)
    with pytest.raises(RuntimeError):
        block_email(session, value="sam@example.com", reason="Spam", actor=owner)
    session.rollback()

    assert count(session, BlockedEmail) == 0
    assert flag(session, customer) is False


# -- unblock -------------------------------------------------------------------------------


def test_unblocking_keeps_the_row_as_history_and_clears_the_flags(session, owner):
    customer = make_customer(session, email="sam@example.com")
    block_id = block_email(session, value="sam@example.com", reason="Spam",
                           actor=owner).details["block_id"]

    result = unblock_email(session, block_id=block_id, actor=owner)

    assert result.changed == 1
    assert "1 customer no longer flagged" in result.message
    block = session.get(BlockedEmail, block_id)
    assert block.unblocked_at is not None
    assert block.unblocked_by_id == owner.id
    assert block.reason == "spam"
    assert flag(session, customer) is False
    assert customer.email_blocked is False
    assert is_email_blocked(session, "sam@example.com") is False
    row = audit_rows(session, "unblock_email")[0]
    assert (row.subject_type, row.subject_id) == ("BlockedEmail", block_id)
    assert row.details == {"kind": "address", "block_id": block_id, "customers_unflagged": 1}


def test_unblocking_twice_changes_nothing_and_says_so(session, owner):
    block_id = block_email(session, value="@example.com", reason="Spam",
                           actor=owner).details["block_id"]
    unblock_email(session, block_id=block_id, actor=owner)
    when = session.get(BlockedEmail, block_id).unblocked_at

    again = unblock_email(session, block_id=block_id, actor=None)

    assert (again.changed, again.skipped_count) == (0, 1)
    assert again.skipped[0].reason == "not blocked"
    assert session.get(BlockedEmail, block_id).unblocked_at == when
    assert len(audit_rows(session, "unblock_email")) == 1


def test_unblocking_an_unknown_block_is_refused(session, owner):
    with pytest.raises(ActionError, match="no e-mail block #999999"):
        unblock_email(session, block_id=999999, actor=owner)


def test_an_address_stays_flagged_while_its_domain_is_still_blocked(session, owner):
    customer = make_customer(session, email="sam@example.com")
    address = block_email(session, value="sam@example.com", reason="Spam", actor=owner)
    block_email(session, value="@example.com", reason="Spam", actor=owner)

    result = unblock_email(session, block_id=address.details["block_id"], actor=owner)

    assert result.details["customers_unflagged"] == 0
    assert flag(session, customer) is True


def test_unblocking_a_domain_keeps_addresses_blocked_on_their_own(session, owner):
    kept = make_customer(session, email="sam@example.com")
    freed = make_customer(session, email="kim@example.com")
    elsewhere = make_customer(session, email="sam@other.example")
    block_email(session, value="sam@example.com", reason="Spam", actor=owner)
    block_email(session, value="@other.example", reason="Spam", actor=owner)
    domain = block_email(session, value="@example.com", reason="Spam", actor=owner)

    result = unblock_email(session, block_id=domain.details["block_id"], actor=owner)

    assert result.details["customers_unflagged"] == 1
    assert (flag(session, kept), flag(session, freed), flag(session, elsewhere)) == (
        True, False, True)


# -- is_email_blocked / ensure_not_blocked --------------------------------------------------


def test_is_email_blocked_matches_normalized_addresses_and_domains(session, owner):
    block_email(session, value="sam@example.com", reason="Spam", actor=owner)
    block_email(session, value="@spam.example", reason="Spam", actor=owner)

    assert is_email_blocked(session, " SAM@Example.com ") is True
    assert is_email_blocked(session, "anyone@spam.example") is True
    assert is_email_blocked(session, "anyone@SPAM.example") is True
    assert is_email_blocked(session, "kim@example.com") is False
    assert is_email_blocked(session, "anyone@sub.spam.example") is False
    assert is_email_blocked(session, None) is False
    assert is_email_blocked(session, "   ") is False
    assert is_email_blocked(session, "not an address") is False


def test_ensure_not_blocked_refuses_a_blocked_address_with_a_readable_message(session, owner):
    block_email(session, value="@spam.example", reason="Spam", actor=owner)

    with pytest.raises(ActionError) as refused:
        ensure_not_blocked(session, "Kim@spam.example")
    with pytest.raises(ActionError, match="an enquiry cannot be created"):
        ensure_not_blocked(session, "kim@spam.example", what="enquiry")
    with pytest.raises(ActionError, match="a lead cannot be created"):
        ensure_not_blocked(session, "kim@spam.example", what="lead")

    assert str(refused.value) == (
        "The e-mail address Kim@spam.example is blocked; a customer cannot be created with it.")
    ensure_not_blocked(session, "kim@example.com")
    ensure_not_blocked(session, None)


# -- the flag follows later creates and edits (session hook) --------------------------------


def test_a_customer_created_or_edited_later_gets_the_flag_right(session, owner):
    block_email(session, value="sam@example.com", reason="Spam", actor=owner)
    block_email(session, value="@spam.example", reason="Spam", actor=owner)

    created = make_customer(session, email="sam@example.com")
    on_domain = make_customer(session, email="kim@spam.example")
    clean = make_customer(session, email="kim@example.com")
    assert (flag(session, created), flag(session, on_domain), flag(session, clean)) == (
        True, True, False)

    clean.email = "lee@spam.example"
    created.email = "sam@fresh.example"
    on_domain.email = None
    session.flush()
    assert (flag(session, clean), flag(session, created), flag(session, on_domain)) == (
        True, False, False)


def test_editing_other_fields_does_not_look_the_address_up(session, owner):
    customer = make_customer(session, email="sam@example.com")
    session.flush()

    with statements(session) as seen:
        customer.town = "York"
        session.flush()

    assert not any("blocked_email" in s for s in seen)


def test_customers_created_together_are_looked_up_in_one_statement(session, owner):
    block_email(session, value="@spam.example", reason="Spam", actor=owner)

    with statements(session) as seen:
        for n in range(20):
            session.add(Customer(surname=f"Bulk{n}", email=f"p{n}@spam.example",
                                 address_line_1="1 Road", postcode="LS1 1AA"))
        session.flush()

    assert sum("blocked_email" in s for s in seen) == 1
    flagged = session.execute(
        select(func.count()).where(Customer.email_blocked.is_(True))
    ).scalar_one()
    assert flagged == 20


# -- block the selected customers' addresses ------------------------------------------------


def test_blocking_the_selected_customers_addresses(session, owner):
    a = make_customer(session, email="a@example.com")
    b = make_customer(session, email="b@example.com")
    nobody = make_customer(session, email=None)
    twin_of_a = make_customer(session, email="a@example.com")  # not selected
    block_email(session, value="b@example.com", reason="other", actor=owner)

    result = block_customer_emails(session, selection=[a.id, b.id, nobody.id],
                                   reason="other", actor=owner)

    assert result.changed == 1
    assert result.changed_refs == (a.reference,)
    assert {(s.reference, s.reason) for s in result.skipped} == {
        (nobody.reference, "no e-mail"), (b.reference, "already blocked")}
    assert result.skipped_count == 2
    assert is_email_blocked(session, "a@example.com")
    assert flag(session, a) and flag(session, twin_of_a)
    assert count(session, BlockedEmail) == 2
    [row] = audit_rows(session, "block_email")[1:]
    assert (row.subject_type, row.subject_id) == ("Customer", a.id)
    assert row.details == {"kind": "address", "blocks": 1, "count": 1, "skipped": 2,
                           "customers_flagged": 2}


def test_one_block_per_distinct_address_from_a_select(session, owner):
    customers = [make_customer(session, email=f"p{n % 3}@example.com", postcode="LS9 9ZZ")
                 for n in range(6)]
    make_customer(session, email="elsewhere@example.com", postcode="M1 1AA")

    result = block_customer_emails(
        session, selection=select(Customer.id).where(Customer.postcode == "LS9 9ZZ"),
        reason="other", actor=None)

    assert result.changed == 6
    assert count(session, BlockedEmail) == 3
    assert all(flag(session, c) for c in customers)
    assert not is_email_blocked(session, "elsewhere@example.com")
    assert audit_rows(session)[0].actor_label == "system"
    assert audit_rows(session)[0].subject_id is None


def test_blocking_already_blocked_selection_changes_nothing(session, owner):
    customer = make_customer(session, email="a@example.com")
    block_customer_emails(session, selection=[customer.id], reason="Spam", actor=owner)

    again = block_customer_emails(session, selection=[customer.id], reason="Spam", actor=owner)

    assert (again.changed, again.skipped_count) == (0, 1)
    assert count(session, BlockedEmail) == 1
    assert len(audit_rows(session)) == 1


def test_selection_guards(session, owner):
    customer = make_customer(session)
    with pytest.raises(ActionError, match="Choose the reason for the block"):
        block_customer_emails(session, selection=[customer.id], reason=" ", actor=owner)
    assert count(session, BlockedEmail) == 0


def test_blocking_a_hundred_customers_takes_as_many_statements_as_ten(session, owner):
    def run(n: int, postcode: str) -> int:
        for i in range(n):
            make_customer(session, email=f"{postcode[:2].lower()}{i}@example.com",
                          postcode=postcode)
        session.flush()
        assert owner.email  # loaded before counting
        with statements(session) as seen:
            result = block_customer_emails(
                session, selection=select(Customer.id).where(Customer.postcode == postcode),
                reason="Spam", actor=owner)
        assert result.changed == n
        assert len(result.changed_refs) == min(n, SAMPLE)
        return len(seen)

    assert run(10, "AA1 1AA") == run(100, "BB1 1BB")


# -- the flag is exactly "is this customer's e-mail blocked now" (property) ----------------

ADDRESSES = ["a@one.example", "b@one.example", "a@two.example", "c@sub.one.example"]
operation = st.one_of(
    st.tuples(st.just("block"), st.sampled_from(ADDRESSES + ["@one.example", "@two.example",
                                                              "@sub.one.example"])),
    st.tuples(st.just("unblock"), st.integers(0, 20)),
    st.tuples(st.just("create"), st.sampled_from(ADDRESSES)),
    st.tuples(st.just("edit"), st.integers(0, 20), st.sampled_from(ADDRESSES + [None])),
)


@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=st.lists(operation, min_size=1, max_size=12))
def test_the_flag_always_equals_the_blocklist(session, owner, steps):
    customers = [make_customer(session, email=e) for e in ADDRESSES]
    blocks: list[int] = []
    try:
        for name, *args in steps:
            if name == "block":
                result = block_email(session, value=args[0], reason="Spam", actor=owner)
                blocks.append(result.details["block_id"])
            elif name == "unblock" and blocks:
                unblock_email(session, block_id=blocks[args[0] % len(blocks)], actor=owner)
            elif name == "create":
                customers.append(make_customer(session, email=args[0]))
            elif name == "edit":
                customers[args[0] % len(customers)].email = args[1]
                session.flush()
        for customer in customers:
            assert flag(session, customer) == is_email_blocked(session, customer.email)
    finally:
        session.rollback()


def test_a_note_longer_than_its_column_is_refused(session, owner):
    with pytest.raises(ActionError, match="500 characters or fewer"):
        block_email(session, value="sam@example.com", reason="spam", note="x" * 501,
                    actor=owner)
    assert count(session, BlockedEmail) == 0


@pytest.mark.parametrize(("typed", "stored"), [("spam", "spam"), ("Spam", "spam"),
                                                ("Customer's request", "customer_request"),
                                                ("customer_request", "customer_request")])
def test_the_reason_is_a_code_from_the_list_or_its_label(session, owner, typed, stored):
    block_email(session, value="sam@example.com", reason=typed, actor=owner)

    assert session.execute(select(BlockedEmail.reason)).scalar_one() == stored
