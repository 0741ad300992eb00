"""The role matrix, driven by the capability table (``crm.permissions.CAPABILITIES``).

The table must be the design's (``EXPECTED`` below is written out by hand from it, so a new
capability fails here until someone says which roles have it). Then, for every capability
and every role, every surface of the panel that requires it — found by walking the running
app, not listed by hand — is requested as that role: a role without the capability gets
403 (or, for a whole screen, no screen at all), a role with it gets through. The surfaces are:

- whole screens: a model view or page whose ``capability`` the role lacks;
- endpoints marked with ``@require(capability)``;
- the "With selected" menu entries (``action_capabilities``);
- the customers' bulk verbs (``/bulk/<verb>/``) and the record page's status buttons;
- a model view's create form (``create_capability``).
"""

from dataclasses import dataclass, field

import pytest
from flask_admin.contrib.sqla import ModelView

from crm.admin_views import REGISTRY
from crm.admin_views.customer_bulk import VERBS
from crm.admin_views.spec import CrmModelView
from crm.extensions import db
from crm.permissions import CAPABILITIES, FINANCE, ROLES, STAFF, can, roles_with
from tests.integration.helpers import admin_views, customer, text_of

EXPECTED: dict[str, frozenset[str]] = {
    "see_money": FINANCE,
    "invoice": FINANCE,
    "raise_credit_note": FINANCE,
    "record_payment": FINANCE,
    "statements": FINANCE,
    "merge": FINANCE,
    "redact": FINANCE,
    "delete": FINANCE,
    "set_dormant": STAFF,
    "block_email": STAFF,
    "reminders": STAFF,
    "change_kind": STAFF,
    "hide_related": STAFF,
    "convert_lead": STAFF,
    "attribute_booking": STAFF,
    "import_records": STAFF,
    "manage_staff": FINANCE,
    "portal_invite": FINANCE,
    "view_as_customer": FINANCE,
    "export_data": FINANCE,
    "audit_log": FINANCE,
    "manage_business": FINANCE,
    "run_jobs": FINANCE,
}

# Declared for the screens that later work adds (leads, imports, background jobs): nothing
# requires them yet. When a screen starts to, take it out here.
AHEAD_OF_THEIR_SCREENS: set[str] = set()
NOBODY = 999_999  # an id no row has: the probes ask, they never change anything

# Endpoints of the panel's own (beyond Flask-Admin's list, details, forms, export and
# look-ups) that carry no ``@require``, and why. Any other is a finding: it must require a
# capability, or be added here with its reason.
UNMARKED = {
    "bulk_view": "checks the verb's own capability (probed per verb below)",
    "status_view": "checks the verb's own capability (probed per verb below)",
    "delete_view": "the customer's: checks the delete capability itself (probed below)",
    "add_note_view": "notes are everyday work of every role that has the customer screen",
    "move_view": "moving a lead between stages is everyday work of every role with leads",
    "pin_note_view": "notes are everyday work of every role that has the customer screen",
    "edit_view": "the customer's (Flask-Admin's form after the tombstone and redaction "
                 "redirects) and the credit note's (only says it cannot be edited)",
    "details_view": "the customer's: Flask-Admin's details after the tombstone redirect",
    "reference_view": "the customer's: only redirects to the record's own page in the same "
                      "role's panel, which checks its own capability (none: a 404)",
    "action_view": "checks each menu entry's own capability (probed per entry below)",
    "ajax_lookup": "Flask-Admin's look-up with its offset and limit kept in range; gated like "
                   "it, by the view's own capability",
    "columns_view": "the user's own columns of a list they can open (gated by the view's "
                    "capability); only the columns their role's list offers",
    "save_filter_view": "the user's own saved filter of a list they can open (gated by the "
                        "view's capability); only that list's own query arguments",
    "delete_filter_view": "deletes only the signed-in user's own saved filter",
    "export": "Flask-Admin's export with XLSX and export jobs (crm.admin_views.exports): "
              "gated like it, by the view's capability, with the role's export columns",
}
BUILT_IN = {name for _, name, _ in ModelView._urls}


@dataclass(frozen=True)
class Probe:
    capability: str
    role: str  # whose screen the request goes to, signed in as that role
    method: str
    path: str
    data: dict = field(default_factory=dict)
    denied: tuple[int, ...] = (403,)  # what a role without the capability gets
    what: str = ""


def _endpoint_probes(view) -> list[Probe]:
    """``@require`` endpoints; and every endpoint of a page, under the page's capability."""
    found = []
    page = not isinstance(view, CrmModelView)
    for rule, name, methods in view._urls:
        capability = getattr(getattr(type(view), name), "capability", None)
        if page:
            capability = capability or view.capability
        if capability is None or "<" in rule:
            continue
        method = "GET" if "GET" in methods else "POST"
        data = {} if method == "GET" else {"id": str(NOBODY)}
        found.append(Probe(capability, view.role, method, view.url + rule, data,
                           what=f"{view.endpoint}.{name}"))
    return found


def _action_probes(view) -> list[Probe]:
    return [
        Probe(view.action_capabilities.get(name, view.capability), view.role, "POST",
              f"{view.url}/action/", {"action": name, "rowid": str(NOBODY)},
              what=f"{view.endpoint} action {name}")
        for name in view._actions_data
        if view.action_capabilities.get(name, view.capability) is not None
        and (name != "delete" or view.can_delete)  # no delete at all: not a capability's
    ]


def _customer_probes(view) -> list[Probe]:
    probes = [Probe(verb.capability, view.role, "GET",
                    f"{view.url}/bulk/{verb.name}/?ids={NOBODY}", what=f"bulk {verb.name}")
              for verb in VERBS.values()]
    probes += [Probe(view.action_capabilities[verb], view.role, "POST",
                     f"{view.url}/status/{verb}/", {"id": str(NOBODY)}, what=f"status {verb}")
               for verb in ("set_dormant", "reactivate")]
    return probes


def _screen_probes(slug: str, screen) -> list[Probe]:
    """A whole screen: a role without the capability has none of its own (model views:
    404) or a refusing one (pages: 403), and is refused the screen of a role that has it."""
    if screen.capability is None:
        return []
    holder = sorted(roles_with(screen.capability))[0]
    own = (404,) if issubclass(screen, CrmModelView) else (403,)
    probes = []
    for role in ROLES:
        probes.append(Probe(screen.capability, role, "GET", f"/admin/{role}/{slug}/",
                            denied=own, what=f"{slug} screen"))
        if not can(role, screen.capability):
            probes.append(Probe(screen.capability, role, "GET", f"/admin/{holder}/{slug}/",
                                what=f"{holder}'s {slug} screen", denied=(403,)))
    return probes


def probes_of(app) -> list[Probe]:
    found = [probe for slug_screen in REGISTRY
             for probe in _screen_probes(slug_screen[3], slug_screen[0])]
    for view in admin_views(app).values():
        if not getattr(view, "role", ""):
            continue  # the home page
        found += _endpoint_probes(view)
        if isinstance(view, CrmModelView):
            found += _action_probes(view)
            if view.create_capability is not None and type(view).__mro__[1].can_create:
                found.append(Probe(view.create_capability, view.role, "GET",
                                   f"{view.url}/new/", denied=(302, 403),
                                   what=f"{view.endpoint} create"))
        if view.endpoint.startswith("customer_"):
            found += _customer_probes(view)
    return found


def _request(client, probe: Probe):
    if probe.method == "GET":
        return client.get(probe.path)
    return client.post(probe.path, data=probe.data)


def test_every_endpoint_requires_a_capability_or_says_why_not(app):
    unmarked = set()
    for view in admin_views(app).values():
        if not isinstance(view, CrmModelView):
            continue  # a page: every endpoint is probed under the page's capability
        for _, name, _ in view._urls:
            if name in BUILT_IN and getattr(type(view), name) is getattr(ModelView, name):
                continue  # Flask-Admin's own, gated by the view's capability and can_* flags
            if getattr(getattr(type(view), name), "capability", None) is None:
                unmarked.add(name)

    assert unmarked <= set(UNMARKED), sorted(unmarked - set(UNMARKED))


def test_the_capability_table_is_the_designs():
    assert {name: c.roles for name, c in CAPABILITIES.items()} == EXPECTED


def test_every_capability_guards_a_surface_unless_its_screen_is_still_to_come(app):
    guarded = {probe.capability for probe in probes_of(app)}

    assert set(CAPABILITIES) - guarded == AHEAD_OF_THEIR_SCREENS
    assert guarded <= set(CAPABILITIES)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("capability", sorted(CAPABILITIES))
def test_every_surface_of_a_capability_admits_exactly_its_roles(app, client, login,
                                                                capability, role):
    login(role)
    probes = [p for p in probes_of(app) if p.capability == capability and p.role == role]
    allowed = can(role, capability)

    wrong = []
    for probe in probes:
        status = _request(client, probe).status_code
        if allowed:
            # Through the gate: the probe's made-up id may be unknown (404), a screen opens.
            ok = status == 200 if probe.what.endswith("screen") else status not in (403, 500)
        else:
            ok = status in probe.denied
        if not ok:
            wrong.append((probe.what, probe.method, probe.path, status))

    assert wrong == []


@pytest.mark.parametrize("role", ROLES)
def test_the_menu_lists_exactly_the_screens_the_role_has(app, client, login, role):
    login(role)
    home = text_of(client.get("/admin/"))

    listed = {slug for _, _, _, slug in REGISTRY if f'href="/admin/{role}/{slug}/"' in home}

    assert listed == {slug for screen, _, _, slug in REGISTRY if can(role, screen.capability)}
    assert "/admin/owner/" not in home or role == "owner"


@pytest.mark.parametrize("role", ROLES)
def test_the_customer_list_offers_exactly_the_verbs_the_role_may_run(app, client, login, role):
    with app.app_context():
        customer(db.session, surname="Listed")
        db.session.commit()
    login(role)
    page = text_of(client.get(f"/admin/{role}/customer/"))

    offered = {name for name in VERBS if f"/bulk/{name}/" in page}

    assert offered == {name for name, verb in VERBS.items() if can(role, verb.capability)}
