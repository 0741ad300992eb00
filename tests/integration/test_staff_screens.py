"""Settings → Staff users and ``flask crm create-user`` follow the same rules
(crm.actions.staff): nobody demotes, disables or deletes their own account from the panel, a
new account needs a password, and both paths leave an audit event."""

from sqlalchemy import select

from crm.extensions import db
from crm.models import AuditEvent, User
from tests.integration.helpers import flashes, load, submit, text_of, url


def test_an_owner_cannot_demote_or_disable_themselves(app, client, login):
    me = login("owner")

    demoted = submit(client, url("owner", "user", f"edit/?id={me.id}"), {"role": "admin"})
    disabled = submit(client, url("owner", "user", f"edit/?id={me.id}"), {"is_enabled": None})

    assert "You cannot change your own role or disable yourself." in flashes(text_of(demoted))
    assert "You cannot change your own role or disable yourself." in flashes(text_of(disabled))
    assert load(app, User, me.id, "role", "is_enabled") == {"role": "owner", "is_enabled": True}


def test_an_admin_cannot_delete_their_own_account(app, client, login):
    me = login("admin")

    client.post(url("admin", "user", "delete/"), data={"id": str(me.id)})

    assert load(app, User, me.id, "email") == {"email": "admin@example.com"}


def test_a_new_account_without_a_password_is_refused(app, client, login):
    login("owner")

    page = submit(client, url("owner", "user", "new/"),
                  {"email": "nopass@example.com", "name": "No Pass", "role": "coordinator"})

    assert "A new user needs a password." in flashes(text_of(page))
    with app.app_context():
        assert db.session.scalar(select(User).where(User.email == "nopass@example.com")) is None


def test_the_panel_and_the_command_line_both_audit_a_new_account(app, client, login):
    login("owner")
    submit(client, url("owner", "user", "new/"),
           {"email": "panel@example.com", "name": "Panel", "role": "coordinator",
            "new_password": "a-long-enough-password"})
    app.test_cli_runner().invoke(args=["crm", "create-user", "cli@example.com", "--role",
                                       "admin", "--password", "a-long-enough-password"])

    with app.app_context():
        users = {u.email: u.id for u in db.session.scalars(select(User))}
        events = {(e.subject_id, e.verb, e.actor_label): e.details for e in db.session.scalars(
            select(AuditEvent).where(AuditEvent.subject_type == "User"))}
    panel = events[(users["panel@example.com"], "create", "owner@example.com")]
    cli = events[(users["cli@example.com"], "create", "system")]
    assert "password_hash" in cli["fields"]
    assert "a-long-enough-password" not in f"{panel}{cli}"


def _role_options(html: str) -> list[str]:
    import re

    select = re.search(r'<select[^>]*name="role"[^>]*>(.*?)</select>', html, re.S)
    assert select, "the role is a select, not a text box"
    return re.findall(r'<option[^>]*value="([^"]*)"', select.group(1))


def test_the_role_is_chosen_from_the_roles_the_actor_may_give(client, login):
    login("admin")

    page = text_of(client.get(url("admin", "user", "new/")))

    assert _role_options(page) == ["admin", "coordinator"]
    assert '<option selected value="coordinator">' in page  # the least a newcomer needs


def test_a_role_outside_the_list_is_refused_next_to_the_field(app, client, login):
    login("admin")

    page = submit(client, url("admin", "user", "new/"),
                  {"email": "made-up@example.com", "role": "superuser",
                   "new_password": "a-long-enough-password"})

    assert page.status_code == 200
    assert "Not a valid choice" in text_of(page)
    with app.app_context():
        assert db.session.scalar(select(User).where(User.email == "made-up@example.com")) is None
