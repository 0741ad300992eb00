"""Export in a real browser: the list's Export menu offers CSV and Excel (XLSX) on a
desktop and on a phone, the XLSX downloads as a workbook with the list's rows, and an export
past the threshold asks to confirm and lands on the job's page, whose file has every row.
(Jobs run inside the request here: the session's app has CRM_JOBS_IMMEDIATE.)"""

import csv
import io

import pytest
from openpyxl import load_workbook
from playwright.sync_api import expect

from crm.extensions import db
from tests.factories import make_customer

pytestmark = pytest.mark.e2e


def _customers(app, n: int = 3) -> None:
    with app.app_context():
        for i in range(n):
            make_customer(db.session, surname=f"Exported{i}", first_name="=1+1" if i == 0
                          else "Ann")
        db.session.commit()


def _open_menu(page):
    page.goto("/admin/owner/customer/")
    page.get_by_role("button", name="Export").or_(
        page.locator("a.nav-link.dropdown-toggle", has_text="Export")).first.click()
    csv_entry = page.get_by_role("link", name="Export CSV")
    xlsx_entry = page.get_by_role("link", name="Export Excel (XLSX)")
    expect(csv_entry).to_be_visible()
    expect(xlsx_entry).to_be_visible()
    return csv_entry, xlsx_entry


@pytest.mark.parametrize("width", [1366, 390], ids=["desktop", "phone"])
def test_the_export_menu_downloads_an_excel_workbook(app, page, sign_in, width):
    _customers(app)
    page.set_viewport_size({"width": width, "height": 800})
    sign_in("owner")

    _, xlsx_entry = _open_menu(page)
    box = xlsx_entry.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= width  # not cut off on a phone
    with page.expect_download() as download:
        xlsx_entry.click()

    assert download.value.suggested_filename.endswith(".xlsx")
    with open(download.value.path(), "rb") as data:
        sheet = load_workbook(io.BytesIO(data.read())).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    surnames = [row[rows[0].index("Surname")] for row in rows[1:]]
    assert sorted(surnames) == ["Exported0", "Exported1", "Exported2"]
    assert "'=1+1" in [row[rows[0].index("First Name")] for row in rows[1:]]


def test_a_big_export_asks_then_lands_on_its_job_with_the_file(app, page, sign_in,
                                                               monkeypatch):
    monkeypatch.setitem(app.config, "CRM_EXPORT_THRESHOLD", 2)
    monkeypatch.setitem(app.config, "CRM_JOB_CHUNK_SIZE", 2)
    _customers(app)
    page.set_viewport_size({"width": 1366, "height": 800})
    sign_in("owner")

    csv_entry, _ = _open_menu(page)
    csv_entry.click()
    expect(page.get_by_role("heading", name="Export Customers to CSV")).to_be_visible()
    page.get_by_role("button", name="Start the export").click()

    page.wait_for_url("**/admin/owner/jobs/*/")
    expect(page.get_by_test_id("job-page")).to_contain_text("Exported 3 rows of Customers")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download").first.click()
    with open(download.value.path(), encoding="utf-8", newline="") as data:
        table = list(csv.reader(data))
    assert sorted(row[table[0].index("Surname")] for row in table[1:]) == [
        "Exported0", "Exported1", "Exported2"]
