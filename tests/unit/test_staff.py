"""Staff accounts (crm.actions.staff): who may give which role, passwords stored only as
hashes, nobody demotes, disables or deletes themselves, and both ways in (Settings → Staff
users and ``flask crm create-user``) leave an audit event naming the fields, never values."""

import pytest
from sqlalchemy import select

from crm.actions import ActionError
from crm.actions.staff import (
    check_staff_change,
    check_staff_delete,
    create_or_reset_user,
    roles_managed_by,
)
from crm.models import AuditEvent, User
from crm.security import verify_password

PASSWORD = "a-long-enough-password"


def staff(session, role: str, email: str | None = None) -> User:
    user = User(email=email or f"{role}@example.com", role=role, password_hash="-")
    session.add(user)
    session.commit()
    return user


def test_an_owner_manages_every_role_an_admin_never_owners():
    assert roles_managed_by("owner") == ("owner", "admin", "coordinator")
    assert roles_managed_by("admin") == ("admin", "coordinator")
    assert roles_managed_by("coordinator") == ()
    assert roles_managed_by(None) == ("owner", "admin", "coordinator")  # the command line


def test_create_user_stores_a_hash_and_audits_the_fields_not_the_values(session):
    result = create_or_reset_user(session, email=" Sam@Example.COM ", role="coordinator",
                                  password=PASSWORD, name="Sam")
    session.commit()

    user = session.scalars(select(User)).one()
    assert (user.email, user.role, result.message) == (
        "sam@example.com", "coordinator", "Created coordinator sam@example.com")
    assert user.password_hash != PASSWORD and verify_password(user.password_hash, PASSWORD)
    event = session.scalars(select(AuditEvent)).one()
    assert (event.verb, event.subject_type, event.subject_id, event.actor_label) == (
        "create", "User", user.id, "system")
    assert event.details == {"fields": ["email", "name", "password_hash", "role"]}
    assert PASSWORD not in str(event.details) and "sam@" not in str(event.details)


def test_running_it_again_resets_role_and_password_and_audits_an_update(session):
    create_or_reset_user(session, email="sam@example.com", role="coordinator",
                         password=PASSWORD)
    session.commit()

    result = create_or_reset_user(session, email="sam@example.com", role="admin",
                                  password="another-long-password")
    session.commit()

    user = session.scalars(select(User)).one()
    assert user.role == "admin" and verify_password(user.password_hash, "another-long-password")
    assert result.message == "Updated admin sam@example.com"
    update = session.scalars(select(AuditEvent).where(AuditEvent.verb == "update")).one()
    assert update.details == {"fields": ["password_hash", "role"]}


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"email": "not an address"}, "Not a valid e-mail address"),
    ({"email": "  "}, "An e-mail address is required"),
    ({"password": "short"}, "at least 10 characters"),
    ({"role": "superuser"}, "The role is one of"),
])
def test_bad_input_is_refused_and_nothing_is_written(session, kwargs, message):
    values = {"email": "sam@example.com", "role": "coordinator", "password": PASSWORD,
              **kwargs}

    with pytest.raises(ActionError, match=message):
        create_or_reset_user(session, **values)
    session.rollback()

    assert session.scalars(select(User)).all() == []
    assert session.scalars(select(AuditEvent)).all() == []


def test_an_admin_cannot_give_or_take_the_owner_role(session):
    admin = staff(session, "admin")
    owner = staff(session, "owner")
    new = User(email="new@example.com", role="owner", password_hash="-")

    with pytest.raises(ActionError, match="cannot give that role"):
        check_staff_change(session, actor=admin, user=new, is_created=True, password=PASSWORD)
    owner.role = "coordinator"
    with pytest.raises(ActionError, match="cannot change that account"):
        check_staff_change(session, actor=admin, user=owner, is_created=False, password=None)
    session.rollback()
    with pytest.raises(ActionError, match="cannot delete that account"):
        check_staff_delete(actor=admin, user=owner)


def test_nobody_demotes_disables_or_deletes_themselves(session):
    owner = staff(session, "owner")

    owner.role = "admin"
    with pytest.raises(ActionError, match="your own role"):
        check_staff_change(session, actor=owner, user=owner, is_created=False, password=None)
    session.rollback()
    owner.is_enabled = False
    with pytest.raises(ActionError, match="disable yourself"):
        check_staff_change(session, actor=owner, user=owner, is_created=False, password=None)
    session.rollback()
    with pytest.raises(ActionError, match="your own account"):
        check_staff_delete(actor=owner, user=owner)


def test_a_new_account_needs_a_password_and_a_given_one_is_hashed(session):
    owner = staff(session, "owner")
    new = User(email="new@example.com", role="coordinator", password_hash="")

    with pytest.raises(ActionError, match="needs a password"):
        check_staff_change(session, actor=owner, user=new, is_created=True, password=None)
    check_staff_change(session, actor=owner, user=new, is_created=True, password=PASSWORD)

    assert verify_password(new.password_hash, PASSWORD)
