"""The role-gating matrix: money is absent for a coordinator on every surface, the
finance views are out of a coordinator's reach, owners and admins see and use the money
columns, an admin never manages owners, and a signed-out visitor is sent to sign in."""

import json
import re
from decimal import Decimal
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest

from crm.admin_views import MODEL_VIEWS
from crm.admin_views.customers import CustomerView
from crm.extensions import db
from crm.models import Booking, Customer, User
from crm.permissions import FINANCE, allowed, can
from tests import factories as f
from tests.conftest import PASSWORD
from tests.integration.helpers import (
    cells,
    count_rows,
    csv_table,
    form_values,
    input_names,
    list_row_ids,
    load,
    staff_user,
    submit,
    text_of,
    url,
    view_for,
)
from tests.integration.helpers import customer as make_customer

PRICE_BOOK = "PB-GOLD-7731"
THIRD_PARTY = "XERO-55123"
BOOKING_VALUE = "987.65"
# What the rich customer's money looks like anywhere it could leak (list, details, CSV).
MONEY_TEXT = ("1,173.39", "1173.39", "1,234.56", "1234.56", "61.17", "10 days", PRICE_BOOK,
              THIRD_PARTY)
MONEY_LABELS = ("Balance", "Account Credit", "Overdue Amount", "Overdue for", "Creditor Days",
                "Price Book", "Accounts reference", "Oldest overdue due date")
MONEY_INPUTS = {"balance", "account_credit", "overdue_amount", "oldest_overdue_on",
                "creditor_days", "price_book", "third_party_reference", "next_due_on",
                "ledger_as_of"}
FINANCE_SLUGS = ("invoice", "credit_note", "payment", "allocation", "user", "portal_account",
                 "audit_event")
COORDINATOR_SLUGS = [slug for spec, _, _, slug in MODEL_VIEWS
                     if can("coordinator", spec.capability)]


@pytest.fixture
def ledger(app):
    """A rich customer (balance 1,173.39: invoiced 1,234.56, ten days overdue, 61.17 paid
    on account; price book, creditor days, accounts reference; a 987.65 booking), one that
    owes 200.00 not yet due, and three with no money at all."""
    with app.app_context():
        s = db.session
        plain = [make_customer(s, surname=f"Plain{i}") for i in range(2)]
        rich = make_customer(s, surname="Moneybags", price_book=PRICE_BOOK, creditor_days=47,
                             third_party_reference=THIRD_PARTY)
        f.make_invoice(s, rich, amount="1234.56", days_overdue=10)
        f.make_payment(s, rich, amount="61.17")
        f.make_contact(s, rich, surname="Moneycontact")
        address = f.make_work_address(s, rich, landlord=rich)
        f.make_reminder(s, address)
        f.make_branch(s, rich)
        f.make_note(s, rich)
        f.make_lead(s, customer=rich)
        booking = f.make_booking(s, rich, title="Gala", value=Decimal(BOOKING_VALUE),
                                 work_address=address)
        owing = make_customer(s, surname="Owing")
        f.make_invoice(s, owing, amount="200.00")
        plain.append(make_customer(s, surname="Plain2"))
        s.commit()
        return {"rich": rich.id, "owing": owing.id, "plain": [c.id for c in plain],
                "booking": booking.id}


@pytest.fixture
def coordinator(login, ledger):
    login("coordinator")
    return ledger


def _no_money(html: str, extra: tuple = ()) -> list[str]:
    return [text for text in (*MONEY_TEXT, *MONEY_LABELS, *extra) if text in html]


# --- a coordinator: every surface ----------------------------------------------------------
def test_coordinator_customer_list_has_no_money(client, coordinator):
    page = client.get(url("coordinator", "customer"))

    assert page.status_code == 200
    assert coordinator["rich"] in list_row_ids(text_of(page))
    assert _no_money(text_of(page)) == []


@pytest.mark.parametrize("slug", COORDINATOR_SLUGS)
def test_coordinator_sees_no_money_second_hand_in_related_views(client, coordinator, slug):
    """Rows that point at the rich customer show it without its money."""
    page = client.get(url("coordinator", slug))
    rows = list_row_ids(text_of(page))
    details = [text_of(client.get(url("coordinator", slug, f"details/?id={key}")))
               for key in rows]

    assert page.status_code == 200
    assert _no_money(text_of(page), (BOOKING_VALUE,)) == []
    assert [_no_money(html, (BOOKING_VALUE,)) for html in details] == [[]] * len(rows)


def test_coordinator_customer_details_have_no_money(client, coordinator):
    page = client.get(url("coordinator", "customer", f"details/?id={coordinator['rich']}"))

    assert page.status_code == 200
    assert "Moneybags" in text_of(page)
    assert _no_money(text_of(page)) == []


def test_coordinator_booking_list_and_details_have_no_value(client, coordinator):
    listing = client.get(url("coordinator", "booking"))
    details = client.get(url("coordinator", "booking", f"details/?id={coordinator['booking']}"))

    for page in (listing, details):
        assert page.status_code == 200
        assert "Gala" in text_of(page)
        assert BOOKING_VALUE not in text_of(page)
        assert "Value" not in text_of(page)


@pytest.mark.parametrize("page", ["new/", "edit/?id={rich}"])
def test_coordinator_customer_forms_have_no_money_fields(client, coordinator, page):
    form = client.get(url("coordinator", "customer", page.format(**coordinator)))

    assert form.status_code == 200
    assert "surname" in input_names(text_of(form))
    assert input_names(text_of(form)) & MONEY_INPUTS == set()
    assert PRICE_BOOK not in text_of(form) and THIRD_PARTY not in text_of(form)


@pytest.mark.parametrize("page", ["new/", "edit/?id={booking}"])
def test_coordinator_booking_forms_have_no_value_field(client, coordinator, page):
    form = client.get(url("coordinator", "booking", page.format(**coordinator)))

    assert form.status_code == 200
    assert "title" in input_names(text_of(form))
    assert "value" not in input_names(text_of(form))
    assert BOOKING_VALUE not in text_of(form)


FORGED_MONEY = {"price_book": "PB-FORGED", "creditor_days": "9", "balance": "1",
                "account_credit": "1", "overdue_amount": "1", "third_party_reference": "FORGED"}


@pytest.mark.parametrize("role_in_url", ["coordinator", "owner"])
def test_coordinator_cannot_write_money_through_the_edit_form(app, client, coordinator,
                                                               role_in_url):
    rich = coordinator["rich"]
    form_url = url("coordinator", "customer", f"edit/?id={rich}")
    page = client.get(form_url)
    data = {**form_values(text_of(page)), "surname": "Renamed", **FORGED_MONEY}

    client.post(url(role_in_url, "customer", f"edit/?id={rich}"), data=data)

    after = load(app, Customer, rich, "price_book", "creditor_days", "balance",
                 "account_credit", "overdue_amount", "third_party_reference", "surname")
    assert after == {"price_book": PRICE_BOOK, "creditor_days": 47,
                     "balance": Decimal("1173.39"), "account_credit": Decimal("61.17"),
                     "overdue_amount": Decimal("1234.56"), "third_party_reference": THIRD_PARTY,
                     "surname": "Renamed" if role_in_url == "coordinator" else "Moneybags"}


def test_coordinator_cannot_write_money_through_the_create_form(app, client, coordinator):
    saved = submit(client, url("coordinator", "customer", "new/"),
                   {"surname": "Newbie", "address_line_1": "1 New St", "postcode": "LS1 1AA",
                    **FORGED_MONEY})

    assert saved.status_code == 302
    with app.app_context():
        new = db.session.query(Customer).filter_by(surname="Newbie").one()
        assert (new.price_book, new.creditor_days, new.third_party_reference) == (None, None, None)
        assert new.balance == new.account_credit == new.overdue_amount == Decimal("0")


def test_coordinator_cannot_write_a_booking_value(app, client, coordinator):
    booking = coordinator["booking"]

    saved = submit(client, url("coordinator", "booking", f"edit/?id={booking}"),
                   {"title": "Gala dinner", "value": "1.00"})

    assert saved.status_code == 302
    assert load(app, Booking, booking, "title", "value") == {
        "title": "Gala dinner", "value": Decimal(BOOKING_VALUE)}


@pytest.mark.parametrize("slug", ["customer", "booking"])
def test_coordinator_csv_export_has_no_money(client, coordinator, slug):
    export = client.get(url("coordinator", slug, "export/csv/"))

    assert export.status_code == 200
    table = csv_table(export)
    assert len(table) > 1
    header = " ".join(table[0])
    assert [label for label in (*MONEY_LABELS, "Value") if label in header] == []
    body = "\n".join(",".join(row) for row in table[1:])
    assert "Moneybags" in body or "Gala" in body
    assert _no_money(body, (BOOKING_VALUE,)) == []


def _money_filter_args(app, slug: str) -> list[tuple[str, str]]:
    """The owner's filters on gated columns, with a value that changes the owner's list."""
    values = {"Balance": "100", "Account credit": "10", "Overdue": "1", "Overdue amount": "100",
              "Overdue for": "5", "Price book": PRICE_BOOK, "Third-party reference": THIRD_PARTY,
              "Value": "100"}
    view = view_for(app, slug, "owner")
    return [(arg, values[str(flt.name)]) for arg, (_, flt) in view._filter_args.items()
            if str(flt.name) in values]


@pytest.mark.parametrize("slug", ["customer", "booking"])
def test_a_forged_money_filter_is_no_oracle_for_a_coordinator(app, client, login, ledger, slug):
    forged = _money_filter_args(app, slug)
    assert forged, "the owner's view has money filters to forge"
    if slug == "booking":
        with app.app_context():
            f.make_booking(db.session, db.session.get(Customer, ledger["plain"][0]), value=None)
            db.session.commit()
    login("coordinator")
    unfiltered = list_row_ids(text_of(client.get(url("coordinator", slug))))

    for arg, value in forged:
        page = client.get(url("coordinator", slug), query_string={f"flt0_{arg}": value})

        assert page.status_code == 200
        assert list_row_ids(text_of(page)) == unfiltered, arg


def test_the_forged_filters_do_filter_for_the_owner(app, client, login, ledger):
    """The control for the test above: the same URLs narrow the owner's list."""
    login("owner")
    everyone = set(list_row_ids(text_of(client.get(url("owner", "customer")))))

    for arg, value in _money_filter_args(app, "customer"):
        page = client.get(url("owner", "customer"), query_string={f"flt0_{arg}": value})

        assert set(list_row_ids(text_of(page))) < everyone, arg


def test_coordinator_search_cannot_find_by_money_fields(client, coordinator):
    for term in (PRICE_BOOK, THIRD_PARTY):
        page = client.get(url("coordinator", "customer"), query_string={"search": term})

        assert page.status_code == 200
        assert list_row_ids(text_of(page)) == []
    found = client.get(url("coordinator", "customer"), query_string={"search": "Moneybags"})
    assert list_row_ids(text_of(found)) == [coordinator["rich"]]


def _sorts_a_coordinator_does_not_have() -> list[int]:
    """Every ?sort=N that is not one of the sortable columns of the coordinator's customer
    list, up to past the end of the owner's list (whose last columns are money)."""
    columns = [c for c in CustomerView.column_list if allowed("Customer", c, "coordinator")]
    sortable = {c if isinstance(c, str) else c[0] for c in CustomerView.column_sortable_list}
    offered = {i for i, column in enumerate(columns) if column in sortable}
    return [i for i in range(len(CustomerView.column_list) + 2) if i not in offered]


@pytest.mark.parametrize("index", _sorts_a_coordinator_does_not_have())
def test_coordinator_sort_by_other_columns_is_ignored(client, coordinator, index):
    default = list_row_ids(text_of(client.get(url("coordinator", "customer"))))

    for desc in ("", "&desc=1"):
        page = client.get(url("coordinator", "customer", f"?sort={index}{desc}"))

        assert page.status_code == 200
        assert list_row_ids(text_of(page)) == default, (index, desc)


@pytest.mark.parametrize("field", ["balance", "price_book", "creditor_days"])
def test_coordinator_inline_edit_of_money_is_refused(app, client, coordinator, field):
    rich = coordinator["rich"]
    before = load(app, Customer, rich, "balance", "price_book", "creditor_days")

    response = client.post(url("coordinator", "customer", "ajax/update/"),
                           data={"list_form_pk": str(rich), field: "1"})

    assert response.status_code >= 400
    assert load(app, Customer, rich, "balance", "price_book", "creditor_days") == before


@pytest.mark.parametrize("slug", COORDINATOR_SLUGS)
def test_coordinator_ajax_lookups_return_no_money(app, client, coordinator, slug):
    view = view_for(app, slug, "coordinator")
    for name in view._form_ajax_refs:
        query = "tag" if name == "tags" else "Moneybags"
        response = client.get(url("coordinator", slug, "ajax/lookup/"),
                              query_string={"name": name, "query": query})

        assert response.status_code == 200
        found = json.loads(response.get_data(as_text=True))
        if name in ("customer", "landlord"):
            assert [item[0] for item in found] == [coordinator["rich"]], name
        assert _no_money(response.get_data(as_text=True)) == [], name


def test_coordinator_menu_lists_no_finance_view(client, coordinator):
    home = text_of(client.get("/admin/"))

    links = set(re.findall(r'href="(/admin/[^"]*)"', home)) - {"/admin/"}
    links = {link for link in links if not link.startswith("/admin/static/")}
    assert "/admin/coordinator/customer/" in links
    assert all(link.startswith("/admin/coordinator/") for link in links), links
    assert [link for link in links if any(f"/{s}/" in link for s in FINANCE_SLUGS)] == []


@pytest.mark.parametrize("slug", FINANCE_SLUGS)
def test_finance_views_are_out_of_a_coordinators_reach(client, coordinator, slug):
    for page in ("", "details/?id=1", "new/", "edit/?id=1", "export/csv/"):
        own = client.get(url("coordinator", slug, page))
        owners = client.get(url("owner", slug, page))
        admins = client.get(url("admin", slug, page))
        forged = client.post(url("owner", slug, "new/"), data={"email": "x@example.com"})

        assert own.status_code in (403, 404), page
        assert (owners.status_code, admins.status_code, forged.status_code) == (403, 403, 403)


@pytest.mark.parametrize("slug", COORDINATOR_SLUGS)
def test_an_owners_link_opens_the_coordinators_own_view(client, coordinator, slug):
    for role in ("owner", "admin"):
        response = client.get(url(role, slug, "?page_size=50&sort=0"))

        assert response.status_code == 302
        assert response.headers["Location"].endswith(
            url("coordinator", slug, "?page_size=50&sort=0"))


def test_an_owners_export_link_gives_the_coordinator_no_money(client, coordinator):
    response = client.get(url("owner", "customer", "export/csv/"), follow_redirects=True)

    assert response.request.path == url("coordinator", "customer", "export/csv/")
    assert _no_money(text_of(response)) == []


# --- owner and admin: the money is there, and works ------------------------------------------
def choose_every_column(app, client, role: str) -> None:
    """What the list's Columns menu sends with every box ticked."""
    view = view_for(app, role=role, slug="customer")
    response = client.post(url(role, "customer", "columns/"),
                           data={"column": [name for name, _ in view._list_columns]})
    assert response.status_code == 303


@pytest.mark.parametrize("role", sorted(FINANCE))
def test_finance_roles_see_the_money_in_list_and_details(app, client, login, ledger, role):
    login(role)
    listing = text_of(client.get(url(role, "customer")))
    details = " ".join(unescape(re.sub(r"<[^>]+>", " ", text_of(client.get(
        url(role, "customer", f"details/?id={ledger['rich']}"))))).split())

    rich_row = list_row_ids(listing).index(ledger["rich"])
    # what fits the screen: the balance, and the overdue amount with its age under it
    assert cells(listing, "balance")[rich_row] == "£1,173.39"
    assert cells(listing, "overdue_amount")[rich_row] == "£1,234.56 10 days"
    # the rest of the money is one tick away in the Columns menu
    choose_every_column(app, client, role)
    listing = text_of(client.get(url(role, "customer")))
    rich_row = list_row_ids(listing).index(ledger["rich"])
    assert cells(listing, "balance")[rich_row] == "£1,173.39"
    assert cells(listing, "account_credit")[rich_row] == "£61.17"
    assert cells(listing, "overdue_days")[rich_row] == "10 days"
    # the record's page: the same amounts, read the same way
    for shown in ("£1,173.39", "£61.17", "£1,234.56", "10 days", PRICE_BOOK):
        assert shown in details, shown


@pytest.mark.parametrize("role", sorted(FINANCE))
def test_finance_roles_can_sort_by_every_money_column_from_the_header(app, client, login,
                                                                       ledger, role):
    login(role)
    view = view_for(app, role=role, slug="customer")
    columns = [name for name, _ in view._list_columns]
    page = text_of(client.get(url(role, "customer")))
    for column in ("balance", "overdue_amount"):  # shown by default
        assert f'?sort={columns.index(column)}&amp;' in page, column

    choose_every_column(app, client, role)
    page = text_of(client.get(url(role, "customer")))
    for column in ("balance", "account_credit", "overdue_amount", "overdue_days"):
        assert f'?sort={columns.index(column)}&amp;' in page, column
    for column in ("balance", "account_credit", "overdue_amount"):  # right-aligned amounts
        assert f'<th class="column-header col-{column} num">' in page, column


@pytest.mark.parametrize("role", sorted(FINANCE))
def test_sorted_by_balance_descending_puts_the_highest_first(app, client, login, ledger, role):
    login(role)
    index = [name for name, _ in view_for(app, "customer", role)._list_columns].index("balance")

    page = client.get(url(role, "customer", f"?sort={index}&desc=1"))

    assert list_row_ids(text_of(page))[:2] == [ledger["rich"], ledger["owing"]]
    assert cells(text_of(page), "balance")[:3] == ["£1,173.39", "£200.00", "£0.00"]


@pytest.mark.parametrize("role", sorted(FINANCE))
def test_sorted_by_overdue_age_descending_puts_the_most_overdue_first(app, client, login,
                                                                       ledger, role):
    with app.app_context():
        late = make_customer(db.session, surname="Later")
        f.make_invoice(db.session, late, amount="5.00", days_overdue=3)
        db.session.commit()
        late = late.id
    login(role)
    index = [n for n, _ in view_for(app, "customer", role)._list_columns].index("overdue_days")

    longest_first = list_row_ids(text_of(client.get(url(role, "customer",
                                                        f"?sort={index}&desc=1"))))
    shortest_first = list_row_ids(text_of(client.get(url(role, "customer", f"?sort={index}"))))

    assert longest_first[:2] == [ledger["rich"], late]
    assert shortest_first[:2] == [late, ledger["rich"]]


@pytest.mark.parametrize("role", sorted(FINANCE))
def test_filter_overdue_yes_lists_only_customers_with_overdue_money(app, client, login, ledger,
                                                                     role):
    login(role)
    view = view_for(app, "customer", role)
    overdue = next(arg for arg, (_, flt) in view._filter_args.items() if flt.name == "Overdue")

    yes = client.get(url(role, "customer"), query_string={f"flt0_{overdue}": "1"})
    no = client.get(url(role, "customer"), query_string={f"flt0_{overdue}": "0"})

    assert list_row_ids(text_of(yes)) == [ledger["rich"]]
    assert ledger["rich"] not in list_row_ids(text_of(no))
    assert ledger["owing"] in list_row_ids(text_of(no))


@pytest.mark.parametrize("role", sorted(FINANCE))
@pytest.mark.parametrize(("name", "operation", "value", "expected"), [
    ("Balance", "greater than", "500", ["rich"]),
    ("Balance", "smaller than", "100", ["plain"]),
    ("Account credit", "greater than", "10", ["rich"]),
    ("Overdue amount", "greater than", "100", ["rich"]),
    ("Overdue for", "more than (days)", "5", ["rich"]),
], ids=["balance-over", "balance-under", "credit-over", "overdue-amount", "overdue-days"])
def test_finance_roles_filter_by_the_money_columns(app, client, login, ledger, role, name,
                                                   operation, value, expected):
    login(role)
    view = view_for(app, "customer", role)
    arg = next(arg for arg, (_, flt) in view._filter_args.items()
               if (str(flt.name), str(flt.operation())) == (name, operation))

    page = client.get(url(role, "customer"), query_string={f"flt0_{arg}": value})

    assert page.status_code == 200
    wanted = [key for group in expected for key in
              (ledger[group] if isinstance(ledger[group], list) else [ledger[group]])]
    assert sorted(list_row_ids(text_of(page))) == sorted(wanted)


@pytest.mark.parametrize("role", sorted(FINANCE))
def test_finance_roles_see_the_booking_value(client, login, ledger, role):
    login(role)

    assert BOOKING_VALUE in text_of(client.get(url(role, "booking")))


# --- an admin and the owners' accounts -----------------------------------------------------
@pytest.fixture
def admin_and_owner(app, login):
    admin = login("admin")
    with app.app_context():
        owner = db.session.query(User).filter_by(role="owner").one_or_none()
        if owner is None:
            owner = staff_user(db.session, role="owner", email="the.owner@example.com")
            db.session.commit()
        return admin.id, owner.id


def test_admin_never_sees_owner_accounts(client, admin_and_owner):
    _, owner = admin_and_owner

    listing = client.get(url("admin", "user"))
    details = client.get(url("admin", "user", f"details/?id={owner}"))
    export = client.get(url("admin", "user", "export/csv/"))

    assert owner not in list_row_ids(text_of(listing))
    assert "the.owner@example.com" not in text_of(listing)
    assert details.status_code in (302, 404)
    assert "the.owner@example.com" not in text_of(export)


def test_admin_cannot_edit_an_owner(app, client, admin_and_owner):
    _, owner = admin_and_owner

    form = client.get(url("admin", "user", f"edit/?id={owner}"))
    client.post(url("admin", "user", f"edit/?id={owner}"),
                data={"email": "the.owner@example.com", "name": "Hijacked", "role": "owner",
                      "is_enabled": "", "new_password": "hijacked-password"})

    assert form.status_code in (302, 404)
    assert load(app, User, owner, "name", "is_enabled") == {"name": "Staff owner",
                                                            "is_enabled": True}


def test_admin_cannot_create_or_promote_an_owner(app, client, admin_and_owner):
    form = text_of(client.get(url("admin", "user", "new/")))
    assert 'value="owner"' not in form
    submit(client, url("admin", "user", "new/"),
           {"email": "new.owner@example.com", "name": "New", "role": "owner",
            "new_password": "a-long-enough-password"})
    with app.app_context():
        coordinator = User(email="co@example.com", role="coordinator", password_hash="!")
        db.session.add(coordinator)
        db.session.commit()
        coordinator = coordinator.id

    submit(client, url("admin", "user", f"edit/?id={coordinator}"), {"role": "owner"})

    assert count_rows(app, User, User.email == "new.owner@example.com") == 0
    assert load(app, User, coordinator, "role") == {"role": "coordinator"}


def test_owner_sees_and_can_create_owners(app, client, login):
    login("owner")

    saved = submit(client, url("owner", "user", "new/"),
                   {"email": "second.owner@example.com", "name": "Second", "role": "owner",
                    "new_password": "a-long-enough-password"})

    assert saved.status_code == 302
    assert count_rows(app, User, User.email == "second.owner@example.com",
                      User.role == "owner") == 1
    assert "second.owner@example.com" in text_of(client.get(url("owner", "user")))


# --- signed out ------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["owner", "admin", "coordinator"])
@pytest.mark.parametrize("page", ["customer/", "customer/details/?id=1", "customer/new/",
                                  "customer/export/csv/", "invoice/?sort=1"])
def test_signed_out_visitor_is_sent_to_sign_in(client, role, page):
    if role == "coordinator" and page.startswith("invoice"):
        page = "booking/?sort=1"
    path = f"/admin/{role}/{page}"

    response = client.get(path)

    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("/login?next=")
    assert parse_qs(urlsplit(location).query)["next"] == [path]


def test_signing_in_from_the_redirect_returns_to_the_page(client, login):
    login("owner")
    client.get("/logout")
    client.csrf_token = None
    first = client.get("/admin/owner/customer/?page_size=50")

    back = client.post(first.headers["Location"],
                       data={"email": "owner@example.com", "password": PASSWORD})

    assert back.status_code == 302
    assert back.headers["Location"] == "/admin/owner/customer/?page_size=50"
