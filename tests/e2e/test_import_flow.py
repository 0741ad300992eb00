"""Customers → Import in a browser: a CSV whose surname column has a header nobody could
guess is matched by hand, the check finds one refused row, Import runs the job, and its page
hands back the refused row with the reason. axe finds nothing serious on the three steps."""

import csv
import io

from sqlalchemy import select

from crm.extensions import db
from crm.models import Customer
from tests.e2e.test_accessibility import severe_violations

CSV = ("Nom de famille,Prénom,Email address,Post code,Street\n"
       "Smith,Ann,ann@example.com,LS1 1AA,1 High St\n"
       "Jones,Bob,bob@example.com,NOT A POSTCODE,2 High St\n"
       "Brown,Cy,cy@example.com,M1 1AA,3 Low Rd\n")


def test_an_import_with_a_header_matched_by_hand_and_one_refused_row(app, page, sign_in,
                                                                     tmp_path):
    source = tmp_path / "from-the-old-system.csv"
    source.write_text(CSV, encoding="utf-8")
    sign_in("coordinator")

    page.goto("/admin/coordinator/imports/")
    assert severe_violations(page) == []
    page.get_by_test_id("target-customers").check()
    page.get_by_label("The file").set_input_files(str(source))
    page.get_by_test_id("upload").click()

    page.wait_for_url("**/imports/map/**")
    assert severe_violations(page) == []
    assert page.get_by_test_id("field-email").input_value() == "Email address"
    assert page.get_by_test_id("field-surname").input_value() == ""  # "Nom de famille"
    page.get_by_test_id("field-surname").select_option("Nom de famille")
    page.get_by_test_id("field-first_name").select_option("Prénom")
    page.get_by_test_id("check").click()

    page.wait_for_url("**/imports/check/**")
    assert severe_violations(page) == []
    counts = " ".join(page.get_by_test_id("counts").inner_text().split())
    assert "2 to create" in counts and "1 refused" in counts
    refused_row = page.get_by_test_id("refused-rows").locator("tr.outcome-refused")
    assert "Postcode: Not a valid postcode" in refused_row.inner_text()
    with app.app_context():
        assert db.session.scalar(select(Customer.id)) is None  # the check changed nothing

    page.get_by_test_id("import").click()

    page.wait_for_url("**/jobs/**")
    assert "2 created" in page.get_by_test_id("job-summary").first.inner_text()
    with page.expect_download() as download_info:
        page.get_by_test_id("job-file").click()
    download = download_info.value
    assert download.suggested_filename == "refused-rows-from-the-old-system.csv"
    rows = list(csv.reader(io.StringIO(open(download.path(), encoding="utf-8").read())))
    assert rows[0] == ["Nom de famille", "Prénom", "Email address", "Post code", "Street",
                       "Row", "Reason"]
    assert rows[1][:6] == ["Jones", "Bob", "bob@example.com", "NOT A POSTCODE", "2 High St",
                           "3"]
    assert rows[1][6].startswith("Postcode: Not a valid postcode for United Kingdom")
    assert len(rows) == 2
    with app.app_context():
        assert sorted(db.session.scalars(select(Customer.surname))) == ["Brown", "Smith"]
