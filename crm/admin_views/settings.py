"""Settings menu: staff users, blocked e-mails and the audit log (portal accounts: portal.py)."""

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import abort, current_app, flash, g, redirect, request, url_for
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.contrib.sqla import filters as sqla_filters
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import select
from wtforms import PasswordField, SelectField, StringField
from wtforms.validators import InputRequired, Length, Optional

from crm.actions.staff import check_staff_change, check_staff_delete, roles_managed_by
from crm.admin_views.access import require
from crm.admin_views.adapters import record_id, record_ids, run_action
from crm.admin_views.filters import IntEqual
from crm.admin_views.forms import Email, choices
from crm.admin_views.record_links import parts_html
from crm.admin_views.spec import CrmModelView
from crm.audit_sentences import VERB_NAMES, Ref, field_label, sentence, verb_name
from crm.extensions import db
from crm.formatting import parse_day
from crm.models import AuditEvent, BlockedEmail, Booking, CreditNote, Customer, Invoice, User
from crm.models.comms import BLOCK_REASON_LABELS, BLOCK_REASONS
from crm.permissions import ROLES
from crm.security import MIN_PASSWORD_LENGTH
from crm.validation import sane_date


class UserView(CrmModelView):
    """Staff accounts. The rules (an admin manages admins and coordinators, never owners;
    nobody demotes, disables or deletes themselves; passwords hashed) are
    ``crm.actions.staff``'s, checked as the form saves."""

    capability = "manage_staff"
    model_class = User
    column_list = ["email", "name", "role", "is_enabled", "last_login_at", "created_at"]
    column_details_list = column_list + ["updated_at"]
    column_export_list = column_list
    form_columns = ["email", "name", "role", "is_enabled", "new_password"]
    column_sortable_list = ["email", "role", "last_login_at"]
    column_searchable_list = ["email", "name"]
    column_filters = [sqla_filters.FilterEqual(User.role, "Role", options=choices(ROLES)),
                      "is_enabled"]
    column_default_sort = "email"
    column_labels = {"is_enabled": "Enabled"}
    details_template = "admin/user/details.html"
    form_extra_fields = {
        "new_password": PasswordField(
            "New password",
            validators=[Optional(), Length(min=MIN_PASSWORD_LENGTH, max=1024)],
            description=f"At least {MIN_PASSWORD_LENGTH} characters. Leave empty to keep it.",
        )
    }
    form_args = {"email": {"validators": [InputRequired(), Email()]},
                 "role": {"validators": [InputRequired()]}}
    # A select of the roles this actor may give (set per form below), not a text box.
    form_overrides = {"role": SelectField}

    def _roles_i_manage(self) -> tuple[str, ...]:
        return roles_managed_by(self.role)

    def base_query(self):
        return db.session.query(User).filter(User.role.in_(self._roles_i_manage()))

    def create_form(self, obj=None):
        form = super().create_form(obj)
        form.role.choices = choices(self._roles_i_manage())
        if not form.role.data:
            form.role.data = "coordinator"  # the least a new colleague needs, not the most
        form.new_password.description = f"At least {MIN_PASSWORD_LENGTH} characters."
        return form

    def edit_form(self, obj=None):
        form = super().edit_form(obj)
        form.role.choices = choices(self._roles_i_manage())
        return form

    def on_model_change(self, form, model, is_created):
        password = form.new_password.data if hasattr(form, "new_password") else None
        self.check(check_staff_change, db.session, actor=current_user._get_current_object(),
                   user=model, is_created=is_created, password=password)
        super().on_model_change(form, model, is_created)

    def on_model_delete(self, model):
        self.check(check_staff_delete, actor=current_user._get_current_object(), user=model)
        super().on_model_delete(model)

    @expose("/end-sessions/", methods=("POST",))
    @require("manage_staff")
    def end_sessions_view(self):
        """Sign out everywhere: every session of the user shown, on every device."""
        from crm.actions.staff_sessions import end_all_sessions

        key = request.form.get("id", type=record_id)
        if key is None or self.get_one(str(key)) is None:
            abort(404)  # not a user this role manages
        result, error = run_action(end_all_sessions, user_id=key)
        flash(error or result.message, "error" if error else "success")
        return redirect(self.get_url(".details_view", id=key))


def _blocked_value(view, context, model, name):
    return str(model)


def _block_reason(view, context, model, name):
    return BLOCK_REASON_LABELS.get(model.reason, model.reason)


class BlockedEmailView(CrmModelView):
    """Blocks are stored as a keyed hash of the address (or a plain domain): the address
    itself is typed once and never kept. Creating and lifting a block go through
    ``crm.actions.block_email`` (which flags the customers already on file); a lifted block
    stays in the list as history."""

    model_class = BlockedEmail
    column_list = ["kind", "value", "reason", "note", "created_by", "created_at",
                   "unblocked_at"]
    column_details_list = column_list + ["unblocked_by"]
    column_export_list = ["kind", "value", "reason", "note", "created_at", "unblocked_at"]
    form_columns = ["address", "reason", "note"]
    column_sortable_list = ["kind", "reason", "created_at"]
    column_searchable_list = ["domain", "note"]
    column_filters = [sqla_filters.FilterEqual(BlockedEmail.kind, "Kind",
                                               options=choices(("address", "domain"))),
                      sqla_filters.FilterEqual(BlockedEmail.reason, "Reason",
                                               options=choices(BLOCK_REASONS,
                                                               BLOCK_REASON_LABELS)),
                      "created_at", "unblocked_at"]
    column_default_sort = ("created_at", True)
    can_edit = False
    can_delete = False  # history is kept: unblocking is an action, not a delete
    create_capability = "block_email"
    action_capabilities = {"unblock": "block_email"}
    details_template = "admin/blocked_email/details.html"
    column_formatters = {"value": _blocked_value, "reason": _block_reason}
    column_formatters_export = {"value": _blocked_value, "reason": _block_reason}
    form_choices = {"reason": choices(BLOCK_REASONS, BLOCK_REASON_LABELS)}
    form_extra_fields = {
        "address": StringField(
            "E-mail address or @domain",
            validators=[InputRequired(), Length(max=254)],
            description="name@example.com blocks one address; @example.com a whole domain.",
        )
    }
    form_args = {"reason": {"validators": [InputRequired()]},
                 "note": {"description": "Optional. Describe what happened, not who: "
                                         "redaction erases notes that name the customer."}}

    def create_model(self, form):
        from crm.actions.block_email import block_email

        result, error = run_action(block_email, value=form.address.data or "",
                                   reason=form.reason.data or "", note=form.note.data)
        if error:
            flash(error, "error")
            return False
        if result.skipped:
            flash(result.message, "warning")
        return db.session.get(BlockedEmail, result.details["block_id"])

    def after_model_change(self, form, model, is_created):
        pass  # the action wrote the audit event

    @action("unblock", "Unblock")
    def action_unblock(self, ids):
        from crm.actions.block_email import unblock_email

        for key in record_ids(ids):
            result, error = run_action(unblock_email, block_id=key)
            flash(error or result.message, "error" if error else "success")

    @expose("/unblock/", methods=("POST",))
    @require("block_email")
    def unblock_view(self):
        from crm.actions.block_email import unblock_email

        key = request.form.get("id", type=record_id)
        if key is None:
            abort(400)
        result, error = run_action(unblock_email, block_id=key)
        flash(error or result.message, "error" if error else "success")
        return redirect(self.get_url(".details_view", id=key))


# --- the audit log, read as sentences -----------------------------------------------------------
# What names a subject in a sentence: its reference or number, looked up for a whole page in one
# statement per kind; other kinds are named by a noun and their id.
SUBJECT_REFERENCES = {"Customer": Customer.reference, "Booking": Booking.reference,
                      "Invoice": Invoice.number, "CreditNote": CreditNote.number}
SUBJECT_NOUNS = {"Note": "a note", "User": "staff user", "BlockedEmail": "e-mail block",
                 "BusinessProfile": "the business details", "Payment": "payment",
                 "PortalAccount": "portal account", "Contact": "contact", "Tag": "tag"}


def _subject_refs(events) -> dict:
    """(subject type, id) -> the ``Ref`` a sentence names it by, for a page of events."""
    wanted: dict[str, set[int]] = {}
    for event in events:
        if event.subject_id is not None:
            wanted.setdefault(event.subject_type, set()).add(event.subject_id)
    refs = {}
    for kind, keys in wanted.items():
        column = SUBJECT_REFERENCES.get(kind)
        found = dict(db.session.execute(
            select(column.class_.id, column).where(column.class_.id.in_(keys))).all()) \
            if column is not None else {}
        for key in keys:
            if found.get(key):
                text = found[key]
            elif kind == "BusinessProfile":
                text = SUBJECT_NOUNS[kind]
            else:
                noun = SUBJECT_NOUNS.get(kind, re.sub(r"(?<!^)(?=[A-Z])", " ", kind).lower())
                text = f"{noun} #{key}" if not noun.startswith("a ") else noun
            refs[(kind, key)] = Ref(text, kind, key)
    return refs


def _actor_names(events) -> dict[int, str]:
    keys = {e.actor_id for e in events if e.actor_id is not None}
    if not keys:
        return {}
    return dict(db.session.execute(select(User.id, User.name).where(User.id.in_(keys))).all())


def _page_context(events) -> dict:
    """The subjects' references and the actors' names of the events a page shows, looked up
    once for the page (two or three statements, whatever the page size)."""
    key = "_audit_page"
    known = g.get(key)
    ids = tuple(e.id for e in events)
    if known is None or known["ids"] != ids:
        known = {"ids": ids, "subjects": _subject_refs(events), "actors": _actor_names(events)}
        setattr(g, key, known)
    return known


def _actor(event, names: dict) -> Ref | str:
    if event.actor_id is not None:
        return Ref(names.get(event.actor_id) or event.actor_label, "User", event.actor_id)
    return {"system": "The system"}.get(event.actor_label, event.actor_label)


def audit_sentence(view, event, events) -> Markup:
    """"Dana Fresh set C-000012 dormant", each record named a link where the role has its
    page; a merge also offers its undo page."""
    page = _page_context(events)
    subject = page["subjects"].get((event.subject_type, event.subject_id))
    parts = sentence(event, view.role, subject=subject, actor=_actor(event, page["actors"]))
    if parts is None:  # a money event for a role without money (the log is owners' and admins')
        return Markup("")
    text = parts_html(view.role, parts)
    merge_id = (event.details or {}).get("merge_id")
    if event.verb == "merge" and merge_id and view.can("merge"):
        link = url_for(f"customer_{view.role}.undo_merge_view", merge_id=merge_id)
        text += Markup(' <a href="{}" data-testid="audit-undo">Undo…</a>').format(link)
    return text


def _sentence_cell(view, context, model, name):
    return audit_sentence(view, model, context.get("data") or [model])


def _readable_details(view, context, model, name):
    """What the event holds, as label: value lines (never its JSON): field names by their
    labels, lists joined."""
    lines = []
    for key, value in (model.details or {}).items():
        if isinstance(value, dict):
            value = "; ".join(f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}"
                              for k, v in value.items())
        elif isinstance(value, list):
            value = ", ".join(field_label(v) if key == "fields" else str(v) for v in value) \
                or "none"
        lines.append(Markup("<div><dt>{}</dt> <dd>{}</dd></div>").format(
            key.replace("_", " ").capitalize(), value))
    return Markup('<dl class="audit-details">{}</dl>').format(Markup("").join(lines)) \
        if lines else "—"


def _local_midnight(day: date) -> datetime:
    """The stored (naive UTC) time at which ``day`` begins in the business's time zone."""
    zone = ZoneInfo(current_app.config["CRM_TIMEZONE"])
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC).replace(tzinfo=None)


class _DayFilter(sqla_filters.BaseSQLAFilter):
    """A day typed as every page shows it ("4 Dec 2026", or 2026-12-04, or 4/12/2026), as the
    business's calendar has it; anything else is ignored, never an error."""

    def validate(self, value) -> bool:
        try:
            self.clean(value)
        except (ValueError, TypeError, OverflowError):
            return False
        return True

    def clean(self, value) -> date:
        day = parse_day(str(value)[:40])
        if sane_date(day) is None:
            raise ValueError("out of range")
        return day


class OnOrAfter(_DayFilter):
    def apply(self, query, value, alias=None):
        return query.filter(self.get_column(alias) >= _local_midnight(value))

    def operation(self):
        return "on or after"


class OnOrBefore(_DayFilter):
    def apply(self, query, value, alias=None):
        return query.filter(self.get_column(alias) < _local_midnight(value + timedelta(days=1)))

    def operation(self):
        return "on or before"


def _verb_options():
    return sorted(((verb, name) for verb, name in VERB_NAMES.items()), key=lambda o: o[1])


class StaffFilter(IntEqual):
    """Who did it, chosen from the staff by name. Flask-Admin reads a filter's options once,
    when the view is made; the staff change, so the view asks again on each page."""

    def __init__(self, column, name):
        super().__init__(column, name, options=(("", ""),))

    @staticmethod
    def staff_options() -> list[tuple[str, str]]:
        return [(str(key), name or email) for key, name, email in db.session.execute(
            select(User.id, User.name, User.email).order_by(User.name, User.email)).all()]


RECORD_KINDS = (("Customer", "Customer"), ("Invoice", "Invoice"), ("CreditNote", "Credit note"),
                ("Payment", "Payment"), ("Booking", "Booking"), ("Note", "Note"),
                ("User", "Staff user"), ("BlockedEmail", "E-mail block"),
                ("BusinessProfile", "Business details"))


class AuditEventView(CrmModelView):
    """The audit log as sentences ("Dana Fresh set 12 customers dormant"), newest first,
    filtered by what was done, who did it, the days and the kind of record; each record it
    names links to its page. The details page shows what the event holds as lines."""

    capability = "audit_log"
    model_class = AuditEvent
    list_template = "admin/audit_event/list.html"
    can_create = False
    can_edit = False
    can_delete = False
    column_list = ["created_at", "sentence"]
    column_details_list = ["created_at", "sentence", "actor_label", "verb", "subject_type",
                           "subject_id", "details"]
    column_export_list = ["created_at", "actor_label", "verb", "subject_type", "subject_id",
                          "details"]
    form_columns = []
    column_sortable_list = ["created_at"]
    column_searchable_list = ["actor_label", "verb"]
    column_filters = [
        sqla_filters.FilterEqual(AuditEvent.verb, "What was done", options=_verb_options),
        StaffFilter(AuditEvent.actor_id, "Who"),
        OnOrAfter(AuditEvent.created_at, "Day"),
        OnOrBefore(AuditEvent.created_at, "Day"),
        sqla_filters.FilterEqual(AuditEvent.subject_type, "Kind of record", options=RECORD_KINDS),
        IntEqual(AuditEvent.subject_id, "Record id"),
        sqla_filters.FilterLike(AuditEvent.actor_label, "Sign-in e-mail or system"),
    ]
    column_default_sort = ("created_at", True)
    column_labels = {"created_at": "When", "sentence": "What happened", "actor_label": "Who",
                     "verb": "Verb", "subject_type": "Record", "subject_id": "Id"}
    column_formatters = {"sentence": _sentence_cell}
    column_formatters_detail = {"sentence": _sentence_cell, "details": _readable_details,
                                "verb": lambda v, c, m, n: verb_name(m.verb)}
    column_formatters_export = {"details": lambda v, c, m, n: str(m.details)}

    def _get_filter_groups(self):
        groups = super()._get_filter_groups()
        for items in (groups or {}).values():
            for item in items:
                if isinstance(self._filters[item["index"]], StaffFilter):
                    item["options"] = StaffFilter.staff_options()
        return groups
