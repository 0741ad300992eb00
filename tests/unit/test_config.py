"""Settings from the environment: a secret key that production must be given
and development keeps in its instance folder, and cookies a script or another site cannot
use."""

import stat

import pytest
from argon2 import PasswordHasher

from crm import create_app
from crm.config import ConfigError, load_config
from crm.extensions import db
from crm.models import User
from tests.conftest import CSRF_RE, PASSWORD, make_app

HTTPS = "https://localhost"


@pytest.fixture
def environment(monkeypatch):
    """A clean slate: none of the settings under test come from the shell running pytest."""
    for name in ("SECRET_KEY", "CRM_ENV", "DATABASE_URL", "REDIS_URL", "CRM_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


# --- the secret key -----------------------------------------------------------------------

def test_development_generates_a_secret_key_and_keeps_it(environment, tmp_path):
    first = load_config(str(tmp_path))["SECRET_KEY"]
    second = load_config(str(tmp_path))["SECRET_KEY"]

    assert first == second
    assert len(first) >= 64  # 32 random bytes, hex
    key_file = tmp_path / "secret_key"
    assert key_file.read_text().strip() == first
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_each_instance_gets_its_own_secret_key(environment, tmp_path):
    one = load_config(str(tmp_path / "one"))["SECRET_KEY"]
    two = load_config(str(tmp_path / "two"))["SECRET_KEY"]

    assert one != two


def test_a_secret_key_from_the_environment_is_used_and_nothing_is_written(environment,
                                                                          tmp_path):
    environment.setenv("SECRET_KEY", "from-the-environment")

    assert load_config(str(tmp_path))["SECRET_KEY"] == "from-the-environment"
    assert not (tmp_path / "secret_key").exists()


def test_production_without_a_secret_key_refuses_to_start(environment, tmp_path):
    environment.setenv("CRM_ENV", "production")

    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config(str(tmp_path))
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert not (tmp_path / "secret_key").exists()


def test_defaults_are_safe(environment, tmp_path):
    config = load_config(str(tmp_path))

    assert config["CRM_ENV"] == "development"
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'crm.sqlite'}"
    assert config["RATELIMIT_STORAGE_URI"] == "memory://"
    assert config["SESSION_COOKIE_HTTPONLY"] and config["REMEMBER_COOKIE_HTTPONLY"]


def test_redis_url_becomes_the_shared_rate_limit_storage(environment, tmp_path):
    environment.setenv("REDIS_URL", "redis://cache.internal:6379/3")

    assert load_config(str(tmp_path))["RATELIMIT_STORAGE_URI"] == "redis://cache.internal:6379/3"


# --- cookies ------------------------------------------------------------------------------

_CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def _cookies(response) -> dict[str, str]:
    """Set-Cookie headers by cookie name."""
    return {h.split("=", 1)[0]: h for h in response.headers.getlist("Set-Cookie")}


def _flags(header: str) -> set[str]:
    return {part.strip().lower() for part in header.split(";")[1:]}


def _sign_in_remembered(application, base_url="http://localhost"):
    with application.app_context():
        db.session.add(User(email="owner@example.com", role="owner",
                            password_hash=_CHEAP.hash(PASSWORD)))
        db.session.commit()
    client = application.test_client()
    page = client.get("/login", base_url=base_url)
    token = CSRF_RE.search(page.get_data(as_text=True)).group(1)
    response = client.post(
        "/login", base_url=base_url, headers={"Referer": f"{base_url}/login"},
        data={"email": "owner@example.com", "password": PASSWORD, "remember": "y",
              "csrf_token": token},
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    return page, response


def test_cookies_are_http_only_and_same_site_lax_but_not_secure_in_development(app):
    page, response = _sign_in_remembered(app)

    cookies = _cookies(response)
    for name in ("session", "remember_token"):
        assert {"httponly", "samesite=lax"} <= _flags(cookies[name]), cookies[name]
        assert "secure" not in _flags(cookies[name])  # development runs on plain http
    assert {"httponly", "samesite=lax"} <= _flags(_cookies(page)["session"])


def test_cookies_are_secure_in_production(app, database_url, environment):
    environment.setenv("CRM_ENV", "production")
    environment.setenv("SECRET_KEY", "a-production-secret-key-of-some-length")
    environment.setenv("CRM_PUBLIC_URL", "https://crm.example.com")
    production = make_app(database_url)
    assert production.config["CRM_ENV"] == "production"

    page, response = _sign_in_remembered(production, HTTPS)

    cookies = _cookies(response)
    for name in ("session", "remember_token"):
        assert {"secure", "httponly", "samesite=lax"} <= _flags(cookies[name]), cookies[name]
    assert "secure" in _flags(_cookies(page)["session"])



def test_two_processes_starting_at_once_keep_the_same_secret_key(environment, tmp_path):
    """Both found no key file and made one; the second must not replace the first, or the
    sessions signed by the first process stop working."""
    first = load_config(str(tmp_path))["SECRET_KEY"]
    key_file = tmp_path / "secret_key"
    real_exists = type(key_file).exists
    environment.setattr(type(key_file), "exists",
                        lambda path: False if path == key_file else real_exists(path))

    second = load_config(str(tmp_path))["SECRET_KEY"]

    assert second == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret_key"]  # no drafts left
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


# --- the address in e-mailed links --------------------------------------------------------

def test_production_needs_the_public_address_of_its_links(environment, tmp_path):
    """Links in e-mails (portal invitations, sign-in links) are never built from a request's
    Host header, which the sender of the request chooses."""
    environment.setenv("CRM_ENV", "production")
    environment.setenv("SECRET_KEY", "a-production-secret-key-of-some-length")

    with pytest.raises(ConfigError, match="CRM_PUBLIC_URL must be set in production"):
        load_config(str(tmp_path))
    environment.setenv("CRM_PUBLIC_URL", "https://crm.example.com/")
    assert load_config(str(tmp_path))["CRM_PUBLIC_URL"] == "https://crm.example.com"
    environment.setenv("CRM_PUBLIC_URL", "crm.example.com")
    with pytest.raises(ConfigError, match="must start with https://"):
        load_config(str(tmp_path))


def test_development_links_point_at_the_development_server(environment, tmp_path):
    assert load_config(str(tmp_path))["CRM_PUBLIC_URL"] == "http://127.0.0.1:5000"
