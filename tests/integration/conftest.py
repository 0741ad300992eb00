"""Fixtures for the integration tests: quick sign-in by role, a second browser, and a
quicker emptying of the database between tests."""

import pytest
from argon2 import PasswordHasher

import tests.conftest as root
from tests.integration.helpers import csrf_token_in, text_of

# Staff accounts made by the fixtures get a real Argon2id hash at the lowest cost, so that
# signing in takes a millisecond instead of 150 ms (the login code itself is unchanged).
_CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture(autouse=True)
def _cheap_staff_passwords(monkeypatch):
    monkeypatch.setattr(root, "hash_password", _CHEAP.hash)


def sign_in(app, client, role: str, email: str | None = None):
    """Sign ``client`` in as ``role`` and give it the CSRF token of its new session (the
    session is renewed at sign-in, and /login redirects a signed-in user, so the token is
    read from a form every staff role can open)."""
    user = root.Auth(app, client).login(role, email)
    client.csrf_token = csrf_token_in(text_of(client.get(f"/admin/{role}/tag/new/")))
    return user


@pytest.fixture
def login(app, client):
    """``login(role)`` signs the ``client`` fixture in."""
    return lambda role="owner", email=None: sign_in(app, client, role, email)


@pytest.fixture
def other_client(app):
    """``other_client(role)``: a second, independent browser signed in as ``role``."""

    def make(role: str, email: str | None = None):
        app.test_client_class = root.CrmClient
        other = app.test_client()
        sign_in(app, other, role, email)
        return other

    return make
