"""The links the portal e-mails, built from the configured public address
(``CRM_PUBLIC_URL``), never from the Host header of the request that asked for them (a
reset link pointing at someone else's site would hand them the token). Used by the portal,
the admin's "send portal invite" and ``flask crm portal-invite`` alike, in or out of a
request; ``tests/integration/test_portal.py`` checks the paths against the portal's routes.
The token goes in the query string, which the access log leaves out."""

from urllib.parse import quote

from flask import current_app

PATHS = {
    "invite": "/portal/password",
    "reset": "/portal/password",
    "sign_in": "/portal/access",
    "email": "/portal/confirm-email",
}
# The staff session's key naming the customer an owner or admin views the portal as.
VIEW_AS = "portal_view_as"


def portal_link(purpose: str, token: str) -> str:
    return f"{current_app.config['CRM_PUBLIC_URL']}{PATHS[purpose]}?token={quote(token)}"


def link_maker(purpose: str):
    """token -> link, for the actions that e-mail one."""
    return lambda token: portal_link(purpose, token)
