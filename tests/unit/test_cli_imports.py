"""`flask crm import FILE --what …`: the Customers → Import job from the command line —
guessed or saved column matching, a check that writes nothing, the refused rows named."""

import csv

from sqlalchemy import func, select

from crm.models import ImportMapping, Job, WorkAddress
from tests.factories import make_customer


def _run(app, *args):
    return app.test_cli_runner().invoke(args=["crm", "import", *args])


def _file(tmp_path, text: str):
    path = tmp_path / "sites.csv"
    path.write_text(text, encoding="utf-8")
    return path


def _addresses(session) -> int:
    return session.scalar(select(func.count()).select_from(WorkAddress))


def test_import_work_addresses_from_a_csv_names_the_refused_rows(app, session, tmp_path):
    ann = make_customer(session, email="ann@example.com")
    session.commit()
    path = _file(tmp_path, "Customer reference,Address,Postcode,Town\n"
                           f"{ann.reference},2 High Street,LS1 1AA,Leeds\n"
                           f"{ann.reference},3 High Street,LS1 1AA,Leeds\n"
                           "C-999999,4 High Street,LS1 1AA,Leeds\n")

    checked = _run(app, str(path), "--what", "work_addresses", "--check")
    assert checked.exit_code == 0, checked.output
    assert "Nothing was changed" in checked.output
    assert _addresses(session) == 0

    result = _run(app, str(path), "--what", "work_addresses")
    assert result.exit_code == 0, result.output
    assert "2 created" in result.output and "1 refused" in result.output
    session.expire_all()
    assert sorted(session.scalars(select(WorkAddress.address_line_1))) == [
        "2 High Street", "3 High Street"]
    job = session.scalars(select(Job).order_by(Job.id.desc())).first()
    assert job.status == "done"
    report = result.output.rsplit(": ", 1)[1].strip()
    with open(report, encoding="utf-8") as source:
        rows = list(csv.reader(source))
    assert any("C-999999" in row and "No customer has this reference." in row for row in rows)


def test_a_saved_matching_is_used_by_name_and_an_unknown_one_is_refused(app, session,
                                                                       tmp_path):
    ann = make_customer(session)
    session.add(ImportMapping(target="work_addresses", name="Old system",
                              columns={"customer_reference": "Cust", "address_line_1": "Site",
                                       "postcode": "PC"}))
    session.commit()
    path = _file(tmp_path, f"Cust,Site,PC\n{ann.reference},9 Mill Lane,LS2 7EW\n")

    unknown = _run(app, str(path), "--what", "work_addresses", "--mapping", "Nope")
    assert unknown.exit_code != 0 and "no saved matching 'Nope'" in unknown.output

    result = _run(app, str(path), "--what", "work_addresses", "--mapping", "Old system")
    assert result.exit_code == 0, result.output
    session.expire_all()
    assert session.scalar(select(WorkAddress.address_line_1)) == "9 Mill Lane"


def test_a_file_that_is_not_a_spreadsheet_is_refused_with_a_sentence(app, session, tmp_path):
    path = tmp_path / "photo.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 20)

    result = _run(app, str(path), "--what", "customers")
    assert result.exit_code != 0
    assert "Error:" in result.output and "Traceback" not in result.output
    assert session.scalar(select(func.count()).select_from(Job)) == 0
