"""Security headers on every response of the app: admin pages, sign-in and sign-out, error
pages, /healthz, static files and downloads (and the customer portal, when it comes).

What they buy:

- No page can be framed by another site (``frame-ancestors 'none'``, and ``X-Frame-Options``
  for browsers that predate it), so a one-click POST button cannot be clicked through a
  disguised frame.
- Script runs only from our own files (``script-src 'self'``): no inline ``<script>``, no
  ``on…=`` attribute, no ``javascript:`` link, and no nonce either. Templates say what they
  want with data- attributes and ``static/js/crm.js`` does it; an injected ``<script>`` or
  handler would not run even if escaping ever failed.
- Styles may be inline (``'unsafe-inline'`` in ``style-src`` only): Flask-Admin's form.js
  (the date-time range filter) and x-editable build markup with ``style="…"``, select2 copies
  style attributes, and a few of our pages (sign-in, sign-out, errors, the outbox) have one.
  A style cannot run script; everything else is ``'self'``.
- ``nosniff``: a CSV, a PDF or an upload is never guessed to be HTML or script.
- ``Referrer-Policy: same-origin``: other sites never learn our address or its query (record
  ids and search words, which are personal data), while our own requests keep the full
  referrer, which Flask-WTF's CSRF check needs on a same-origin POST over HTTPS. Nothing
  cross-origin needs a referrer, so strict-origin-when-cross-origin would only give away our
  host name.
- ``Cross-Origin-Opener-Policy: same-origin``: a page of another site that opened ours (or
  that ours opened) gets no handle on our window.
- ``Strict-Transport-Security`` in production only (``CRM_ENV``), whatever scheme the request
  says: TLS is terminated by the proxy in front, and the request that reaches us says http
  unless ``CRM_TRUSTED_PROXIES`` is set (browsers ignore the header over plain HTTP anyway).
  Development runs on plain HTTP and must not be pinned to HTTPS. One year, this host only:
  the application does not own its domain's subdomains, and may not serve at its apex.

Written by hand rather than with Flask-Talisman (1.1.0): the whole job is a fixed set of
headers, said here in one ``after_request``. Talisman would need most of its defaults turned
off: it redirects to HTTPS (TLS ends at the proxy, development is plain HTTP), it rewrites the
session cookie settings that ``crm.config`` owns (Secure on every request, SameSite at
start-up), it sends HSTS only on a request it believes came over HTTPS (so not behind a
proxy unless ``CRM_TRUSTED_PROXIES`` is set), and it has no Cross-Origin-Opener-Policy, which
would need a hook of our own anyway.
"""

from flask import Flask, Response

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}

STRICT_TRANSPORT_SECURITY = "max-age=31536000"  # one year


def security_headers(env: str) -> dict[str, str]:
    """The headers every response gets in the environment ``env`` (``CRM_ENV``)."""
    headers = dict(HEADERS)
    if env == "production":
        headers["Strict-Transport-Security"] = STRICT_TRANSPORT_SECURITY
    return headers


def init_security_headers(app: Flask) -> None:
    headers = security_headers(app.config["CRM_ENV"])

    @app.after_request
    def _security_headers(response: Response) -> Response:
        # Set, not defaulted: no view or library loosens them by accident. A page may only
        # tighten the referrer policy (the portal's pages reached by a token link send none).
        stricter = response.headers.get("Referrer-Policy") == "no-referrer"
        response.headers.update(headers)
        if stricter:
            response.headers["Referrer-Policy"] = "no-referrer"
        return response
