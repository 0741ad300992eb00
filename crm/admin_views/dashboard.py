"""The home page: a dashboard per role (``crm.dashboard`` reads the figures).

Owner and admin: what is owed, overdue and held as credit; the aging chart, whose bars open
the customer list filtered to that age; invoiced against received for twelve months; the ten
largest overdue balances; counts of what needs someone, each linking to its list.
Coordinator: the same without money (no amount, no money list is ever linked).

The page is one ``AdminIndexView`` at /admin for every role: the role is the signed-in
user's, and every link goes to that role's own screens (``/admin/<role>/…``), offered only
when the role may open them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from flask import redirect, request, url_for
from flask_admin import AdminIndexView, expose
from flask_admin.contrib.sqla import filters as sqla_filters
from flask_login import current_user

from crm import dashboard as figures_of
from crm.admin_views.charts import bar_chart, grouped_bar_chart
from crm.extensions import db
from crm.formatting import day, local_now
from crm.ledger_totals import AGING_BUCKETS
from crm.models import Customer
from crm.permissions import can


class AgingFilter(sqla_filters.BaseSQLAFilter):
    """Customers by the age of their oldest unpaid invoice, as the dashboard's aging bars
    count them: not yet due, 1–30, 31–60, 61–90 or over 90 days overdue. Index-backed
    (``next_due_on``, ``oldest_overdue_on``)."""

    # Each bucket holds a good share of the customers owing money: the list pages through
    # them along its default-order index rather than sorting every match (see PagedList).
    dense = True

    def __init__(self):
        super().__init__(Customer.oldest_overdue_on, "Aging",
                         options=[(key, label) for key, label, *_ in AGING_BUCKETS])

    def validate(self, value) -> bool:
        return value in {key for key, *_ in AGING_BUCKETS}

    def apply(self, query, value, alias=None):
        today = date.today()
        for key, _label, first, last in AGING_BUCKETS:
            if key != value:
                continue
            if first is None:  # not yet due: an open invoice falls due today or later
                return query.filter(Customer.next_due_on >= today)
            column = Customer.oldest_overdue_on
            query = query.filter(column <= today - timedelta(days=first))
            if last is not None:
                query = query.filter(column >= today - timedelta(days=last))
            return query
        return query

    def operation(self):
        return "is"


@dataclass(frozen=True)
class Tile:
    """One count of the "needs attention" panel."""

    key: str
    label: str
    value: str  # "12", "1,000+", "None"
    url: str | None
    note: str = ""  # "counted 3 hours ago"
    empty: bool = False


LABELS = {
    "new_leads": ("New leads to contact", "lead"),
    "follow_ups": ("Lead follow-ups due", "leads_board"),
    "related_bookings": ("Related bookings to review", "related_bookings"),
    "bookings_this_week": ("Bookings in the next 7 days", "booking"),
    "draft_invoices": ("Draft invoices to issue", "invoice"),
    "portal_questions": ("Customer questions awaiting a reply", "portal_query"),
    "due_reminders": ("Service reminders due", "due_reminder"),
    "duplicate_groups": ("Possible duplicate groups", "duplicates"),
}
# What each count needs the role to be able to open.
NEEDS = {"new_leads": None, "follow_ups": None, "related_bookings": "attribute_booking",
         "bookings_this_week": None, "draft_invoices": "invoice", "portal_questions": "see_money",
         "due_reminders": None, "duplicate_groups": None}


def _ago(moment) -> str:
    from crm.models.base import utcnow

    minutes = int((utcnow() - moment).total_seconds() // 60)
    if minutes < 2:
        return "counted just now"
    if minutes < 120:
        return f"counted {minutes} minutes ago"
    if minutes < 48 * 60:
        return f"counted {minutes // 60} hours ago"
    return f"counted {day(moment)}"


class HomeView(AdminIndexView):
    def _view(self, slug: str, role: str):
        for view in self.admin._views:
            if getattr(view, "endpoint", None) == f"{slug}_{role}":
                return view
        return None

    def _filter_url(self, slug: str, role: str, match, value: str, **extra) -> str | None:
        """The list of ``slug`` filtered by its first filter that ``match``es, or None."""
        view = self._view(slug, role)
        if view is None:
            return None
        for arg, (_index, flt) in (getattr(view, "_filter_args", None) or {}).items():
            if match(flt):
                return url_for(f"{slug}_{role}.index_view", **{f"flt0_{arg}": value}, **extra)
        return url_for(f"{slug}_{role}.index_view", **extra)

    def _list_url(self, key: str, role: str) -> str | None:
        slug = LABELS[key][1]
        if key == "draft_invoices":
            return self._filter_url(slug, role, lambda f: f.name == "Status"
                                    and isinstance(f, sqla_filters.FilterEqual), "draft")
        if key == "due_reminders":
            tomorrow = (date.today() + timedelta(days=1)).isoformat()
            return self._filter_url(slug, role, lambda f: str(f.column).endswith("due_on")
                                    and isinstance(f, sqla_filters.DateSmallerFilter),
                                    tomorrow)
        if key == "new_leads":
            return self._filter_url(slug, role, lambda f: f.name == "Stage"
                                    and isinstance(f, sqla_filters.FilterEqual), "new")
        if key == "bookings_this_week":
            start = datetime.combine(date.today(), time.min)
            week = f"{start:%Y-%m-%d %H:%M:%S} to {start + timedelta(days=7):%Y-%m-%d %H:%M:%S}"
            return self._filter_url(slug, role, lambda f: str(f.column).endswith("starts_at")
                                    and isinstance(f, sqla_filters.DateTimeBetweenFilter), week)
        if key == "portal_questions":
            return self._filter_url(slug, role, lambda f: f.name == "Answered", "0")
        return url_for(f"{slug}_{role}.index")

    def _tiles(self, board, role: str) -> list[Tile]:
        tiles = []
        for key, needs in NEEDS.items():
            if not can(role, needs):
                continue
            label = LABELS[key][0]
            count = board.counts.get(key)
            url = self._list_url(key, role)
            if count is None:  # a stored count never made
                tiles.append(Tile(key, label, "Not counted yet", url,
                                  "run “flask crm count-figures” (nightly)"))
                continue
            value = "None" if count.value == 0 else (
                f"{count.value:,}+" if count.capped else f"{count.value:,}")
            note = _ago(count.counted_at) if count.counted_at else ""
            tiles.append(Tile(key, label, value, url, note, empty=count.value == 0))
        return tiles

    def _aging_chart(self, board, role: str):
        items = []
        for key, label, *_ in AGING_BUCKETS:
            url = self._filter_url("customer", role, lambda f: isinstance(f, AgingFilter), key)
            series = "current" if key == "current" else f"late-{key}"
            items.append((label, board.figures.aging[key], series, url))
        return bar_chart(items)

    def _months_chart(self, board):
        groups = []
        for month in board.figures.months:
            short = month.first_day.strftime("%b")
            if month.first_day.month == 1 or month is board.figures.months[0]:
                short = month.first_day.strftime("%b %y")
            groups.append((short, month.first_day.strftime("%B %Y"), [
                ("invoiced", month.invoiced, "invoiced"),
                ("received", month.received, "received"),
            ]))
        return grouped_bar_chart(groups)

    @expose("/")
    def index(self):
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        role = current_user.role
        money = can(role, "see_money")
        counts = tuple(key for key, needs in NEEDS.items() if can(role, needs))
        board = figures_of.dashboard(db.session, money=money, counts=counts)
        hour = local_now().hour
        greeting = ("Good morning" if hour < 12 else "Good afternoon" if hour < 18
                    else "Good evening")
        context = {"board": board, "role": role, "money": money, "greeting": greeting,
                   "tiles": self._tiles(board, role)}
        if money:
            context.update(
                aging_chart=self._aging_chart(board, role),
                months_chart=self._months_chart(board),
                overdue_list_url=self._filter_url(
                    "customer", role, lambda f: f.name == "Overdue", "1"),
                this_month=board.figures.months[-1],
                last_month=board.figures.months[-2],
            )
        context["links"] = self._quick_links(role)
        context["booking_url"] = lambda booking_id: url_for(f"booking_{role}.details_view",
                                                            id=booking_id)
        context["customer_url"] = lambda customer_id: url_for(f"customer_{role}.details_view",
                                                              id=customer_id)
        return self.render("admin/index.html", **context)

    def _quick_links(self, role: str) -> list[tuple[str, str]]:
        """The everyday starting points the role may use."""
        wanted = [("customer", "create_view", "New customer", None),
                  ("invoice", "create_view", "New invoice", "invoice"),
                  ("payment", "record_view", "Record a payment", "record_payment"),
                  ("customer", "index_view", "Find a customer", None),
                  ("booking", "index_view", "Bookings", None)]
        links = []
        for slug, endpoint, label, needs in wanted:
            view = self._view(slug, role)
            if view is None or not can(role, needs):
                continue
            if endpoint == "create_view" and not getattr(view, "can_create", False):
                continue
            links.append((label, url_for(f"{slug}_{role}.{endpoint}")))
        return links
