"""Leads: the list and form, the lead's page with its stage and conversion, the Leads board,
and the related bookings to review. The rules are crm.actions.leads and .attribution."""

from datetime import date

from flask import flash, redirect, request, url_for
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.contrib.sqla import filters as sqla_filters
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload
from wtforms import TextAreaField
from wtforms.validators import InputRequired, Length, Optional

from crm.actions import ActionError, ActionResult
from crm.actions.attribution import confirm_related, detach, reason_related, to_review
from crm.actions.block_email import ensure_record_not_blocked
from crm.actions.leads import (
    LOST_REASON_MAX,
    STAGE_LABELS,
    BookingDetails,
    check_edit,
    convert,
    default_start,
    follow_ups_due,
    move,
    open_duplicates,
    other_open_leads,
)
from crm.admin_views.access import RolePage, require
from crm.admin_views.adapters import record_id, record_ids
from crm.admin_views.formatters import customer_link, export_str
from crm.admin_views.forms import Email, Phone, SaneDate, choices
from crm.admin_views.spec import CrmModelView
from crm.extensions import db
from crm.formatting import day, number, parse_moment, wall
from crm.models import Booking, Lead
from crm.models.booking import BOOKING_STATUSES, LEAD_STATUSES, OPEN_LEAD_STATUSES
from crm.search_index import find_live_customers

BOARD_CARDS = 10  # cards per stage column; the count says how many there are
FOLLOW_UPS_SHOWN = 8
REVIEW_PAGE = 50


def flash_result(result: ActionResult) -> None:
    """An action's summary, then what it skipped and why (the first few)."""
    flash(result.message, "success" if result.changed else "warning")
    for skip in result.skipped[:10]:
        flash(str(skip), "warning")
    if result.skipped_count > 10:
        flash(f"… and {number(result.skipped_count - 10)} more skipped.", "warning")


def _stage(view, context, model, name):
    label = STAGE_LABELS.get(model.status, model.status)
    badge = Markup('<span class="badge stage-{}">{}</span>').format(model.status, label)
    if model.status == "lost" and model.lost_reason:
        badge += Markup('<small class="d-block text-muted">{}</small>').format(model.lost_reason)
    return badge


def _person(view, context, model, name):
    label = str(model) or f"lead #{model.id}"
    link = Markup('<a href="{}">{}</a>').format(view.get_url(".details_view", id=model.id), label)
    extra = model.company_name or model.email or ""
    duplicates = getattr(view, "_page_duplicates", {}).get(model.id)
    flag = Markup(' <span class="badge badge-warning" title="Another open lead has this '
                  'e-mail">duplicate</span>') if duplicates else ""
    return link + flag + (Markup('<small class="d-block text-muted">{}</small>').format(extra)
                          if extra else "")


def _follow_up(view, context, model, name):
    if model.follow_up_on is None:
        return ""
    due = model.follow_up_on <= date.today() and model.status in OPEN_LEAD_STATUSES
    return Markup('<span class="{}">{}</span>').format("overdue" if due else "", day(model.follow_up_on))


class LeadView(CrmModelView):
    guard_redacted = True
    model_class = Lead
    capability = None
    column_list = ["person", "purpose", "status", "preferred_date", "follow_up_on", "owner",
                   "source", "phone", "created_at"]
    column_details_list = ["first_name", "surname", "company_name", "email", "phone", "purpose",
                           "preferred_date", "message", "source", "status", "lost_reason",
                           "owner", "follow_up_on", "notes", "customer", "created_at",
                           "updated_at"]
    column_export_list = ["first_name", "surname", "company_name", "email", "phone", "purpose",
                          "preferred_date", "source", "status", "lost_reason", "owner",
                          "follow_up_on", "customer", "message", "created_at"]
    form_columns = ["first_name", "surname", "company_name", "email", "phone", "purpose",
                    "preferred_date", "message", "source", "status", "lost_reason", "owner",
                    "follow_up_on", "notes"]
    column_sortable_list = ["surname", "status", "created_at", "follow_up_on", "preferred_date"]
    column_searchable_list = ["surname", "email"]
    column_filters = [sqla_filters.FilterEqual(Lead.status, "Stage",
                                               options=choices(LEAD_STATUSES, STAGE_LABELS)),
                      "source", "follow_up_on", "created_at"]
    column_labels = {"person": "Name", "purpose": "For", "status": "Stage",
                     "preferred_date": "Preferred date", "follow_up_on": "Follow up",
                     "lost_reason": "Lost because", "owner": "Owner"}
    column_default_sort = ("created_at", True)
    column_formatters = {"customer": customer_link, "person": _person, "status": _stage,
                         "follow_up_on": _follow_up,
                         "preferred_date": lambda v, c, m, n: day(m.preferred_date)}
    column_formatters_export = {"customer": export_str("customer"), "owner": export_str("owner")}
    form_choices = {"status": choices(LEAD_STATUSES, STAGE_LABELS)}
    form_args = {"surname": {"validators": [InputRequired()]},
                 "email": {"validators": [Optional(), Email()]},
                 "phone": {"validators": [Optional(), Phone()]},
                 "preferred_date": {"validators": [Optional(), SaneDate()]},
                 "follow_up_on": {"validators": [Optional(), SaneDate()]},
                 "lost_reason": {"validators": [Optional(), Length(max=LOST_REASON_MAX)]},
                 "notes": {"validators": [Optional(), Length(max=2000)],
                           "description": "What you learn while working the lead."}}
    form_overrides = {"notes": TextAreaField}
    count_nouns = ("lead", "leads")
    details_template = "admin/lead/details.html"
    action_capabilities = {"convert": "convert_lead", "convert_prospect": "convert_lead"}

    def search_placeholder(self):
        return "Surname or e-mail"

    def get_list(self, *args, **kwargs):
        count, rows = super().get_list(*args, **kwargs)
        rows = list(rows)
        self._page_duplicates = open_duplicates(db.session, rows)
        return count, rows

    def on_model_change(self, form, model, is_created):
        self.check(ensure_record_not_blocked, db.session, model, is_created=is_created)
        self.check(check_edit, model, is_created=is_created)
        if is_created and model.owner_id is None and model.owner is None:
            model.owner_id = current_user.id  # whoever takes the call owns the lead
        super().on_model_change(form, model, is_created)

    # --- the lead's page: stage, duplicates, conversion ----------------------------------
    def details_extra(self, lead: Lead) -> dict:
        duplicates = other_open_leads(db.session, lead)
        booking = db.session.scalars(select(Booking).where(Booking.lead_id == lead.id)
                                     .order_by(Booking.id).limit(1)).first()
        start = wall(default_start(lead)) if lead.preferred_date else ""
        return {"duplicates": duplicates, "booking": booking, "stages": STAGE_LABELS,
                "open_stages": OPEN_LEAD_STATUSES, "default_start": start,
                "booking_statuses": BOOKING_STATUSES,
                "can_convert": self.can("convert_lead")}

    @expose("/move/", methods=("POST",))
    def move_view(self):
        lead_id = request.form.get("id", type=record_id)
        if lead_id is None:
            flash("Choose a lead.", "error")
            return redirect(self.get_url(".index_view"))
        try:
            result = move(db.session, lead_ids=[lead_id], stage=request.form.get("stage", ""),
                          actor=current_user, lost_reason=request.form.get("lost_reason"))
        except ActionError as exc:
            db.session.rollback()
            flash(str(exc), "error")
        else:
            db.session.commit()
            flash_result(result)
        return redirect(_back(self.get_url(".details_view", id=lead_id)))

    @expose("/convert/", methods=("POST",))
    @require("convert_lead")
    def convert_view(self):
        lead_id = request.form.get("id", type=record_id)
        if lead_id is None:
            flash("Choose a lead.", "error")
            return redirect(self.get_url(".index_view"))
        with_booking = request.form.get("booking", "yes") != "no"
        try:
            details = _booking_details(request.form) if with_booking else None
            result = convert(db.session, lead_ids=[lead_id], actor=current_user,
                             with_booking=with_booking, booking=details)
        except ActionError as exc:
            db.session.rollback()
            flash(str(exc), "error")
            return redirect(self.get_url(".details_view", id=lead_id))
        if not result.changed:
            db.session.rollback()
            flash_result(result)
            return redirect(self.get_url(".details_view", id=lead_id))
        db.session.commit()
        flash_result(result)
        customer_id = result.details["customer_ids"][0]
        return redirect(url_for(f"customer_{self.role}.details_view", id=customer_id))

    @action("convert", "Convert (client with a booking)",
            "Convert the selected leads? Each becomes a client (or is matched to one by "
            "e-mail) with a booking on its preferred date.")
    def action_convert(self, ids):
        self._bulk(convert, ids, with_booking=True)

    @action("convert_prospect", "Convert to prospect (no booking)",
            "Convert the selected leads to prospects, without bookings?")
    def action_convert_prospect(self, ids):
        self._bulk(convert, ids, with_booking=False)

    @action("contacted", "Mark contacted")
    def action_contacted(self, ids):
        self._bulk(move, ids, stage="contacted")

    @action("quoted", "Mark quoted")
    def action_quoted(self, ids):
        self._bulk(move, ids, stage="quoted")

    def _bulk(self, fn, ids, **kwargs):
        try:
            result = fn(db.session, lead_ids=record_ids(ids), actor=current_user, **kwargs)
        except ActionError as exc:
            db.session.rollback()
            flash(str(exc), "error")
            return
        db.session.commit()
        flash_result(result)

    # Flask-Admin's own delete action stays (CrmModelView), gated as every view's.


def _booking_details(form) -> BookingDetails:
    title = (form.get("title") or "").strip()
    if len(title) > 200:
        raise ActionError("Keep the booking's title to 200 characters or fewer.")
    status = form.get("status") or "confirmed"
    if status not in BOOKING_STATUSES:
        raise ActionError("Choose the booking's status from the list.")
    starts = (form.get("starts_at") or "").strip()
    starts_at = None
    if starts:
        try:
            starts_at = parse_moment(starts[:40])
        except ValueError:
            raise ActionError("Type the booking's start like 4 Dec 2026, 20:00.") from None
        if not 1900 <= starts_at.year <= 2100:
            raise ActionError("The booking's start must be between 1900 and 2100.")
    return BookingDetails(title=title or None, starts_at=starts_at, status=status)


def _back(fallback: str) -> str:
    target = request.form.get("next") or ""
    return target if target.startswith("/admin/") and "//" not in target else fallback


# --- the Leads board -------------------------------------------------------------------------

class LeadsBoardView(RolePage):
    """The open stages as columns with their counts (newest first), and the follow-ups due
    today on top; each card moves a stage on or converts in one click."""

    @expose("/")
    def index(self):
        mine = request.args.get("mine") == "1"
        today = date.today()
        owner = [Lead.owner_id == current_user.id] if mine else []
        counts = dict(db.session.execute(
            select(Lead.status, func.count()).where(Lead.status.in_(OPEN_LEAD_STATUSES), *owner)
            .group_by(Lead.status)).all())
        columns = []
        for stage in OPEN_LEAD_STATUSES:
            leads = db.session.scalars(
                select(Lead).where(Lead.status == stage, *owner)
                .options(joinedload(Lead.owner))
                .order_by(Lead.created_at.desc(), Lead.id.desc()).limit(BOARD_CARDS)).all()
            columns.append((stage, STAGE_LABELS[stage], counts.get(stage, 0), leads))
        due_query = follow_ups_due(today).where(*owner)
        due = db.session.scalars(due_query.options(joinedload(Lead.owner))
                                 .limit(FOLLOW_UPS_SHOWN)).all()
        due_count = db.session.scalar(select(func.count()).select_from(
            due_query.order_by(None).subquery()))
        shown = [lead for *_, leads in columns for lead in leads] + list(due)
        return self.render(
            "admin/lead/board.html", columns=columns, due=due, due_count=due_count,
            duplicates=open_duplicates(db.session, shown), today=today, mine=mine,
            next_stage={"new": "contacted", "contacted": "quoted"},
            stages=STAGE_LABELS, can_convert=self.can("convert_lead"),
            lead_url=lambda lead: url_for(f"lead_{self.role}.details_view", id=lead.id),
            list_url=lambda stage: url_for(f"lead_{self.role}.index_view", flt0_0=stage),
            move_url=url_for(f"lead_{self.role}.move_view"),
            convert_url=url_for(f"lead_{self.role}.convert_view"),
            new_url=url_for(f"lead_{self.role}.create_view"),
        )


# --- related bookings to review ------------------------------------------------------------

class RelatedBookingsView(RolePage):
    """Bookings attached as ``related`` (the e-mail matched, the name did not): confirm each
    where it is, or detach it to a new customer or to another one found by search."""

    capability = "attribute_booking"

    @expose("/")
    def index(self):
        after = request.args.get("after", type=record_id)
        query = to_review().options(joinedload(Booking.customer)).order_by(Booking.id)
        if after:
            query = query.where(Booking.id > after)
        bookings = db.session.scalars(query.limit(REVIEW_PAGE + 1)).all()
        more = len(bookings) > REVIEW_PAGE
        bookings = bookings[:REVIEW_PAGE]
        total = db.session.scalar(select(func.count()).select_from(
            to_review().order_by(None).subquery()))
        return self.render(
            "admin/lead/related.html", bookings=bookings, total=total, reason=reason_related,
            next_url=url_for(".index", after=bookings[-1].id) if more else None,
            first_page=after is None, booking_url=self._booking_url,
            customer_url=self._customer_url)

    @expose("/confirm/", methods=("POST",))
    @require("attribute_booking")
    def confirm(self):
        ids = record_ids(request.form.getlist("id"))
        try:
            n = confirm_related(db.session, booking_ids=ids, actor=current_user)
        except ActionError as exc:
            db.session.rollback()
            flash(str(exc), "error")
        else:
            db.session.commit()
            flash(f"Confirmed {number(n)} booking{'' if n == 1 else 's'} where "
                  f"{'it is' if n == 1 else 'they are'}.", "success")
        return redirect(url_for(".index"))

    @expose("/detach/<int:booking_id>/", methods=("GET", "POST"))
    @require("attribute_booking")
    def detach_view(self, booking_id: int):
        booking = db.session.scalars(to_review().where(Booking.id == booking_id)).first()
        if booking is None:
            flash("That booking is no longer waiting for review.", "warning")
            return redirect(url_for(".index"))
        if request.method == "POST":
            target = request.form.get("customer_id", type=record_id)
            if request.form.get("customer_id") and target is None:
                flash("Choose the customer from the search results.", "error")
                return redirect(url_for(".detach_view", booking_id=booking_id))
            try:
                customer = detach(db.session, booking_id=booking_id, actor=current_user,
                                  to_customer_id=target)
            except ActionError as exc:
                db.session.rollback()
                flash(str(exc), "error")
                return redirect(url_for(".detach_view", booking_id=booking_id))
            db.session.commit()
            flash(f"Booking {booking.reference} now belongs to {customer}.", "success")
            return redirect(url_for(".index"))
        term = (request.args.get("q") or "").strip()[:100]
        found = []
        if term:
            try:
                found = find_live_customers(db.session, term, offset=0, limit=10)
            except ActionError as exc:
                flash(str(exc), "warning")
        return self.render("admin/lead/detach.html", booking=booking, term=term,
                           found=[c for c in found if c.id != booking.customer_id],
                           reason=reason_related(booking), customer_url=self._customer_url,
                           booking_url=self._booking_url)

    def _booking_url(self, booking) -> str:
        return url_for(f"booking_{self.role}.details_view", id=booking.id)

    def _customer_url(self, customer) -> str:
        return url_for(f"customer_{self.role}.details_view", id=customer.id)


__all__ = ["LeadView", "LeadsBoardView", "RelatedBookingsView", "flash_result"]
