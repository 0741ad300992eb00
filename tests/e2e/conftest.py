"""A live server on the test database of this worker, and Debian's Chromium driven by
Playwright (sync API). Playwright's own browser download is not used.

The server shares the session-scoped ``app`` fixture (and so the database) of
``tests/conftest.py``: data a test commits inside ``app.app_context()`` is what the browser
sees, and the autouse clean-up empties it after each test.
"""

import os
import shutil
import threading

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from tests.conftest import PASSWORD, create_user

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
TIMEOUT_MS = 15_000


def pytest_collection_modifyitems(items):
    # Everything under tests/e2e/ is an e2e test: `pytest -m "not e2e"` skips the browser.
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(pytest.mark.e2e)


def _chromium_path() -> str | None:
    return os.environ.get("CRM_CHROMIUM") or shutil.which("chromium")


class QuietHandler(WSGIRequestHandler):
    """Log only failed requests: a page pulls in dozens of static files."""

    def log_request(self, code="-", size="-") -> None:
        if str(getattr(code, "value", code)).startswith(("4", "5")):
            super().log_request(code, size)


class LiveServer:
    def __init__(self, app):
        # Port 0: the OS picks a free port; the socket is listening once make_server returns.
        self._server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="live-server", daemon=True
        )

    def start(self) -> "LiveServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_server(app):
    server = LiveServer(app).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser():
    executable = _chromium_path()
    if executable is None:
        message = (
            "Chromium not found: `apt-get install -y chromium` (scripts/test.sh does this), "
            "or set CRM_CHROMIUM to its path."
        )
        if os.environ.get("CI") or os.environ.get("CRM_E2E_REQUIRED"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    """A fresh browser context (no cookies) per test, with relative URLs on the server."""
    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def sign_in(app, page):
    """``sign_in(role)``: create the staff user (if needed) and sign in through /login."""

    def sign_in_as(role: str, email: str | None = None):
        email = email or f"{role}@example.com"
        with app.app_context():
            from crm.extensions import db
            from crm.models import User

            if db.session.query(User).filter_by(email=email).one_or_none() is None:
                create_user(role, email)
        page.goto("/login")
        page.get_by_label("E-mail").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(lambda url: "/login" not in url)
        return page

    return sign_in_as
