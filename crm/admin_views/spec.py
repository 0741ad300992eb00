"""The view spec: a per-model view is configured like any Flask-Admin ``ModelView``, with
every surface listed explicitly, and ``role_views`` turns it into one view per role.

Column gating is declared once (``crm.permissions.GATES``). Flask-Admin computes its column
settings when a view is built, so gating cannot be a per-request trick: it would leak through
details, forms, export, filters, search, sorting or inline edit, or race between threads.
``role_views`` builds one subclass per role that may have the view (its ``capability``), with
every surface allow-listed and then stripped of what that role may not see.

Also here: optimistic locking of edit forms (a hidden version; a stale save is refused with a
message), readable errors instead of a 500, and an audit event for every create, update and
delete naming the fields changed (never their values).
"""

import json
import logging
from datetime import date, datetime
from decimal import Decimal

from flask import Response, abort, flash, request
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.contrib.sqla import ModelView
from flask_admin.model.typefmt import DETAIL_FORMATTERS
from flask_login import current_user
from sqlalchemy import inspect
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from wtforms import HiddenField
from wtforms.validators import Length, ValidationError

from crm.actions import ActionError
from crm.actions.guards import ensure_record_not_redacted
from crm.admin_views.access import RoleAccess
from crm.admin_views.adapters import (
    STALE_MESSAGE,
    IdSafeLoader,
    integrity_message,
    record_id,
    record_ids,
)
from crm.admin_views.exports import ExportMixin
from crm.admin_views.filters import FilterConverter
from crm.admin_views.formatters import is_money_column, money_format
from crm.admin_views.forms import CrmModelConverter
from crm.admin_views.list_settings import ListSettingsMixin
from crm.admin_views.paging import PagedList
from crm.extensions import db
from crm.formatting import day, moment
from crm.ledger import LedgerError
from crm.models import Customer
from crm.models.audit import record
from crm.permissions import allowed, can, roles_with

SURFACES = (
    "column_list",
    "column_details_list",
    "column_export_list",
    "form_columns",
    "column_sortable_list",
    "column_searchable_list",
    "column_filters",
)
NOT_AUDITED = ("version", "updated_at", "created_at", "search_text")
AJAX_MAX_OFFSET = 1000
AJAX_MAX_LIMIT = 50
log = logging.getLogger("crm.admin")


def _item_name(item) -> str:
    """The column a surface entry refers to: 'name', ('name', attr), attr or a filter."""
    if isinstance(item, str):
        return item
    if isinstance(item, tuple):
        return item[0]
    column = getattr(item, "column", item)
    return getattr(column, "key", None) or getattr(column, "name", None) or str(column)


class CrmModelView(RoleAccess, ListSettingsMixin, ExportMixin, PagedList, ModelView):
    """A spec: configure it like any ModelView, with every surface listed explicitly.

    ``capability`` says who gets the view at all; ``create_capability``,
    ``edit_capability`` and ``delete_capability`` narrow what they may do with it;
    ``action_capabilities`` names what each ``@action`` of the "With selected" menu needs
    (by default the view's own). All are names in ``crm.permissions.CAPABILITIES``.
    """

    create_capability: str | None = None
    edit_capability: str | None = None
    delete_capability: str | None = None
    action_capabilities: dict[str, str] = {}

    page_size = 20
    can_set_page_size = True
    page_size_options = (20, 50, 100)
    can_view_details = True
    can_export = True  # CSV and XLSX (ExportMixin.export_types)
    export_max_rows = 0
    column_display_pk = False
    column_auto_select_related = True
    # What a person reads: amounts, dates and times through crm.formatting ("£1,234.50",
    # "4 Dec 2026", "4 Dec 2026, 14:05" in the business's time zone). Exports keep raw values.
    column_type_formatters = {
        **ModelView.column_type_formatters,
        Decimal: money_format,
        datetime: lambda view, value, name=None: moment(value),  # before date: a subclass
        date: lambda view, value, name=None: day(value),
    }
    column_type_formatters_detail = {
        **DETAIL_FORMATTERS,
        Decimal: money_format,
        datetime: lambda view, value, name=None: moment(value),  # before date: a subclass
        date: lambda view, value, name=None: day(value),
    }
    column_type_formatters_export = {
        type(None): lambda view, value, name=None: "",
        Decimal: lambda view, value, name=None: str(value),
        date: lambda view, value, name=None: value.isoformat(),
    }
    column_default_sort = ("id", True)
    list_template = "admin/crm/list.html"
    details_template = "admin/crm/details.html"
    edit_template = "admin/crm/edit.html"
    create_template = "admin/crm/create.html"

    # (later field, earlier field, message): checked with the form, shown next to the field.
    field_order_rules: tuple = ()
    filter_converter = FilterConverter()
    model_form_converter = CrmModelConverter  # a date column is typed as "4 Dec 2026"
    # Rows that hang off a customer (contacts, notes, ...) cannot be added to or edited on a
    # redacted customer: that would bring personal data back.
    guard_redacted = False

    def get_sortable_columns(self):
        """Flask-Admin renames ('name', Model.attr) to 'attr'; keep the list column's name."""
        result = super().get_sortable_columns()
        for item in self.column_sortable_list or ():
            if isinstance(item, tuple) and isinstance(item[0], str):
                key = getattr(item[1], "key", None)
                if key and key != item[0] and key in result and key not in self.column_sortable_list:
                    result[item[0]] = result.pop(key)
        return result

    def validate_form(self, form) -> bool:
        ok = super().validate_form(form)
        for later, earlier, message in self.field_order_rules:
            a, b = getattr(form, later, None), getattr(form, earlier, None)
            if a is not None and b is not None and a.data and b.data and a.data < b.data:
                a.errors = [*a.errors, message]
                ok = False
        return ok

    def is_money_column(self, name: str) -> bool:
        """Whether a list column holds amounts (its header is right-aligned like its cells)."""
        cache = self.__dict__.setdefault("_money_columns", {})
        if name not in cache:
            cache[name] = is_money_column(self, name)
        return cache[name]

    def get_list_row_actions(self):
        """View and edit per row; delete lives on the record's page and in the bulk actions
        (a per-row delete form with its CSRF token was half the list's rendering time)."""
        from flask_admin.model.template import DeleteRowAction

        return [a for a in super().get_list_row_actions() if not isinstance(a, DeleteRowAction)]

    # --- the "With selected" menu ----------------------------------------------------------
    def is_action_allowed(self, name: str) -> bool:
        if name == "delete" and not self.can_delete:
            return False
        if not self.can(self.action_capabilities.get(name, self.capability)):
            return False
        return self.is_accessible() and super().is_action_allowed(name)

    @action("delete", "Delete", "Are you sure you want to delete selected records?")
    def action_delete(self, ids):
        """Flask-Admin's, given the selected ids as numbers: PostgreSQL refuses to compare an
        integer key with the strings a form posts (it answered 500), and a forged id names
        no row anyway."""
        return super().action_delete(record_ids(ids))

    @expose("/action/", methods=("POST",))
    def action_view(self):
        """A bulk action this role may not run is refused outright (403), not bounced back to
        the list as if nothing had been asked."""
        name = request.form.get("action", "")
        if name in self._actions_data and not self.is_action_allowed(name):
            abort(403)
        return super().action_view()

    # --- forms: optimistic locking ------------------------------------------------------
    def scaffold_form(self):
        form_class = super().scaffold_form()
        if "version" in self.model.__table__.c:
            form_class.edit_version = HiddenField()
        for name, column in self.model.__table__.c.items():
            limit = column.info.get("max_length")  # a long text's limit (models/base.py)
            field = getattr(form_class, name, None)
            if limit and field is not None:
                field.kwargs["validators"] = [*field.kwargs.get("validators", ()),
                                              Length(max=limit)]
        return form_class

    def create_form(self, obj=None):
        """A new record's form, with its customer or work address already chosen when the
        address names one (``?customer_id=``, ``?work_address_id=``: the record pages' add
        buttons). A work address brings its customer; an unknown, redacted or merged-away
        one is left for the user to pick."""
        form = super().create_form(obj)
        if request.method == "GET":
            prefill(form, self.model)
        return form

    def edit_form(self, obj=None):
        form = super().edit_form(obj)
        if obj is not None and hasattr(form, "edit_version") and request.method == "GET":
            form.edit_version.data = str(obj.version)
        return form

    def update_model(self, form, model) -> bool:
        if hasattr(form, "edit_version"):
            seen = (form.edit_version.data or "").strip()
            del form.edit_version
            # A form without the version it was loaded at cannot show it is current: refused
            # like a stale one, or it would silently revert a colleague's change.
            if seen != str(model.version):
                flash(STALE_MESSAGE, "error")
                return False
        return super().update_model(form, model)

    def create_model(self, form):
        if hasattr(form, "edit_version"):
            del form.edit_version
        return super().create_model(form)

    def handle_view_exception(self, exc):
        """A refusal becomes a sentence on the form; never the database's own text."""
        if isinstance(exc, StaleDataError):
            flash(STALE_MESSAGE, "error")
            return True
        if isinstance(exc, LedgerError):
            flash(str(exc), "error")
            return True
        if isinstance(exc, IntegrityError):
            flash(integrity_message(exc), "error")
            return True
        if isinstance(exc, DBAPIError):  # a value out of range, a busy database, ...
            log.exception("A save was refused by the database")
            flash("The database refused that change (a value out of range, or it was busy); "
                  "nothing was saved. Check the values and try again.", "error")
            return True
        return super().handle_view_exception(exc)

    def _create_ajax_loader(self, name, options):
        """A look-up given as options in ``form_ajax_refs``, reading posted ids safely."""
        remote = getattr(self.model, name).prop.mapper.class_
        return IdSafeLoader(name, db, remote, **options)

    @expose("/ajax/lookup/")
    def ajax_lookup(self):
        """Flask-Admin's look-up, with the page it asks for kept in range (a huge offset or
        limit from the URL overflowed the database)."""
        loader = self._form_ajax_refs.get(request.args.get("name", ""))
        if not loader:
            abort(404)
        offset = min(max(request.args.get("offset", 0, type=int) or 0, 0), AJAX_MAX_OFFSET)
        limit = min(max(request.args.get("limit", 10, type=int) or 10, 1), AJAX_MAX_LIMIT)
        query = request.args.get("query") or ""
        data = [loader.format(m) for m in loader.get_list(query, offset, limit)]
        return Response(json.dumps(data), mimetype="application/json")

    # --- saving: the checks of crm.actions, then the audit trail ----------------------------
    def check(self, fn, /, *args, **kwargs):
        """Run an action-level check (or step) as the form saves and return what it returns:
        its refusal is shown on the form (Flask-Admin shows a ValidationError as a message
        and rolls back)."""
        try:
            return fn(*args, **kwargs)
        except ActionError as exc:
            raise ValidationError(str(exc)) from None

    def on_model_change(self, form, model, is_created):
        if self.guard_redacted:
            self.check(ensure_record_not_redacted, model)
        # Read what changed before the flush: a flush turns every change into "unchanged".
        details = changed_fields(model, self.inline_relations())
        db.session.flush()
        record(
            db.session,
            actor=current_user._get_current_object(),
            verb="create" if is_created else "update",
            subject_type=self.model.__name__,
            subject_id=model.id,
            details=details,
        )

    def inline_relations(self) -> list[str]:
        """The one-to-many relationships this view edits inline (a customer's contacts)."""
        names = []
        for inline in self.inline_models or ():
            child = getattr(inline, "model", inline)
            for rel in inspect(self.model).relationships:
                if rel.mapper.class_ is child:
                    names.append(rel.key)
        return names

    def on_model_delete(self, model):
        record(
            db.session,
            actor=current_user._get_current_object(),
            verb="delete",
            subject_type=self.model.__name__,
            subject_id=model.id,
        )


# Query argument -> the form field (a relationship of the model) it fills in.
PREFILL = {"customer_id": "customer", "work_address_id": "work_address"}


def _open_for_new(row) -> bool:
    """Whether a new record may hang off ``row``: not a redacted or merged-away customer,
    nor a work address of one."""
    owner = row if isinstance(row, Customer) else getattr(row, "customer", None)
    return owner is not None and owner.redacted_at is None and owner.merged_into_id is None


def prefill(form, model) -> None:
    """Fill the relationship fields of a new record's ``form`` named by ``PREFILL`` from the
    request's arguments (ids read safely; a row that is gone or closed is skipped)."""
    chosen = {}
    for arg, name in PREFILL.items():
        field = getattr(form, name, None)
        key = request.args.get(arg, type=record_id)
        relation = inspect(model).relationships.get(name)
        if field is None or key is None or relation is None:
            continue
        row = db.session.get(relation.mapper.class_, key)
        if row is not None and _open_for_new(row):
            field.data = chosen[name] = row
    address = chosen.get("work_address")
    if address is not None and "customer" not in chosen and getattr(form, "customer", None) \
            is not None and hasattr(model, "customer"):
        form.customer.data = address.customer


def _changed_columns(obj) -> list[str]:
    """The columns a save changes; of a new row, those given a value."""
    state = inspect(obj)
    table = state.mapper.local_table.c
    new = not state.has_identity
    return sorted(
        attr.key for attr in state.attrs
        if attr.key in table and attr.key not in NOT_AUDITED and attr.history.has_changes()
        and not (new and attr.value in (None, ""))
    )


def changed_fields(model, relations=()) -> dict:
    """What a form save changed, by name only (never a value): ``{"fields": [...]}``, and for
    each inline relationship that changed, ``{"related": {"contacts": {"added": 1,
    "removed": 0, "fields": ["email"]}}}``."""
    details: dict = {"fields": _changed_columns(model)}
    related = {}
    for name in relations:
        history = inspect(model).attrs[name].history
        # The inline form deletes a child with session.delete(), leaving it in the collection.
        deleted = [c for c in history.unchanged if inspect(c).deleted or c in db.session.deleted]
        kept = [c for c in history.unchanged if c not in deleted]
        fields = sorted({f for child in kept for f in _changed_columns(child)})
        summary = {"added": len(history.added), "removed": len(history.deleted) + len(deleted),
                   "fields": fields}
        if summary["added"] or summary["removed"] or fields:
            related[name] = summary
    if related:
        details["related"] = related
    return details


def _gate(spec: type[CrmModelView], role: str) -> dict:
    """The allow-listed surfaces of ``spec`` with everything ``role`` may not see removed."""
    model_name = spec.model_class.__name__

    def keep(item) -> bool:
        return allowed(model_name, _item_name(item), role)

    attrs: dict = {"role": role}
    for surface in SURFACES:
        value = getattr(spec, surface)
        if value is None:
            raise TypeError(f"{spec.__name__}.{surface} must be listed explicitly")
        attrs[surface] = [item for item in value if keep(item)]
    editable = spec.column_editable_list
    attrs["column_editable_list"] = [i for i in (editable or ()) if keep(i)]
    for surface in ("column_formatters", "column_formatters_export", "column_labels"):
        value = getattr(spec, surface, None)
        value = value if isinstance(value, dict) else {}
        attrs[surface] = {k: v for k, v in value.items() if keep(k)}
    default_sort = spec.column_default_sort
    if isinstance(default_sort, tuple) and not keep(default_sort[0]):
        attrs["column_default_sort"] = ("id", True)
    for verb in ("create", "edit", "delete"):
        needed = getattr(spec, f"{verb}_capability")
        if needed is not None and not can(role, needed):
            attrs[f"can_{verb}"] = False
    return attrs


def role_views(spec: type[CrmModelView], *, name: str, category: str, slug: str) -> list:
    """One view instance per role that has ``spec.capability``, each at /admin/<role>/<slug>/."""
    views = []
    for role in sorted(roles_with(spec.capability)):
        attrs = _gate(spec, role)
        attrs["slug"] = slug
        cls = type(f"{spec.__name__}_{role}", (spec,), attrs)
        views.append(
            cls(
                spec.model_class,
                db,
                name=name,
                category=category,
                endpoint=f"{slug}_{role}",
                url=f"/admin/{role}/{slug}",
            )
        )
    return views
