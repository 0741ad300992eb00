"""Accessibility, checked by axe-core in the browser on the pages people spend their day in:
the home dashboard, the customer list, a customer's record page (owner and coordinator, and
at a phone's width), the edit form, the audit log, an invoice's page and the portal's home.
No "serious" or "critical" violation may be found (axe's own rules, WCAG 2.x A and AA: text
contrast, names of buttons, links and form fields, landmarks, list and table structure...).

axe is vendored (tests/e2e/vendor/axe-core/, see its README for the version and where it came
from) and evaluated in the page through the browser's debugging protocol, which the page's
Content-Security-Policy does not govern: the application itself never serves it."""

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page

from crm.extensions import db
from crm.security import hash_password
from tests.factories import (
    make_booking,
    make_contact,
    make_customer,
    make_invoice,
    make_note,
    make_payment,
    make_portal_account,
)

pytestmark = pytest.mark.e2e

AXE_VERSION = "4.14.1"
AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
SEVERE = ("serious", "critical")
PORTAL_PASSWORD = "tangerine-harbour-lantern-42"

RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ': ' + (n.failureSummary || '')
                                          .split('\\n').slice(0, 2).join(' ')),
  }));
}"""


# Findings accepted for now, each with where it is to be fixed: printed (pytest -s, or -rP),
# not failed. None is left; anything serious or critical fails the test.
KNOWN: dict[tuple[str, str], str] = {}


def severe_violations(page: Page) -> list[dict]:
    """axe's serious and critical findings on the page as it is now."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text())
    assert page.evaluate("() => axe.version") == AXE_VERSION
    return [v for v in page.evaluate(RUN_AXE) if v["impact"] in SEVERE]


def unknown(found: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """The findings not in KNOWN (those are printed)."""
    known = {(where, v["id"]): KNOWN[(where, v["id"])] for where, vs in found.items()
             for v in vs if (where, v["id"]) in KNOWN}
    for (where, rule), fix in known.items():
        print(f"accessibility, known: {where}: {rule}: {fix}")
    left = {where: [v for v in vs if (where, v["id"]) not in KNOWN] for where, vs in found.items()}
    return {where: vs for where, vs in left.items() if vs}


def report(found: dict[str, list[dict]]) -> str:
    lines = []
    for where, violations in found.items():
        for v in violations:
            lines.append(f"{where}: [{v['impact']}] {v['id']}: {v['help']}")
            lines += [f"    {node}" for node in v["nodes"]]
    return "\n".join(lines)


@pytest.fixture
def world(app) -> dict:
    """A customer with something in every tab: contacts, bookings, notes (one pinned), an
    issued invoice part paid, and a portal account."""
    with app.app_context():
        person = make_customer(db.session, first_name="Harriet", surname="Vane",
                               email="harriet.vane@example.com", phone="+447911123456",
                               town="Leeds", postcode="LS1 1AA")
        make_contact(db.session, person, first_name="Peter", surname="Wimsey",
                     email="peter@example.com", is_primary=True)
        invoice = make_invoice(db.session, person, amount="1250.00", days_overdue=10)
        make_payment(db.session, person, amount="400.00", reference="HV-0042")
        make_booking(db.session, person, title="Summer ball",
                     starts_at=datetime.now() + timedelta(days=30), status="confirmed")
        make_note(db.session, person, body="Gate code 4321.", important=True)
        make_note(db.session, person, kind="call", body="Rang about the deposit.")
        make_portal_account(db.session, person, email=person.email,
                            password_hash=hash_password(PORTAL_PASSWORD))
        db.session.commit()
        return {"id": person.id, "invoice": invoice.id, "email": person.email}


def staff_pages(role: str, world: dict) -> dict[str, str]:
    key = world["id"]
    pages = {
        "home dashboard": "/admin/",
        "customer list": f"/admin/{role}/customer/",
        "record page": f"/admin/{role}/customer/details/?id={key}",
        "edit form": f"/admin/{role}/customer/edit/?id={key}",
    }
    if role == "owner":
        pages["invoice page"] = f"/admin/owner/invoice/details/?id={world['invoice']}"
        pages["audit log"] = "/admin/owner/audit_event/"
    return pages


@pytest.mark.parametrize("role", ["owner", "coordinator"])
def test_the_staff_pages_have_no_serious_accessibility_violation(app, page, sign_in, world,
                                                                 role):
    sign_in(role)
    found = {}
    for name, path in staff_pages(role, world).items():
        response = page.goto(path)
        assert response.status == 200, path
        found[name] = severe_violations(page)
        if name == "edit form":  # and after a save that failed: its problems at the top
            page.locator("#surname").fill("")
            page.locator("#email").fill("not an address")
            page.get_by_role("button", name="Save", exact=True).click()
            page.get_by_test_id("form-errors").wait_for()
            found["edit form, refused"] = severe_violations(page)
        if name == "record page":  # and each of its tabs, shown
            for tab in page.locator("[data-hash-tabs] a[data-toggle='tab']").all():
                tab.click()
                pane = tab.get_attribute("href")
                page.wait_for_selector(f"{pane}.active")
                found[f"record page, {pane}"] = severe_violations(page)

    assert unknown(found) == {}, report(unknown(found))


def test_the_record_page_on_a_phone_has_no_serious_accessibility_violation(
        app, browser, live_server, world, sign_in):
    sign_in("owner")  # creates the account; the phone signs in on its own below
    phone = browser.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844})
    screen = phone.new_page()
    screen.goto("/login")
    screen.get_by_label("E-mail").fill("owner@example.com")
    from tests.conftest import PASSWORD

    screen.get_by_label("Password").fill(PASSWORD)
    screen.get_by_role("button", name="Sign in").click()
    screen.wait_for_url(lambda url: "/login" not in url)
    screen.goto(f"/admin/owner/customer/details/?id={world['id']}")
    # the tabs are a menu on a phone; choosing a section shows it
    screen.get_by_label("Section").select_option("#tab-timeline")
    screen.wait_for_selector("#tab-timeline.active")

    found = {"record page (390 px)": severe_violations(screen)}
    phone.close()
    assert unknown(found) == {}, report(unknown(found))


def test_the_portal_home_has_no_serious_accessibility_violation(app, page, world):
    page.goto("/portal/login")
    page.get_by_label("E-mail").fill(world["email"])
    page.get_by_label("Password").fill(PORTAL_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: url.rstrip("/").endswith("/portal"))

    found = {"portal home": severe_violations(page), "portal sign-in": []}
    page.get_by_role("button", name="Sign out").or_(page.get_by_role("link", name="Sign out")) \
        .first.click()
    page.wait_for_url(lambda url: "/portal/login" in url)
    found["portal sign-in"] = severe_violations(page)

    assert unknown(found) == {}, report(unknown(found))
