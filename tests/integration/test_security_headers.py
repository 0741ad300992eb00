"""Security headers on every response (crm/security_headers.py), and pages a browser can run
under that policy: no inline script, no on…= handler, no javascript: link anywhere.

The header values are written out here by hand, not read from the module, so that a change
to the policy has to be made twice on purpose."""

from html.parser import HTMLParser

import pytest

from crm.admin_views import MODEL_VIEWS
from crm.extensions import db
from tests.conftest import make_app
from tests.factories import make_invoice, make_tag
from tests.integration.helpers import customer, seed, text_of, url, view_for

POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
          "img-src 'self' data:; font-src 'self' data:; object-src 'none'; base-uri 'none'; "
          "form-action 'self'; frame-ancestors 'none'")
HEADERS = {
    "Content-Security-Policy": POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}
HSTS = "Strict-Transport-Security"


def _seed_customer(app) -> int:
    with app.app_context():
        person = customer(db.session, surname="Headers")
        make_invoice(db.session, person, amount="12.50")
        db.session.commit()
        return person.id


# (what, signed in as, expected status, the URL given the seeded customer's id[, headers])
RESPONSES = [
    ("admin list page", "owner", 200, lambda c: url("owner", "customer")),
    ("details page", "owner", 200, lambda c: url("owner", "customer", f"details/?id={c}")),
    ("CSV export", "owner", 200, lambda c: url("owner", "customer", "export/csv/")),
    ("403 page", "coordinator", 403, lambda c: url("owner", "user")),
    # a sign-out link followed from another site asks first
    ("sign-out page", "owner", 200, lambda c: "/logout", {"Sec-Fetch-Site": "cross-site"}),
    ("sign-out", "owner", 302, lambda c: "/logout"),
    ("sign-in page", None, 200, lambda c: "/login"),
    ("404 page", None, 404, lambda c: "/no-such-page"),
    ("redirect to sign-in", None, 302, lambda c: url("owner", "customer")),
    ("health check", None, 200, lambda c: "/healthz"),
    ("public inquiry form", None, 200, lambda c: "/inquiry"),
    ("inquiry thank-you page", None, 200, lambda c: "/inquiry/thanks"),
    ("our static file", None, 200, lambda c: "/static/js/crm.js"),
    ("Flask-Admin's static file", None, 200, lambda c: "/admin/static/admin/js/form.js"),
]


@pytest.mark.parametrize("case", RESPONSES, ids=[case[0] for case in RESPONSES])
def test_every_response_has_the_security_headers(app, client, login, case):
    _, role, status, path, *headers = case
    customer_id = _seed_customer(app)
    if role:
        login(role)

    response = client.get(path(customer_id), headers=headers[0] if headers else {})

    assert response.status_code == status
    assert {key: response.headers.get(key) for key in HEADERS} == HEADERS
    assert HSTS not in response.headers  # development: plain HTTP must stay reachable
    response.close()  # the CSV export streams


def test_a_form_post_and_a_csrf_refusal_have_them_too(app, client, login):
    login("owner")
    refused = client.post(url("owner", "tag", "new/"), data={"name": "x"}, csrf=False)
    saved = client.post(url("owner", "tag", "new/"), data={"name": "headers"})

    assert refused.status_code == 400
    assert saved.status_code == 302
    for response in (refused, saved):
        assert {key: response.headers.get(key) for key in HEADERS} == HEADERS


@pytest.fixture(scope="module")
def production_app(database_url, app):
    return make_app(database_url, CRM_ENV="production")


@pytest.mark.parametrize("path", ["/login", "/healthz", "/no-such-page",
                                  "/static/js/crm.js"])
def test_production_adds_strict_transport_security(production_app, path):
    # Plain HTTP as the proxy forwards it: TLS ends at the proxy, the header is sent anyway.
    response = production_app.test_client().get(path)

    assert response.headers.get(HSTS) == "max-age=31536000"
    assert {key: response.headers.get(key) for key in HEADERS} == HEADERS


# --- pages a browser can run under the policy --------------------------------------------
class InlineScriptFinder(HTMLParser):
    """Everything on a page that the policy would refuse to run: a <script> without src, an
    on…= event-handler attribute, a javascript: URL in any attribute. The escaped markup of a
    Flask-Admin inline-form template (which its script turns into live rows) is read too."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._template_depth = 0  # > 0 inside <div class="… inline-field-template …">
        self._template_text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "script" and not attributes.get("src"):
            self.found.append("<script> without src")
        for name, value in attrs:
            if name.startswith("on") and name[2:].isalpha():
                self.found.append(f"{name}= on <{tag}>")
            if value and value.strip().lower().startswith("javascript:"):
                self.found.append(f"javascript: URL in {name}= of <{tag}>")
        if tag == "div":
            if self._template_depth:
                self._template_depth += 1
            elif "inline-field-template" in (attributes.get("class") or "").split():
                self._template_depth = 1

    def handle_endtag(self, tag):
        if tag == "div" and self._template_depth:
            self._template_depth -= 1

    def handle_data(self, data):
        if self._template_depth:
            self._template_text.append(data)

    def close(self):
        super().close()
        if self._template_text:
            inner = InlineScriptFinder()
            inner.feed("".join(self._template_text))
            inner.close()
            self.found += [f"{what} (in an inline-form template)" for what in inner.found]


def inline_script(html: str) -> list[str]:
    finder = InlineScriptFinder()
    finder.feed(html)
    finder.close()
    return finder.found


def test_the_finder_finds_each_kind_of_inline_script():
    """The control for the tests below."""
    page = """<html><body>
      <script src="/static/js/crm.js"></script><script>alert(1)</script>
      <a href="javascript:void(0)">x</a><a href="#" onclick="go()">y</a>
      <form ONSUBMIT="return confirm('?')" action=" JavaScript:run()"></form>
      <div class="inline-field-template d-none">&lt;a href=&#34;javascript:void(0)&#34;&gt;
        &lt;div&gt;&lt;/div&gt;&lt;button onclick=&#34;x()&#34;&gt;&lt;/button&gt;</div>
      <a href="#" data-action-name="merge" data-confirm="Sure?" title="onclick=">fine</a>
    </body></html>"""

    assert inline_script(page) == [
        "<script> without src",
        "javascript: URL in href= of <a>",
        "onclick= on <a>",
        "onsubmit= on <form>",
        "javascript: URL in action= of <form>",
        "javascript: URL in href= of <a> (in an inline-form template)",
        "onclick= on <button> (in an inline-form template)",
    ]


# The seeded invoices are issued, and an issued invoice has no edit form (a draft's is in the
# test after this one).
NO_EDIT_FORM_WHEN_SEEDED = {"invoice"}


def _pages_of(app, slug: str) -> list[str]:
    """The list, a record's page, its edit form and the create form of a view, as the owner
    has them."""
    made = seed(app, slug)
    view = view_for(app, slug, "owner")
    pages = [url("owner", slug), url("owner", slug, f"details/?id={made.ids[0]}")]
    if view.can_edit and slug not in NO_EDIT_FORM_WHEN_SEEDED:
        pages.append(url("owner", slug, f"edit/?id={made.ids[0]}"))
    if view.can_create:
        pages.append(url("owner", slug, "new/"))
    return pages


@pytest.mark.parametrize("slug", [slug for _, _, _, slug in MODEL_VIEWS])
def test_no_model_view_page_has_inline_script(app, client, login, slug):
    login("owner")
    for path in _pages_of(app, slug):
        response = client.get(path)
        assert response.status_code == 200, path
        assert inline_script(text_of(response)) == [], path


def test_the_pages_with_the_most_behaviour_have_no_inline_script(app, client, login):
    """The customer list ("With selected", filters, the pager, row buttons), the record page
    (tabs, record buttons, delete), the customer and invoice forms (inline rows), the
    payment and bulk-action pages, the settings lists, and the pages outside the admin."""
    with app.app_context():
        person = customer(db.session, surname="Inline")
        other = customer(db.session, surname="Inline")
        make_invoice(db.session, person, amount="40.00")
        draft = make_invoice(db.session, person, status="draft")
        for i in range(21):
            make_tag(db.session, name=f"inline-{i}")
        db.session.commit()
        ids = (person.id, other.id)
        draft_id = draft.id
    pages = {
        "sign-in": "/login",
        "404": "/no-such-page",
    }
    for name, path in pages.items():
        assert inline_script(text_of(client.get(path))) == [], name

    login("owner")
    pages = {
        "home": "/admin/",
        "customer list": url("owner", "customer"),
        "customer list, filtered": url("owner", "customer", "?flt0_status_equals=active"),
        "tag list, page 2": url("owner", "tag", "?page=1"),
        "customer record": url("owner", "customer", f"details/?id={ids[0]}"),
        "customer edit form": url("owner", "customer", f"edit/?id={ids[0]}"),
        "invoice create form": url("owner", "invoice", "new/"),
        "invoice list": url("owner", "invoice"),
        "draft invoice": url("owner", "invoice", f"details/?id={draft_id}"),
        "draft invoice edit form": url("owner", "invoice", f"edit/?id={draft_id}"),
        "payment record page": url("owner", "payment", f"record/?customer_id={ids[0]}"),
        "allocate credit page": url("owner", "payment", f"allocate/?customer_id={ids[0]}"),
        "statement": url("owner", "customer", f"statement/?id={ids[0]}"),
        "bulk confirmation": url("owner", "customer", f"bulk/set_dormant/?ids={ids[0]}"),
        "merge": url("owner", "customer", f"merge/?ids={ids[0]}&ids={ids[1]}"),
        "possible duplicates": url("owner", "duplicates"),
        "outbox": url("owner", "outbox"),
        "blocked e-mails": url("owner", "blocked_email"),
        "staff users": url("owner", "user"),
        "portal accounts": url("owner", "portal_account"),
        "audit log": url("owner", "audit_event"),
    }
    for name, path in pages.items():
        response = client.get(path)
        assert response.status_code == 200, (name, response.status_code)
        assert inline_script(text_of(response)) == [], name

    sign_out = client.get("/logout", headers={"Sec-Fetch-Site": "cross-site"})
    assert "Sign out?" in text_of(sign_out)
    assert inline_script(text_of(sign_out)) == []


def test_no_view_opens_its_forms_in_a_modal(app):
    """Flask-Admin's modal templates (admin/model/modals/) run inline script, which the
    policy refuses: a view that turned modals on would get forms that silently do nothing.
    Copy and change those templates first (as templates/admin/model/*.html are)."""
    modal = sorted(view.endpoint for view in app.extensions["admin"][0]._views
                   if any(getattr(view, f"{kind}_modal", False)
                          for kind in ("create", "edit", "details")))
    assert modal == []
