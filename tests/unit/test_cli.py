"""`flask crm create-user`: what an operator types on a fresh machine to get in."""

import re

import pytest
from sqlalchemy import func, select

from crm.models import User
from tests.conftest import PASSWORD


@pytest.fixture
def run(app):
    runner = app.test_cli_runner()
    return lambda *args: runner.invoke(args=["crm", "create-user", *args])


def _users(session) -> int:
    return session.execute(select(func.count(User.id))).scalar()


def test_create_user_prints_a_generated_password_that_signs_in(run, client, session):
    result = run("Coordinator@Example.com", "--role", "coordinator")

    assert result.exit_code == 0, result.output
    assert "Created coordinator coordinator@example.com" in result.output
    password = re.search(r"Password: (\S+)", result.output).group(1)
    assert len(password) >= 10
    response = client.post("/login", data={"email": "coordinator@example.com",
                                           "password": password})
    assert response.status_code == 302
    assert client.get("/admin/coordinator/customer/").status_code == 200


def test_create_user_with_a_given_password_does_not_print_it(run, client):
    result = run("admin@example.com", "--role", "admin", "--password", PASSWORD)

    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    response = client.post("/login", data={"email": "admin@example.com", "password": PASSWORD})
    assert response.status_code == 302


def test_running_it_again_resets_the_role_and_password(run, session):
    run("someone@example.com", "--role", "coordinator", "--password", PASSWORD)
    result = run("someone@example.com", "--role", "admin")

    assert result.exit_code == 0, result.output
    assert "Updated admin someone@example.com" in result.output
    session.expire_all()
    assert _users(session) == 1
    assert session.execute(select(User.role)).scalar() == "admin"


def test_a_short_password_is_refused_with_a_message(run, session):
    result = run("owner@example.com", "--role", "owner", "--password", "short-pw")

    assert result.exit_code != 0
    assert "at least 10 characters" in result.output
    assert _users(session) == 0


def test_an_invalid_email_is_refused(run, session):
    result = run("not-an-email", "--role", "owner")

    assert result.exit_code != 0
    assert "Not a valid e-mail address" in result.output
    assert _users(session) == 0


def test_an_unknown_role_is_refused(run, session):
    result = run("owner@example.com", "--role", "superuser")

    assert result.exit_code != 0
    assert "superuser" in result.output and "owner" in result.output  # says what is allowed
    assert _users(session) == 0
