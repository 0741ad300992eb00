"""The customer list past the exact-count cap: more matches than the cap show
"More than N matches" and previous/next paging; under it, the exact number. And the Name
column sorts by surname."""

import pytest
from sqlalchemy import insert

from crm.extensions import db
from crm.models import Customer
from tests.integration.helpers import list_row_ids, text_of, url, view_for

CAP = 50


@pytest.fixture
def sixty(app, login):
    login("owner")
    with app.app_context():
        rows = [{"reference": f"C-{i:06d}", "surname": f"Name{(i * 37) % 60:02d}",
                 "address_line_1": "1 St", "postcode": "LS1 1AA"} for i in range(1, 61)]
        for row in rows:  # what the session hooks would keep, for the search index
            row["search_text"] = f"{row['reference']} {row['surname']}".lower()
        db.session.execute(insert(Customer), rows)
        db.session.commit()
        return [row.id for row in db.session.query(Customer.id).order_by(Customer.id.desc())]


@pytest.fixture
def capped(app, monkeypatch, sixty):
    monkeypatch.setattr(view_for(app, "customer", "owner"), "count_cap", CAP)
    return sixty


def _pager_links(html: str) -> str:
    return html.split('<ul class="pagination">', 1)[-1].split("</ul>", 1)[0]


def test_past_the_cap_the_list_says_more_than_and_pages_by_next(client, capped):
    page = text_of(client.get(url("owner", "customer")))

    assert "More than 50 matches" in page
    assert list_row_ids(page) == capped[:20]
    pager = _pager_links(page)
    assert "page=1" in pager  # next
    assert "page=2" not in pager  # no numbered pages: the number of pages is not known


def test_past_the_cap_later_pages_work(client, capped):
    second = text_of(client.get(url("owner", "customer", "?page=1")))
    third = text_of(client.get(url("owner", "customer", "?page=2")))

    assert list_row_ids(second) == capped[20:40]
    assert list_row_ids(third) == capped[40:60]
    assert "page=1" in _pager_links(third)  # previous


def test_past_the_cap_a_search_or_filter_under_it_counts_exactly(client, capped):
    page = text_of(client.get(url("owner", "customer"), query_string={"search": "name07"}))

    assert "1 match" in page
    assert "More than" not in page


def test_under_the_cap_the_list_shows_the_exact_number(client, sixty):
    page = text_of(client.get(url("owner", "customer")))

    assert "60 matches" in page
    assert "More than" not in page
    assert "page=2" in _pager_links(page)


def test_the_name_column_sorts_by_surname(app, client, sixty):
    view = view_for(app, "customer", "owner")
    name = [column for column, _ in view._list_columns].index("display_name")
    page = text_of(client.get(url("owner", "customer")))

    ascending = text_of(client.get(url("owner", "customer", f"?sort={name}&page_size=100")))
    descending = text_of(client.get(url("owner", "customer", f"?sort={name}&desc=1")))

    assert f"?sort={name}&amp;" in page  # the header offers it
    assert "Name00" in ascending.split("Name01", 1)[0]
    assert "Name59" in descending.split("Name58", 1)[0]
