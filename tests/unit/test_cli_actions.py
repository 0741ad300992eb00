"""`flask crm merge | undo-merge | redact | block-email | unblock-email | set-dormant |
reactivate | duplicates`: the customer actions from a terminal, as the README lists them.
Each runs the same function as the screens, commits what it did, and exits non-zero with
the action's sentence when it refuses."""

import re

import pytest
from sqlalchemy import select

from crm.models import AuditEvent, BlockedEmail, Customer, User
from tests import factories as f


@pytest.fixture
def crm(app):
    runner = app.test_cli_runner()
    return lambda *args: runner.invoke(args=["crm", *args])


def _customer(session, key: int) -> Customer:
    session.expire_all()
    return session.get(Customer, key)


@pytest.fixture
def pair(session):
    keep = f.make_customer(session, surname="Twice", email="twice@example.com")
    dup = f.make_customer(session, surname="Twice", email="twice@example.com")
    f.make_note(session, dup, body="Moved along")
    session.commit()
    return keep.id, keep.reference, dup.id, dup.reference


def test_merge_then_undo_merge_by_reference(crm, session, pair):
    keep, keep_ref, dup, dup_ref = pair

    merged = crm("merge", keep_ref, dup_ref)

    assert merged.exit_code == 0, merged.output
    assert f"Merged {dup_ref} into {keep_ref}" in merged.output
    merge_id = re.search(r"Merge #(\d+)", merged.output).group(1)
    assert _customer(session, dup).merged_into_id == keep

    undone = crm("undo-merge", merge_id)

    assert undone.exit_code == 0, undone.output
    assert _customer(session, dup).merged_into_id is None


def test_a_refused_action_exits_non_zero_with_its_sentence_and_changes_nothing(crm, session,
                                                                             pair):
    keep, keep_ref, _, _ = pair

    result = crm("merge", keep_ref, keep_ref)

    assert result.exit_code != 0
    assert "Error:" in result.output
    assert _customer(session, keep).merged_into_id is None
    assert session.scalars(select(AuditEvent).where(AuditEvent.verb == "merge")).all() == []


def test_an_unknown_customer_or_actor_is_a_usage_error(crm, pair):
    _, keep_ref, _, _ = pair

    assert "no customer C-999999" in crm("set-dormant", "C-999999").output
    assert "no staff user" in crm("set-dormant", keep_ref, "--actor", "nobody@example.com").output


def test_set_dormant_and_reactivate_record_the_actor(crm, session, pair):
    keep, keep_ref, _, _ = pair
    session.add(User(email="ops@example.com", role="admin", password_hash="-"))
    session.commit()

    assert crm("set-dormant", keep_ref, "--actor", "ops@example.com").exit_code == 0
    assert _customer(session, keep).status == "dormant"
    again = crm("set-dormant", keep_ref)
    assert f"{keep_ref} skipped: already dormant" in again.output

    assert crm("reactivate", str(keep)).exit_code == 0  # an id works too
    assert _customer(session, keep).status == "active"
    event = session.scalars(select(AuditEvent).where(AuditEvent.verb == "set_dormant")).one()
    assert event.actor_label == "ops@example.com"


def test_block_and_unblock_an_address(crm, session, pair):
    keep, _, _, _ = pair

    blocked = crm("block-email", "TWICE@example.com", "--reason", "chargeback")

    assert blocked.exit_code == 0, blocked.output
    assert _customer(session, keep).email_blocked is True
    block = session.scalars(select(BlockedEmail)).one()
    assert crm("unblock-email", str(block.id)).exit_code == 0
    assert _customer(session, keep).email_blocked is False
    assert crm("block-email", "not an address", "--reason", "x").exit_code != 0


def test_redact_needs_the_word(crm, session, pair):
    keep, keep_ref, _, _ = pair

    refused = crm("redact", keep_ref, "--confirm", "yes")
    assert refused.exit_code != 0 and "Type REDACT" in refused.output
    assert _customer(session, keep).redacted_at is None

    done = crm("redact", keep_ref, "--confirm", "REDACT")
    assert done.exit_code == 0, done.output
    redacted = _customer(session, keep)
    assert redacted.redacted_at is not None and redacted.email is None


def test_duplicates_prints_the_groups(crm, pair):
    _, keep_ref, _, dup_ref = pair

    result = crm("duplicates", "--reason", "email")

    assert result.exit_code == 0, result.output
    assert f"{keep_ref}, {dup_ref}" in result.output


def test_portal_invite_prints_the_link_and_can_set_a_password(crm, session, app, tmp_path,
                                                              monkeypatch):
    from tests.factories import make_customer

    monkeypatch.setitem(app.config, "MAIL_OUTBOX_DIR", str(tmp_path))
    customer = make_customer(session, email="cli.customer@example.com")
    session.commit()

    invited = crm("portal-invite", customer.reference)
    weak = crm("portal-invite", customer.reference, "--password", "password12345")
    strong = crm("portal-invite", customer.reference, "--password", "tangerine-harbour-lantern")

    assert invited.exit_code == 0, invited.output
    assert f"{customer.reference}: http://127.0.0.1:5000/portal/password?token=" in invited.output
    assert weak.exit_code != 0 and "too easy to guess" in weak.output
    assert strong.exit_code == 0 and "password set" in strong.output
    session.expire_all()
    from crm.models import PortalAccount

    assert session.scalars(select(PortalAccount)).one().status == "active"
    assert len(list(tmp_path.glob("*.eml"))) == 3  # each invitation is e-mailed too
