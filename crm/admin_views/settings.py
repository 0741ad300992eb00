"""Settings menu: staff users, blocked e-mails and the audit log (portal accounts: portal.py)."""

from flask import abort, flash, redirect, request
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.contrib.sqla import filters as sqla_filters
from flask_login import current_user
from wtforms import PasswordField, SelectField, StringField
from wtforms.validators import InputRequired, Length, Optional

from crm.actions.staff import check_staff_change, check_staff_delete, roles_managed_by
from crm.admin_views.access import require
from crm.admin_views.adapters import record_id, record_ids, run_action
from crm.admin_views.forms import Email, choices
from crm.admin_views.spec import CrmModelView
from crm.extensions import db
from crm.models import AuditEvent, BlockedEmail, User
from crm.models.comms import BLOCK_REASON_LABELS, BLOCK_REASONS
from crm.permissions import ROLES
from crm.security import MIN_PASSWORD_LENGTH


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


def _audit_details(view, context, model, name):
    """The details as stored; a merge entry also offers its undo page (within 30 days)."""
    from flask import url_for
    from markupsafe import Markup

    text = str(model.details or {})
    merge_id = (model.details or {}).get("merge_id")
    if model.verb == "merge" and merge_id:
        link = url_for(f"customer_{view.role}.undo_merge_view", merge_id=merge_id)
        return Markup('{} <a href="{}" data-testid="audit-undo">Undo…</a>').format(text, link)
    return text


class AuditEventView(CrmModelView):
    capability = "audit_log"
    model_class = AuditEvent
    can_create = False
    can_edit = False
    can_delete = False
    column_list = ["created_at", "actor_label", "verb", "subject_type", "subject_id", "details"]
    column_details_list = column_list
    column_export_list = column_list
    form_columns = []
    column_sortable_list = ["created_at", "verb", "subject_type"]
    column_searchable_list = ["actor_label", "verb"]
    column_filters = ["verb", "subject_type", "subject_id", "actor_label", "created_at"]
    column_default_sort = ("created_at", True)
    column_labels = {"actor_label": "Who", "subject_type": "Record", "subject_id": "Id"}
    column_formatters = {"details": _audit_details}
    column_formatters_export = {"details": lambda v, c, m, n: str(m.details)}
