"""One contract for every admin view, NetBox-style: each view of the REGISTRY, for each role
that has it, must list, show, create, refuse an invalid form, edit, export, filter, search and
sort. The table ``CASES`` is the only per-model part: what a valid new record looks like, which
required field the invalid form leaves out, and one edit."""

from dataclasses import dataclass

import pytest

from crm.admin_views import MODEL_VIEWS
from crm.models import AuditEvent
from crm.permissions import can, roles_with
from tests.integration.helpers import (
    count_rows,
    csv_table,
    field_errors,
    flashes,
    list_row_ids,
    load,
    seed,
    sortable_indexes,
    submit,
    text_of,
    url,
    view_for,
)

REQUIRED = "This field is required."


@dataclass(frozen=True)
class Ref:
    """A form value that is the id of a row the seed made (``Seeded.refs``)."""

    name: str


@dataclass(frozen=True)
class Case:
    create: dict  # fields a user fills in on the create form (the rest keep their defaults)
    required: str  # a required field the invalid create leaves empty
    edit: tuple[str, str] | None  # (field, new value) for the edit form


CASES = {
    "customer": Case(
        {"surname": "Newman", "address_line_1": "1 New Street", "postcode": "LS1 1AA"},
        "address_line_1", ("surname", "Renamed")),
    "contact": Case({"customer": Ref("customer"), "surname": "Newcontact"},
                    "surname", ("position", "Manager")),
    "branch": Case({"customer": Ref("customer"), "name": "North", "address_line_1": "2 Road",
                    "postcode": "M1 1AA"}, "name", ("name", "South")),
    "tag": Case({"name": "newtag"}, "name", ("colour", "red")),
    "lead": Case({"surname": "Newlead", "email": "new.lead@example.com"},
                 "surname", ("source", "Radio")),
    "booking": Case({"customer": Ref("customer"), "title": "Wedding",
                     "starts_at": "2026-07-01 19:00:00"}, "title", ("title", "Birthday")),
    "work_address": Case({"customer": Ref("customer"), "address_line_1": "3 Lane",
                          "postcode": "B1 1AA"}, "address_line_1", ("town", "York")),
    "service_reminder": Case({"work_address": Ref("work_address"), "due_on": "2026-09-01",
                              "description": "Gas safety"}, "description",
                             ("description", "Boiler service")),
    # The due list edits the same reminders (creating happens in the reminders view).
    "due_reminder": Case({}, "description", ("description", "Boiler service")),
    "note": Case({"customer": Ref("customer"), "body": "Rang back"}, "body",
                 ("body", "Rang twice")),
    # The seeded invoices are issued, and an issued invoice is not edited (a credit note
    # changes what is owed): drafts' edits are in tests/integration/test_invoice_screens.py.
    "invoice": Case({"customer": Ref("customer"), "issue_date": "2026-05-01",
                     "due_date": "2026-05-31"}, "issue_date", None),
    "credit_note": Case({"customer": Ref("customer"), "issue_date": "2026-05-01"},
                        "issue_date", ("description", "Goodwill")),
    "payment": Case({"customer": Ref("customer"), "received_on": "2026-05-01",
                     "amount": "25.00", "reference": "BACS-9"}, "amount",
                    ("reference", "BACS-10")),
    "allocation": Case({"invoice": Ref("invoice"), "payment": Ref("payment"),
                        "amount": "5.00"}, "amount", ("amount", "10.00")),
    "blocked_email": Case({"address": "@blocked.example", "reason": "Spam"}, "reason", None),
    "user": Case({"email": "new.staff@example.com", "name": "New Staff", "role": "coordinator",
                  "new_password": "a-long-enough-password"}, "email", ("name", "Renamed")),
    "portal_account": Case({"customer": Ref("customer"), "email": "portal.new@example.com"},
                           "email", ("email", "portal.renamed@example.com")),
    "audit_event": None,  # read-only
}

VIEWS = [(spec, slug, role) for spec, _, _, slug in MODEL_VIEWS
         for role in sorted(roles_with(spec.capability))]


def _can(spec, verb: str, role: str) -> bool:
    return bool(getattr(spec, f"can_{verb}")) and can(role, getattr(spec, f"{verb}_capability"))


def _params(predicate=lambda spec, slug, role: True):
    return [pytest.param(slug, role, id=f"{slug}-{role}")
            for spec, slug, role in VIEWS if predicate(spec, slug, role)]


def _form(case: Case, refs: dict) -> dict:
    return {k: str(refs[v.name]) if isinstance(v, Ref) else v for k, v in case.create.items()}


@pytest.fixture
def open_view(app, login):
    """Sign in as ``role`` and make a few rows for the view ``slug``."""

    def setup(slug: str, role: str):
        login(role)
        return seed(app, slug), view_for(app, slug, role)

    return setup


@pytest.mark.parametrize(("slug", "role"), _params())
def test_list_shows_the_rows(client, open_view, slug, role):
    made, _ = open_view(slug, role)

    page = client.get(url(role, slug))

    assert page.status_code == 200
    assert set(made.ids) <= set(list_row_ids(text_of(page)))
    assert made.marker in text_of(page)


@pytest.mark.parametrize(("slug", "role"), _params())
def test_details_page_shows_the_record(client, open_view, slug, role):
    made, _ = open_view(slug, role)

    page = client.get(url(role, slug, f"details/?id={made.ids[0]}"))

    assert page.status_code == 200
    assert made.marker in text_of(page)


@pytest.mark.parametrize(("slug", "role"), _params(lambda s, _, r: _can(s, "create", r)))
def test_create_saves_a_valid_form(app, client, open_view, slug, role):
    made, view = open_view(slug, role)
    before = count_rows(app, view.model)

    saved = submit(client, url(role, slug, "new/"), _form(CASES[slug], made.refs))

    assert saved.status_code == 302, flashes(text_of(saved))
    assert count_rows(app, view.model) == before + 1


@pytest.mark.parametrize(("slug", "role"), _params(lambda s, _, r: _can(s, "create", r)))
def test_create_refuses_a_missing_required_field(app, client, open_view, slug, role):
    made, view = open_view(slug, role)
    case = CASES[slug]
    before = count_rows(app, view.model)

    page = submit(client, url(role, slug, "new/"), {**_form(case, made.refs), case.required: ""})

    assert page.status_code == 200
    assert REQUIRED in field_errors(text_of(page), case.required)
    assert count_rows(app, view.model) == before


@pytest.mark.parametrize(("slug", "role"), _params(
    lambda s, slug, r: _can(s, "edit", r) and CASES[slug].edit is not None))
def test_edit_saves_the_change(app, client, open_view, slug, role):
    made, view = open_view(slug, role)
    field, value = CASES[slug].edit
    form_url = url(role, slug, f"edit/?id={made.ids[0]}")

    saved = submit(client, form_url, {field: value})

    assert saved.status_code == 302, flashes(text_of(saved))
    assert str(load(app, view.model, made.ids[0], field)[field]) == value


@pytest.mark.parametrize(("slug", "role"), _params())
def test_csv_export_has_the_header_and_every_row(client, open_view, slug, role):
    made, view = open_view(slug, role)
    shown = list_row_ids(text_of(client.get(url(role, slug, "?page_size=100"))))

    export = client.get(url(role, slug, "export/csv/"))

    assert export.status_code == 200
    assert export.mimetype == "text/csv"
    table = csv_table(export)
    assert table[0] == [label for _, label in view._export_columns]
    assert len(table) - 1 == len(shown)
    assert any(made.marker in cell for row in table[1:] for cell in row)


def _valid_value(view, flt) -> str:
    """A value the filter accepts: its first option, or a number, date, range or word."""
    options = flt.get_options(view)
    candidates = [str(options[0][0])] if options else []
    candidates += ["1", "2026-01-01", "2026-01-01 00:00:00", "2026-01-01 to 2026-12-31",
                   "2026-01-01 00:00:00 to 2026-12-31 23:59:59", "x"]
    return next(value for value in candidates if flt.validate(value))


def _filter_params():
    return _params(lambda spec, _, role: bool(spec.column_filters))


@pytest.mark.parametrize(("slug", "role"), _filter_params())
def test_every_filter_works_from_the_url(client, open_view, slug, role):
    _, view = open_view(slug, role)
    assert view._filter_args, "the view declares filters but none were built"

    for arg, (_, flt) in view._filter_args.items():
        page = client.get(url(role, slug, f"?flt0_{arg}={_valid_value(view, flt)}"))

        assert page.status_code == 200, f"{flt.name} {flt.operation()}"
        assert not [m for m in flashes(text_of(page)) if "Invalid" in m], flt.name


@pytest.mark.parametrize(("slug", "role"),
                         _params(lambda spec, _, role: bool(spec.column_searchable_list)))
def test_search_finds_the_row(client, open_view, slug, role):
    made, _ = open_view(slug, role)

    page = client.get(url(role, slug), query_string={"search": made.marker})

    assert page.status_code == 200
    found = list_row_ids(text_of(page))
    assert made.ids[0] in found
    assert made.ids[1] not in found


@pytest.mark.parametrize(("slug", "role"), _params())
def test_every_sortable_column_sorts_both_ways(client, open_view, slug, role):
    made, view = open_view(slug, role)
    everything = set(list_row_ids(text_of(client.get(url(role, slug)))))
    assert sortable_indexes(view), "no sortable column"

    for index in sortable_indexes(view):
        for desc in ("", "&desc=1"):
            page = client.get(url(role, slug, f"?sort={index}{desc}"))

            assert page.status_code == 200, (index, desc)
            assert set(list_row_ids(text_of(page))) == everything, (index, desc)


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_the_audit_log_cannot_be_created_edited_or_deleted(app, client, open_view, role):
    made, _ = open_view("audit_event", role)
    event = made.ids[0]
    before = count_rows(app, AuditEvent)

    assert client.get(url(role, "audit_event", "new/")).status_code == 302
    assert client.get(url(role, "audit_event", f"edit/?id={event}")).status_code == 302
    client.post(url(role, "audit_event", "new/"), data={"verb": "forged"})
    client.post(url(role, "audit_event", f"edit/?id={event}"), data={"verb": "forged"})
    client.post(url(role, "audit_event", "delete/"), data={"id": str(event)})

    assert count_rows(app, AuditEvent) == before
    assert load(app, AuditEvent, event, "verb")["verb"] == made.marker
    assert count_rows(app, AuditEvent, AuditEvent.verb == "forged") == 0
