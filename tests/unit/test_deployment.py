"""Behind a reverse proxy, and with Redis gone."""

import subprocess
import sys
from pathlib import Path

from crm.extensions import db, limiter
from crm.models import User
from crm.security import hash_password
from tests.conftest import make_app


def test_behind_a_trusted_proxy_the_per_address_limit_counts_the_client(database_url, app):
    proxied = make_app(database_url, CRM_TRUSTED_PROXIES=1, CRM_LOGIN_LIMIT_PER_ADDRESS="2/hour")
    client = proxied.test_client()
    token_page = client.get("/login").get_data(as_text=True)
    token = token_page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]

    def attempt(address: str) -> int:
        return client.post("/login", data={"email": "x@example.com", "password": "wrong",
                                           "csrf_token": token},
                           headers={"X-Forwarded-For": address}).status_code

    assert [attempt("203.0.113.7") for _ in range(3)] == [401, 401, 429]
    assert attempt("198.51.100.9") == 401  # another client behind the same proxy
    with proxied.app_context():
        limiter.reset()


# The limiter is one object per process, so an app with a broken store is made in a
# process of its own.
BROKEN_STORE = """
import sys
from tests.conftest import make_app
app = make_app(sys.argv[1], RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0")
client = app.test_client()
page = client.get("/login").get_data(as_text=True)
token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
for password in ("nope", "correct-horse-battery"):
    response = client.post("/login", data={"email": "solo@example.com", "password": password,
                                           "csrf_token": token})
    print(response.status_code)
"""


def test_sign_in_works_when_the_rate_limit_store_is_down(database_url, app):
    with app.app_context():
        db.session.add(User(email="solo@example.com", role="owner",
                            password_hash=hash_password("correct-horse-battery")))
        db.session.commit()
    result = subprocess.run([sys.executable, "-c", BROKEN_STORE, database_url],
                            capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.stdout.split() == ["401", "302"], result.stderr[-2000:]
