"""Export → XLSX: every list that exports CSV exports XLSX too, for the same roles and with
the same columns; numbers, amounts and dates are typed cells, and text a customer typed can
never run as a formula (the same rule as the CSV: ``crm.admin_views.exports``)."""

import io
from datetime import datetime
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from crm.admin_views import exports
from crm.admin_views.exports import XLSX_MIMETYPE
from crm.extensions import db
from tests import factories as f
from tests.integration.helpers import csv_table, customer, seed, url, view_for
from tests.integration.test_export import DANGEROUS, DANGEROUS_IDS
from tests.integration.test_view_contract import _params

MONEY_LABELS = ("Balance", "Account Credit", "Overdue", "Overdue Amount", "Overdue for", "Creditor Days",
                "Price Book", "Accounts reference", "Value")


def xlsx_rows(response) -> list[list]:
    assert response.status_code == 200, response.status_code
    assert response.mimetype == XLSX_MIMETYPE
    book = load_workbook(io.BytesIO(response.get_data()))
    return [list(row) for row in book.worksheets[0].iter_rows(values_only=True)]


def xlsx_cells(response):
    book = load_workbook(io.BytesIO(response.get_data()))
    return list(book.worksheets[0].iter_rows())


def _column(table, label: str) -> list:
    index = table[0].index(label)
    return [row[index] for row in table[1:]]


@pytest.fixture
def owner(login):
    return login("owner")


@pytest.mark.parametrize(("slug", "role"), _params())
def test_every_list_exports_xlsx_with_the_csv_columns_and_rows(app, client, login, slug, role):
    login(role)
    made = seed(app, slug)
    view = view_for(app, slug, role)

    table = csv_table(client.get(url(role, slug, "export/csv/")))
    sheet = xlsx_rows(client.get(url(role, slug, "export/xlsx/")))

    assert sheet[0] == [label for _, label in view._export_columns] == table[0]
    assert len(sheet) == len(table)
    assert any(made.marker in str(cell) for row in sheet[1:] for cell in row)
    # The same text as the CSV, cell for cell (numbers and dates compared as what they say).
    for csv_row, xlsx_row in zip(table[1:], sheet[1:], strict=True):
        for text, cell in zip(csv_row, xlsx_row, strict=True):
            assert _same(text, cell), (text, cell)


def _same(text: str, cell) -> bool:
    if cell is None:
        return text == ""
    if isinstance(cell, bool):
        return text in ("True", "yes") if cell else text in ("False", "")
    if isinstance(cell, int | float):
        return Decimal(text) == Decimal(str(cell))
    if isinstance(cell, datetime):
        return datetime.fromisoformat(text).replace(microsecond=0) == cell.replace(microsecond=0)
    if hasattr(cell, "isoformat"):
        return text == cell.isoformat()
    return text == cell


def test_amounts_are_number_cells_with_two_decimals_and_dates_are_dates(app, client, owner):
    with app.app_context():
        in_credit = customer(db.session, surname="InCredit")
        f.make_payment(db.session, in_credit, amount="12.50")
        db.session.commit()

    response = client.get(url("owner", "customer", "export/xlsx/"))
    header, row = xlsx_cells(response)
    cell = {h.value: c for h, c in zip(header, row, strict=True)}

    assert cell["Balance"].data_type == "n" and cell["Balance"].value == -12.5
    assert cell["Balance"].number_format == "#,##0.00"
    assert cell["Account Credit"].value == 12.5
    assert isinstance(cell["Created At"].value, datetime)
    assert cell["Surname"].value == "InCredit" and cell["Surname"].data_type == "s"
    assert all(h.font.bold for h in header)


@pytest.mark.parametrize("surname", DANGEROUS, ids=DANGEROUS_IDS)
def test_a_formula_in_a_customer_field_is_text_in_the_xlsx(app, client, owner, surname):
    with app.app_context():
        customer(db.session, surname=surname, first_name=surname, town=surname)
        db.session.commit()

    header, row = xlsx_cells(client.get(url("owner", "customer", "export/xlsx/")))
    cell = {h.value: c for h, c in zip(header, row, strict=True)}

    for label in ("Surname", "First Name", "Town"):
        assert cell[label].value == "'" + surname
        assert cell[label].data_type == "s"  # never "f": a formula


def test_text_a_workbook_cannot_hold_is_cleaned_not_refused(app, client, owner):
    """Control characters (say from an old import) would make openpyxl refuse the sheet;
    they are left out. A value that looks like a spreadsheet error stays text."""
    with app.app_context():
        customer(db.session, surname="Bell\x07=1+1", first_name="#N/A", town="Leeds\x0b")
        db.session.commit()

    header, row = xlsx_cells(client.get(url("owner", "customer", "export/xlsx/")))
    cell = {h.value: c for h, c in zip(header, row, strict=True)}

    assert cell["Surname"].value == "Bell=1+1"
    assert cell["First Name"].value == "#N/A" and cell["First Name"].data_type == "s"
    assert cell["Town"].value == "Leeds"


@pytest.mark.parametrize("slug", ["customer", "booking"])
def test_a_coordinators_xlsx_has_no_money(app, client, login, slug):
    login("coordinator")
    seed(app, slug)

    sheet = xlsx_rows(client.get(url("coordinator", slug, "export/xlsx/")))

    assert len(sheet) > 1
    assert [label for label in sheet[0] if label in MONEY_LABELS] == []


def test_an_owners_xlsx_has_the_money_columns(app, client, owner):
    seed(app, "customer")

    sheet = xlsx_rows(client.get(url("owner", "customer", "export/xlsx/")))

    assert {"Balance", "Account Credit", "Overdue", "Creditor Days"} <= set(sheet[0])


def test_a_coordinator_cannot_export_a_money_list_to_xlsx(app, client, login):
    login("coordinator")

    assert client.get(url("coordinator", "invoice", "export/xlsx/")).status_code == 404
    assert client.get(url("owner", "invoice", "export/xlsx/")).status_code == 403
    own = client.get(url("owner", "customer", "export/xlsx/"))
    assert own.status_code == 302
    assert own.headers["Location"].endswith(url("coordinator", "customer", "export/xlsx/"))


def test_an_unknown_format_says_so_and_changes_nothing(app, client, owner):
    response = client.get(url("owner", "customer", "export/pdf/"), follow_redirects=True)

    assert response.status_code == 200
    assert "cannot be exported in that format" in response.get_data(as_text=True)


def test_the_workbook_is_written_in_write_only_mode(app, client, owner, monkeypatch):
    """Rows go to the file as they are made; openpyxl's ordinary mode keeps a whole sheet
    in memory."""
    made = []
    real = exports.Workbook

    def spy(*args, **kwargs):
        book = real(*args, **kwargs)
        made.append((kwargs, book))
        return book

    monkeypatch.setattr(exports, "Workbook", spy)
    with app.app_context():
        customer(db.session, surname="Streamed")
        db.session.commit()

    sheet = xlsx_rows(client.get(url("owner", "customer", "export/xlsx/")))

    assert _column(sheet, "Surname") == ["Streamed"]
    assert [kwargs for kwargs, _ in made] == [{"write_only": True}]
    assert all(isinstance(ws, WriteOnlyWorksheet) for _, book in made for ws in book.worksheets)


@pytest.mark.parametrize(("slug", "role"), _params())
def test_the_quick_cells_are_flask_admins_cells(app, login, slug, role):
    """Plain columns skip Flask-Admin's per-cell machinery for speed; the text is the same."""
    made = seed(app, slug)
    view = view_for(app, slug, role)
    columns = list(view._export_columns)
    with app.test_request_context():
        rows = view.base_query().filter(view.model.id.in_(made.ids)).all()
        assert rows
        for row in rows:
            slow = [exports._text(view.get_export_value(row, name)) for name, _ in columns]
            typed = [exports.xlsx_value(exports._typed(view, row, name)) for name, _ in columns]
            assert view.csv_cells(row, columns) == slow
            assert view.xlsx_cells(row, columns) == typed


@pytest.mark.parametrize("role", ["owner", "coordinator"])
def test_the_export_menu_offers_csv_and_excel(app, client, login, role):
    login(role)

    html = client.get(url(role, "customer")).get_data(as_text=True)

    assert f'href="{url(role, "customer", "export/csv/")}"' in html
    assert f'href="{url(role, "customer", "export/xlsx/")}"' in html
    assert "Export Excel (XLSX)" in html and "Export CSV" in html
