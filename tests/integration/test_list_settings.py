"""What each list remembers for each staff user: the columns they chose (the list's
"Columns" menu) and their saved filters ("Saved filters" menu). Per user and per list;
bad input gives a message and changes nothing; a role never gets a column it may not see;
every POST needs the CSRF token."""

import re
from html import unescape

import pytest
from sqlalchemy import select

from crm.extensions import db
from crm.models.settings import ListPreference, SavedFilter
from tests.integration.helpers import (
    customer,
    flashes,
    list_row_ids,
    text_of,
    url,
    view_for,
)


@pytest.fixture
def people(app):
    with app.app_context():
        rows = {"ada": customer(db.session, surname="Adams", postcode="LS1 1AA"),
                "bob": customer(db.session, surname="Brown", postcode="YO1 7HH")}
        db.session.commit()
        return {key: row.id for key, row in rows.items()}


def headers(html: str) -> list[str]:
    """The list's column headers, left to right (by their column name)."""
    return re.findall(r'<th class="column-header col-([\w-]+)', html)


def post_columns(client, role: str, *columns: str, **extra):
    return client.post(url(role, "customer", "columns/"), data={"column": list(columns),
                                                               **extra})


def saved(app, model) -> list:
    with app.app_context():
        return list(db.session.scalars(select(model)))


# --- columns ---------------------------------------------------------------------------------
def test_the_list_shows_what_fits_and_the_menu_offers_the_rest(client, login, people):
    login("owner")
    page = text_of(client.get(url("owner", "customer")))

    assert headers(page) == ["display_name", "contact", "postcode", "status", "tags",
                             "balance", "overdue_amount"]
    offered = re.findall(r'<input type="checkbox" name="column" value="(\w+)"( checked)?>', page)
    assert ("account_credit", "") in offered and ("balance", " checked") in offered


def test_chosen_columns_are_kept_for_that_user_only_and_reset_brings_the_defaults_back(
        app, client, login, other_client, people):
    login("owner")
    view = view_for(app, "customer", "owner")
    sort_by_postcode = [name for name, _ in view._list_columns].index("postcode")

    response = post_columns(client, "owner", "reference", "display_name", "postcode",
                            "account_credit")
    assert response.status_code == 303
    page = text_of(client.get(response.headers["Location"]))
    assert flashes(page) == ["Columns saved: 4 shown on this list."]
    assert headers(page) == ["reference", "display_name", "postcode", "account_credit"]
    # the sort links keep their numbers whatever is shown
    assert f"?sort={sort_by_postcode}&amp;" in page
    ordered = text_of(client.get(url("owner", "customer", f"?sort={sort_by_postcode}")))
    assert list_row_ids(ordered) == [people["ada"], people["bob"]]

    # another owner's list is unchanged
    colleague = other_client("owner", "colleague@example.com")
    assert "contact" in headers(text_of(colleague.get(url("owner", "customer"))))

    response = client.post(url("owner", "customer", "columns/"), data={"reset": "1"})
    page = text_of(client.get(response.headers["Location"]))
    assert flashes(page) == ["Columns reset to the list's own."]
    assert "contact" in headers(page) and "reference" not in headers(page)
    assert saved(app, ListPreference) == []


def test_a_coordinator_cannot_choose_a_money_column(app, client, login, people):
    login("coordinator")
    page = text_of(client.get(url("coordinator", "customer")))
    assert 'value="balance"' not in page  # not offered

    response = post_columns(client, "coordinator", "display_name", "balance")
    page = text_of(client.get(response.headers["Location"]))

    assert flashes(page) == ["Only the columns offered for this list can be chosen; nothing "
                             "was changed."]
    assert "balance" not in headers(page)
    assert saved(app, ListPreference) == []


def test_choosing_no_column_says_so_and_changes_nothing(app, client, login, people):
    login("owner")
    response = client.post(url("owner", "customer", "columns/"), data={})
    page = text_of(client.get(response.headers["Location"]))

    assert flashes(page) == ["Choose at least one column (or Reset to the list's own); "
                             "nothing was changed."]
    assert "contact" in headers(page)


def test_the_list_keeps_its_search_after_choosing_columns(client, login, people):
    login("owner")
    response = post_columns(client, "owner", "display_name", query="search=adams&next=/evil")

    assert response.headers["Location"].endswith("/admin/owner/customer/?search=adams")
    page = text_of(client.get(response.headers["Location"]))
    assert list_row_ids(page) == [people["ada"]]


# --- saved filters ---------------------------------------------------------------------------
def test_a_saved_filter_is_named_reopened_and_deleted(app, client, login, people):
    login("owner")
    page = text_of(client.get(url("owner", "customer"), query_string={"search": "brown"}))
    form = re.search(r'<input type="hidden" name="query" value="([^"]*)">\s*<label[^>]*'
                     r'for="save-filter-name"', page)
    assert form and unescape(form.group(1)) == "search=brown"

    response = client.post(url("owner", "customer", "filters/"),
                           data={"name": "  The  Browns ", "query": "search=brown&page=3"})
    assert response.status_code == 303
    page = text_of(client.get(response.headers["Location"]))
    assert flashes(page) == ["Filter saved as “The Browns”."]
    assert list_row_ids(page) == [people["bob"]]

    # from any page of the list, the menu opens it
    home = text_of(client.get(url("owner", "customer")))
    link = re.search(r'<a class="dropdown-item" href="([^"]+)">The Browns</a>', home)
    assert link and list_row_ids(text_of(client.get(unescape(link.group(1))))) == [people["bob"]]

    [kept] = saved(app, SavedFilter)
    assert kept.query == "search=brown"
    response = client.post(url("owner", "customer", "filters/delete/"), data={"id": kept.id})
    page = text_of(client.get(response.headers["Location"]))
    assert flashes(page) == ["Saved filter “The Browns” deleted."]
    assert ">The Browns</a>" not in page
    assert saved(app, SavedFilter) == []


def test_saving_under_a_name_already_used_replaces_that_filter(app, client, login, people):
    login("owner")
    for query in ("search=brown", "search=adams"):
        client.post(url("owner", "customer", "filters/"), data={"name": "Mine", "query": query})

    assert [(f.name, f.query) for f in saved(app, SavedFilter)] == [("Mine", "search=adams")]


@pytest.mark.parametrize(("name", "query", "message"), [
    ("", "search=brown", "Give the filter a name; nothing was saved."),
    ("x" * 81, "search=brown", "A filter's name is at most 80 ordinary characters; nothing "
                               "was saved."),
    ("Nothing", "next=https://example.com", "The list has no search, filter or sort to save; "
                                            "nothing was saved."),
])
def test_a_filter_that_cannot_be_saved_says_why(app, client, login, people, name, query,
                                                message):
    login("owner")
    response = client.post(url("owner", "customer", "filters/"),
                           data={"name": name, "query": query})

    assert response.status_code == 303
    assert flashes(text_of(client.get(response.headers["Location"]))) == [message]
    assert saved(app, SavedFilter) == []


def test_a_saved_filter_is_its_owners_alone(app, client, login, other_client, people):
    login("owner")
    client.post(url("owner", "customer", "filters/"), data={"name": "Mine", "query": "search=a"})
    [kept] = saved(app, SavedFilter)

    colleague = other_client("owner", "colleague@example.com")
    assert ">Mine</a>" not in text_of(colleague.get(url("owner", "customer")))
    response = colleague.post(url("owner", "customer", "filters/delete/"), data={"id": kept.id})
    assert flashes(text_of(colleague.get(response.headers["Location"]))) == [
        "There is no such saved filter of yours; nothing was deleted."]
    assert len(saved(app, SavedFilter)) == 1


# --- CSRF --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("path", "data"), [
    ("columns/", {"column": "display_name"}),
    ("filters/", {"name": "Mine", "query": "search=a"}),
])
def test_a_post_without_the_csrf_token_is_refused(app, client, login, people, path, data):
    login("owner")
    response = client.post(url("owner", "customer", path), data=data, csrf=False)

    assert response.status_code == 400
    assert saved(app, ListPreference) == [] and saved(app, SavedFilter) == []
