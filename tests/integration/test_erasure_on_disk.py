"""Erasure reaches the disk: after a customer is redacted from the panel, none of their name,
e-mail address, phone number or note text is left in the raw SQLite files (the database,
its write-ahead log and shared memory) or in the outbox folder, where a statement e-mailed
to them earlier used to stay with their address, "Dear …" and a PDF.

The database here is a SQLite file of this test's own (whichever database the rest of the
suite runs on): the bytes on disk are what is checked, with every edit the person went
through (old versions of rows are what a WAL and free pages keep)."""

from datetime import date, timedelta
from pathlib import Path

import pytest
from flask_migrate import upgrade

from crm.extensions import db
from crm.models import BlockedEmail, Customer, SentMessage
from tests import factories as f
from tests.conftest import CrmClient, make_app
from tests.integration.conftest import sign_in
from tests.integration.helpers import by_testid

FIRST, SURNAME = "Ottoline", "Quillfeather"
EMAIL = "ottoline.quill@example.net"
PHONE_E164, PHONE_TYPED = "+447700900461", "07700 900461"
OLD_PHONE = "+447700900987"  # a number she had before: an older row version
NOTE = "Prefers the blue van on Tuesdays"
CONTACT_SURNAME = "Featherstonehaugh"
WORK_STREET = "17 Wisteria Crescent"


@pytest.fixture
def disk_app(tmp_path):
    """An app of its own on a SQLite file in ``tmp_path``, writing e-mail to an outbox there."""
    app = make_app(f"sqlite:///{tmp_path / 'db' / 'crm.sqlite'}",
                   MAIL_BACKEND="outbox", MAIL_OUTBOX_DIR=str(tmp_path / "outbox"))
    (tmp_path / "db").mkdir()
    with app.app_context():
        upgrade()
    app.test_client_class = CrmClient
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _the_person(app) -> int:
    with app.app_context():
        s = db.session
        person = f.make_customer(s, first_name=FIRST, surname=SURNAME, email=EMAIL,
                                 phone=OLD_PHONE, address_line_1="3 Larkspur Lane")
        s.commit()
        person.phone = PHONE_E164  # an edit: the old number is in an older row version
        f.make_contact(s, person, first_name="Basil", surname=CONTACT_SURNAME,
                       email="basil.f@example.net", phone=PHONE_E164)
        f.make_note(s, person, body=NOTE)
        # A long note spills into overflow pages, which erasure frees: freed pages keep their
        # bytes unless the database zeroes them.
        f.make_note(s, person, body=f"Call notes. {NOTE}. " + "Details of the visit. " * 300)
        f.make_work_address(s, person, address_line_1=WORK_STREET)
        f.make_invoice(s, person, amount="1005.83",
                       issue_date=date.today() - timedelta(days=60),
                       due_date=date.today() - timedelta(days=30))
        s.add(BlockedEmail(kind="domain", domain="nuisance.example", reason="abuse",
                           note=f"{SURNAME} sent these"))
        s.commit()
        return person.id


def _traces(paths, needles) -> list[tuple[str, str]]:
    """(file, what) for every needle found in the raw bytes of the files, as typed and in
    lower case, in UTF-8 and UTF-16 (SQLite may store either)."""
    found = []
    for path in paths:
        data = Path(path).read_bytes()
        for needle in needles:
            for form in {needle, needle.lower()}:
                if form.encode() in data or form.encode("utf-16-le") in data:
                    found.append((Path(path).name, form))
    return found


def _files(tmp_path) -> list[Path]:
    return [p for p in tmp_path.rglob("*") if p.is_file()]


def test_nothing_of_a_redacted_customer_is_left_in_the_files(disk_app, tmp_path):
    key = _the_person(disk_app)
    owner = disk_app.test_client()
    sign_in(disk_app, owner, "owner")
    sent = owner.post("/admin/owner/customer/bulk/email_statements/",
                      data={"ids": [str(key)], "confirm": "1"})
    assert sent.status_code == 200
    # the portal's invitation ("Dear …", with the address) is a stored message about them too
    invited = owner.post("/admin/owner/customer/bulk/portal_invite/",
                         data={"ids": [str(key)], "confirm": "1"})
    assert invited.status_code == 200
    outbox = list((tmp_path / "outbox").glob("*.eml"))
    assert len(outbox) == 2
    for message in outbox:  # the messages are there before erasure
        assert EMAIL.encode() in message.read_bytes()
    needles = [FIRST, SURNAME, EMAIL, PHONE_E164, PHONE_E164.lstrip("+"), OLD_PHONE,
               PHONE_TYPED.replace(" ", ""), NOTE, CONTACT_SURNAME, "basil.f@example.net",
               WORK_STREET]
    assert _traces(_files(tmp_path), needles), "the person should be on disk before"

    done = owner.post("/admin/owner/customer/bulk/redact/",
                      data={"ids": [str(key)], "confirm": "1", "word": "REDACT"})

    assert done.status_code == 200
    assert by_testid(done.get_data(as_text=True), "result-changed")[0].startswith("1 changed")
    assert _traces(_files(tmp_path), needles) == []
    assert list((tmp_path / "outbox").glob("*.eml")) == []
    listing = owner.get("/admin/owner/outbox/").get_data(as_text=True)
    assert EMAIL not in listing and SURNAME not in listing
    with disk_app.app_context():
        assert db.session.query(SentMessage).count() == 0
        assert db.session.get(Customer, key).redacted_at is not None
        assert db.session.query(BlockedEmail.note).scalar() is None
    wal = tmp_path / "db" / "crm.sqlite-wal"
    assert not wal.exists() or wal.stat().st_size == 0  # checkpointed and truncated


def test_another_customers_messages_and_data_stay(disk_app, tmp_path):
    key = _the_person(disk_app)
    with disk_app.app_context():
        other = f.make_customer(db.session, first_name="Wilhelmina", surname="Strand",
                                email="w.strand@example.org")
        f.make_invoice(db.session, other, amount="50.00", issue_date=date.today(),
                       due_date=date.today())
        db.session.commit()
        other_key = other.id
    owner = disk_app.test_client()
    sign_in(disk_app, owner, "owner")
    owner.post("/admin/owner/customer/bulk/email_statements/",
               data={"ids": [str(key), str(other_key)], "confirm": "1"})
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 2

    owner.post("/admin/owner/customer/bulk/redact/",
               data={"ids": [str(key)], "confirm": "1", "word": "REDACT"})

    [kept] = list((tmp_path / "outbox").glob("*.eml"))
    assert b"w.strand@example.org" in kept.read_bytes()
    with disk_app.app_context():
        assert db.session.query(SentMessage.customer_id).scalar() == other_key
