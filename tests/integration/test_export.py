"""CSV export (Flask-Admin's export): text a customer typed can never run
as a spreadsheet formula, money stays a number, and the export streams every matching row."""

import pytest
from sqlalchemy import insert

from crm.extensions import db
from crm.models import Customer
from tests import factories as f
from tests.integration.helpers import csv_table, customer, url, view_for

DANGEROUS = ['=HYPERLINK("http://x")', "+SUM(A1:A9)", "-2+3", "@cmd", "\tTabbed", "\rReturned",
             " =1+1", "\n=1+1", "  @SUM(A1)", "\uff1dHYPERLINK(\"http://x\")", "\uff0b1",
             "\uff0d1", "\uff20cmd", "\u3000=1"]
DANGEROUS_IDS = ["equals", "plus", "minus", "at", "tab", "cr", "space-equals", "lf-equals",
                 "spaces-at", "fullwidth-equals", "fullwidth-plus", "fullwidth-minus",
                 "fullwidth-at", "ideographic-space-equals"]


@pytest.fixture
def owner(login):
    login("owner")


def _export(client, query: str = ""):
    response = client.get(url("owner", "customer", f"export/csv/{query}"))
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    return response


def _column(table, label: str) -> list[str]:
    index = table[0].index(label)
    return [row[index] for row in table[1:]]


@pytest.mark.parametrize("surname", DANGEROUS, ids=DANGEROUS_IDS)
def test_a_formula_in_a_customer_field_is_exported_as_text(app, client, owner, surname):
    with app.app_context():
        customer(db.session, surname=surname, first_name=surname, town=surname)
        db.session.commit()

    table = csv_table(_export(client))

    assert _column(table, "Surname") == ["'" + surname]
    assert _column(table, "First Name") == ["'" + surname]
    assert _column(table, "Town") == ["'" + surname]


def test_plain_text_is_exported_unchanged(app, client, owner):
    with app.app_context():
        customer(db.session, surname="O'Brien-Smith", town="Stoke-on-Trent")
        db.session.commit()

    table = csv_table(_export(client))

    assert _column(table, "Surname") == ["O'Brien-Smith"]
    assert _column(table, "Town") == ["Stoke-on-Trent"]


def test_a_negative_balance_is_exported_as_a_number(app, client, owner):
    with app.app_context():
        in_credit = customer(db.session, surname="InCredit")
        f.make_payment(db.session, in_credit, amount="12.50")
        db.session.commit()

    table = csv_table(_export(client))

    assert _column(table, "Balance") == ["-12.50"]
    assert _column(table, "Account Credit") == ["12.50"]


ROWS = 1200


def _bulk_customers(app, n: int) -> None:
    """``n`` bare customers in one INSERT (a quarter of them dormant)."""
    with app.app_context():
        db.session.execute(insert(Customer), [
            {"reference": f"C-9{i:05d}", "surname": f"Bulk{i:04d}", "address_line_1": "1 St",
             "postcode": "LS1 1AA", "status": "dormant" if i % 4 == 0 else "active"}
            for i in range(n)
        ])
        db.session.commit()


def test_the_export_streams_every_matching_row(app, client, owner):
    _bulk_customers(app, ROWS)

    everything = _export(client)
    assert everything.is_streamed  # (before the body is read: reading it buffers it)
    table = csv_table(everything)

    assert len(table) == ROWS + 1
    assert sorted(_column(table, "Surname")) == [f"Bulk{i:04d}" for i in range(ROWS)]


def test_the_export_has_only_the_filtered_rows(app, client, owner):
    _bulk_customers(app, 40)
    status = next(arg for arg, (_, flt) in view_for(app, "customer", "owner")._filter_args.items()
                  if flt.name == "Status")

    table = csv_table(_export(client, f"?flt0_{status}=dormant"))

    assert _column(table, "Status") == ["dormant"] * 10
