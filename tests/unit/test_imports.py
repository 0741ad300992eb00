"""Imports of customers, contacts and work addresses (crm.actions.imports, crm.jobs.imports):
reading CSV and XLSX as streams, the mapping guessed from headers, every refusal with its
sentence, matching, the dry run, the refused-rows file, and a run resumed after a crash."""

import csv
import io
import tracemalloc
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from crm.actions import ActionError
from crm.actions.block_email import block_email
from crm.actions.imports import (
    TARGETS,
    ImportFileError,
    check_mapping,
    guess_mapping,
    iter_rows,
    offered,
    read_header,
    stage,
)
from crm.jobs import Context, job_folder, start_job
from crm.jobs.imports import kind_name, run_chunk, upload_folder
from crm.jobs.runner import run_job
from crm.models import AuditEvent, Contact, Customer, Job, WorkAddress
from crm.models.base import utcnow
from crm.permissions import GATES
from tests.factories import make_contact, make_customer, make_work_address

HEADER = "Surname,First name,E-mail,Phone,Address,Post code"


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def rows_of(folder: Path) -> list[list[str]]:
    return [row.values for row in iter_rows(folder / "rows.csv")]


def import_file(session, app, actor, text: str, *, target="customers", mapping=None,
                dry_run=False, name="people.csv", token="t" * 20 + "abcd"):
    """Stage ``text`` as an upload and run its import job to the end; returns the job."""
    folder = upload_folder(app.config, token)
    folder.mkdir(parents=True, exist_ok=True)
    source = write(folder / "upload.bin", text)
    staged = stage(source, folder, filename=name)
    mapping = check_mapping(target, staged.headers,
                            mapping if mapping is not None else guess_mapping(target,
                                                                              staged.headers))
    job = start_job(session, kind=kind_name(target), actor=actor, title="Import",
                    total=staged.rows,
                    params={"target": target, "upload": token, "mapping": mapping,
                            "dry_run": dry_run, "filename": name})
    session.commit()
    run_job(job.id)
    session.expire_all()
    return session.get(Job, job.id)


def report_of(app, job) -> list[list[str]]:
    path = job_folder(app.config, job.id) / "report.csv"
    return list(csv.reader(io.StringIO(path.read_text())))


def refused_of(app, job) -> list[list[str]]:
    path = job_folder(app.config, job.id) / "refused.csv"
    return list(csv.reader(io.StringIO(path.read_text())))


# --- reading --------------------------------------------------------------------------------
def test_a_csv_with_a_byte_order_mark_and_semicolons_is_read(tmp_path):
    source = write(tmp_path / "in.csv", "\ufeffSurname;E-mail\nSmith;a@example.com\n"
                   "\"O;Brien\";b@example.com\n")

    staged = stage(source, tmp_path / "up")

    assert staged.headers == ["Surname", "E-mail"]
    assert staged.rows == 2
    assert rows_of(tmp_path / "up") == [["Smith", "a@example.com"], ["O;Brien", "b@example.com"]]


def test_a_tab_separated_file_with_a_line_break_inside_a_cell_keeps_its_rows(tmp_path):
    source = write(tmp_path / "in.tsv", "Surname\tNotes\nSmith\t\"two\nlines\"\nJones\tok\n")

    stage(source, tmp_path / "up")

    rows = list(iter_rows(tmp_path / "up" / "rows.csv"))
    assert [(r.number, r.values) for r in rows] == [(2, ["Smith", "two\nlines"]),
                                                    (3, ["Jones", "ok"])]


def test_an_xlsx_is_read_with_numbers_as_typed(tmp_path):
    book = Workbook()
    sheet = book.active
    sheet.append(["Surname", "Phone", "Post code"])
    sheet.append(["Smith", 7700900123, "LS1 1AA"])
    sheet.append([None, None, None])
    sheet.append(["Jones", 7700900456.0, "M1 1AA"])
    book.save(tmp_path / "in.xlsx")
    (tmp_path / "in.xlsx").rename(tmp_path / "upload")  # as the screen stores it: no extension

    staged = stage(tmp_path / "upload", tmp_path / "up")

    assert staged.format == "xlsx"
    assert rows_of(tmp_path / "up") == [["Smith", "7700900123", "LS1 1AA"], [],
                                        ["Jones", "7700900456", "M1 1AA"]]


@pytest.mark.parametrize(("content", "says"), [
    (b"", "empty"),
    (b"\x00\x01\x02garbage\x00" * 50, "binary"),
    (b"Surname,E-mail\n", "no rows"),
    (b"\n\nSmith\n", "first row is empty"),
    (b"\xd0\xcf\x11\xe0old excel", ".xls"),
    ("Surname\nM\u00fcller\n".encode("latin-1"), "UTF-8"),
    (b"PK\x03\x04 not really a zip", "damaged"),
])
def test_a_file_that_is_not_a_spreadsheet_is_refused_with_a_sentence(tmp_path, content, says):
    source = tmp_path / "in.bin"
    source.write_bytes(content)

    with pytest.raises(ImportFileError, match=says):
        stage(source, tmp_path / "up")


def test_a_file_past_the_row_limit_is_refused(tmp_path):
    source = write(tmp_path / "in.csv", "Surname\n" + "Smith\n" * 11)

    with pytest.raises(ImportFileError, match="more than 10 rows"):
        stage(source, tmp_path / "up", max_rows=10)


def test_reading_a_100k_row_file_holds_a_chunk_not_the_file(tmp_path):
    source = tmp_path / "big.csv"
    with open(source, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["Customer reference", "Address", "Postcode", "Notes"])
        for n in range(100_000):
            writer.writerow([f"C-{n:06d}", f"{n} Long Road Name", "LS1 1AA", "x" * 40])
    size = source.stat().st_size

    tracemalloc.start()
    staged = stage(source, tmp_path / "up")
    count = sum(1 for _ in iter_rows(tmp_path / "up" / "rows.csv"))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    assert staged.rows == count == 100_000
    assert size > 6_000_000
    assert peak < 3_000_000  # well under half the file: it is never held whole


# --- the mapping ----------------------------------------------------------------------------
def test_the_mapping_is_guessed_from_headers_whatever_their_case_and_punctuation():
    headers = ["SURNAME ", "Forename", "Email address", "Tel.", "Street", "Post code", "Zip",
               "Balance", "Price book"]

    assert guess_mapping("customers", headers) == {
        "surname": "SURNAME ", "first_name": "Forename", "email": "Email address",
        "phone": "Tel.", "address_line_1": "Street", "postcode": "Post code",
    }
    assert guess_mapping("work_addresses", ["Cust ref", "E-Mail", "ZIP", "Address 1"]) == {
        "customer_reference": "Cust ref", "address_line_1": "Address 1", "postcode": "ZIP"}
    assert guess_mapping("work_addresses", ["Customer Ref", "Customer e-mail", "ZIP"])[
        "customer_reference"] == "Customer Ref"


def test_money_columns_are_never_offered_nor_importable():
    for target, spec in TARGETS.items():
        names = {f"{spec.model.__name__}.{f.name}" for f in offered(target)}
        assert not names & set(GATES), target
        assert not {"balance", "price_book", "creditor_days", "account_credit",
                    "third_party_reference"} & {f.name for f in offered(target)}

    with pytest.raises(ActionError, match="not a field an import can fill"):
        check_mapping("customers", ["Surname", "Price book"],
                      {"surname": "Surname", "price_book": "Price book"})


def test_a_mapping_without_what_the_target_needs_is_refused():
    with pytest.raises(ActionError, match="Customer reference or Customer e-mail"):
        check_mapping("work_addresses", ["Address", "Postcode"],
                      {"address_line_1": "Address", "postcode": "Postcode"})
    with pytest.raises(ActionError, match="no column called"):
        check_mapping("customers", ["Surname"], {"surname": "Nope"})


# --- rows -------------------------------------------------------------------------------------
def test_customers_are_created_with_normalized_values_and_the_report_says_so(session, app,
                                                                              owner):
    job = import_file(session, app, owner, HEADER + "\n"
                      "Smith,Ann,ANN@Example.COM,07911 123456,1 High St,ls1  1aa\n")

    customer = session.scalar(select(Customer))
    assert job.status == "done"
    assert (customer.surname, customer.email, customer.phone, customer.postcode) == (
        "Smith", "ann@example.com", "+447911123456", "LS1 1AA")
    assert report_of(app, job)[1] == ["2", "created", "", customer.reference,
                                     "Smith, ANN@Example.COM"]
    assert "1 created" in job.summary and "Every row went in" in job.summary


@pytest.mark.parametrize(("row", "reason"), [
    ("Smith,Ann,not-an-address,,1 High St,LS1 1AA", "E-mail: Not a valid e-mail address"),
    ("Smith,Ann,,12,1 High St,LS1 1AA", "Phone: Not a"),
    ("Smith,Ann,,,1 High St,XYZ", "Postcode: Not a valid postcode for United Kingdom"),
    (",Ann,ann@example.com,,,", "A surname is required"),
    ("Smith,Ann,,,,", "Give an e-mail, a phone number or an address"),
    ("Smith,Ann,,,1 High St,", "An address needs its postcode"),
    ("Smith,Ann,spam@blocked.example,,,", "The e-mail address is blocked."),
    ("Smith,A\x07nn,,,1 High St,LS1 1AA", "First name: holds control characters"),
    ("S" * 101 + ",Ann,ann@example.com,,,", "Surname: at most 100 characters"),
])
def test_a_row_the_admin_form_would_refuse_is_refused_with_the_reason(session, app, owner,
                                                                      row, reason):
    block_email(session, value="@blocked.example", reason="spam", actor=owner)
    session.commit()

    job = import_file(session, app, owner, f"{HEADER}\n{row}\n")

    assert session.scalar(select(func.count()).select_from(Customer)) == 0
    assert job.skipped == 1 and job.changed == 0
    assert report_of(app, job)[1][:2] == ["2", "refused"]
    assert report_of(app, job)[1][2].startswith(reason)
    assert "@blocked.example" not in str(job.skips) and "ann@" not in str(job.skips)


def test_a_company_needs_its_company_name_and_yes_or_no_is_checked(session, app, owner):
    job = import_file(session, app, owner, "Type,Company,Surname,E-mail,Post\n"
                      "company,,,a@example.com,yes\nCompany,Acme Ltd,,b@example.com,maybe\n"
                      "Company,Acme Ltd,,c@example.com,no\n",
                      mapping={"customer_type": "Type", "company_name": "Company",
                               "surname": "Surname", "email": "E-mail", "post_opt_in": "Post"})

    reasons = [row[2] for row in report_of(app, job)[1:]]
    assert reasons == ["A company needs its company name.", "Post: write yes or no.", ""]
    assert session.scalar(select(Customer.post_opt_in)) is False


def test_a_customer_is_matched_by_reference_then_by_normalized_email(session, app, owner):
    by_ref = make_customer(session, surname="Old", email="old@example.com")
    by_mail = make_customer(session, surname="Mail", email="mail@example.com", phone=None)
    session.commit()

    job = import_file(session, app, owner, "Reference,Surname,E-mail,Phone\n"
                      f"{by_ref.reference.lower()},New,,\n"
                      ",,MAIL@example.com,07911 123457\n"
                      ",,mail@example.com,07911 123457\n",
                      mapping={"reference": "Reference", "surname": "Surname",
                               "email": "E-mail", "phone": "Phone"})

    session.expire_all()
    assert [r[1] for r in report_of(app, job)[1:]] == ["updated", "updated", "unchanged"]
    assert session.get(Customer, by_ref.id).surname == "New"
    assert session.get(Customer, by_ref.id).email == "old@example.com"  # empty cell: kept
    assert session.get(Customer, by_mail.id).phone == "+447911123457"
    assert session.scalar(select(func.count()).select_from(Customer)) == 2


def test_an_unknown_reference_a_redacted_customer_and_a_shared_email_are_refused(session, app,
                                                                                  owner):
    redacted = make_customer(session, redacted_at=utcnow())
    make_customer(session, email="twice@example.com")
    make_customer(session, email="twice@example.com")
    session.commit()

    job = import_file(session, app, owner, "Reference,Surname,E-mail\n"
                      "C-999999,X,\n"
                      f"{redacted.reference},X,\n"
                      ",X,twice@example.com\n",
                      mapping={"reference": "Reference", "surname": "Surname",
                               "email": "E-mail"})

    assert [r[2] for r in report_of(app, job)[1:]] == [
        "No customer has this reference.",
        f"{redacted.reference} has been redacted; it can no longer be edited.",
        "2 customers have this e-mail address: give the reference of the one meant.",
    ]


def test_a_row_repeating_an_earlier_rows_email_updates_what_it_made(session, app, owner):
    job = import_file(session, app, owner, HEADER + "\n"
                      "Smith,Ann,ann@example.com,,,\n"
                      "Smith,Anne,ann@example.com,07911 123456,,\n")

    customer = session.scalar(select(Customer))
    assert [r[1] for r in report_of(app, job)[1:]] == ["created", "updated"]
    assert (customer.first_name, customer.phone) == ("Anne", "+447911123456")
    assert session.scalar(select(func.count()).select_from(Customer)) == 1


def test_a_work_address_is_matched_among_its_own_customers_addresses(session, app, owner):
    ann = make_customer(session, email="ann@example.com")
    bob = make_customer(session, email="bob@example.com")
    anns = make_work_address(session, ann, address_line_1="1 High Street", postcode="LS1 1AA")
    bobs = make_work_address(session, bob, address_line_1="1 High Street", postcode="LS1 1AA")
    session.commit()

    job = import_file(session, app, owner,
                      "Customer e-mail,Address,Postcode,Occupier,Town\n"
                      "bob@example.com,1 HIGH STREET.,ls1 1aa,Tenant,Leeds\n"
                      "bob@example.com,2 High Street,LS1 1AA,,Leeds\n"
                      "nobody@example.com,3 High Street,LS1 1AA,,\n"
                      f"{ann.reference},4 Low Road,XX,,\n",
                      target="work_addresses",
                      mapping={"customer_email": "Customer e-mail", "address_line_1": "Address",
                               "postcode": "Postcode", "occupier_surname": "Occupier",
                               "town": "Town"})

    session.expire_all()
    outcomes = [r[1:3] for r in report_of(app, job)[1:]]
    assert outcomes[:2] == [["updated", ""], ["created", ""]]
    assert outcomes[2][1].startswith("No customer has this e-mail address")
    assert outcomes[3][0] == "refused"  # an e-mail column holding a reference: no customer
    assert session.get(WorkAddress, bobs.id).occupier_surname == "Tenant"
    assert session.get(WorkAddress, anns.id).occupier_surname != "Tenant"
    new = session.scalar(select(WorkAddress).where(WorkAddress.address_line_1 == "2 High Street"))
    assert (new.customer_id, new.town, new.occupier_surname) == (bob.id, "Leeds", "Occupier")


def test_contacts_are_matched_by_email_then_name_and_one_primary_is_kept(session, app, owner):
    customer = make_customer(session)
    make_contact(session, customer, first_name="Sam", surname="Lee", email="sam@example.com",
                 is_primary=True)
    session.commit()

    job = import_file(session, app, owner,
                      "Customer ref,First name,Surname,E-mail,Mobile,Primary\n"
                      f"{customer.reference},Samuel,Lee,sam@example.com,07911 123456,\n"
                      f"{customer.reference},Jo,Bloggs,,,yes\n"
                      f"{customer.reference},Jo,Bloggs,jo@example.com,,no\n",
                      target="contacts",
                      mapping={"customer_reference": "Customer ref", "first_name": "First name",
                               "surname": "Surname", "email": "E-mail", "mobile": "Mobile",
                               "is_primary": "Primary"})

    rows = report_of(app, job)[1:]
    assert [r[1] for r in rows] == ["updated", "refused", "created"]
    assert rows[1][2].startswith("The customer already has a primary contact")
    contacts = session.scalars(select(Contact).order_by(Contact.id)).all()
    assert [(c.first_name, c.mobile, c.email) for c in contacts] == [
        ("Samuel", "+447911123456", "sam@example.com"), ("Jo", None, "jo@example.com")]


def test_the_dry_run_reports_every_row_and_changes_nothing(session, app, owner):
    existing = make_customer(session, email="ann@example.com")
    session.commit()

    job = import_file(session, app, owner, HEADER + "\n"
                      "Smith,Ann,ann@example.com,,,\n"
                      "Jones,Bob,bob@example.com,,,\n"
                      "Jones,Bobby,bob@example.com,,,\n"
                      "Nobody,,,,,\n", dry_run=True)

    session.expire_all()
    assert [r[1] for r in report_of(app, job)[1:]] == ["updated", "created", "updated",
                                                      "refused"]
    assert session.scalar(select(func.count()).select_from(Customer)) == 1
    assert session.get(Customer, existing.id).surname != "Smith"
    assert "Nothing was changed" in job.summary and job.result_name.endswith(".csv")
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == 0


def test_refused_rows_come_back_as_they_were_with_the_row_and_reason(session, app, owner):
    job = import_file(session, app, owner, HEADER + "\n"
                      "Smith,Ann,ann@example.com,,,\n"
                      "Jones,\"Bob, Jr\",not-valid,,,\n"
                      "\n"
                      "Brown,Cy,,,9 Road,ZZZ\n")

    rows = refused_of(app, job)
    assert rows[0] == HEADER.split(",") + ["Row", "Reason"]
    assert rows[1][:7] == ["Jones", "Bob, Jr", "not-valid", "", "", "", "3"]
    assert rows[1][7].startswith("E-mail: Not a valid e-mail address")
    assert rows[2][6:] == ["5", rows[2][7]] and rows[2][7].startswith("Postcode:")
    assert len(rows) == 3
    assert job.result_name == "refused-rows-people.csv"
    assert job.skips == [["row 3", rows[1][7]], ["row 5", rows[2][7]]]
    assert "2 refused" in job.summary


def test_a_run_that_crashes_mid_chunk_resumes_and_imports_each_row_once(session, app, owner,
                                                                        monkeypatch):
    monkeypatch.setattr("crm.jobs.imports.CHUNK", 2)
    token = "r" * 24
    folder = upload_folder(app.config, token)
    folder.mkdir(parents=True)
    source = write(folder / "in.csv", HEADER + "\n" + "".join(
        f"Person{n},A,p{n}@example.com,,,\n" for n in range(5)) + "Bad,A,bad,,,\n")
    staged = stage(source, folder)
    mapping = check_mapping("customers", staged.headers, guess_mapping("customers",
                                                                       staged.headers))
    job = start_job(session, kind="import_customers", actor=owner, title="Import",
                    total=staged.rows, params={"target": "customers", "upload": token,
                                               "mapping": mapping, "filename": "in.csv"})
    session.commit()
    job.status = "running"
    session.commit()
    context = Context(folder=job_folder(app.config, job.id), actor=owner,
                      config=dict(app.config))
    run_chunk(session, job, context)  # the first two rows, written and flushed...
    session.rollback()  # ...then the consumer dies before the commit
    session.get(Job, job.id).status = "queued"
    session.commit()

    assert run_job(job.id) == "done"

    session.expire_all()
    emails = sorted(session.scalars(select(Customer.email)))
    assert emails == [f"p{n}@example.com" for n in range(5)]
    assert [r[0] for r in report_of(app, session.get(Job, job.id))[1:]] == [
        "2", "3", "4", "5", "6", "7"]
    assert [r[0] for r in refused_of(app, session.get(Job, job.id))[1:]] == ["Bad"]


def test_an_import_writes_one_audit_event_per_chunk_naming_no_one(session, app, owner,
                                                                  monkeypatch):
    monkeypatch.setattr("crm.jobs.imports.CHUNK", 2)

    job = import_file(session, app, owner, HEADER + "\n" + "".join(
        f"Person{n},A,p{n}@example.com,,,\n" for n in range(3)))

    events = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert [(e.verb, e.subject_id, e.details["rows"], e.details["created"]) for e in events] == [
        ("import_customers", job.id, [2, 3], 2), ("import_customers", job.id, [4, 4], 1)]
    assert "Person" not in str([e.details for e in events])


def test_the_header_row_is_read_back_with_the_offset_of_the_first_row(tmp_path):
    source = write(tmp_path / "in.csv", "A,B\n1,2\n")
    stage(source, tmp_path / "up")

    header, offset = read_header(tmp_path / "up" / "rows.csv")

    assert header == ["A", "B"]
    assert (tmp_path / "up" / "rows.csv").read_bytes()[offset:] == b"1,2\r\n"


def test_start_import_stages_a_file_and_its_job_matches_postcodes_however_spaced(session, app,
                                                                                 owner, tmp_path):
    from crm.jobs.imports import start_import

    customer = make_customer(session)
    unspaced = make_work_address(session, customer, address_line_1="9 Mill Lane",
                                 postcode="LS11AA")
    session.commit()
    source = write(tmp_path / "sites.csv", "Customer reference,Address,Postcode,Town\n"
                   f"{customer.reference},9 Mill Lane,LS1 1AA,Leeds\n"
                   f"{customer.reference},10 Mill Lane,LS1 1AA,Leeds\n")

    job = start_import(session, source=source, target="work_addresses", actor=owner,
                       config=app.config)
    session.commit()
    assert run_job(job.id) == "done"

    session.expire_all()
    assert session.get(WorkAddress, unspaced.id).town == "Leeds"
    assert session.scalar(select(func.count()).select_from(WorkAddress)) == 2
    assert session.get(Job, job.id).title == "Import work addresses from sites.csv"
