"""Settings > Business: who may open it, what it checks (each problem by its field, nothing
saved), a stale form refused, the audit row, and the logo — a PNG or JPEG checked by its
content (an SVG, a text file named .png, a damaged image and a file past 512 KB refused),
re-encoded, served to staff at a versioned URL, and removable."""

import io
import re

import pytest
from PIL import Image
from sqlalchemy import select

from crm.extensions import db
from crm.models import AuditEvent, BusinessProfile
from crm.models.settings import LOGO_MAX_BYTES
from tests.integration.helpers import by_testid, count_rows, text_of

URL = "/admin/{role}/business/"
GOOD = {
    "name": "Acme Heating Ltd",
    "address": "Unit 4, Canal Works\r\nBirmingham\r\nB1 1AA",
    "email": "Accounts@Acme.example",
    "phone": "0121 496 0000",
    "website": "www.acme.example",
    "vat_number": "gb 123 4567 89",
    "company_number": "01234567",
    "bank_details": "Acme Heating Ltd\nSort code 12-34-56\nAccount 12345678",
    "payment_terms_days": "14",
    "payment_terms": "",
    "email_from": "accounts@acme.example",
    "reply_to": "office@acme.example",
}


def png(size=(400, 160), colour=(200, 30, 30, 255), mode="RGBA") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, colour).save(out, "PNG")
    return out.getvalue()


def jpeg(size=(300, 120)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (20, 60, 160)).save(out, "JPEG")
    return out.getvalue()


def form(version="0", **changes) -> dict:
    return {**GOOD, "version": version, **changes}


def saved(app) -> BusinessProfile | None:
    with app.app_context():
        row = db.session.get(BusinessProfile, 1)
        if row is not None:
            db.session.expunge(row)
        return row


def version_of(page: str) -> str:
    return re.search(r'name="version" value="(\d*)"', page).group(1)


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owners_and_admins_get_the_page_in_the_settings_menu(client, login, role):
    login(role)
    page = text_of(client.get(URL.format(role=role)))
    assert 'data-testid="business-form"' in page and 'data-testid="not-saved"' in page
    menu = text_of(client.get("/admin/"))
    assert f'href="/admin/{role}/business/"' in menu


def test_a_coordinator_gets_no_business_page_and_no_logo(app, client, login, other_client):
    other_client("owner").post(URL.format(role="owner"),
                               data=form(logo=(io.BytesIO(png()), "logo.png")),
                               content_type="multipart/form-data")
    login("coordinator")
    assert client.get(URL.format(role="coordinator")).status_code == 403
    assert client.get(URL.format(role="owner")).status_code == 403
    assert client.get(URL.format(role="owner") + "logo/").status_code == 403
    assert client.post(URL.format(role="coordinator"), data=form(name="Hijack")).status_code == 403
    assert 'href="/admin/coordinator/business/"' not in text_of(client.get("/admin/"))
    assert saved(app).name == GOOD["name"]


def test_signed_out_the_page_asks_to_sign_in(client):
    response = client.get(URL.format(role="owner"))
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_saving_the_details_stores_them_tidied_and_audits_the_field_names(app, client, login):
    login("owner")
    response = client.post(URL.format(role="owner"), data=form())
    assert response.status_code == 302

    row = saved(app)
    assert (row.name, row.address, row.email, row.vat_number, row.payment_terms_days) == (
        "Acme Heating Ltd", "Unit 4, Canal Works\nBirmingham\nB1 1AA", "accounts@acme.example",
        "GB 123 4567 89", 14)
    assert row.phone == "0121 496 0000" and row.version == 1
    page = text_of(client.get(URL.format(role="owner")))
    assert "details are saved." in page
    sender = by_testid(page, "sender-now")[0]
    assert "Acme Heating Ltd <accounts@acme.example>" in sender
    assert "replies to office@acme.example" in sender
    with app.app_context():
        event = db.session.scalars(select(AuditEvent).where(
            AuditEvent.verb == "update_business_profile")).one()
        assert event.subject_type == "BusinessProfile" and event.actor_label == "owner@example.com"
        assert "vat_number" in event.details["fields"]
        assert "Acme" not in str(event.details) and "1234" not in str(event.details)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("name", "   ", "Enter the business's name"),
    ("email", "accounts@", "Not a valid e-mail address"),
    ("email_from", "not an address", "Not a valid e-mail address"),
    ("reply_to", "a@b@c", "Not a valid e-mail address"),
    ("vat_number", "GB 123", "8 to 14 letters and digits"),
    ("vat_number", "GB 123 4567 89 123 456", "8 to 14 letters and digits"),
    ("vat_number", "GB-123/456789", "only letters and digits"),
    ("payment_terms_days", "366", "from 0 (due on receipt) to 365"),
    ("payment_terms_days", "-1", "from 0 (due on receipt) to 365"),
    ("payment_terms_days", "thirty", "from 0 (due on receipt) to 365"),
    ("payment_terms_days", "", "from 0 (due on receipt) to 365"),
    ("phone", "12", "Not a"),
    ("website", "not a website", "website's address"),
    ("address", "x" * 501, "at most 500 characters"),
    ("address", "\n".join("line"for _ in range(7)), "at most 6 lines"),
])
def test_a_bad_field_is_refused_next_to_it_and_nothing_is_saved(app, client, login, field,
                                                                  value, message):
    login("owner")
    response = client.post(URL.format(role="owner"), data=form(**{field: value}))

    assert response.status_code == 400
    page = text_of(response)
    errors = by_testid(page, f"error-{field}")
    assert errors and message in errors[0], errors
    assert saved(app) is None
    # What was typed stays in the form, to be corrected.
    if field in ("vat_number", "website"):
        assert f'value="{value}"' in page


def test_every_problem_is_said_at_once(app, client, login):
    login("owner")
    page = text_of(client.post(URL.format(role="owner"),
                               data=form(email="x@", vat_number="1", payment_terms_days="999")))
    assert all(by_testid(page, f"error-{name}")
               for name in ("email", "vat_number", "payment_terms_days"))


def test_a_stale_form_is_refused_and_changes_nothing(app, client, login, other_client):
    login("owner")
    client.post(URL.format(role="owner"), data=form())
    mine = version_of(text_of(client.get(URL.format(role="owner"))))
    colleague = other_client("admin")
    theirs = version_of(text_of(colleague.get(URL.format(role="admin"))))
    assert colleague.post(URL.format(role="admin"),
                          data=form(version=theirs, name="Acme Heating & Sons")).status_code == 302

    response = client.post(URL.format(role="owner"), data=form(version=mine, name="Acme Ltd"))

    assert response.status_code == 409
    assert "Someone else saved the business" in text_of(response)
    assert 'value="Acme Heating &amp; Sons"' in text_of(response)  # the form shows theirs
    assert saved(app).name == "Acme Heating & Sons"


def test_a_first_save_racing_another_first_save_is_refused(app, client, login, other_client):
    login("owner")
    first = version_of(text_of(client.get(URL.format(role="owner"))))
    assert first == "0"
    other_client("admin").post(URL.format(role="admin"), data=form(name="First"))
    response = client.post(URL.format(role="owner"), data=form(version=first, name="Second"))
    assert response.status_code == 409 and saved(app).name == "First"


def test_a_save_without_a_version_is_refused_once_a_profile_exists(app, client, login):
    login("owner")
    client.post(URL.format(role="owner"), data=form())
    data = form(name="No version")
    del data["version"]
    assert client.post(URL.format(role="owner"), data=data).status_code == 409
    assert saved(app).name == GOOD["name"]


def test_a_post_without_the_csrf_token_is_refused(app, client, login):
    login("owner")
    response = client.post(URL.format(role="owner"), data=form(), csrf=False)
    assert response.status_code == 400 and saved(app) is None


# --- the logo -----------------------------------------------------------------------------

def upload(client, content: bytes, filename: str, version="0", **changes):
    return client.post(URL.format(role="owner"),
                       data=form(version=version, logo=(io.BytesIO(content), filename),
                                 **changes),
                       content_type="multipart/form-data")


@pytest.mark.parametrize(("content", "filename", "mime"), [
    (png(), "logo.png", "image/png"),
    (jpeg(), "logo.jpg", "image/jpeg"),
    (png(), "logo.jpeg", "image/png"),  # the content decides, not the name
])
def test_a_png_or_jpeg_logo_is_stored_and_served_to_staff(app, client, login, content,
                                                          filename, mime):
    login("owner")
    assert upload(client, content, filename).status_code == 302

    row = saved(app)
    assert row.logo_mime == mime and row.logo_updated_at is not None
    page = text_of(client.get(URL.format(role="owner")))
    src = re.search(r'<img src="(/admin/owner/business/logo/\?v=\d+)"', page).group(1)
    served = client.get(src)
    assert served.status_code == 200 and served.mimetype == mime
    assert "max-age=31536000" in served.headers["Cache-Control"]
    assert Image.open(io.BytesIO(served.data)).format == mime.split("/")[1].upper()
    # An old version's URL is not kept for good.
    assert "no-cache" in client.get(URL.format(role="owner") + "logo/?v=1").headers[
        "Cache-Control"]


def test_a_large_logo_is_scaled_down_and_its_metadata_dropped(app, client, login):
    login("owner")
    picture = Image.new("RGB", (3000, 1000), (10, 120, 40))
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=30, comment=b"secret location")
    assert upload(client, out.getvalue(), "big.jpg").status_code == 302
    with app.app_context():
        stored = db.session.get(BusinessProfile, 1).logo
    image = Image.open(io.BytesIO(stored))
    assert image.size == (800, 267) and b"secret location" not in stored


SVG = (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
       b'<script>alert(1)</script></svg>')


@pytest.mark.parametrize(("content", "filename", "message"), [
    (SVG, "logo.svg", "SVG drawing"),
    (SVG, "logo.png", "SVG drawing"),
    (b"GIF89a" + b"\x00" * 40, "logo.gif", "not a PNG or JPEG image"),
    (b"just some text, not a picture", "logo.png", "not a PNG or JPEG image"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 200, "logo.png", "damaged or incomplete"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * LOGO_MAX_BYTES, "huge.png", "at most 512 KB"),
])
def test_a_logo_that_is_not_a_png_or_jpeg_or_too_large_is_refused(app, client, login, content,
                                                                  filename, message):
    login("owner")
    response = upload(client, content, filename)

    assert response.status_code == 400
    error = by_testid(text_of(response), "error-logo")
    assert error and message in error[0]
    assert saved(app) is None  # the details were not saved either
    assert 'value="Acme Heating Ltd"' in text_of(response)


def test_the_logo_can_be_replaced_and_removed(app, client, login):
    login("owner")
    upload(client, png(), "one.png")
    first = saved(app).logo_updated_at
    version = version_of(text_of(client.get(URL.format(role="owner"))))
    upload(client, jpeg(), "two.jpg", version=version)
    assert saved(app).logo_mime == "image/jpeg" and saved(app).logo_updated_at != first

    version = version_of(text_of(client.get(URL.format(role="owner"))))
    client.post(URL.format(role="owner"), data=form(version=version, remove_logo="1"))

    row = saved(app)
    assert row.logo is None and row.logo_mime is None and row.logo_updated_at is None
    assert client.get(URL.format(role="owner") + "logo/").status_code == 404
    with app.app_context():
        logos = [e.details.get("logo") for e in db.session.scalars(
            select(AuditEvent).where(AuditEvent.verb == "update_business_profile")
            .order_by(AuditEvent.id))]
    assert logos == ["added", "replaced", "removed"]


def test_saving_the_same_details_again_changes_nothing(app, client, login):
    login("owner")
    client.post(URL.format(role="owner"), data=form())
    version = version_of(text_of(client.get(URL.format(role="owner"))))
    client.post(URL.format(role="owner"), data=form(version=version))
    assert saved(app).version == 1
    assert count_rows(app, AuditEvent, AuditEvent.verb == "update_business_profile") == 1
