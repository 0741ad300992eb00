"""The site has an icon: /favicon.ico (which every browser asks for) answers with an image
instead of a 404, and the staff, sign-in and portal pages link it."""

import re

import pytest

from tests.integration.helpers import text_of, url

ICO_MAGIC = b"\x00\x00\x01\x00"
ICON_LINK = re.compile(r'<link rel="(?:icon|apple-touch-icon)" href="([^"]+)"')


def test_favicon_ico_answers_with_an_image(client):
    response = client.get("/favicon.ico")

    assert response.status_code == 200
    assert response.mimetype.startswith("image/")
    assert response.data.startswith(ICO_MAGIC)
    assert len(response.data) > 500


def test_favicon_needs_no_sign_in_and_is_cached(client):
    response = client.get("/favicon.ico")

    assert response.status_code == 200
    assert "max-age" in response.headers.get("Cache-Control", "")


@pytest.mark.parametrize("page", ["/login", "staff", "/portal/login"])
def test_pages_link_the_icon_and_every_linked_icon_is_an_image(client, login, page):
    if page == "staff":
        login("owner")
        page = url("owner", "customer")
    html = text_of(client.get(page))

    links = ICON_LINK.findall(html)

    assert len(links) >= 2, links
    for href in links:
        icon = client.get(href)
        assert icon.status_code == 200, href
        assert icon.mimetype.startswith("image/"), (href, icon.mimetype)
