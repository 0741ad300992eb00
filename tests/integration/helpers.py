"""Helpers for the integration tests: find admin views, read what a page shows (rows, field
errors, form values, CSV), and count rows. Standard library only: the pages are Flask-Admin's
own Bootstrap 4 markup, so a few precise patterns are enough."""

import csv
import io
import re
from dataclasses import dataclass, field
from html import unescape
from html.parser import HTMLParser
from uuid import uuid4

from sqlalchemy import func, select

from crm.extensions import db
from crm.models import BlockedEmail, PortalAccount, User
from crm.models.audit import record
from tests import factories as f

STATEMENTS_HEADER = "X-SQL-Statements"


# --- views -----------------------------------------------------------------------------
def admin_views(app) -> dict:
    """Every admin view instance by endpoint (``customer_owner``, ``invoice_admin``...)."""
    return {view.endpoint: view for view in app.extensions["admin"][0]._views}


def view_for(app, slug: str, role: str):
    return admin_views(app)[f"{slug}_{role}"]


def url(role: str, slug: str, page: str = "") -> str:
    return f"/admin/{role}/{slug}/{page}"


def sortable_indexes(view) -> list[int]:
    """The ``?sort=N`` values the list header offers: positions in the list columns."""
    return [i for i, (name, _) in enumerate(view._list_columns) if name in view._sortable_columns]


# --- the database ----------------------------------------------------------------------
def count_rows(app, model, *where) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def load(app, model, key: int, *attrs: str) -> dict:
    """The current values of some attributes of one row, read in a fresh session."""
    with app.app_context():
        row = db.session.get(model, key)
        assert row is not None, f"{model.__name__} #{key} is gone"
        return {attr: getattr(row, attr) for attr in attrs}


# --- pages -----------------------------------------------------------------------------
def text_of(response) -> str:
    return response.get_data(as_text=True)


def cells(html: str, column: str) -> list[str]:
    """The text of every list cell of ``column``, top to bottom."""
    pattern = rf'<td class="col-{re.escape(column)}">(.*?)</td>'
    return [_plain(cell) for cell in re.findall(pattern, html, re.S)]


def list_row_ids(html: str) -> list[int]:
    """The ids of the rows of a list page in display order (from the row checkboxes and,
    for views without bulk actions, from the details links)."""
    ids = re.findall(r'name="rowid" class="action-checkbox" value="(\d+)"', html)
    if not ids:
        ids = re.findall(r'/details/\?id=(\d+)&amp;', html)
    return [int(i) for i in ids]


def details_rows(html: str) -> dict[str, str]:
    """Label -> value of a details page."""
    table = html.split('class="table table-hover table-bordered searchable"', 1)[-1]
    pairs = re.findall(r"<tr>\s*<td>\s*<b>(.*?)</b>\s*</td>\s*<td>(.*?)</td>\s*</tr>", table, re.S)
    return {_plain(label): _plain(value) for label, value in pairs}


def field_errors(html: str, field: str) -> list[str]:
    """The error messages shown next to the form field named ``field``."""
    match = re.search(rf'<(?:input|select|textarea)[^>]*\bname="{re.escape(field)}"', html)
    if match is None:
        return []
    rest = html[match.end():]
    group_end = rest.find('<div class="form-group')
    group = rest if group_end == -1 else rest[:group_end]
    feedback = re.search(r'<div class="invalid-feedback">(.*?)</div>', group, re.S)
    if feedback is None:
        return []
    return [_plain(item) for item in re.findall(r"<li>(.*?)</li>", feedback.group(1), re.S)]


def flashes(html: str) -> list[str]:
    """The flashed messages at the top of an admin page."""
    found = re.findall(r'<div class="alert(?: alert-[a-z]+)? alert-dismissable">(.*?)</div>', html, re.S)
    return [_plain(re.sub(r"<button.*?</button>", "", text, flags=re.S)) for text in found]


def input_names(html: str) -> set[str]:
    return set(re.findall(r'<(?:input|select|textarea)[^>]*\bname="([^"]+)"', html))


def _plain(fragment: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


class _FormReader(HTMLParser):
    """What a browser would submit from the admin form: inputs, checked boxes, selected
    options and textareas (the submit buttons and the CSRF token excepted)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.values: dict[str, str | list[str]] = {}
        self._select: str | None = None
        self._multiple = False
        self._textarea: str | None = None
        self._in_form = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and a.get("class", "").startswith("admin-form"):
            self._in_form = True
        if not self._in_form:
            return
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in ("submit", "button"):
            if a.get("type") == "checkbox":
                if "checked" in a:
                    self.values[name] = a.get("value", "y")
            elif name != "csrf_token":
                self.values[name] = a.get("value") or ""
        elif tag == "select" and name:
            self._select, self._multiple = name, "multiple" in a
            if self._multiple:
                self.values[name] = []
        elif tag == "option" and self._select and "selected" in a:
            value = a.get("value", "")
            if self._multiple:
                self.values[self._select].append(value)
            else:
                self.values[self._select] = value
        elif tag == "textarea" and name:
            self._textarea = name
            self.values[name] = ""

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "form":
            self._in_form = False

    def handle_data(self, data):
        if self._textarea:
            if not self.values[self._textarea]:  # browsers drop the newline after <textarea>
                data = data.removeprefix("\r\n").removeprefix("\n")
            self.values[self._textarea] += data


def form_values(html: str) -> dict:
    reader = _FormReader()
    reader.feed(html)
    return reader.values


def submit(client, form_url: str, changes: dict, **kwargs):
    """Open a create or edit form, change some fields, and save it like a browser would."""
    page = client.get(form_url)
    assert page.status_code == 200, f"{form_url}: {page.status_code}"
    data = form_values(text_of(page))
    data.update(changes)
    data = {key: value for key, value in data.items() if value is not None}
    return client.post(form_url, data=data, **kwargs)


# --- exports ---------------------------------------------------------------------------
def csv_table(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text_of(response))))


def statements(response) -> int:
    return int(response.headers[STATEMENTS_HEADER])


def csrf_token_in(html: str) -> str:
    tag = re.search(r'<input[^>]*name="csrf_token"[^>]*>', html)
    assert tag, "no CSRF token on the page"
    return re.search(r'value="([^"]+)"', tag.group(0)).group(1)


# --- rows for every view ---------------------------------------------------------------
MARKER = "Quixotic"  # a word no factory default contains


@dataclass
class Seeded:
    """What a seed made: the ids of the rows of the view's table, the text that identifies
    the first of them on the list and details pages, and related rows forms can point at."""

    ids: list[int]
    marker: str
    refs: dict[str, int] = field(default_factory=dict)


VALID_PHONE = "+447911123456"  # the factory's 07700 900123 is a drama number phonenumbers rejects


def customer(session, **overrides):
    """A factory customer whose phone the customer form accepts (so it can be edited)."""
    return f.make_customer(session, **{"phone": VALID_PHONE, **overrides})


def staff_user(session, role: str = "coordinator", email: str | None = None) -> User:
    user = User(email=email or f"{role}-{uuid4().hex[:8]}@example.com", role=role,
                name=f"Staff {role}", password_hash="!")
    session.add(user)
    session.flush()
    return user


def _with_customers(session, n: int, make, **customer_overrides) -> list:
    return [make(customer(session, **customer_overrides), i) for i in range(n)]


def _seed_customer(session, n):
    tags = [f.make_tag(session) for _ in range(3)]
    rows = []
    for i in range(n):
        row = customer(session, surname=f"{MARKER}{i}" if i == 0 else f"Row{i}")
        row.tags.extend(tags[:2] if i % 2 else tags[1:])
        f.make_contact(session, row, is_primary=True)
        f.make_contact(session, row, surname="Second")
        rows.append(row)
    f.make_invoice(session, rows[0], amount="120.00", days_overdue=10)
    return Seeded([r.id for r in rows], f"{MARKER}0", {"customer": rows[0].id})


def _seed_contact(session, n):
    rows = _with_customers(session, n, lambda c, i: f.make_contact(
        session, c, surname=MARKER if i == 0 else f"Contact{i}"))
    return Seeded([r.id for r in rows], MARKER, {"customer": rows[0].customer_id})


def _seed_branch(session, n):
    rows = _with_customers(session, n, lambda c, i: f.make_branch(
        session, c, name=MARKER if i == 0 else f"Branch {i}"))
    return Seeded([r.id for r in rows], MARKER, {"customer": rows[0].customer_id})


def _seed_tag(session, n):
    rows = [f.make_tag(session, name=MARKER.lower() if i == 0 else f"tag-{i}") for i in range(n)]
    return Seeded([r.id for r in rows], MARKER.lower())


def _seed_lead(session, n):
    rows = _with_customers(session, n, lambda c, i: f.make_lead(
        session, surname=MARKER if i == 0 else f"Lead{i}", customer=c))
    return Seeded([r.id for r in rows], MARKER, {"customer": rows[0].customer_id})


def _seed_booking(session, n):
    def make(customer, i):
        address = f.make_work_address(session, customer)
        return f.make_booking(session, customer, work_address=address,
                              title=MARKER if i == 0 else f"Gig {i}")

    rows = _with_customers(session, n, make)
    return Seeded([r.id for r in rows], MARKER,
                  {"customer": rows[0].customer_id, "work_address": rows[0].work_address_id})


def _seed_work_address(session, n):
    landlord = customer(session, customer_type="landlord")
    rows = _with_customers(session, n, lambda c, i: f.make_work_address(
        session, c, address_line_1=f"{MARKER} Lane" if i == 0 else f"{i} Other Lane",
        landlord=landlord))
    return Seeded([r.id for r in rows], f"{MARKER} Lane", {"customer": rows[0].customer_id})


def _seed_service_reminder(session, n):
    rows = _with_customers(session, n, lambda c, i: f.make_reminder(
        session, f.make_work_address(session, c),
        description=MARKER if i == 0 else f"Service {i}"))
    return Seeded([r.id for r in rows], MARKER, {"work_address": rows[0].work_address_id})


def _seed_note(session, n):
    author = staff_user(session)
    rows = _with_customers(session, n, lambda c, i: f.make_note(
        session, c, body=MARKER if i == 0 else f"Note {i}", author_id=author.id))
    return Seeded([r.id for r in rows], MARKER, {"customer": rows[0].customer_id})


def _seed_invoice(session, n):
    rows = _with_customers(session, n, lambda c, i: f.make_invoice(session, c))
    return Seeded([r.id for r in rows], rows[0].number, {"customer": rows[0].customer_id})


def _seed_credit_note(session, n):
    rows = _with_customers(session, n, lambda c, i: f.make_credit_note(
        session, c, invoice=f.make_invoice(session, c)))
    return Seeded([r.id for r in rows], rows[0].number, {"customer": rows[0].customer_id})


def _seed_payment(session, n):
    rows = _with_customers(session, n, lambda c, i: f.make_payment(
        session, c, reference=MARKER if i == 0 else f"PAY-{i}"))
    return Seeded([r.id for r in rows], MARKER, {"customer": rows[0].customer_id})


def _seed_allocation(session, n):
    def make(customer, i):
        invoice = f.make_invoice(session, customer, amount="100.00")
        payment = f.make_payment(session, customer, amount="80.00", reference=f"PAY-{i}")
        return f.make_allocation(session, invoice, payment=payment, amount="12.34")

    rows = _with_customers(session, n, make)
    return Seeded([r.id for r in rows], "12.34",
                  {"invoice": rows[0].invoice_id, "payment": rows[0].payment_id})


def _seed_blocked_email(session, n):
    author = staff_user(session)
    rows = []
    for i in range(n):
        row = BlockedEmail(kind="domain", domain=f"spam{i}.example", created_by=author,
                           reason=MARKER if i == 0 else f"Reason {i}")
        session.add(row)
        rows.append(row)
    session.flush()
    return Seeded([r.id for r in rows], MARKER)


def _seed_user(session, n):
    rows = [staff_user(session, email=f"{MARKER.lower()}{i}@example.com") for i in range(n)]
    return Seeded([r.id for r in rows], f"{MARKER.lower()}0@example.com")


def _seed_portal_account(session, n):
    def make(customer, i):
        account = PortalAccount(customer=customer, email=f"{MARKER.lower()}{i}@example.com")
        session.add(account)
        session.flush()
        return account

    rows = _with_customers(session, n, make)
    spare = customer(session)
    return Seeded([r.id for r in rows], f"{MARKER.lower()}0@example.com",
                  {"customer": spare.id})


def _seed_audit_event(session, n):
    rows = [record(session, actor=None, verb=MARKER if i == 0 else "update",
                   subject_type="Customer", subject_id=i) for i in range(n)]
    session.flush()
    return Seeded([r.id for r in rows], MARKER)


SEEDS = {
    "customer": _seed_customer,
    "contact": _seed_contact,
    "branch": _seed_branch,
    "tag": _seed_tag,
    "lead": _seed_lead,
    "booking": _seed_booking,
    "work_address": _seed_work_address,
    "service_reminder": _seed_service_reminder,
    "due_reminder": _seed_service_reminder,  # due, at active addresses of active customers
    "note": _seed_note,
    "invoice": _seed_invoice,
    "credit_note": _seed_credit_note,
    "payment": _seed_payment,
    "allocation": _seed_allocation,
    "blocked_email": _seed_blocked_email,
    "user": _seed_user,
    "portal_account": _seed_portal_account,
    "audit_event": _seed_audit_event,
}


def seed(app, slug: str, n: int = 3) -> Seeded:
    """Make ``n`` rows for the view ``slug`` (with the rows they point at) and commit."""
    with app.app_context():
        made = SEEDS[slug](db.session, n)
        db.session.commit()
        return made


# --- customer action screens ---------------------------------------------------------------
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
         "track", "wbr"}


class _TestIdReader(HTMLParser):
    """The text inside every element that carries ``data-testid="<testid>"``."""

    def __init__(self, testid: str):
        super().__init__(convert_charrefs=True)
        self.testid = testid
        self.found: list[str] = []
        self._depth = 0  # > 0 while inside a matching element

    def handle_starttag(self, tag, attrs):
        if tag in _VOID:
            return
        if self._depth:
            self._depth += 1
            self.found[-1] += " "
        elif dict(attrs).get("data-testid") == self.testid:
            self._depth = 1
            self.found.append("")

    def handle_endtag(self, tag):
        if self._depth and tag not in _VOID:
            self._depth -= 1
            self.found[-1] += " "

    def handle_data(self, data):
        if self._depth:
            self.found[-1] += data


def by_testid(html: str, testid: str) -> list[str]:
    """The text (whitespace collapsed) of each element of the page with that data-testid."""
    reader = _TestIdReader(testid)
    reader.feed(html)
    return [" ".join(text.split()) for text in reader.found]


def filter_arg(app, role: str, label: str, operation: str = "equals", slug: str = "customer"):
    """The query-string key (``flt0_N``) of the list filter ``label`` / ``operation``."""
    view = view_for(app, slug, role)
    for key, (_index, flt) in view._filter_args.items():
        if str(flt.name) == label and str(flt.operation()) == operation:
            return f"flt0_{key}"
    raise AssertionError(f"no filter {label!r} {operation!r} on {slug}_{role}")
