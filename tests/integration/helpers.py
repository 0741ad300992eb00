"""Helpers for the integration tests: find admin views, read what a page shows (rows, field
errors, form values, CSV), and count rows. Standard library only: the pages are Flask-Admin's
own Bootstrap 4 markup, so a few precise patterns are enough."""

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from html import unescape
from html.parser import HTMLParser
from uuid import uuid4

from sqlalchemy import func, select

from crm.blocklist import canonical
from crm.extensions import db
from crm.models import BlockedEmail, PortalAccount, User
from crm.models.audit import record
from crm.models.sequence import next_number
from crm.security import email_block_hash
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
    found = re.findall(r'<div class="alert(?: alert-[a-z]+)? alert-dismissable">(.*?)</div>',
                       html, re.S)
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

# Where the first three seeded rows come in the order of each sortable column: the rows
# 0, 1, 2 get values ranked 1, 2, 0, so ascending they read 2, 0, 1: neither the order they
# were made in nor its reverse, so a list that ignores ?sort= (or sorts by id) is caught.
# Later rows (the SQL-statement tests seed 120) keep their own number as their rank.
RANKS = (1, 2, 0)
SEED_TIME = datetime(2026, 3, 2, 9, 30)  # whole seconds: a date-time filter can equal it
BLOCKED_DOMAIN = "seed-blocked.example"


def rank(i: int) -> int:
    return RANKS[i] if i < len(RANKS) else i


def _pick(i: int, firsts: tuple, rest=None):
    """``firsts[i]`` for the first rows, ``rest`` for the others: a column whose seeded values
    differ (for sorting) and include a blank or an odd one out (for filtering)."""
    return firsts[i] if i < len(firsts) else rest


def _at(i: int) -> datetime:
    return SEED_TIME + timedelta(days=rank(i))


def _on(i: int, days_ago: int = 10) -> date:
    return date.today() - timedelta(days=days_ago - rank(i))


def _numbers(session, name: str, n: int) -> list[str]:
    """``n`` numbers of the document sequence ``name``, handed out in rank order."""
    numbers = [next_number(session, name) for _ in range(n)]
    return [numbers[rank(i)] for i in range(n)]


def customer(session, **overrides):
    """A factory customer whose phone the customer form accepts (so it can be edited)."""
    return f.make_customer(session, **{"phone": VALID_PHONE, **overrides})


def staff_user(session, role: str = "coordinator", email: str | None = None,
               **overrides) -> User:
    user = User(email=email or f"{role}-{uuid4().hex[:8]}@example.com", role=role,
                name=f"Staff {role}", password_hash="!", **overrides)
    session.add(user)
    session.flush()
    return user


def _with_customers(session, n: int, make, **customer_overrides) -> list:
    return [make(customer(session, **customer_overrides), i) for i in range(n)]


def _seed_customer(session, n):
    tags = [f.make_tag(session) for _ in range(3)]
    references = _numbers(session, "customer", n)
    # Row 1's e-mail is on a blocked domain, so the session hooks flag it blocked.
    session.add(BlockedEmail(kind="domain", domain=BLOCKED_DOMAIN, reason="other", note="Seeded"))
    session.flush()
    rows = []
    for i in range(n):
        row = customer(
            session, reference=references[i],
            # surnames (the "Name" sort): row 0 between row 2 (Barrow) and row 1 (Row);
            # every row but the first contains "row" (the search tests look for it)
            surname=_pick(i, (f"{MARKER}0", "Row1", "Barrow2"), f"Row{i}"),
            postcode=f"LS{rank(i) + 1} 1AA",
            status=_pick(i, ("active", "dormant"), "active"),
            kind=_pick(i, ("client", "prospect"), "client"),
            customer_type=_pick(i, ("private", "company"), "private"),
            advertising_source=_pick(i, ("Radio", None, "Web")),
            price_book=_pick(i, ("Trade", "Retail")),
            third_party_reference=_pick(i, ("ACC-1", None, "ACC-3")),
            **({"email": f"row{i}@{BLOCKED_DOMAIN}"} if i == 1 else {}),
        )
        row.tags.extend(tags[:2] if i % 2 else tags[1:])
        f.make_contact(session, row, is_primary=True)
        f.make_contact(session, row, surname="Second")
        rows.append(row)
    # The money columns, kept by the ledger: row 0 owes 120.00 (10 days overdue) and has
    # 10.00 of credit; row 1 owes 200.00, not yet due; row 2 owes 45.00 (30 days overdue)
    # and has 30.00 of credit.
    for row, amount, overdue, paid in zip(rows, ("120.00", "200.00", "45.00"), (10, None, 30),
                                          ("10.00", None, "30.00"), strict=False):
        f.make_invoice(session, row, amount=amount, days_overdue=overdue)
        if paid:
            f.make_payment(session, row, amount=paid)
    # The loyalty score, kept by crm.loyalty from completed bookings: row 0 scores 26 (a year
    # ago), between row 1 (7: nearly two years ago) and row 2 (76: today, 3,000.00).
    for row, days_ago, value in zip(rows, (365, 700, 0), ("0.00", "0.00", "3000.00"),
                                    strict=False):
        f.make_booking(session, row, status="completed", value=Decimal(value),
                       starts_at=datetime.combine(date.today() - timedelta(days=days_ago),
                                                  time(12)))
    return Seeded([r.id for r in rows], f"{MARKER}0", {"customer": rows[0].id})


def _seed_contact(session, n):
    rows = _with_customers(session, n, lambda c, i: f.make_contact(
        session, c, surname=_pick(i, (MARKER, "Young", "Abbot"), f"Contact{i}"),
        first_name=f"Sam{rank(i)}", is_primary=i == 1,
        email=_pick(i, ("sam1@example.com", None, "sam0@example.com")),
        email_opt_in=i != 1))
    return Seeded([r.id for r in rows], MARKER, {"customer": rows[0].customer_id})


def _seed_branch(session, n):
    rows = _with_customers(session, n, lambda c, i: f.make_branch(
        session, c, name=_pick(i, (MARKER, "West", "East"), f"Branch {i}"),
        postcode=f"M{rank(i) + 1} 1AA", status=_pick(i, ("active", "dormant"), "active"),
        town=_pick(i, ("Leeds", None, "York"))))
    return Seeded([r.id for r in rows], MARKER, {"customer": rows[0].customer_id})


def _seed_tag(session, n):
    rows = [f.make_tag(session, name=_pick(i, (MARKER.lower(), "urgent", "archive"),
                                           f"tag-{i}")) for i in range(n)]
    return Seeded([r.id for r in rows], MARKER.lower())


def _seed_lead(session, n):
    rows = _with_customers(session, n, lambda c, i: f.make_lead(
        session, surname=_pick(i, (MARKER, "Young", "Abbot"), f"Lead{i}"), customer=c,
        status=_pick(i, ("new", "contacted", "quoted"), "new"),
        source=_pick(i, ("Radio", None, "Web")), created_at=_at(i),
        follow_up_on=_on(i), preferred_date=_on(i, -30)))
    return Seeded([r.id for r in rows], MARKER, {"customer": rows[0].customer_id})


def _seed_booking(session, n):
    references = _numbers(session, "booking", n)

    def make(customer, i):
        address = f.make_work_address(session, customer)
        return f.make_booking(
            session, customer, work_address=address, reference=references[i],
            title=MARKER if i == 0 else f"Gig {i}",
            status=_pick(i, ("enquiry", "confirmed"), "enquiry"),
            starts_at=datetime(2026, 6, 1, 19, 0) + timedelta(days=rank(i)),
            value=Decimal(100 + 150 * rank(i)),
            attribution=_pick(i, ("exact", "manual"), "exact"))

    rows = _with_customers(session, n, make)
    return Seeded([r.id for r in rows], MARKER,
                  {"customer": rows[0].customer_id, "work_address": rows[0].work_address_id})


def _seed_work_address(session, n):
    landlord = customer(session, customer_type="landlord")
    rows = _with_customers(session, n, lambda c, i: f.make_work_address(
        session, c, address_line_1=f"{MARKER} Lane" if i == 0 else f"{i} Other Lane",
        postcode=f"B{rank(i) + 1} 1AA", occupier_surname=f"Occupier{rank(i)}",
        status=_pick(i, ("active", "dormant"), "active"), town=_pick(i, ("Leeds", None, "York")),
        landlord=landlord))
    return Seeded([r.id for r in rows], f"{MARKER} Lane", {"customer": rows[0].customer_id})


def _reminders(session, n, statuses: tuple):
    rows = _with_customers(session, n, lambda c, i: f.make_reminder(
        session, f.make_work_address(session, c),
        description=MARKER if i == 0 else f"Service {i}", due_on=_on(i),
        status=_pick(i, statuses, "due")))
    return Seeded([r.id for r in rows], MARKER, {"work_address": rows[0].work_address_id})


def _seed_service_reminder(session, n):
    return _reminders(session, n, ("due", "done"))


def _seed_due_reminder(session, n):
    """Reminders the due list shows: still due, at active addresses of active customers (so
    their status cannot differ)."""
    return _reminders(session, n, ())


def _seed_note(session, n):
    author = staff_user(session)
    rows = _with_customers(session, n, lambda c, i: f.make_note(
        session, c, body=MARKER if i == 0 else f"Note {i}", author_id=author.id,
        created_at=_at(i), kind=_pick(i, ("note", "call"), "note"), important=i == 1,
        do_not_work_with_again=i == 2))
    return Seeded([r.id for r in rows], MARKER, {"customer": rows[0].customer_id})


def _seed_portal_query(session, n):
    """Customers' questions about their invoices (notes of kind "portal"), some answered."""
    answerer = staff_user(session)

    def make(c, i):
        invoice = f.make_invoice(session, c)
        session.flush()
        return f.make_note(session, c, kind="portal", invoice_id=invoice.id,
                           body=MARKER if i == 0 else f"Question {i}", created_at=_at(i),
                           answered_at=_at(i) + timedelta(hours=1) if i != 1 else None,
                           reply="Answered" if i != 1 else None,
                           answered_by_id=answerer.id if i != 1 else None)

    rows = _with_customers(session, n, make)
    return Seeded([r.id for r in rows], MARKER)


def _seed_invoice(session, n):
    numbers = _numbers(session, "invoice", n)
    rows = _with_customers(session, n, lambda c, i: f.make_invoice(
        session, c, number=numbers[i], amount=str(100 + 50 * rank(i)),
        status=_pick(i, ("issued", "void"), "issued"),
        issue_date=_on(i, days_ago=40), due_date=_on(i, days_ago=40) + timedelta(days=30)))
    return Seeded([r.id for r in rows], rows[0].number, {"customer": rows[0].customer_id})


def _seed_credit_note(session, n):
    numbers = _numbers(session, "credit_note", n)
    rows = _with_customers(session, n, lambda c, i: f.make_credit_note(
        session, c, invoice=f.make_invoice(session, c), number=numbers[i],
        amount=str(5 + 5 * rank(i)), issue_date=_on(i),
        status=_pick(i, ("issued", "void"), "issued")))
    return Seeded([r.id for r in rows], rows[0].number, {"customer": rows[0].customer_id})


def _seed_payment(session, n):
    methods = ("bank_transfer", "card", "cash")
    rows = _with_customers(session, n, lambda c, i: f.make_payment(
        session, c, reference=MARKER if i == 0 else f"PAY-{i}",
        amount=_pick(i, ("50.00", "80.00", "20.00"), "50.00"), received_on=_on(i),
        method=methods[rank(i)] if i < len(methods) else "cheque"))
    return Seeded([r.id for r in rows], MARKER, {"customer": rows[0].customer_id})


def _seed_allocation(session, n):
    def make(customer, i):
        invoice = f.make_invoice(session, customer, amount="100.00")
        payment = f.make_payment(session, customer, amount="80.00", reference=f"PAY-{i}")
        allocation = f.make_allocation(session, invoice, payment=payment,
                                       amount=_pick(i, ("12.34", "20.00", "5.00"), "12.34"))
        allocation.created_at = _at(i)
        return allocation

    rows = _with_customers(session, n, make)
    session.flush()
    return Seeded([r.id for r in rows], "12.34",
                  {"invoice": rows[0].invoice_id, "payment": rows[0].payment_id})


def _seed_blocked_email(session, n):
    author = staff_user(session)
    rows = []
    for i in range(n):
        values = {"kind": "domain", "domain": f"spam{i}.example"}
        if i == 1:  # one blocked address (kept as its keyed hash) among the domains
            values = {"kind": "address",
                      "address_hash": email_block_hash(canonical("someone@example.com"))}
        row = BlockedEmail(**values, created_by=author, created_at=_at(i),
                           unblocked_at=_at(i) + timedelta(hours=1) if i in (1, 2) else None,
                           reason=("spam", "abuse", "other")[i % 3],
                           note=MARKER if i == 0 else f"Note {i}")
        session.add(row)
        rows.append(row)
    session.flush()
    return Seeded([r.id for r in rows], MARKER)


def _seed_user(session, n):
    # The roles are ones every role with this view manages (an admin never sees owners).
    rows = [staff_user(session, role=_pick(i, ("coordinator", "admin"), "coordinator"),
                       email=f"{MARKER.lower()}{rank(i)}@example.com", last_login_at=_at(i),
                       is_enabled=i != 1)
            for i in range(n)]
    return Seeded([r.id for r in rows], rows[0].email)


def _seed_portal_account(session, n):
    def make(customer, i):
        account = PortalAccount(customer=customer, email=f"{MARKER.lower()}{rank(i)}@example.com",
                                last_login_at=_at(i), disabled=i == 1,
                                invited_at=_at(i) - timedelta(days=3),
                                activated_at=_at(i) if i != 2 else None,
                                password_hash="x" if i != 2 else None)
        session.add(account)
        session.flush()
        return account

    rows = _with_customers(session, n, make)
    spare = customer(session)
    return Seeded([r.id for r in rows], rows[0].email, {"customer": spare.id})


def _seed_audit_event(session, n):
    # Lower case, like every verb: "Quixotic" would sort before "create" in a binary
    # collation and after it in a linguistic one.
    marker = MARKER.lower()
    actor = staff_user(session)
    rows = []
    for i in range(n):
        event = record(session, actor=actor if i == 1 else None,
                       verb=_pick(i, (marker, "update", "create"), "update"),
                       subject_type=("Booking", "Customer", "Invoice")[rank(i) % 3],
                       subject_id=i)
        event.created_at = _at(i)
        rows.append(event)
    session.flush()
    return Seeded([r.id for r in rows], marker)


SEEDS = {
    "customer": _seed_customer,
    "contact": _seed_contact,
    "branch": _seed_branch,
    "tag": _seed_tag,
    "lead": _seed_lead,
    "booking": _seed_booking,
    "work_address": _seed_work_address,
    "service_reminder": _seed_service_reminder,
    "due_reminder": _seed_due_reminder,
    "note": _seed_note,
    "invoice": _seed_invoice,
    "credit_note": _seed_credit_note,
    "payment": _seed_payment,
    "allocation": _seed_allocation,
    "blocked_email": _seed_blocked_email,
    "user": _seed_user,
    "portal_account": _seed_portal_account,
    "portal_query": _seed_portal_query,
    "audit_event": _seed_audit_event,
}


def seed(app, slug: str, n: int = 3) -> Seeded:
    """Make ``n`` rows for the view ``slug`` (with the rows they point at) and commit."""
    with app.app_context():
        made = SEEDS[slug](db.session, n)
        db.session.commit()
        return made


def stored_values(app, model, ids, attr: str) -> dict[int, object]:
    """id -> the stored value of ``attr`` of those rows, read in a fresh session."""
    with app.app_context():
        rows = db.session.scalars(select(model).where(model.id.in_(list(ids)))).all()
        return {row.id: getattr(row, attr) for row in rows}


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


_CONFIRM_FORM = re.compile(
    r'<form method="post" action="([^"]*)" data-testid="confirm-form">(.*?)</form>', re.S)
_HIDDEN_INPUT = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def confirm_form(html: str) -> tuple[str, dict]:
    """What a browser would send from the confirmation form: its action and hidden inputs
    (name -> every value, in page order; the CSRF token left to the client)."""
    form = _CONFIRM_FORM.search(html)
    assert form, "no confirmation form on the page"
    data: dict[str, list[str]] = {}
    for name, value in _HIDDEN_INPUT.findall(form.group(2)):
        if name != "csrf_token":
            data.setdefault(name, []).append(unescape(value))
    return unescape(form.group(1)), data


def filter_arg(app, role: str, label: str, operation: str = "equals", slug: str = "customer"):
    """The query-string key (``flt0_N``) of the list filter ``label`` / ``operation``."""
    view = view_for(app, slug, role)
    for key, (_index, flt) in view._filter_args.items():
        if str(flt.name) == label and str(flt.operation()) == operation:
            return f"flt0_{key}"
    raise AssertionError(f"no filter {label!r} {operation!r} on {slug}_{role}")
