"""The "Possible duplicates" page: one per staff role, groups with links to each customer,
a merge link for owners and admins only, a reason filter, keyset "Next" links, escaping,
and the sign-in and role checks."""

import itertools
import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest

from crm.admin_views.duplicates import PAGE_SIZE
from crm.extensions import db
from tests import factories as f
from tests.integration.helpers import flashes, statements, text_of

ROLES = ("owner", "admin", "coordinator")
_postcodes = itertools.count(1)


def page_url(role: str, query: str = "") -> str:
    return f"/admin/{role}/duplicates/{query}"


def person(**overrides):
    """A customer who shares nothing with anyone unless the test says so."""
    values = {"phone": None, "postcode": f"ZZ{next(_postcodes)} 9ZZ"}
    values.update(overrides)
    return f.make_customer(db.session, **values)


@pytest.fixture
def pair(app):
    """Two customers with one e-mail, and one who shares nothing."""
    with app.app_context():
        a = person(first_name="Robin", surname="Hood", email="robin@example.com")
        b = person(first_name="Rob", surname="Hood", email="robin@example.com",
                   status="archived")
        person(email="someone.else@example.com")
        db.session.commit()
        return {"ids": [a.id, b.id], "refs": [a.reference, b.reference]}


def groups_on(html: str) -> list[str]:
    return re.findall(r'data-testid="duplicate-group" data-reason="([a-z_]+)"', html)


def merge_links(html: str) -> list[str]:
    return [unescape(h) for h in re.findall(r'<a[^>]*href="([^"]+)"[^>]*data-testid="merge-link"',
                                            html)]


def shared_emails(html: str) -> list[str]:
    return re.findall(r"<strong>Same e-mail:</strong>\s*([^<\s]+)", html)


def next_link(html: str) -> str | None:
    found = re.search(r'<a[^>]*href="([^"]+)"[^>]*data-testid="next-page"', html)
    return unescape(found.group(1)) if found else None


@pytest.mark.parametrize("role", ROLES)
def test_each_role_sees_the_groups_with_links_to_the_customers(client, login, pair, role):
    login(role)

    response = client.get(page_url(role))
    html = text_of(response)

    assert response.status_code == 200
    assert groups_on(html) == ["email"]
    assert "robin@example.com" in html
    for customer_id, reference in zip(pair["ids"], pair["refs"], strict=True):
        assert f'href="/admin/{role}/customer/details/?id={customer_id}">{reference}</a>' in html
    assert "archived" in html
    assert f'href="/admin/{role}/duplicates/"' in html  # in the Customers menu


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owners_and_admins_get_a_merge_link_with_the_group(client, login, pair, role):
    login(role)

    [link] = merge_links(text_of(client.get(page_url(role))))

    parts = urlsplit(link)
    assert parts.path == f"/admin/{role}/customer/merge/"
    assert parse_qs(parts.query) == {"ids": [str(i) for i in pair["ids"]]}


def test_a_coordinator_gets_no_merge_link(client, login, pair):
    login("coordinator")

    html = text_of(client.get(page_url("coordinator")))

    assert groups_on(html) == ["email"]
    assert merge_links(html) == []
    assert "/customer/merge/" not in html


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_a_coordinator_cannot_open_another_roles_page(client, login, pair, role):
    login("coordinator")

    response = client.get(page_url(role))

    assert response.status_code == 403
    assert "robin@example.com" not in text_of(response)


def test_signed_out_visitors_are_sent_to_sign_in(client, pair):
    response = client.get(page_url("owner", "?reason=email"))

    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/login"
    assert parse_qs(location.query)["next"] == ["/admin/owner/duplicates/?reason=email"]


def test_names_and_emails_are_escaped(client, login, app):
    with app.app_context():
        for _ in range(2):
            person(first_name="<script>alert(1)</script>", surname="<b>Bold</b>",
                   email="x@example.com", postcode="AB1 2CD")
        db.session.commit()
    login("owner")

    html = text_of(client.get(page_url("owner", "?reason=name_postcode")))

    assert groups_on(html) == ["name_postcode"]
    assert "<script>alert(1)</script>" not in html
    assert "<b>Bold</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;Bold&lt;/b&gt;, AB1 2CD" in html


def test_the_reason_filter_shows_one_kind(client, login, app):
    with app.app_context():
        for _ in range(2):
            person(email="same@example.com")
            person(phone="+447911555000")
        db.session.commit()
    login("admin")

    everything = groups_on(text_of(client.get(page_url("admin"))))
    phones = groups_on(text_of(client.get(page_url("admin", "?reason=phone"))))

    assert everything == ["email", "phone"]
    assert phones == ["phone"]


def test_next_links_walk_every_group_once(client, login, app):
    with app.app_context():
        for i in range(PAGE_SIZE + 3):
            for _ in range(2):
                person(email=f"twin{i:02d}@example.com")
        db.session.commit()
    login("owner")

    seen, link, pages = [], page_url("owner"), 0
    while link:
        html = text_of(client.get(link))
        seen += shared_emails(html)
        link = next_link(html)
        pages += 1

    assert pages == 2
    assert seen == [f"twin{i:02d}@example.com" for i in range(PAGE_SIZE + 3)]


def test_a_page_link_does_not_spell_out_an_email(client, login, app):
    with app.app_context():
        for i in range(PAGE_SIZE + 1):
            for _ in range(2):
                person(email=f"private{i:02d}@example.com")
        db.session.commit()
    login("owner")

    link = next_link(text_of(client.get(page_url("owner"))))

    assert link is not None and "private" not in link and "%40" not in link


def test_a_broken_page_link_starts_again_with_a_message(client, login, pair):
    login("owner")

    response = client.get(page_url("owner", "?after=garbage!"), follow_redirects=True)

    assert response.status_code == 200
    assert flashes(text_of(response)) == [
        "That page link is not valid any more: start again from the first page."]
    assert groups_on(text_of(response)) == ["email"]


def test_an_unknown_reason_is_a_message_not_an_error(client, login, pair):
    login("owner")

    response = client.get(page_url("owner", "?reason=shoe_size"), follow_redirects=True)

    assert response.status_code == 200
    assert flashes(text_of(response)) == ["There is no kind of duplicate called 'shoe_size'."]


def test_no_duplicates_says_so(client, login):
    login("coordinator")

    html = text_of(client.get(page_url("coordinator")))

    assert 'data-testid="no-duplicates"' in html
    assert "No possible duplicates." in html


def _one_group_of_each_kind(i: int) -> None:
    for _ in range(2):
        person(email=f"kind{i}@example.com")
        person(phone=f"+4479115550{i:02d}")
        person(surname=f"Kind{i}", postcode="AB1 2CD")


def test_the_page_costs_the_same_statements_with_few_or_many_groups(app, client, login,
                                                                   monkeypatch):
    monkeypatch.setitem(app.config, "CRM_TIMING_HEADERS", True)
    with app.app_context():
        _one_group_of_each_kind(0)
        db.session.commit()
    login("owner")
    few = client.get(page_url("owner"))
    with app.app_context():
        for i in range(1, 10):
            _one_group_of_each_kind(i)
        db.session.commit()
    many = client.get(page_url("owner"))

    assert (len(groups_on(text_of(few))), len(groups_on(text_of(many)))) == (3, PAGE_SIZE)
    assert statements(few) == statements(many)

