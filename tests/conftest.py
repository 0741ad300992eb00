"""Shared fixtures: one migrated database per test run (SQLite, or PostgreSQL when
CRM_TEST_DATABASE_URL is set), emptied after each test; an app; clients signed in by role."""

import os
import re
import shutil
import uuid
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from crm import create_app
from crm.extensions import db, limiter
from crm.models import Base, User
from crm.security import hash_password

PASSWORD = "correct-horse-battery"
CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
CSRF_META_RE = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def _postgres_database(base_url: str, name: str) -> str:
    url = make_url(base_url)
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def _drop_postgres_database(base_url: str, name: str) -> None:
    admin = create_engine(make_url(base_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory, worker_id):
    base = os.environ.get("CRM_TEST_DATABASE_URL")
    if base:
        name = f"crm_test_{worker_id}_{uuid.uuid4().hex[:8]}"
        url = _postgres_database(base, name)
        yield url
        _drop_postgres_database(base, name)
    else:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite'}"


def _jobs_dir():
    import tempfile

    return Path(tempfile.mkdtemp(prefix="crm-jobs-"))


def make_app(database_url: str, **overrides):
    config = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": "test-secret-key",
        "RATELIMIT_STORAGE_URI": "memory://",
        # Jobs run where they are queued (no consumer); the consumer's own tests start one.
        "CRM_JOBS_IMMEDIATE": True,
        "REDIS_URL": None,
        "CRM_JOB_RETRY_DELAY": 0,
        "CRM_JOBS_DIR": str(_jobs_dir()),
    }
    config.update(overrides)
    return create_app(config)


@pytest.fixture(scope="session")
def app(database_url):
    from flask_migrate import upgrade

    application = make_app(database_url)
    with application.app_context():
        upgrade()
    return application


@pytest.fixture(autouse=True)
def _clean_database(request):
    yield
    if "app" not in request.fixturenames:
        return
    application = request.getfixturevalue("app")
    with application.app_context():
        db.session.rollback()
        empty_database()
        limiter.reset()
    # Job ids are reused once the table is emptied (SQLite): a job's folder must not find
    # the files of an earlier test's job of the same number.
    jobs = Path(application.config["CRM_JOBS_DIR"])
    if jobs.is_dir():
        for folder in jobs.iterdir():
            shutil.rmtree(folder, ignore_errors=True)


def empty_database() -> None:
    """DELETE, not TRUNCATE: on PostgreSQL a TRUNCATE of every table costs about 0.7 s per
    test against 20 ms. Ids are not restarted; document numbers are."""
    # The dashboard's stored totals last: deleting documents makes their triggers write.
    last = ("ledger_day", "ledger_total")
    tables = [t for t in reversed(Base.metadata.sorted_tables) if t.name not in last]
    for table in tables + [Base.metadata.tables[name] for name in last]:
        if table.name != "document_sequence":
            db.session.execute(table.delete())
    db.session.execute(text("UPDATE document_sequence SET next_value = 1"))
    db.session.commit()


@pytest.fixture
def session(app):
    """The app's session inside an app context, for unit tests of actions and models."""
    with app.app_context():
        yield db.session


class CrmClient(FlaskClient):
    """A test client that fills in the CSRF token of its session on every form POST,
    unless the test passes ``csrf=False`` to forge a request without it."""

    csrf_token: str | None = None

    def fetch_csrf_token(self, url: str | None = None) -> str:
        """The session's token: from the sign-in form, or (signed in) the admin's meta tag."""
        response = self.get(url or "/login")
        if url is None and response.status_code == 302:
            response = self.get("/admin/")
        page = response.get_data(as_text=True)
        match = CSRF_RE.search(page) or CSRF_META_RE.search(page)
        assert match, f"no CSRF token on {url}"
        self.csrf_token = match.group(1)
        return self.csrf_token

    def post(self, *args, csrf: bool = True, **kwargs):
        data = kwargs.get("data")
        if csrf and isinstance(data, dict) and "csrf_token" not in data:
            token = self.csrf_token or self.fetch_csrf_token()
            kwargs["data"] = {**data, "csrf_token": token}
        return super().post(*args, **kwargs)


@pytest.fixture
def client(app):
    app.test_client_class = CrmClient
    return app.test_client()


def create_user(role: str, email: str | None = None, password: str = PASSWORD) -> User:
    user = User(email=email or f"{role}@example.com", role=role, name=role.title(),
                password_hash=hash_password(password))
    db.session.add(user)
    db.session.commit()
    return user


class Auth:
    def __init__(self, app, client):
        self.app, self.client = app, client

    def login(self, role: str = "owner", email: str | None = None) -> User:
        with self.app.app_context():
            email = email or f"{role}@example.com"
            user = db.session.query(User).filter_by(email=email).one_or_none()
            if user is None:
                user = create_user(role, email)
            user_id = user.id
        response = self.client.post("/login", data={"email": email, "password": PASSWORD})
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        self.client.csrf_token = None
        with self.app.app_context():
            return db.session.get(User, user_id)

    def logout(self):
        return self.client.get("/logout")


@pytest.fixture
def auth(app, client):
    return Auth(app, client)


def login_client(app, role: str) -> CrmClient:
    """A second, independent client signed in as ``role``."""
    app.test_client_class = CrmClient
    other = app.test_client()
    Auth(app, other).login(role)
    return other
