"""Who gets into the portal: invitations, passwords, e-mailed links (single use, short-lived,
ended by a newer one or a new password: unlike the reusable links that let an old e-mail
reopen an account elsewhere), sessions, revoking, the closed-account rules and changing the
sign-in e-mail."""

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

import crm.actions.portal_access as portal
from crm.actions.block_email import block_email
from crm.actions.merge import merge_customers
from crm.actions.portal_access import (
    LINK_REFUSED,
    REFUSED,
    PortalRefused,
    change_password,
    confirm_email_change,
    invite_customers,
    request_email_change,
    request_link,
    revoke,
    set_password_with_link,
    sign_in,
    sign_in_with_link,
    signed_in,
    start_session,
)
from crm.actions.redact import redact_customer
from crm.models import AuditEvent, PortalAccount, PortalToken
from crm.models.base import utcnow
from tests.factories import make_customer

STRONG = "tangerine-harbour-lantern"
OTHER_STRONG = "violet-quarry-marmalade"


@pytest.fixture(autouse=True)
def _quick_hashes(monkeypatch):
    # Real Argon2id at the lowest cost: the code under test is the same.
    monkeypatch.setattr(portal, "hash_password", PasswordHasher(time_cost=1, memory_cost=8,
                                                                parallelism=1).hash)


class Mailbox:
    """A ``send`` that keeps the messages, and the links in them."""

    def __init__(self):
        self.messages = []

    def __call__(self, message):
        self.messages.append(message)
        return "<sent@example.com>"

    def links(self) -> list[str]:
        return [line.strip() for m in self.messages for line in m.text.splitlines()
                if line.strip().startswith("https://")]

    def last_token(self) -> str:
        return parse_qs(urlsplit(self.links()[-1]).query)["token"][0]


def link(token: str) -> str:
    return f"https://crm.example.com/portal/x?token={token}"


def invite(session, customer, mailbox=None):
    mailbox = mailbox or Mailbox()
    result = invite_customers(session, selection=[customer.id], actor=None, link=link,
                              send=mailbox)
    session.commit()
    return result, mailbox


def active_account(session, **customer_values):
    customer = make_customer(session, email=customer_values.pop("email", "sam@example.com"),
                             **customer_values)
    session.commit()
    _, mailbox = invite(session, customer)
    account = set_password_with_link(session, token=mailbox.last_token(), password=STRONG)
    session.commit()
    return customer, account


def age(session, purpose: str, by: timedelta) -> None:
    """Move every token of ``purpose`` back in time, as if sent ``by`` ago."""
    for token in session.scalars(select(PortalToken).where(PortalToken.purpose == purpose)):
        token.created_at -= by
        token.expires_at -= by
    session.commit()


# --- invitations ----------------------------------------------------------------------------

def test_an_invitation_makes_the_account_and_emails_a_link_kept_only_as_a_hash(session):
    customer = make_customer(session, email="Sam@Example.com", first_name="Sam")
    session.commit()

    result, mailbox = invite(session, customer)

    account = session.execute(select(PortalAccount)).scalar_one()
    assert (account.email, account.status, account.invited_at is not None) == (
        "sam@example.com", "invited", True)
    assert result.changed == 1 and result.message == "Sent 1 portal invitation."
    [message] = mailbox.messages
    assert message.to == "sam@example.com" and "7 days" in message.text
    token = mailbox.last_token()
    stored = session.execute(select(PortalToken)).scalar_one()
    assert stored.purpose == "invite" and token not in stored.token_hash
    assert session.execute(select(AuditEvent.verb)).scalars().all() == ["portal_invite"]


@pytest.mark.parametrize(("values", "reason"), [
    ({"email": None}, "no e-mail address"),
    ({"status": "archived"}, "archived"),
    ({"email": "x@blocked.example"}, "e-mail blocked"),
])
def test_customers_that_cannot_have_an_account_are_skipped_with_the_reason(session, values,
                                                                           reason):
    block_email(session, value="@blocked.example", reason="spam", actor=None)
    customer = make_customer(session, **values)
    session.commit()

    result, mailbox = invite(session, customer)

    assert result.changed == 0 and mailbox.messages == []
    assert [(s.reference, s.reason) for s in result.skipped] == [(customer.reference, reason)]


def test_merged_and_redacted_customers_are_skipped(session, owner):
    kept, gone = make_customer(session, email="a@example.com"), make_customer(session)
    erased = make_customer(session, email="b@example.com")
    session.commit()
    merge_customers(session, survivor_id=kept.id, duplicate_ids=[gone.id], actor=owner)
    redact_customer(session, customer_id=erased.id, actor=owner, confirmation="REDACT")
    session.commit()

    result = invite_customers(session, selection=[gone.id, erased.id], actor=None, link=link,
                              send=Mailbox())

    assert {s.reason for s in result.skipped} == {"merged into another customer", "redacted"}


def test_an_address_that_is_another_customers_login_is_skipped(session):
    first = make_customer(session, email="shared@example.com")
    second = make_customer(session, email="shared@example.com")
    session.commit()
    invite(session, first)

    result, mailbox = invite(session, second)

    assert result.changed == 0 and mailbox.messages == []
    assert f"is the portal login of {first.reference}" in result.skipped[0].reason


def test_a_new_invitation_ends_the_earlier_link(session):
    customer = make_customer(session, email="sam@example.com")
    session.commit()
    _, first = invite(session, customer)
    _, second = invite(session, customer)

    with pytest.raises(PortalRefused, match="expired or has already been used"):
        set_password_with_link(session, token=first.last_token(), password=STRONG)
    session.rollback()
    assert set_password_with_link(session, token=second.last_token(), password=STRONG)


def test_an_invitation_expires_after_seven_days(session):
    customer = make_customer(session, email="sam@example.com")
    session.commit()
    _, mailbox = invite(session, customer)
    age(session, "invite", timedelta(days=7, minutes=1))

    with pytest.raises(PortalRefused) as refused:
        set_password_with_link(session, token=mailbox.last_token(), password=STRONG)
    assert str(refused.value) == LINK_REFUSED


def test_a_revoked_account_is_opened_again_by_a_new_invitation(session):
    customer, account = active_account(session)
    revoke(session, account_id=account.id, actor=None)
    session.commit()
    assert session.get(PortalAccount, account.id).status == "disabled"

    invite(session, customer)

    assert session.get(PortalAccount, account.id).disabled is False


# --- choosing a password ----------------------------------------------------------------------

@pytest.mark.parametrize(("password", "message"), [
    ("short-1", "at least 12 characters"),
    ("password12345", "too easy to guess"),
    ("qwertyuiop123", "too easy to guess"),
    ("sam@example.com!", "too easy to guess"),
])
def test_a_weak_password_is_refused_and_the_link_still_works(session, password, message):
    customer = make_customer(session, email="sam@example.com")
    session.commit()
    _, mailbox = invite(session, customer)

    with pytest.raises(portal.ActionError, match=message):
        set_password_with_link(session, token=mailbox.last_token(), password=password)
    session.rollback()

    assert set_password_with_link(session, token=mailbox.last_token(), password=STRONG)


def test_a_link_works_once(session):
    customer = make_customer(session, email="sam@example.com")
    session.commit()
    _, mailbox = invite(session, customer)
    account = set_password_with_link(session, token=mailbox.last_token(), password=STRONG)
    session.commit()

    assert account.status == "active" and account.activated_at is not None
    with pytest.raises(PortalRefused):
        set_password_with_link(session, token=mailbox.last_token(), password=OTHER_STRONG)


# --- signing in -------------------------------------------------------------------------------

def test_the_right_password_signs_in_and_a_wrong_one_gets_the_one_sentence(session):
    _, account = active_account(session)

    assert sign_in(session, email=" SAM@example.com ", password=STRONG).id == account.id
    for email, password in (("sam@example.com", "wrong-password-x"),
                            ("nobody@example.com", STRONG), ("", "")):
        with pytest.raises(PortalRefused) as refused:
            sign_in(session, email=email, password=password)
        assert str(refused.value) == REFUSED


@pytest.mark.parametrize("closing", ["disabled", "blocked", "redacted", "archived", "merged"])
def test_a_closed_account_cannot_sign_in_and_the_refusal_does_not_say_why(session, owner,
                                                                          closing):
    customer, account = active_account(session)
    mailbox = Mailbox()
    request_link(session, email="sam@example.com", purpose="sign_in", link=link, send=mailbox)
    session.commit()
    session_token = start_session(session, account=account)
    session.commit()
    if closing == "disabled":
        revoke(session, account_id=account.id, actor=owner)
    elif closing == "blocked":
        block_email(session, value="sam@example.com", reason="abuse", actor=owner)
    elif closing == "redacted":
        redact_customer(session, customer_id=customer.id, actor=owner, confirmation="REDACT")
    elif closing == "archived":
        customer.status = "archived"
    else:
        survivor = make_customer(session)
        session.flush()
        merge_customers(session, survivor_id=survivor.id, duplicate_ids=[customer.id],
                        actor=owner)
        # The account moved to the survivor: it is the survivor's way in now.
        assert session.get(PortalAccount, account.id).customer_id == survivor.id
        survivor.status = "archived"  # close the survivor too, to test the refusal
    session.commit()

    with pytest.raises(PortalRefused) as refused:
        sign_in(session, email="sam@example.com", password=STRONG)
    assert str(refused.value) == REFUSED
    with pytest.raises(PortalRefused):
        sign_in_with_link(session, token=mailbox.last_token())
    assert signed_in(session, session_token) is None


def test_a_dormant_customer_can_sign_in(session):
    customer, account = active_account(session)
    customer.status = "dormant"
    session.commit()

    assert sign_in(session, email="sam@example.com", password=STRONG).id == account.id


def test_after_a_merge_the_survivor_is_the_one_signed_in(session, owner):
    duplicate, account = active_account(session)
    survivor = make_customer(session, email="sam@example.com")
    session.commit()
    merge_customers(session, survivor_id=survivor.id, duplicate_ids=[duplicate.id], actor=owner)
    session.commit()
    token = start_session(session, account=sign_in(session, email="sam@example.com",
                                                   password=STRONG))
    session.commit()

    assert signed_in(session, token)[1].id == survivor.id


# --- e-mailed links ---------------------------------------------------------------------------

def test_a_sign_in_link_works_once_within_fifteen_minutes(session):
    _, account = active_account(session)
    mailbox = Mailbox()
    request_link(session, email="sam@example.com", purpose="sign_in", link=link, send=mailbox)
    session.commit()
    assert "15 minutes" in mailbox.messages[0].text

    assert sign_in_with_link(session, token=mailbox.last_token()).id == account.id
    session.commit()
    with pytest.raises(PortalRefused):
        sign_in_with_link(session, token=mailbox.last_token())


def test_a_sign_in_link_expires_after_fifteen_minutes(session):
    active_account(session)
    mailbox = Mailbox()
    request_link(session, email="sam@example.com", purpose="sign_in", link=link, send=mailbox)
    session.commit()
    age(session, "sign_in", timedelta(minutes=15, seconds=1))

    with pytest.raises(PortalRefused):
        sign_in_with_link(session, token=mailbox.last_token())


def test_a_newer_link_ends_the_older_one(session):
    active_account(session)
    mailbox = Mailbox()
    for _ in range(2):
        request_link(session, email="sam@example.com", purpose="sign_in", link=link,
                     send=mailbox)
        session.commit()
    older = parse_qs(urlsplit(mailbox.links()[0]).query)["token"][0]

    with pytest.raises(PortalRefused):
        sign_in_with_link(session, token=older)
    session.rollback()
    assert sign_in_with_link(session, token=mailbox.last_token())


def test_a_new_password_ends_every_link_that_was_out(session):
    _, account = active_account(session)
    mailbox = Mailbox()
    request_link(session, email="sam@example.com", purpose="sign_in", link=link, send=mailbox)
    request_link(session, email="sam@example.com", purpose="reset", link=link, send=mailbox)
    session.commit()
    sign_in_link = parse_qs(urlsplit(mailbox.links()[0]).query)["token"][0]
    reset_link = mailbox.last_token()

    change_password(session, account_id=account.id, current=STRONG, new=OTHER_STRONG,
                    keep_session=None)
    session.commit()

    for token in (sign_in_link, reset_link):
        with pytest.raises(PortalRefused):
            sign_in_with_link(session, token=token)
        session.rollback()


def test_a_link_is_asked_for_silently_for_an_unknown_or_closed_address(session, owner):
    _, account = active_account(session)
    revoke(session, account_id=account.id, actor=owner)
    session.commit()
    mailbox = Mailbox()

    for email in ("nobody@example.com", "sam@example.com", "not an address", ""):
        request_link(session, email=email, purpose="sign_in", link=link, send=mailbox)
    assert mailbox.messages == []


def test_a_reset_link_sets_a_new_password_and_ends_every_session(session):
    _, account = active_account(session)
    old_session = start_session(session, account=account)
    mailbox = Mailbox()
    request_link(session, email="sam@example.com", purpose="reset", link=link, send=mailbox)
    session.commit()

    set_password_with_link(session, token=mailbox.last_token(), password=OTHER_STRONG)
    session.commit()

    assert signed_in(session, old_session) is None
    assert sign_in(session, email="sam@example.com", password=OTHER_STRONG)


# --- sessions ---------------------------------------------------------------------------------

def test_changing_the_password_keeps_this_session_and_ends_the_others(session):
    _, account = active_account(session)
    here, elsewhere = (start_session(session, account=account) for _ in range(2))
    session.commit()

    with pytest.raises(portal.ActionError, match="current password is not right"):
        change_password(session, account_id=account.id, current="not-it-at-all",
                        new=OTHER_STRONG, keep_session=here)
    session.rollback()
    change_password(session, account_id=account.id, current=STRONG, new=OTHER_STRONG,
                    keep_session=here)
    session.commit()

    assert signed_in(session, here) is not None
    assert signed_in(session, elsewhere) is None


def test_revoking_ends_every_session_at_once(session, owner):
    _, account = active_account(session)
    token = start_session(session, account=account)
    session.commit()

    result = revoke(session, account_id=account.id, actor=owner)
    session.commit()

    assert signed_in(session, token) is None
    assert "1 session ended" in result.message
    assert revoke(session, account_id=account.id, actor=owner).changed == 0


def test_a_session_older_than_thirty_days_is_over(session):
    _, account = active_account(session)
    token = start_session(session, account=account)
    session.commit()
    from crm.models import PortalSession

    for row in session.scalars(select(PortalSession)):
        row.created_at = utcnow() - timedelta(days=31)
    session.commit()

    assert signed_in(session, token) is None


# --- the sign-in e-mail -----------------------------------------------------------------------

def test_a_new_sign_in_email_changes_only_when_its_link_is_opened(session):
    _, account = active_account(session)
    mailbox = Mailbox()
    request_email_change(session, account_id=account.id, new_email="New@Example.org",
                         link=link, send=mailbox)
    session.commit()
    assert session.get(PortalAccount, account.id).email == "sam@example.com"
    assert mailbox.messages[0].to == "new@example.org"

    confirm_email_change(session, token=mailbox.last_token())
    session.commit()

    assert session.get(PortalAccount, account.id).email == "new@example.org"
    assert sign_in(session, email="new@example.org", password=STRONG)


def test_a_new_sign_in_email_that_is_blocked_or_taken_is_refused(session):
    active_account(session)
    other = make_customer(session, email="other@example.com")
    session.commit()
    invite(session, other)
    _, account = session.execute(select(PortalAccount.customer_id, PortalAccount)
                                 .where(PortalAccount.email == "sam@example.com")).one()
    block_email(session, value="@spam.example", reason="spam", actor=None)
    session.commit()

    with pytest.raises(portal.ActionError, match="cannot be used here"):
        request_email_change(session, account_id=account.id, new_email="x@spam.example",
                             link=link, send=Mailbox())
    mailbox = Mailbox()
    request_email_change(session, account_id=account.id, new_email="other@example.com",
                         link=link, send=mailbox)
    session.commit()
    with pytest.raises(portal.ActionError, match="cannot be used here"):
        confirm_email_change(session, token=mailbox.last_token())
