"""The home page is a dashboard per role: money and charts for owners and admins, the same
without money for coordinators; every bar and count opens the list it summarises; every
figure comes from an index or a stored total, in a fixed number of statements."""

import re
from datetime import date, datetime, timedelta
from html import unescape

import pytest
from click.testing import CliRunner

from crm import dashboard as dashboard_module
from crm.cli.ledger import count_figures
from crm.extensions import db
from tests import factories as f
from tests.integration.helpers import list_row_ids, statements, text_of

TODAY = date.today()
HOME = "/admin/"


def _testid(html: str, testid: str) -> str:
    """The markup of the element with ``data-testid`` (up to the next testid of its kind)."""
    start = html.index(f'data-testid="{testid}"')
    return html[start:start + 6000]


def _hrefs(fragment: str) -> list[str]:
    return [unescape(h) for h in re.findall(r'href="([^"]+)"', fragment)]


@pytest.fixture
def books(app):
    """Customers owing money of every age, a payment, drafts, a lead, a booking, a reminder."""
    with app.app_context():
        s = db.session
        current = f.make_customer(s, surname="Current")
        f.make_invoice(s, current, amount="100.00")  # due in 14 days
        late = f.make_customer(s, surname="Late")
        f.make_invoice(s, late, amount="40.00", days_overdue=10)
        later = f.make_customer(s, surname="Later")
        f.make_invoice(s, later, amount="250.00", days_overdue=45)
        ancient = f.make_customer(s, surname="Ancient")
        f.make_invoice(s, ancient, amount="1000.00", days_overdue=200)
        payer = f.make_customer(s, surname="Payer")
        f.make_payment(s, payer, amount="30.00")  # unallocated: account credit
        for _ in range(3):
            f.make_invoice(s, current, amount="5.00", status="draft")
        f.make_lead(s, surname="Newlead")
        f.make_booking(s, current, title="Kitchen refit",
                       starts_at=datetime.combine(TODAY + timedelta(days=2),
                                                  datetime.min.time()).replace(hour=9))
        f.make_reminder(s, f.make_work_address(s, current), due_on=TODAY - timedelta(days=3))
        s.commit()
        return {"current": current.id, "late": late.id, "later": later.id,
                "ancient": ancient.id}


def test_the_owner_sees_what_is_owed_overdue_and_held_as_credit(app, client, login, books):
    login("owner")
    page = client.get(HOME)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    text = text_of(page)

    assert "£1,390.00" in _testid(html, "kpi-outstanding")
    assert "£1,290.00" in _testid(html, "kpi-overdue")
    assert "£30.00" in _testid(html, "kpi-credit")
    largest = _testid(html, "largest-overdue")
    assert largest.index("Ancient") < largest.index("Later") < largest.index("Late<")
    assert "200 days" in text


@pytest.mark.parametrize(("bucket", "expected"), [
    ("Not yet due", {"current"}), ("1–30 days", {"late"}), ("31–60 days", {"later"}),
    ("61–90 days", set()), ("Over 90 days", {"ancient"}),
])
def test_an_aging_bar_opens_the_customers_of_that_age(app, client, login, books, bucket,
                                                      expected):
    login("owner")
    html = client.get(HOME).get_data(as_text=True)
    match = re.search(r'<a href="([^"]+)" class="bar-link" aria-label="' + re.escape(bucket),
                      html)
    assert match, f"no link on the {bucket} bar"

    listed = client.get(unescape(match.group(1)))

    assert listed.status_code == 200
    assert set(list_row_ids(text_of(listed))) == {books[k] for k in expected}


def test_the_aging_bars_add_up_to_what_is_owed(app, client, login, books):
    login("owner")
    html = client.get(HOME).get_data(as_text=True)
    figures = _testid(html, "aging")
    for bucket, amount in (("Not yet due", "£100.00"), ("1–30 days", "£40.00"),
                           ("31–60 days", "£250.00"), ("61–90 days", "£0.00"),
                           ("Over 90 days", "£1,000.00")):
        assert f"{bucket}: {amount}" in unescape(figures)


def test_counts_link_to_their_lists(app, client, login, books):
    login("owner")
    html = client.get(HOME).get_data(as_text=True)
    drafts = _testid(html, "tile-draft_invoices")
    assert ">3<" in drafts.replace(" ", "")
    (link,) = _hrefs(drafts)[:1]
    shown = client.get(link)
    assert shown.status_code == 200
    assert len(list_row_ids(text_of(shown))) == 3  # the drafts, not the issued invoices

    reminders = _testid(html, "tile-due_reminders")
    assert ">1<" in reminders.replace(" ", "")
    assert client.get(_hrefs(reminders)[0]).status_code == 200
    leads = _testid(html, "tile-new_leads")
    assert len(list_row_ids(text_of(client.get(_hrefs(leads)[0])))) == 1
    week = _testid(html, "tile-bookings_this_week")
    assert len(list_row_ids(text_of(client.get(_hrefs(week)[0])))) == 1
    assert "Kitchen refit" in _testid(html, "upcoming")


def test_a_coordinator_gets_the_dashboard_without_money(app, client, login, books):
    login("coordinator")
    page = client.get(HOME)
    html = page.get_data(as_text=True)

    assert page.status_code == 200
    assert "£" not in html
    for hidden in ("kpi-outstanding", "aging", "largest-overdue", "tile-draft_invoices",
                   "tile-portal_questions"):
        assert f'data-testid="{hidden}"' not in html
    for shown in ("tile-due_reminders", "tile-new_leads", "tile-duplicate_groups", "upcoming"):
        assert f'data-testid="{shown}"' in html
    assert not [h for h in _hrefs(html) if "/invoice/" in h or "/payment/" in h]
    assert all("/admin/owner/" not in h and "/admin/admin/" not in h for h in _hrefs(html))


def test_counts_past_the_cap_read_as_more_than(app, client, login, books, monkeypatch):
    monkeypatch.setattr(dashboard_module, "CAP", 2)
    login("owner")
    html = client.get(HOME).get_data(as_text=True)
    assert "2+" in _testid(html, "tile-draft_invoices")


def test_duplicate_groups_are_counted_nightly_and_shown_with_their_age(app, client, login):
    with app.app_context():
        for _ in range(2):
            f.make_customer(db.session, surname="Twin", email="twin@example.com")
        db.session.commit()
    login("coordinator")
    assert "Not counted yet" in _testid(client.get(HOME).get_data(as_text=True),
                                        "tile-duplicate_groups")

    with app.app_context():
        result = CliRunner().invoke(count_figures, [])
    assert result.exit_code == 0, result.output
    # The twins share an e-mail, a phone (the factory's) and a surname and postcode: three
    # groups, one of each kind, as the Possible duplicates page lists them.
    assert "duplicate groups: 3" in result.output

    tile = _testid(client.get(HOME).get_data(as_text=True), "tile-duplicate_groups")
    assert ">3<" in tile.replace(" ", "")
    assert "counted just now" in tile


def test_an_empty_business_gets_a_calm_page(app, client, login):
    login("owner")
    page = client.get(HOME)
    text = text_of(page)
    assert page.status_code == 200
    assert "Nothing is owed on issued invoices." in text
    assert "No customer has an overdue balance." in text
    assert "No open bookings from today on." in text


@pytest.mark.parametrize("role", ["owner", "coordinator"])
def test_the_dashboard_costs_the_same_statements_however_much_there_is(app, client, login,
                                                                       role):
    login(role)
    few = statements(client.get(HOME))
    with app.app_context():
        for i in range(15):
            c = f.make_customer(db.session, surname=f"Owing{i}")
            f.make_invoice(db.session, c, amount="10.00", days_overdue=i * 9)
            f.make_booking(db.session, c, starts_at=datetime.combine(TODAY, datetime.min.time())
                           + timedelta(hours=i))
        db.session.commit()
    many = statements(client.get(HOME))
    assert few == many <= 14


def test_signed_out_visitors_are_sent_to_sign_in(client):
    page = client.get(HOME)
    assert page.status_code == 302
    assert "/login" in page.headers["Location"]
