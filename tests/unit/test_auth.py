"""Staff sign-in: Argon2id hashes, one message for every refusal, a fresh
session at sign-in and none after sign-out, `next` kept inside the site, cookie flags."""

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update

import tests.conftest as root
from crm.auth import safe_next
from crm.extensions import db
from crm.models import User
from crm.security import hash_password, verify_password
from tests.conftest import CSRF_RE, PASSWORD

REFUSED = "Wrong e-mail or password, or the account is disabled."
ADMIN_PAGE = "/admin/owner/customer/"


def sign_in(client, email="owner@example.com", password=PASSWORD, next_url=None, **extra):
    url = "/login" if next_url is None else f"/login?next={next_url}"
    return client.post(url, data={"email": email, "password": password, **extra})


# Staff made by the fixtures get a real Argon2id hash at the lowest cost: signing in then
# takes a millisecond instead of a third of a second (the login code is the same).
_CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture(autouse=True)
def _cheap_staff_passwords(monkeypatch):
    monkeypatch.setattr(root, "hash_password", _CHEAP.hash)


@pytest.fixture
def owner(app):
    with app.app_context():
        user = root.create_user("owner")
        return user.id


# --- passwords ----------------------------------------------------------------------------

def test_passwords_are_hashed_with_argon2id_at_a_real_cost():
    stored = hash_password(PASSWORD)
    again = hash_password(PASSWORD)

    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    assert stored != again  # salted
    params = dict(p.split("=") for p in stored.split("$")[3].split(","))
    assert int(params["m"]) >= 19 * 1024 and int(params["t"]) >= 2  # OWASP's floor
    assert verify_password(stored, PASSWORD)
    assert not verify_password(stored, PASSWORD + "x")


def test_a_user_made_by_the_cli_has_an_argon2id_hash(app, session):
    result = app.test_cli_runner().invoke(
        args=["crm", "create-user", "cli@example.com", "--role", "admin", "--password",
              PASSWORD])
    assert result.exit_code == 0, result.output

    stored = session.execute(
        select(User.password_hash).where(User.email == "cli@example.com")).scalar()
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


def test_verify_password_refuses_missing_and_malformed_hashes():
    assert not verify_password(None, "not a real password")  # the dummy hash's own password
    assert not verify_password("", PASSWORD)
    assert not verify_password("plain-text-password", "plain-text-password")


def test_a_short_password_is_refused_with_a_message():
    with pytest.raises(ValueError, match="at least 10 characters"):
        hash_password("short")


# --- signing in ---------------------------------------------------------------------------

def test_the_right_password_signs_in(client, owner):
    response = sign_in(client)

    assert response.status_code == 302
    assert client.get(ADMIN_PAGE).status_code == 200


def test_a_wrong_password_is_refused_with_a_message(client, owner):
    response = sign_in(client, password="wrong-password-here")

    assert response.status_code == 401
    assert REFUSED in response.get_data(as_text=True)
    assert client.get(ADMIN_PAGE).status_code == 302


def test_an_unknown_email_gets_the_same_answer_as_a_wrong_password(client, owner):
    unknown = sign_in(client, email="nobody@example.com")
    wrong = sign_in(client, password="wrong-password-here")

    assert unknown.status_code == wrong.status_code == 401
    assert REFUSED in unknown.get_data(as_text=True)
    assert _page(unknown, "nobody@example.com") == _page(wrong, "owner@example.com")


def _page(response, email: str) -> str:
    """The page without what differs by design: the e-mail typed and the CSRF token."""
    return CSRF_RE.sub("", response.get_data(as_text=True).replace(email, ""))


def test_the_email_is_matched_whatever_its_case_and_spaces(client, owner):
    assert sign_in(client, email="  Owner@Example.COM ").status_code == 302


def test_a_disabled_user_cannot_sign_in(client, session, owner):
    session.execute(update(User).where(User.id == owner).values(is_enabled=False))
    session.commit()

    response = sign_in(client)

    assert response.status_code == 401
    assert REFUSED in response.get_data(as_text=True)
    assert client.get(ADMIN_PAGE).status_code == 302


def test_a_user_disabled_while_signed_in_is_signed_out(client, session, owner):
    assert sign_in(client).status_code == 302
    session.execute(update(User).where(User.id == owner).values(is_enabled=False))
    session.commit()

    response = client.get(ADMIN_PAGE)

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_a_post_without_the_csrf_token_signs_nobody_in(client, owner):
    response = client.post("/login", data={"email": "owner@example.com",
                                           "password": PASSWORD}, csrf=False)

    assert response.status_code == 400
    assert client.get(ADMIN_PAGE).status_code == 302


# --- the session --------------------------------------------------------------------------

def test_the_session_is_renewed_at_sign_in(client, owner):
    client.fetch_csrf_token()
    with client.session_transaction() as planted:
        planted["planted"] = "by someone else"

    sign_in(client)

    with client.session_transaction() as after:
        assert "planted" not in after
        assert after.get("_user_id", "").split(".")[0] == str(owner)


def test_sign_out_clears_the_session(client, owner):
    sign_in(client)
    assert client.get(ADMIN_PAGE).status_code == 200

    response = client.get("/logout")

    assert response.status_code == 302
    with client.session_transaction() as after:
        assert "_user_id" not in after
    page = client.get(ADMIN_PAGE)
    assert page.status_code == 302
    assert page.headers["Location"].startswith("/login")


def test_sign_out_also_forgets_a_kept_sign_in(client, owner):
    """'Keep me signed in' sets a remember cookie; signing out must clear it too, or the next
    request signs the user straight back in."""
    sign_in(client, remember="y")
    assert client.get_cookie("remember_token") is not None

    client.get("/logout")

    assert client.get_cookie("remember_token") is None
    assert client.get(ADMIN_PAGE).status_code == 302


# --- where to go after signing in ---------------------------------------------------------

@pytest.mark.parametrize(
    "target",
    ["//evil.com", "/\\evil.com", "\\\\evil.com", "https://evil.com", "http:evil.com",
     "javascript:alert(1)", " //evil.com", "/\t/evil.com", "////evil.com", "evil.com", ""],
)
def test_next_never_leaves_the_site(app, target):
    with app.test_request_context():
        assert safe_next(target) == "/admin/"


@pytest.mark.parametrize("target", [ADMIN_PAGE, "/admin/owner/customer/?page=2&sort=1", "/"])
def test_next_keeps_a_path_on_the_site(app, target):
    with app.test_request_context():
        assert safe_next(target) == target


@pytest.mark.parametrize(
    ("target", "landing"),
    [("//evil.com", "/admin/"), ("https://evil.com/x", "/admin/"),
     ("javascript:alert(1)", "/admin/"), ("%2F%2Fevil.com", "/admin/"),
     ("/%5Cevil.com", "/admin/"), (ADMIN_PAGE, ADMIN_PAGE)],
)
def test_signing_in_redirects_only_inside_the_site(client, owner, target, landing):
    response = sign_in(client, next_url=target)

    assert response.status_code == 302
    assert response.headers["Location"] == landing


def test_a_signed_in_user_opening_the_login_page_is_sent_inside_the_site(client, owner):
    sign_in(client)

    assert client.get("/login?next=//evil.com").headers["Location"] == "/admin/"
    assert client.get(f"/login?next={ADMIN_PAGE}").headers["Location"] == ADMIN_PAGE


# --- the rest -----------------------------------------------------------------------------

def test_health_check(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_last_sign_in_is_recorded(client, session, owner):
    sign_in(client)

    assert session.get(User, owner).last_login_at is not None


def test_an_unknown_user_id_in_a_session_is_nobody(app, client, owner):
    with client.session_transaction() as forged:
        forged["_user_id"] = "not-a-number"

    assert client.get(ADMIN_PAGE).status_code == 302
    with app.app_context():
        assert db.session.get(User, owner) is not None


def test_a_link_on_another_site_does_not_sign_anyone_out(client, owner):
    sign_in(client)
    page = client.get("/logout", headers={"Sec-Fetch-Site": "cross-site"})

    assert page.status_code == 200 and "Sign out?" in page.get_data(as_text=True)
    assert client.get(ADMIN_PAGE).status_code == 200  # still signed in
    token = CSRF_RE.search(page.get_data(as_text=True)).group(1)  # the button's form
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get(ADMIN_PAGE).status_code == 302


def test_the_sign_out_link_of_the_panel_signs_out(client, owner):
    sign_in(client)
    response = client.get("/logout", headers={"Sec-Fetch-Site": "same-origin"})
    assert response.status_code == 302
    assert client.get(ADMIN_PAGE).status_code == 302


def test_a_new_password_ends_the_sessions_signed_in_with_the_old_one(app, client, owner):
    sign_in(client)
    assert client.get(ADMIN_PAGE).status_code == 200
    result = app.test_cli_runner().invoke(
        args=["crm", "create-user", "owner@example.com", "--role", "owner",
              "--password", "a-brand-new-password"]
    )
    assert result.exit_code == 0, result.output

    page = client.get(ADMIN_PAGE)
    assert page.status_code == 302 and page.headers["Location"].startswith("/login")


# --- sessions end on the server -----------------------------------------------------------

def _copy_of_cookies(app, client):
    """A second browser holding a copy of ``client``'s cookies (as an attacker who read
    them would)."""
    app.test_client_class = root.CrmClient
    thief = app.test_client()
    for name in ("session", "remember_token"):
        cookie = client.get_cookie(name)
        if cookie is not None:
            thief.set_cookie(name, cookie.value)
    return thief


@pytest.mark.parametrize("remember", [None, "y"], ids=["session cookie", "kept sign-in"])
def test_a_cookie_copied_before_sign_out_opens_nothing_after_it(app, client, owner, remember):
    sign_in(client, **({"remember": remember} if remember else {}))
    thief = _copy_of_cookies(app, client)
    assert thief.get(ADMIN_PAGE).status_code == 200  # the copy works while signed in

    client.get("/logout")

    page = thief.get(ADMIN_PAGE)
    assert page.status_code == 302 and page.headers["Location"].startswith("/login")


def test_signing_out_ends_only_that_browser(app, client, owner):
    sign_in(client)
    app.test_client_class = root.CrmClient
    laptop = app.test_client()
    sign_in(laptop)

    client.get("/logout")

    assert laptop.get(ADMIN_PAGE).status_code == 200


def test_sign_out_everywhere_ends_every_session_of_the_user(app, client, owner):
    from crm.models import StaffSession

    sign_in(client)
    app.test_client_class = root.CrmClient
    laptop = app.test_client()
    sign_in(laptop)
    page = client.get(f"/admin/owner/user/details/?id={owner}").get_data(as_text=True)
    assert 'data-testid="end-sessions"' in page
    client.csrf_token = None  # the session was renewed at sign-in

    response = client.post("/admin/owner/user/end-sessions/", data={"id": str(owner)})

    assert response.status_code == 302
    assert laptop.get(ADMIN_PAGE).status_code == 302
    assert client.get(ADMIN_PAGE).status_code == 302
    with app.app_context():
        assert db.session.query(StaffSession).filter(StaffSession.ended_at.is_(None)).count() == 0


def test_an_admin_cannot_sign_an_owner_out_everywhere(app, client, owner):
    with app.app_context():
        root.create_user("admin")
    sign_in(client, email="admin@example.com")
    app.test_client_class = root.CrmClient
    owners = app.test_client()
    sign_in(owners)
    client.csrf_token = None

    response = client.post("/admin/admin/user/end-sessions/", data={"id": str(owner)})

    assert response.status_code == 404
    assert owners.get(ADMIN_PAGE).status_code == 200


def test_a_session_cookie_naming_no_open_session_is_nobody(app, client, owner):
    sign_in(client)
    with client.session_transaction() as cookie:
        user_id, fingerprint, _ = cookie["_user_id"].split(".")
        cookie["_user_id"] = f"{user_id}.{fingerprint}.forged-token"

    assert client.get(ADMIN_PAGE).status_code == 302


def test_forty_simultaneous_sign_ins_to_one_account_all_succeed(app, owner):
    """last_login_at used to go through the optimistic version check: about half of 40
    parallel sign-ins failed with a 500 (StaleDataError)."""
    from concurrent.futures import ThreadPoolExecutor

    app.test_client_class = root.CrmClient

    def one(_):
        browser = app.test_client()
        return sign_in(browser).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(one, range(40)))

    assert codes == [302] * 40
    with app.app_context():
        assert db.session.get(User, owner).version == 1  # signing in is not an edit
