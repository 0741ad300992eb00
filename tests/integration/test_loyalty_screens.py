"""The loyalty score on screen: a "Loyalty" column of the customer list (one tick away in the
Columns menu) that sorts both ways, in the export, and a block on the record page, for every
role: it is not money, coordinators see it too."""

from datetime import date, datetime, time, timedelta
from decimal import Decimal

import pytest

from crm.extensions import db
from tests import factories as f
from tests.integration.helpers import cells, csv_table, list_row_ids, text_of, url


def _customer_scoring(session, surname: str, days_ago: int | None, value: str = "0.00"):
    """A customer whose one completed booking was ``days_ago`` (none when None)."""
    customer = f.make_customer(session, surname=surname)
    if days_ago is not None:
        f.make_booking(session, customer, status="completed", value=Decimal(value),
                       starts_at=datetime.combine(date.today() - timedelta(days=days_ago),
                                                  time(12)))
    return customer


@pytest.fixture
def scored(app):
    """Four customers: 76 (today, 3,000.00), 26 (a year ago), 7 (700 days ago), 0."""
    with app.app_context():
        made = [_customer_scoring(db.session, "Top", 0, "3000.00"),
                _customer_scoring(db.session, "Middle", 365),
                _customer_scoring(db.session, "Low", 700),
                _customer_scoring(db.session, "Never", None)]
        db.session.commit()
        return [c.id for c in made]


def _with_loyalty_column(client, role: str) -> None:
    columns = ["display_name", "status", "loyalty_score"]
    response = client.post(url(role, "customer", "columns/"),
                           data={"column": columns})
    assert response.status_code == 303


def _sort_index(app, role: str) -> int:
    from tests.integration.helpers import view_for

    view = view_for(app, "customer", role)
    return [name for name, _ in view._list_columns].index("loyalty_score")


@pytest.mark.parametrize("role", ["owner", "coordinator"])
def test_the_list_shows_and_sorts_by_loyalty_both_ways(app, client, login, scored, role):
    top, middle, low, never = scored
    login(role)
    _with_loyalty_column(client, role)
    index = _sort_index(app, role)

    best_first = text_of(client.get(url(role, "customer", f"?sort={index}&desc=1")))
    worst_first = text_of(client.get(url(role, "customer", f"?sort={index}")))

    assert list_row_ids(best_first) == [top, middle, low, never]
    assert list_row_ids(worst_first) == [never, low, middle, top]
    assert cells(best_first, "loyalty_score") == ["76", "26", "7", ""]
    assert 'meter max="100" value="76"' in best_first
    assert "How likely to book again, out of 100" in best_first  # the header's tooltip


def test_the_export_has_the_score(app, client, login, scored):
    login("coordinator")

    table = csv_table(client.get(url("coordinator", "customer", "export/csv/")))

    column = table[0].index("Loyalty")
    assert sorted(row[column] for row in table[1:]) == ["0", "26", "7", "76"]


@pytest.mark.parametrize("role", ["owner", "coordinator"])
def test_the_record_page_shows_the_score_and_how_it_is_worked_out(app, client, login, scored,
                                                                   role):
    top, *_, never = scored
    login(role)

    page = text_of(client.get(url(role, "customer", f"details/?id={top}")))
    empty = text_of(client.get(url(role, "customer", f"details/?id={never}")))

    assert 'data-testid="loyalty"' in page
    assert "<strong>76</strong>" in page.replace(' class=""', "")
    assert "How is it worked out?" in page
    assert "no completed booking in the last three years" in empty
    assert "no completed booking" not in page
