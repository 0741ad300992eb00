"""Failed sign-ins are limited per account and per address, counted in Redis when several
workers share the load. Each test builds an app with small limits."""

import os
import uuid

import pytest
import redis
from argon2 import PasswordHasher
from limits import parse_many

from crm.config import load_config
from crm.extensions import db
from crm.models import User
from tests.conftest import PASSWORD, CrmClient, make_app

# The Redis the tests count in (.ci/run sets it); a database of its own, keys deleted after.
REDIS_URL = os.environ.get("CRM_TEST_REDIS_URL") or "redis://127.0.0.1:6379/15"
ACCOUNT_MESSAGE = "Too many failed sign-ins for this account"
ADDRESS_MESSAGE = "Too many failed sign-ins from this address"
_CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture
def limited_app(app, database_url):
    """``limited_app(**config)``: a new app on the test database. The rate limiter is one
    object per process, re-bound by every app made; the last one made here is put back on
    in-memory storage, so no other test counts in Redis."""
    made = []

    def build(**config):
        application = make_app(database_url, **config)
        application.test_client_class = CrmClient
        made.append(application)
        return application

    yield build
    if any(a.config["RATELIMIT_STORAGE_URI"] != "memory://" for a in made):
        make_app(database_url)


def add_user(application, email: str, role: str = "owner") -> None:
    with application.app_context():
        db.session.add(User(email=email, role=role, password_hash=_CHEAP.hash(PASSWORD)))
        db.session.commit()


def client_from(application, address: str) -> CrmClient:
    client = application.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def attempt(client, email: str, password: str = "wrong-password-x"):
    client.csrf_token = None  # a fresh form each time, as a browser would load it
    return client.post("/login", data={"email": email, "password": password})


def test_an_account_is_locked_after_its_limit_of_failures_even_for_the_right_password(
        limited_app):
    application = limited_app(CRM_LOGIN_LIMIT_PER_ACCOUNT="3/hour")
    add_user(application, "owner@example.com")
    first, second = client_from(application, "10.0.0.1"), client_from(application, "10.0.0.2")

    assert [attempt(first, "owner@example.com").status_code for _ in range(3)] == [401] * 3
    locked = attempt(second, "owner@example.com", PASSWORD)  # another browser and address

    assert locked.status_code == 429
    assert ACCOUNT_MESSAGE in locked.get_data(as_text=True)
    assert attempt(first, "OWNER@example.com ", PASSWORD).status_code == 429  # same account


def test_another_account_is_not_affected_by_a_locked_one(limited_app):
    application = limited_app(CRM_LOGIN_LIMIT_PER_ACCOUNT="3/hour")
    add_user(application, "owner@example.com")
    add_user(application, "admin@example.com", "admin")
    client = client_from(application, "10.0.0.1")
    for _ in range(4):
        attempt(client, "owner@example.com")

    assert attempt(client, "admin@example.com", PASSWORD).status_code == 302


def test_an_address_is_locked_after_its_limit_of_failures_whatever_the_account(limited_app):
    application = limited_app(CRM_LOGIN_LIMIT_PER_ADDRESS="3/hour")
    add_user(application, "owner@example.com")
    client = client_from(application, "10.0.0.1")
    for n in range(3):
        assert attempt(client, f"guess{n}@example.com").status_code == 401

    locked = attempt(client, "owner@example.com", PASSWORD)

    assert locked.status_code == 429
    assert ADDRESS_MESSAGE in locked.get_data(as_text=True)
    elsewhere = client_from(application, "10.0.0.9")
    assert attempt(elsewhere, "owner@example.com", PASSWORD).status_code == 302


def test_successful_sign_ins_do_not_count_as_failures(limited_app):
    application = limited_app(CRM_LOGIN_LIMIT_PER_ACCOUNT="3/hour",
                              CRM_LOGIN_LIMIT_PER_ADDRESS="3/hour")
    add_user(application, "owner@example.com")
    client = client_from(application, "10.0.0.1")
    attempt(client, "owner@example.com")
    attempt(client, "owner@example.com")
    for _ in range(5):
        assert attempt(client, "owner@example.com", PASSWORD).status_code == 302
        client.get("/logout")

    assert attempt(client, "owner@example.com").status_code == 401  # the third failure
    assert attempt(client, "owner@example.com", PASSWORD).status_code == 429


def test_the_default_limit_is_at_most_100_failures_an_hour_per_account(tmp_path, monkeypatch):
    monkeypatch.delenv("CRM_LOGIN_LIMIT_PER_ACCOUNT", raising=False)
    monkeypatch.setenv("SECRET_KEY", "test-secret-key")

    limits = parse_many(load_config(str(tmp_path))["CRM_LOGIN_LIMIT_PER_ACCOUNT"])

    assert limits
    for limit in limits:
        per_hour = limit.amount * 3600 / limit.get_expiry()
        assert per_hour <= 100, str(limit)


@pytest.fixture
def redis_url():
    """``REDIS_URL``, once it answers a PING. Without a Redis there the tests that count in
    it fail under CI (which starts one, so its absence is a broken job, not a reason to skip)
    and are skipped elsewhere."""
    store = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3, socket_timeout=3)
    try:
        store.ping()
    except redis.RedisError as exc:
        message = (f"Redis is not reachable at {REDIS_URL} (start one, or set "
                   f"CRM_TEST_REDIS_URL to one that is): {exc}")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    finally:
        store.close()
    return REDIS_URL


@pytest.fixture
def redis_names(redis_url):
    """A unique account and two unique addresses; the Redis keys counted for them are
    deleted afterwards."""
    token = uuid.uuid4().int
    names = {
        "email": f"limit-{token % 10**12}@example.com",
        "addresses": [f"10.{token % 250}.{(token >> 8) % 250}.{n}" for n in (1, 2)],
    }
    yield names
    store = redis.Redis.from_url(redis_url)
    for pattern in (f"*{names['email']}*", *(f"*/{a}/*" for a in names["addresses"])):
        keys = list(store.scan_iter(match=pattern))
        if keys:
            store.delete(*keys)
    store.close()


def test_two_workers_share_the_failure_count_through_redis(limited_app, redis_url,
                                                          redis_names):
    email, (address_1, address_2) = redis_names["email"], redis_names["addresses"]
    config = dict(RATELIMIT_STORAGE_URI=redis_url, CRM_LOGIN_LIMIT_PER_ACCOUNT="3/hour")
    first_worker = limited_app(**config)
    add_user(first_worker, email)
    first = client_from(first_worker, address_1)
    assert [attempt(first, email).status_code for _ in range(3)] == [401] * 3

    # A second worker starts afresh: nothing in its memory, only what Redis holds.
    second_worker = limited_app(**config)
    second = client_from(second_worker, address_2)
    locked = attempt(second, email, PASSWORD)

    assert locked.status_code == 429
    assert ACCOUNT_MESSAGE in locked.get_data(as_text=True)
    store = redis.Redis.from_url(redis_url)
    assert list(store.scan_iter(match=f"*{email}*")), "the count should live in Redis"
    store.close()


def test_a_huge_email_does_not_become_a_huge_counter_key(limited_app, redis_url, redis_names):
    """Each failed attempt stores a counter named after the account typed: a 100 kB "e-mail"
    must not make a 100 kB key in Redis (nor in memory) on every request."""
    application = limited_app(RATELIMIT_STORAGE_URI=redis_url,
                              CRM_LOGIN_LIMIT_PER_ACCOUNT="3/hour")
    huge = redis_names["email"] + "x" * 100_000
    client = client_from(application, redis_names["addresses"][0])

    assert attempt(client, huge).status_code == 400  # refused by the form: too long

    store = redis.Redis.from_url(redis_url)
    keys = list(store.scan_iter(match=f"*{redis_names['email']}*"))
    store.close()
    assert keys
    assert max(len(key) for key in keys) < 1000
