"""Customer kinds and hidden related people on the screens: the list leaves hidden people out
(and says so), filters on them, on a tag, on the kind and on the advertising source, and
exports what it shows; "Change kind…", "Hide as related person…" and "Unhide" from the list,
for every staff role, with CSRF; the record page's related people."""

import re
from html import unescape

import pytest

from crm.extensions import db
from crm.models import Customer, Note
from tests import factories as f
from tests.integration.helpers import (
    by_testid,
    confirm_form,
    csv_table,
    customer,
    filter_arg,
    list_row_ids,
    load,
    text_of,
    url,
)


def bulk(role: str, verb: str) -> str:
    return f"/admin/{role}/customer/bulk/{verb}/"


@pytest.fixture
def family(app):
    """A paying parent, a child hidden under them, a spouse still shown, and a tagged pair."""
    with app.app_context():
        parent = customer(db.session, surname="Parentson", kind="client",
                          advertising_source="Radio")
        child = customer(db.session, surname="Childson", kind="lead", hidden=True,
                         related_to_id=parent.id)
        spouse = customer(db.session, surname="Spouseley", kind="prospect")
        mailing = f.make_tag(db.session, name="Newsletter")
        other = f.make_tag(db.session, name="VIP")
        parent.tags = [mailing, other]  # two tags: still one row
        spouse.tags = [mailing]
        db.session.commit()
        return {"parent": parent.id, "child": child.id, "spouse": spouse.id,
                "tag": mailing.id, "vip": other.id}


# --- the list ---------------------------------------------------------------------------------
def test_hidden_related_people_leave_the_list_and_the_note_offers_them(app, client, login,
                                                                       family):
    login("coordinator")
    page = text_of(client.get(url("coordinator", "customer")))

    assert sorted(list_row_ids(page)) == sorted([family["parent"], family["spouse"]])
    assert by_testid(page, "archived-note") == ["· archived and related people hidden — show"]
    show = re.search(r'<a href="([^"]+)" data-testid="show-archived">', page).group(1)
    everyone = text_of(client.get(unescape(show)))
    assert sorted(list_row_ids(everyone)) == sorted(
        [family["parent"], family["child"], family["spouse"]])
    assert by_testid(everyone, "archived-note") == []

    only = text_of(client.get(url("coordinator", "customer"), query_string={
        filter_arg(app, "coordinator", "Hidden related people", "are"): "only"}))
    assert list_row_ids(only) == [family["child"]]
    assert by_testid(only, "archived-note") == ["· archived hidden — show"]


def test_the_tag_filter_lists_the_tags_and_keeps_one_row_per_customer(app, client, login,
                                                                      family):
    login("owner")
    listing = text_of(client.get(url("owner", "customer")))
    assert '"Newsletter"' in listing and '"VIP"' in listing  # offered by name

    tagged = text_of(client.get(url("owner", "customer"), query_string={
        filter_arg(app, "owner", "Tag", "is"): str(family["tag"])}))
    assert sorted(list_row_ids(tagged)) == sorted([family["parent"], family["spouse"]])
    assert by_testid(tagged, "match-count")[0].startswith("2 matches")

    nonsense = client.get(url("owner", "customer"), query_string={
        filter_arg(app, "owner", "Tag", "is"): "Newsletter'--"})
    assert nonsense.status_code == 200  # an invalid value is dropped, never a 500


def test_the_export_holds_only_the_customers_with_the_tag(app, client, login, family):
    """A tagged group exported for a mailing: the CSV follows the list's filter."""
    login("owner")
    response = client.get(url("owner", "customer", "export/csv/"), query_string={
        filter_arg(app, "owner", "Tag", "is"): str(family["vip"])})

    table = csv_table(response)
    surnames = [row[table[0].index("Surname")] for row in table[1:]]
    assert surnames == ["Parentson"]


def test_the_export_follows_the_kind_and_advertising_source_filters(app, client, login, family):
    login("coordinator")
    by_kind = csv_table(client.get(url("coordinator", "customer", "export/csv/"), query_string={
        filter_arg(app, "coordinator", "Kind"): "prospect"}))
    assert [row[by_kind[0].index("Surname")] for row in by_kind[1:]] == ["Spouseley"]
    by_source = csv_table(client.get(url("coordinator", "customer", "export/csv/"),
                                     query_string={filter_arg(app, "coordinator",
                                                              "Advertising source"): "Radio"}))
    assert [row[by_source[0].index("Surname")] for row in by_source[1:]] == ["Parentson"]


# --- change kind ----------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["owner", "coordinator"])
def test_change_kind_asks_the_kind_and_a_reason_then_changes_it(app, client, login, family,
                                                                role):
    login(role)
    page = text_of(client.post(bulk(role, "change_kind"), data={"ids": [family["spouse"]]}))
    assert 'data-testid="new-kind"' in page and 'name="reason"' in page
    action, data = confirm_form(page)

    done = client.post(action, data={**data, "kind": "client", "reason": "Signed the contract"})

    assert done.status_code == 200
    assert "Changed 1 customer to client." in text_of(done)
    assert load(app, Customer, family["spouse"], "kind") == {"kind": "client"}
    with app.app_context():
        [note] = db.session.query(Note).filter_by(customer_id=family["spouse"]).all()
        assert note.body == "Kind changed from prospect to client: Signed the contract"


@pytest.mark.parametrize("form, message", [
    ({"kind": "client", "reason": ""}, "Reason (noted on each customer) is required"),
    ({"kind": "king", "reason": "why"}, "Choose the new kind: lead, prospect or client."),
])
def test_change_kind_without_a_reason_or_kind_changes_nothing(app, client, login, family, form,
                                                              message):
    login("coordinator")
    response = client.post(bulk("coordinator", "change_kind"),
                           data={"ids": [family["spouse"]], "confirm": "1", **form})

    assert response.status_code == 400
    assert message in by_testid(text_of(response), "action-error")[0]
    assert load(app, Customer, family["spouse"], "kind") == {"kind": "prospect"}


@pytest.mark.parametrize("verb", ["change_kind", "hide_related", "unhide_related"])
def test_the_new_verbs_refuse_a_post_without_the_csrf_token(app, client, login, family, verb):
    login("owner")
    response = client.post(bulk("owner", verb), csrf=False, data={
        "ids": [family["spouse"], family["child"]], "confirm": "1", "kind": "client",
        "reason": "x", "related_to": family["parent"]})

    assert response.status_code == 400
    assert load(app, Customer, family["spouse"], "kind", "hidden") == {
        "kind": "prospect", "hidden": False}
    assert load(app, Customer, family["child"], "hidden") == {"hidden": True}


# --- hide and unhide ---------------------------------------------------------------------------
def test_hide_searches_for_whom_they_belong_to_and_hides_them(app, client, login, family):
    login("coordinator")
    start = text_of(client.post(bulk("coordinator", "hide_related"),
                                data={"ids": [family["spouse"]]}))
    assert by_testid(start, "related-none") == ["Search above for the customer they belong to."]

    found = text_of(client.get(bulk("coordinator", "hide_related"),
                               query_string={"ids": family["spouse"], "q": "parentson"}))
    assert f'value="{family["parent"]}"' in found
    assert f'value="{family["child"]}"' not in found  # a hidden person is never the one
    themselves = text_of(client.get(bulk("coordinator", "hide_related"),
                                    query_string={"ids": family["spouse"], "q": "spouseley"}))
    assert by_testid(themselves, "related-none") == [  # nobody belongs to themselves
        "No customer matches “spouseley”; try another name, reference or postcode."]
    action, data = confirm_form(found)

    done = client.post(action, data={**data, "related_to": family["parent"]})

    assert done.status_code == 200
    assert load(app, Customer, family["spouse"], "hidden", "related_to_id") == {
        "hidden": True, "related_to_id": family["parent"]}
    listing = text_of(client.get(url("coordinator", "customer")))
    assert list_row_ids(listing) == [family["parent"]]


def test_hide_without_choosing_anyone_says_so_and_changes_nothing(app, client, login, family):
    login("coordinator")
    response = client.post(bulk("coordinator", "hide_related"),
                           data={"ids": [family["spouse"]], "confirm": "1"})

    assert response.status_code == 400
    assert by_testid(text_of(response), "action-error") == ["Choose the customer they belong to."]
    assert load(app, Customer, family["spouse"], "hidden") == {"hidden": False}


def test_unhide_brings_them_back_to_the_list(app, client, login, family):
    login("coordinator")
    response = client.post(bulk("coordinator", "unhide_related"),
                           data={"ids": [family["child"]], "confirm": "1"})

    assert response.status_code == 200
    assert load(app, Customer, family["child"], "hidden", "related_to_id") == {
        "hidden": False, "related_to_id": None}
    assert family["child"] in list_row_ids(text_of(client.get(url("coordinator", "customer"))))


# --- the record page -----------------------------------------------------------------------------
def test_the_record_pages_link_related_people_both_ways(app, client, login, family):
    login("coordinator")
    parent = text_of(client.get(url("coordinator", "customer", f"details/?id={family['parent']}")))
    [related] = by_testid(parent, "related-list")
    assert "Related people" in related and "Childson" in related
    assert f'href="/admin/coordinator/customer/details/?id={family["child"]}"' in parent

    child = text_of(client.get(url("coordinator", "customer", f"details/?id={family['child']}")))
    [line] = by_testid(child, "related-to")
    assert line.startswith("hidden Related to Alex Parentson")
    assert f'href="/admin/coordinator/customer/details/?id={family["parent"]}"' in child
    assert 'data-testid="unhide"' in child

    spouse = text_of(client.get(url("coordinator", "customer", f"details/?id={family['spouse']}")))
    assert by_testid(spouse, "related-people") == []  # nothing to say


def test_the_kind_is_chosen_on_create_and_changed_only_with_a_reason(app, client, login,
                                                                     family):
    from tests.integration.helpers import input_names, submit

    login("owner")
    assert "kind" in input_names(text_of(client.get(url("owner", "customer", "new/"))))
    edit = url("owner", "customer", f"edit/?id={family['spouse']}")
    page = text_of(client.get(edit))
    (kind_box,) = re.findall(r'<select[^>]*name="kind"[^>]*>', page)
    assert "disabled" in kind_box  # shown in its place, read-only
    assert "Change it with More → Change kind…" in page

    saved = submit(client, edit, {"kind": "client", "town": "York"})  # a forged kind

    assert saved.status_code == 302
    assert load(app, Customer, family["spouse"], "kind", "town") == {"kind": "prospect",
                                                                       "town": "York"}


def test_the_record_page_offers_change_kind_and_hide_and_comes_back(app, client, login, family):
    login("coordinator")
    page = text_of(client.get(url("coordinator", "customer",
                                  f"details/?id={family['spouse']}")))
    assert by_testid(page, "change-kind") == ["Change kind…"]
    assert by_testid(page, "hide-related") == ["Hide as related person…"]

    confirm = text_of(client.post(bulk("coordinator", "change_kind"),
                                  data={"ids": family["spouse"], "back": family["spouse"]}))
    action, data = confirm_form(confirm)
    done = text_of(client.post(action, data={**data, "kind": "lead", "reason": "Went quiet"}))
    assert "Back to the customer" in done
    child = text_of(client.get(url("coordinator", "customer", f"details/?id={family['child']}")))
    assert by_testid(child, "hide-related") == []  # already hidden: Unhide is offered instead
