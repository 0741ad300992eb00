"""Service reminders and the due list, with the round's decisions on a selection.

The due list's "With selected" menu (Flask-Admin ``@action``) sends the ticked reminders to
``/decide/<verb>/``: a GET (or a POST without ``confirm``) shows what will happen to which
reminders and asks what the decision needs (the job's date and time, the day to postpone to,
the reason to stop); the POST with ``confirm`` runs one function of
``crm.actions.reminders`` through ``run_action`` and shows what was done and what was skipped
and why — the customer list's pattern (``customer_bulk``), for reminders.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from flask import abort, request
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.contrib.sqla import filters as sqla_filters
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from wtforms.validators import InputRequired, NumberRange, Optional

from crm import mail
from crm.actions import ActionError
from crm.actions.reminders import MAX_REMINDERS, REASON_MAX, every
from crm.admin_views.access import require
from crm.admin_views.adapters import record_ids, run_action
from crm.admin_views.formatters import export_str
from crm.admin_views.forms import SaneDate, choices
from crm.admin_views.spec import CrmModelView
from crm.extensions import db
from crm.formatting import DATE_EXAMPLE, MOMENT_EXAMPLE, day, number, parse_day, parse_moment
from crm.models import Customer, ServiceReminder, WorkAddress
from crm.models.property import REMINDER_STATUSES

PREVIEW = 20  # reminders listed on a confirmation page


def _interval(view, context, model, name):
    return every(model.interval_months)


class ServiceReminderView(CrmModelView):
    guard_redacted = True
    model_class = ServiceReminder
    column_list = ["work_address", "due_on", "description", "interval_months", "status"]
    column_details_list = column_list + ["created_at", "updated_at"]
    column_export_list = column_list
    form_columns = ["work_address", "due_on", "description", "interval_months", "status"]
    column_sortable_list = ["due_on", "status"]
    column_searchable_list = ["description"]
    column_filters = ["due_on", sqla_filters.FilterEqual(
        ServiceReminder.status, "Status", options=choices(REMINDER_STATUSES))]
    column_default_sort = ("due_on", False)
    column_labels = {"interval_months": "Repeats"}
    column_formatters = {"interval_months": _interval}
    column_formatters_export = {"work_address": export_str("work_address")}
    form_choices = {"status": choices(REMINDER_STATUSES)}
    form_args = {"work_address": {"validators": [InputRequired()]},
                 "due_on": {"validators": [InputRequired(), SaneDate()]},
                 "description": {"validators": [InputRequired()]},
                 "interval_months": {
                     "label": "Repeat every N months",
                     "description": "12 for a yearly service; leave empty for a one-off.",
                     "validators": [Optional(), NumberRange(
                         1, 120, "Repeat every 1 to 120 months, or leave it empty for a "
                                 "one-off.")]}}
    form_ajax_refs = {"work_address": {"fields": ["postcode", "address_line_1"],
                                       "page_size": 10}}


LONG_OVERDUE_DAYS = 90  # past this a reminder stands out on the due list


def _how_long(days: int) -> str:
    """A span of days as a person says it: "5 days", "3 weeks", "4 months", "1 year 2 months"."""
    if days < 14:
        return f"{number(days)} day{'' if days == 1 else 's'}"
    if days < 61:
        return f"{number(days // 7)} weeks"
    months = days * 12 // 365
    if months < 12:
        return f"{number(months)} months"
    years, months = divmod(months, 12)
    text = f"{number(years)} year{'' if years == 1 else 's'}"
    return text + (f" {number(months)} month{'' if months == 1 else 's'}" if months else "")


def _overdue_for(view, context, model, name):
    """How long past its date a reminder is; a long-overdue one as a red badge."""
    days = (date.today() - model.due_on).days
    if days < 0:
        ahead = -days
        soon = "tomorrow" if ahead == 1 else f"in {_how_long(ahead)}"
        return Markup('<span class="due-soon">due {}</span>').format(soon)
    if days == 0:
        return Markup('<span class="overdue">due today</span>')
    if days >= LONG_OVERDUE_DAYS:
        return Markup('<span class="badge overdue-long">{} overdue</span>').format(
            _how_long(days))
    return Markup('<span class="overdue">{} overdue</span>').format(_how_long(days))


def _due_on(view, context, model, name):
    return day(model.due_on)


def _customer(view, context, model, name):
    """The customer, linked; a badge when they asked (in the portal) for no reminders."""
    from flask import url_for

    customer = model.work_address.customer
    link = Markup('<a href="{}">{}</a>').format(
        url_for(f"customer_{view.role}.details_view", id=customer.id), customer.display_name)
    if not customer.wants_reminders:
        link += Markup(' <span class="badge reminders-off" title="They asked for no service '
                       'reminders: no e-mail goes to them">opted out</span>')
    return link


# --- the decisions ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    name: str
    label: str  # the menu entry and the button
    title: str  # the confirmation page's heading
    explain: str  # what will happen
    run: Callable  # (session, actor, ids, form) -> ActionResult
    button: str  # the confirmation button, {n} the reminders: "Book {n}"
    done: str  # what the results page calls the ones changed: "booked"
    asks: str | None = None  # "moment", "day" or "reason": what the page asks for

    def button_text(self, n: int) -> str:
        return self.button.format(n=f"{n:,} {'job' if n == 1 else 'jobs'}"
                                  if self.name == "book_jobs" else
                                  f"{n:,} reminder{'' if n == 1 else 's'}")


def _reminder_ids(ids):
    return record_ids(ids)


def _moment(form):
    text = form["when"]
    if not text:
        raise ActionError(f"Say when the job starts, like {MOMENT_EXAMPLE}. Nothing was "
                          "booked.")
    try:
        return parse_moment(text[:60])
    except ValueError:
        raise ActionError(f"The job's start: type a date and time like {MOMENT_EXAMPLE}. "
                          "Nothing was booked.") from None


def _day(form):
    text = form["until"]
    if not text:
        raise ActionError(f"Say which day to postpone to, like {DATE_EXAMPLE}. Nothing was "
                          "changed.")
    try:
        return parse_day(text[:40])
    except ValueError:
        raise ActionError(f"The new due date: type a date like {DATE_EXAMPLE}. Nothing was "
                          "changed.") from None


def _book(session, actor, ids, form):
    from crm.actions.reminders import book_jobs

    return book_jobs(session, reminder_ids=ids, starts_at=_moment(form), actor=actor)


def _postpone(session, actor, ids, form):
    from crm.actions.reminders import postpone

    return postpone(session, reminder_ids=ids, until=_day(form), actor=actor)


def _skip(session, actor, ids, form):
    from crm.actions.reminders import skip_this_time

    return skip_this_time(session, reminder_ids=ids, actor=actor)


def _stop(session, actor, ids, form):
    from crm.actions.reminders import stop_for_good

    return stop_for_good(session, reminder_ids=ids, reason=form["reason"], actor=actor)


def _email(session, actor, ids, form):
    from crm.actions.reminders import send_reminder_emails

    with mail.connection() as send:  # one SMTP session for the whole run
        return send_reminder_emails(session, reminder_ids=ids, actor=actor, send=send)


DECISIONS: dict[str, Decision] = {
    d.name: d
    for d in (
        Decision("book_jobs", "Book a job", "Book jobs",
                 "Each reminder becomes a confirmed booking for its customer at its work "
                 "address, starting when you say. A repeating reminder then moves on to its "
                 "next due date after the job; a one-off is done.",
                 _book, "Book {n}", "booked", asks="moment"),
        Decision("postpone", "Postpone to a date", "Postpone reminders",
                 "Each reminder is due again on the day you choose, after today.",
                 _postpone, "Postpone {n}", "postponed", asks="day"),
        Decision("skip", "Skip this time", "Skip this time",
                 "Each repeating reminder moves on to its next due date after today; nothing "
                 "is booked or sent. One-off reminders are left as they are.",
                 _skip, "Skip {n} this time", "moved on"),
        Decision("stop", "Stop for good", "Stop reminders for good",
                 "The reminders stop and never come round again. Your reason is written on a "
                 "note on each customer, for colleagues.",
                 _stop, "Stop {n} for good", "stopped", asks="reason"),
        Decision("email", "Send reminder e-mails", "Send reminder e-mails",
                 "Each customer gets an e-mail saying what is due, where and when, and asking "
                 "them to get in touch to book. Dormant, archived and redacted customers, "
                 "blocked addresses, those without an e-mail address and those who opted out "
                 "of reminders or of e-mail are skipped. Messages sent cannot be recalled.",
                 _email, "E-mail {n}", "sent"),
    )
}


def _menu_entry(decision: Decision):
    @action(decision.name, decision.label)
    def entry(self, ids):
        return self._confirm_page(decision, _reminder_ids(ids))

    entry.__name__ = f"action_{decision.name}"
    return entry


class DueReminderView(ServiceReminderView):
    """The due list: reminders still due at active work addresses of active customers, so a
    dormant customer's reminders drop off it (and come back when it is reactivated). Oldest
    first, each saying how long overdue it is and how often it comes round; a long-overdue
    one stands out, and a customer who asked for no reminders is flagged. Ticked reminders
    get the round's decisions (book, postpone, skip, stop, e-mail)."""

    can_create = False
    can_delete = False  # "Stop for good" instead: it keeps the reminder and says why
    column_default_sort = ("due_on", False)
    column_list = ["due_on", "overdue_for", "description", "interval_months", "customer",
                   "work_address"]
    column_labels = {"due_on": "Due", "overdue_for": "Overdue", "work_address": "Work address",
                     "interval_months": "Repeats", "customer": "Customer"}
    column_formatters = {"overdue_for": _overdue_for, "due_on": _due_on,
                         "interval_months": _interval, "customer": _customer}
    action_capabilities = {name: "reminders" for name in DECISIONS}
    details_template = "admin/reminder/details.html"
    count_nouns = ("reminder due", "reminders due")
    list_table_class = "reminder-cards"  # on a phone, each reminder a card
    # Past 1,000 the list says "1,000+" and pages with Next/Previous: counting every due
    # reminder at active addresses of active customers costs more than the page.
    _count_cap = 1000

    def search_placeholder(self):
        return "Description"

    def base_query(self):
        from crm.actions.dormant import due_reminder_criteria

        return (
            db.session.query(ServiceReminder)
            .join(WorkAddress, WorkAddress.id == ServiceReminder.work_address_id)
            .join(Customer, Customer.id == WorkAddress.customer_id)
            .filter(*due_reminder_criteria())
        )

    def eager_options(self) -> list:
        # The customer column reads each row's address's customer: two statements a page.
        return [selectinload(ServiceReminder.work_address).selectinload(WorkAddress.customer)]

    def _list_query(self, sort_column, sort_desc, search, filters):
        unsorted, query = super()._list_query(sort_column, sort_desc, search, filters)
        if sort_column is None and not search:
            # SQLite would start from the customers and sort every due reminder; told to read
            # the reminders in due order, it stops after a page (PostgreSQL does so itself).
            query = query.with_hint(
                ServiceReminder, "INDEXED BY ix_service_reminder_due_id", "sqlite")
        return unsorted, query

    # --- the decisions --------------------------------------------------------------------
    def decision_links(self, model) -> list[tuple[str, str]]:
        """(label, URL) of each decision for one reminder still due, for its own page."""
        if model.status != "due" or not self.can("reminders"):
            return []
        return [(d.label, self.get_url(".decide_view", verb=d.name, ids=model.id))
                for d in DECISIONS.values()]

    @expose("/decide/<verb>/", methods=("GET", "POST"))
    @require("reminders")
    def decide_view(self, verb):
        decision = DECISIONS.get(verb)
        if decision is None:
            abort(404)
        source = request.form if request.method == "POST" else request.args
        ids = record_ids(source.getlist("ids"))
        if request.method == "POST" and request.form.get("confirm") == "1":
            return self._run(decision, ids)
        return self._confirm_page(decision, ids)

    def _form_values(self) -> dict:
        return {name: (request.form.get(name) or "").strip()
                for name in ("when", "until", "reason")}

    def _confirm_page(self, decision: Decision, ids: list[int], error: str | None = None,
                      status: int = 200):
        too_many = len(ids) > MAX_REMINDERS
        shown = [] if too_many else self._shown(ids)
        if not error and not shown:
            error, status = (f"Select between 1 and {MAX_REMINDERS:,} reminders on the due "
                             "list. Nothing was changed."), 400
        return self.render(
            "admin/reminder/confirm.html", decision=decision, reminders=shown[:PREVIEW],
            count=len(shown), ids=[r.id for r in shown], error=error, every=every,
            form=self._form_values() if request.method == "POST" else {},
            action_url=self.get_url(".decide_view", verb=decision.name),
            list_url=self.get_url(".index_view"), reason_max=REASON_MAX,
            moment_example=MOMENT_EXAMPLE, date_example=DATE_EXAMPLE,
        ), status

    def _shown(self, ids: list[int]) -> list[ServiceReminder]:
        """The selected reminders that exist, soonest first, with address and customer (they
        need not be on the due list any more: the action says why it skips them)."""
        if not ids:
            return []
        return db.session.scalars(
            select(ServiceReminder).where(ServiceReminder.id.in_(ids))
            .options(selectinload(ServiceReminder.work_address)
                     .selectinload(WorkAddress.customer))
            .order_by(ServiceReminder.due_on, ServiceReminder.id)
        ).all()

    def _run(self, decision: Decision, ids: list[int]):
        if not ids or len(ids) > MAX_REMINDERS:
            return self._confirm_page(decision, ids)
        form = self._form_values()
        result, error = run_action(
            lambda session, actor: decision.run(session, actor, ids, form))
        if error:
            return self._confirm_page(decision, ids, error, 400)
        return self.render(
            "admin/reminder/results.html", title=decision.title, result=result,
            changed=[self._linked(text) for text in result.changed_refs],
            skipped=[(_dated(skip.reference), skip.reason) for skip in result.skipped],
            list_url=self.get_url(".index_view"), changed_word=decision.done,
        )

    def _linked(self, text: str) -> Markup:
        """A changed reminder as the results page lists it, its booking (if any) linked."""
        from crm.admin_views.record_links import parts_html
        from crm.audit_sentences import Ref

        booking, sep, rest = text.partition(": ")
        if sep and booking.startswith("B-"):
            return parts_html(self.role, [Ref(booking, "Booking"), " "]) + _dated(rest)
        return _dated(text)


def _dated(text: str) -> Markup:
    """A reminder's label with its "(due 4 Dec 2026)" kept on one line."""
    head, sep, tail = text.rpartition(" (due ")
    if not sep:
        return Markup.escape(text)
    return Markup('{} <span class="text-nowrap">(due {}</span>').format(head, tail)


for _decision in DECISIONS.values():
    setattr(DueReminderView, f"action_{_decision.name}", _menu_entry(_decision))
