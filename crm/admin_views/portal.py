"""The portal seen from the panel: Settings → Portal accounts (status, invited, activated and
last sign-in times; invite again, revoke) and Money → Portal queries (the customers'
questions about invoices, open first; answer one and the customer reads the answer on the
invoice page). Invitations are sent from the customer list or record page (the
"Send portal invite" verb), or by ``flask crm portal-invite``."""

from datetime import datetime

from flask import abort, flash, redirect, request
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.contrib.sqla import filters as sqla_filters
from markupsafe import Markup

from crm.admin_views.access import require
from crm.admin_views.adapters import record_id, record_ids, run_action
from crm.admin_views.formatters import customer_link, export_str
from crm.admin_views.spec import CrmModelView
from crm.extensions import db
from crm.models import Note, PortalAccount


def _when(view, value, name=None) -> str:
    """A time to the minute, as the record page's portal line shows it (not to the
    microsecond)."""
    return value.strftime("%-d %b %Y %H:%M")


class _PortalScreen(CrmModelView):
    column_type_formatters = {**CrmModelView.column_type_formatters, datetime: _when}
    column_type_formatters_detail = {**CrmModelView.column_type_formatters_detail,
                                     datetime: _when}


def _status(view, context, model, name):
    css = {"active": "success", "invited": "info", "disabled": "secondary"}[model.status]
    return Markup('<span class="badge badge-{}">{}</span>').format(css, model.status)


class PortalAccountView(_PortalScreen):
    capability = "portal_invite"
    model_class = PortalAccount
    can_create = False  # an account is made by inviting the customer
    can_edit = False  # its e-mail follows the customer's at the next invitation
    can_delete = False  # revoke it instead: its history stays
    column_list = ["email", "customer", "status", "invited_at", "activated_at", "last_login_at"]
    column_details_list = column_list + ["created_at", "updated_at"]
    column_export_list = column_list
    form_columns = []
    column_sortable_list = ["email", "invited_at", "last_login_at"]
    column_searchable_list = ["email"]
    # Disabled: revoked (or closed). "First signed in" empty: invited, no password chosen yet.
    column_filters = ["disabled", "activated_at", "invited_at", "last_login_at"]
    column_default_sort = ("invited_at", True)
    column_labels = {"invited_at": "Invited", "activated_at": "First signed in",
                     "last_login_at": "Last signed in"}
    column_formatters = {"customer": customer_link, "status": _status}
    column_formatters_export = {"customer": export_str("customer"),
                                "status": lambda v, c, m, n: m.status}
    details_template = "admin/portal/account.html"
    action_capabilities = {"revoke": "portal_invite"}
    eager = (PortalAccount.customer,)

    @action("revoke", "Revoke",
            "Revoke the selected portal accounts? Their sessions end at once.")
    def action_revoke(self, ids):
        from crm.actions.portal_access import revoke

        for key in record_ids(ids):
            result, error = run_action(revoke, account_id=key)
            flash(error or result.message, "error" if error else "success")

    @expose("/revoke/", methods=("POST",))
    @require("portal_invite")
    def revoke_view(self):
        from crm.actions.portal_access import revoke

        key = request.form.get("id", type=record_id)
        account = db.session.get(PortalAccount, key) if key else None
        if account is None:
            abort(404)
        result, error = run_action(revoke, account_id=key)
        flash(error or result.message, "error" if error else "success")
        back = request.form.get("back") == "customer"
        return redirect(f"/admin/{self.role}/customer/details/?id={account.customer_id}" if back
                        else self.get_url(".details_view", id=key))


def _invoice(view, context, model, name):
    if model.invoice is None:
        return ""
    return Markup('<a class="text-nowrap" href="{}">{}</a>').format(
        view.get_url(f"invoice_{view.role}.details_view", id=model.invoice_id),
        model.invoice.number)


def _answered(view, context, model, name):
    if model.answered_at is None:
        return Markup('<span class="badge badge-warning">open</span>')
    return Markup('<span class="badge badge-success">answered</span>')


class AnsweredFilter(sqla_filters.BaseSQLAFilter):
    def __init__(self):
        super().__init__(Note.answered_at, "Status", options=(("open", "Open"),
                                                              ("answered", "Answered")))

    def apply(self, query, value, alias=None):
        if value == "answered":
            return query.filter(Note.answered_at.is_not(None))
        return query.filter(Note.answered_at.is_(None))

    def operation(self):
        return "is"


class PortalQueryView(_PortalScreen):
    """Customers' questions about invoices (money: owners and admins)."""

    capability = "see_money"
    model_class = Note
    can_create = can_edit = can_delete = False
    column_list = ["created_at", "customer", "invoice", "body", "status", "answered_at"]
    column_details_list = ["created_at", "customer", "invoice", "body", "status", "reply",
                           "answered_at", "answered_by"]
    column_export_list = ["created_at", "customer", "invoice", "body", "reply", "answered_at"]
    form_columns = []
    column_sortable_list = ["created_at"]
    column_searchable_list = ["body"]
    column_filters = [AnsweredFilter(), "created_at"]
    column_default_sort = ("created_at", True)
    column_labels = {"created_at": "Asked", "body": "Question", "answered_at": "Answered"}
    column_formatters = {"customer": customer_link, "invoice": _invoice, "status": _answered}
    column_formatters_export = {"customer": export_str("customer"),
                                "invoice": export_str("invoice")}
    details_template = "admin/portal/query.html"
    eager = (Note.customer, Note.invoice)
    details_eager = (Note.answered_by,)

    def base_query(self):
        return db.session.query(Note).filter(Note.kind == "portal")

    def _list_query(self, sort_column, sort_desc, search, filters):
        """In the default order the open questions come first (newest first), then the
        answered ones: an old unanswered question is not buried under answered ones."""
        unsorted, query = super()._list_query(sort_column, sort_desc, search, filters)
        if sort_column not in self._sortable_columns and not search:
            query = query.order_by(None).order_by(
                Note.answered_at.is_not(None), Note.created_at.desc(), Note.id.desc())
        return unsorted, query

    @expose("/answer/", methods=("POST",))
    @require("see_money")
    def answer_view(self):
        from crm.actions.portal_queries import answer_query

        key = request.form.get("id", type=record_id)
        if key is None or self.get_one(str(key)) is None:
            abort(404)
        result, error = run_action(answer_query, note_id=key, reply=request.form.get("reply"))
        flash(error or result.message, "error" if error else "success")
        return redirect(self.get_url(".details_view", id=key))
