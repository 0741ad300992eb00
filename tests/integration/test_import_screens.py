"""Customers → Import: upload, match columns, check, import, as each role; saved mappings;
bad files and forged requests get a sentence and change nothing."""

import io
import re
from html import unescape
from pathlib import Path

import pytest
from sqlalchemy import select

from crm.extensions import db
from crm.models import Customer, ImportMapping, Job, WorkAddress
from tests.integration.helpers import count_rows, customer, text_of, url

CSV = ("Family name,Given name,Email address,Tel,Street,Post code\n"
       "Smith,Ann,ann@example.com,07911 123456,1 High St,LS1 1AA\n"
       "Jones,Bob,not-an-address,,2 High St,LS1 1AA\n")


def upload(client, role, content, *, target="customers", name="people.csv", **extra):
    return client.post(url(role, "imports", "upload/"), data={
        "target": target, "file": (io.BytesIO(content), name), **extra},
        content_type="multipart/form-data")


def uploads_of(app) -> set[str]:
    folder = Path(app.config["CRM_JOBS_DIR"]) / "uploads"
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


def form_of(page: str) -> dict:
    """The mapping form's selects as the page chose them."""
    chosen = {}
    for name, body in re.findall(r'<select class="custom-select" name="(field-[a-z_0-9]+)"'
                                 r'.*?>(.*?)</select>', page, re.S):
        selected = re.search(r'<option value="([^"]*)" selected>', body)
        chosen[name] = unescape(selected.group(1)) if selected else ""
    return chosen


def through_the_check(client, role, content=None, **kwargs):
    response = upload(client, role, content or CSV.encode(), **kwargs)
    assert response.status_code == 303, re.findall(r"alert-danger[^>]*>([^<]*)", text_of(response))
    map_url = response.headers["Location"]
    page = text_of(client.get(map_url))
    checked = client.post(map_url, data={**form_of(page), "do": "check"})
    assert checked.status_code == 303, re.findall(r"alert-danger[^>]*>([^<]*)", text_of(checked))
    return map_url, checked.headers["Location"]


@pytest.mark.parametrize("role", ["coordinator", "admin"])
def test_a_role_with_import_records_imports_customers_and_gets_the_refused_row_back(
        app, client, login, role):
    login(role)

    map_url, check_url = through_the_check(client, role)
    check = text_of(client.get(check_url))

    assert count_rows(app, Customer) == 0  # the check changes nothing
    assert 'data-testid="counts"' in check
    assert re.search(r'<span class="n">1</span> to create', check)
    assert re.search(r'<span class="n">1</span> refused', check)
    assert "Email address: Not a valid e-mail address" not in check  # our label, not theirs
    assert "E-mail: Not a valid e-mail address" in check
    run_url = re.search(r'action="([^"]+/run/[^"]+)"', check).group(1)

    done = client.post(run_url, data={})

    assert done.status_code == 303
    assert f"/admin/{role}/jobs/" in done.headers["Location"]
    job_page = text_of(client.get(done.headers["Location"]))
    assert "1 created" in job_page and "1 refused" in job_page
    with app.app_context():
        ann = db.session.scalar(select(Customer))
        assert (ann.surname, ann.phone) == ("Smith", "+447911123456")
        job = db.session.scalar(select(Job).where(Job.kind == "import_customers",
                                                  Job.params["dry_run"].as_boolean().is_(False)))
        job_id = job.id
    refused = client.get(f"/admin/{role}/jobs/{job_id}/file")
    assert refused.status_code == 200
    lines = text_of(refused).splitlines()
    assert lines[0] == "Family name,Given name,Email address,Tel,Street,Post code,Row,Reason"
    assert lines[1].startswith("Jones,Bob,not-an-address,,2 High St,LS1 1AA,3,E-mail:")
    assert len(lines) == 2


def test_a_coordinator_imports_work_addresses_for_customers_on_file(app, client, login):
    login("coordinator")
    with app.app_context():
        owner = customer(db.session, surname="Landlord", email="lord@example.com")
        db.session.commit()
        reference = owner.reference

    _, check_url = through_the_check(
        client, "coordinator",
        f"Cust ref,Address 1,ZIP,Town\n{reference},5 Mill Lane,LS2 2BB,Leeds\n".encode(),
        target="work_addresses")
    run_url = re.search(r'action="([^"]+/run/[^"]+)"', text_of(client.get(check_url))).group(1)
    client.post(run_url, data={})

    with app.app_context():
        address = db.session.scalar(select(WorkAddress))
        assert (address.customer.reference, address.postcode, address.town) == (
            reference, "LS2 2BB", "Leeds")


@pytest.mark.parametrize(("content", "name", "says"), [
    (b"", "empty.csv", "That file is empty."),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 20, "photo.csv", "not a spreadsheet"),
    (b"Surname,E-mail\n", "header.csv", "no rows"),
    (b"PK\x03\x04broken", "book.xlsx", "cannot be opened"),
])
def test_a_bad_file_gets_a_sentence_and_nothing_is_kept(app, client, login, content, name,
                                                        says):
    login("coordinator")
    before = uploads_of(app)

    response = upload(client, "coordinator", content, name=name)

    assert response.status_code == 400
    assert says in unescape(text_of(response))
    assert uploads_of(app) == before


def test_no_file_or_an_unknown_target_is_refused_with_a_sentence(client, login):
    login("coordinator")

    assert "Choose the file to import." in text_of(
        client.post(url("coordinator", "imports", "upload/"), data={"target": "customers"}))
    refused = upload(client, "coordinator", CSV.encode(), target="invoices")
    assert refused.status_code == 400
    assert "Choose what the file holds" in text_of(refused)


def test_a_file_past_the_import_limit_is_refused_before_it_is_read(app, client, login):
    login("coordinator")
    app.config["CRM_IMPORT_MAX_BYTES"] = 1000
    try:
        response = upload(client, "coordinator", CSV.encode() * 20)
    finally:
        app.config.pop("CRM_IMPORT_MAX_BYTES")

    assert response.status_code == 303
    assert "larger than" in unescape(text_of(client.get(response.headers["Location"])))


def test_an_upload_without_the_csrf_token_is_refused(app, client, login):
    login("coordinator")
    before = uploads_of(app)

    response = client.post(url("coordinator", "imports", "upload/"), csrf=False,
                           data={"target": "customers",
                                 "file": (io.BytesIO(CSV.encode()), "people.csv")},
                           content_type="multipart/form-data")

    assert response.status_code == 400
    assert uploads_of(app) == before


def test_someone_elses_upload_and_check_are_not_found(app, client, login, other_client):
    login("coordinator")
    map_url, check_url = through_the_check(client, "coordinator")
    other = other_client("coordinator", "second@example.com")

    assert other.get(map_url).status_code == 404
    assert other.get(check_url).status_code == 404
    assert other.post(check_url.replace("/check/", "/run/"), data={}).status_code == 404
    assert client.get(url("coordinator", "imports", "map/not-a-token/")).status_code == 404


def test_a_forged_money_field_is_refused_with_a_sentence(app, client, login):
    login("coordinator")
    response = upload(client, "coordinator", b"Surname,Price book\nSmith,Trade\n")
    map_url = response.headers["Location"]

    refused = client.post(map_url, data={"field-surname": "Surname",
                                         "field-price_book": "Price book", "do": "check"})

    assert refused.status_code == 400
    assert "price_book is not a field an import can fill" in unescape(text_of(refused))
    assert count_rows(app, Job) == 0


def test_a_mapping_is_saved_under_a_name_and_applied_to_the_next_file(app, client, login):
    login("admin")
    map_url = upload(client, "admin", b"Nom,Courriel\nSmith,a@example.com\n").headers["Location"]
    saved = client.post(map_url, data={"field-surname": "Nom", "field-email": "Courriel",
                                       "do": "save", "name": "French export"})
    assert saved.status_code == 303
    with app.app_context():
        mapping = db.session.scalar(select(ImportMapping))
        assert (mapping.name, mapping.target, mapping.columns) == (
            "French export", "customers", {"surname": "Nom", "email": "Courriel"})
        mapping_id = mapping.id

    second = upload(client, "admin", b"Nom,Courriel,Ville\nJones,b@example.com,Paris\n")
    page = text_of(client.get(f"{second.headers['Location']}?mapping={mapping_id}"))

    assert form_of(page)["field-surname"] == "Nom"
    assert form_of(page)["field-email"] == "Courriel"
    assert "French export" in page


def test_a_mapping_without_a_name_is_not_saved(app, client, login):
    login("coordinator")
    map_url = upload(client, "coordinator", CSV.encode()).headers["Location"]

    refused = client.post(map_url, data={"field-surname": "Family name", "do": "save",
                                         "name": "  "})

    assert refused.status_code == 400
    assert "Give the mapping a name" in text_of(refused)
    assert count_rows(app, ImportMapping) == 0


def test_the_mapping_page_shows_the_files_columns_and_guesses(client, login):
    login("coordinator")
    map_url = upload(client, "coordinator", CSV.encode()).headers["Location"]

    page = text_of(client.get(map_url))

    assert form_of(page)["field-surname"] == "Family name"
    assert form_of(page)["field-email"] == "Email address"
    assert form_of(page)["field-postcode"] == "Post code"
    assert "field-price_book" not in page and "field-balance" not in page
    assert "ann@example.com" in page  # the first values beside the columns


def test_an_excel_workbook_is_imported_like_a_csv(app, client, login):
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(["Surname", "Email", "Phone"])
    book.active.append(["Smith", "ann@example.com", 7911123456])
    content = io.BytesIO()
    book.save(content)
    login("coordinator")

    _, check_url = through_the_check(client, "coordinator", content.getvalue(),
                                     name="people.xlsx")
    check = text_of(client.get(check_url))
    client.post(re.search(r'action="([^"]+/run/[^"]+)"', check).group(1), data={})

    with app.app_context():
        ann = db.session.scalar(select(Customer))
        assert (ann.surname, ann.email, ann.phone) == ("Smith", "ann@example.com",
                                                       "+447911123456")
