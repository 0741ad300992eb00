"""What every admin view shares: sign-in and role checks, column gating, paging without
exact counts, streaming formula-safe export, optimistic locking and the audit trail.

Column gating is declared once, in ``GATES`` below. Flask-Admin computes its column
settings once, when a view is built, so the gating cannot be a per-request trick (it would
leak through details, forms, export, filters, search, sorting or inline edit, or race between
threads). Instead ``role_views`` builds one view instance per role from a single spec class,
with every surface allow-listed and then stripped of what that role may not see.
"""

from datetime import date
from decimal import Decimal

from flask import abort, current_app, flash, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_admin.contrib.sqla import ModelView
from flask_admin.model.typefmt import DETAIL_FORMATTERS
from flask_login import current_user
from sqlalchemy import func, inspect, nulls_last, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from wtforms import HiddenField
from wtforms.validators import ValidationError

from crm.actions import ActionError
from crm.admin_views.filters import FilterConverter
from crm.extensions import db
from crm.ledger import LedgerError
from crm.models import ROLES
from crm.models.audit import record

FINANCE = frozenset({"owner", "admin"})
STAFF = frozenset(ROLES)

# Column -> the roles that may see it, on every surface. One declaration for the whole panel.
GATES: dict[str, frozenset[str]] = {
    "Customer.balance": FINANCE,
    "Customer.account_credit": FINANCE,
    "Customer.overdue_amount": FINANCE,
    "Customer.oldest_overdue_on": FINANCE,
    "Customer.overdue_days": FINANCE,
    "Customer.next_due_on": FINANCE,
    "Customer.ledger_as_of": FINANCE,
    "Customer.creditor_days": FINANCE,
    "Customer.price_book": FINANCE,
    "Customer.third_party_reference": FINANCE,
    "Booking.value": FINANCE,
}

SURFACES = (
    "column_list",
    "column_details_list",
    "column_export_list",
    "form_columns",
    "column_sortable_list",
    "column_searchable_list",
    "column_filters",
)
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
STALE_MESSAGE = (
    "Someone else changed this record while you were editing it. Nothing was saved: "
    "reload the page to see their changes, then apply yours again."
)


# Constraint name fragments -> what to tell the user (never the SQL).
INTEGRITY_MESSAGES = {
    "uq_contact_primary_per_customer": "A customer can have only one primary contact.",
    "uq_user_email": "A staff user with that e-mail already exists.",
    "user.email": "A staff user with that e-mail already exists.",
    "portal_account.customer_id": "That customer already has a portal account.",
    "uq_portal_account_customer_id": "That customer already has a portal account.",
    "portal_account.email": "A portal account with that e-mail already exists.",
    "uq_portal_account_email": "A portal account with that e-mail already exists.",
    "uq_tag_name": "A tag with that name already exists.",
    "tag.name": "A tag with that name already exists.",
    "FOREIGN KEY": "Other records still refer to this one, so it cannot be removed.",
    "foreign key": "Other records still refer to this one, so it cannot be removed.",
}


def integrity_message(exc: IntegrityError) -> str:
    text = str(exc.orig)
    for fragment, message in INTEGRITY_MESSAGES.items():
        if fragment in text:
            return message
    return "That change conflicts with other records (a duplicate or a broken link); nothing was saved."


MAX_ID = 2**31 - 1  # PostgreSQL's integer: a larger id can name no row


def record_id(value) -> int:
    """A primary key from a request, for ``request.args.get("id", type=record_id)``: digits
    only and within the column's range; anything else raises ValueError (so Flask gives
    None), never a database overflow."""
    text = str(value).strip()
    if not text.isdigit() or not 0 < int(text) <= MAX_ID:
        raise ValueError(f"not a record id: {text[:20]!r}")
    return int(text)


def record_ids(values) -> list[int]:
    """The valid ids among ``values``, first occurrence order, without repeats."""
    found: dict[int, None] = {}
    for value in values:
        try:
            found[record_id(value)] = None
        except ValueError:
            continue
    return list(found)


def run_action(fn, /, **kwargs):
    """Run one action for the signed-in user in the request's transaction: commit what it
    did and return ``(result, None)``, or roll everything back and return ``(None, message)``
    with a sentence for the user. The one place a view turns an action into a commit."""
    try:
        result = fn(db.session, actor=current_user._get_current_object(), **kwargs)
        db.session.commit()
    except (ActionError, LedgerError) as exc:
        db.session.rollback()
        return None, str(exc)
    except StaleDataError:
        db.session.rollback()
        return None, STALE_MESSAGE
    except IntegrityError as exc:
        db.session.rollback()
        return None, integrity_message(exc)
    return result, None


def allowed(model_name: str, column: str, role: str) -> bool:
    return role in GATES.get(f"{model_name}.{column}", STAFF)


def neutralise_formula(value):
    """Spreadsheets run cells that start with = + - @ tab or CR: make them plain text."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def money_format(_view, value, _name=None) -> str:
    return f"{value:,.2f}"


def _item_name(item) -> str:
    """The column a surface entry refers to: 'name', ('name', attr), attr or a filter."""
    if isinstance(item, str):
        return item
    if isinstance(item, tuple):
        return item[0]
    column = getattr(item, "column", item)
    return getattr(column, "key", None) or getattr(column, "name", None) or str(column)


class CrmModelView(ModelView):
    """A spec: configure it like any ModelView, with every surface listed explicitly.

    ``roles`` says who gets the view at all; ``create_roles``/``edit_roles``/``delete_roles``
    narrow what they may do. ``role_views`` turns the spec into one view per role.
    """

    roles: frozenset[str] = STAFF
    create_roles: frozenset[str] | None = None
    edit_roles: frozenset[str] | None = None
    delete_roles: frozenset[str] | None = None
    role: str = ""
    slug: str = ""

    page_size = 20
    can_set_page_size = True
    page_size_options = (20, 50, 100)
    can_view_details = True
    can_export = True
    export_types = ["csv"]
    export_max_rows = 0
    column_display_pk = False
    column_auto_select_related = True
    column_type_formatters = {
        **ModelView.column_type_formatters,
        Decimal: money_format,
    }
    column_type_formatters_detail = {
        **DETAIL_FORMATTERS,
        Decimal: money_format,
    }
    column_type_formatters_export = {
        type(None): lambda view, value, name=None: "",
        Decimal: lambda view, value, name=None: str(value),
        date: lambda view, value, name=None: value.isoformat(),
    }
    column_default_sort = ("id", True)
    # Sorting these columns ascending means sorting the stored column descending.
    inverted_sorts: dict[str, object] = {}
    count_cap: int = 10_000
    # An index that serves the default order of base_query(); used as a hint on SQLite.
    default_order_index: str | None = None
    list_template = "admin/crm/list.html"
    details_template = "admin/crm/details.html"
    edit_template = "admin/crm/edit.html"
    create_template = "admin/crm/create.html"

    # (later field, earlier field, message): checked with the form, shown next to the field.
    field_order_rules: tuple = ()
    filter_converter = FilterConverter()

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

    # --- access -----------------------------------------------------------------------
    def is_accessible(self) -> bool:
        return bool(current_user.is_authenticated and current_user.role == self.role)

    def is_visible(self) -> bool:
        return self.is_accessible()

    def inaccessible_callback(self, name, **kwargs):
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        # A link copied from a colleague with another role: open the same page in this
        # user's own view of the model, if the role has one.
        prefix = f"/admin/{self.role}/"
        own = f"/admin/{current_user.role}/"
        target = request.full_path.rstrip("?")
        if target.startswith(prefix) and self.slug in _slugs_for(current_user.role):
            return redirect(own + target[len(prefix):])
        abort(403)

    def get_list_row_actions(self):
        """View and edit per row; delete lives on the record's page and in the bulk actions
        (a per-row delete form with its CSRF token was half the list's rendering time)."""
        from flask_admin.model.template import DeleteRowAction

        return [a for a in super().get_list_row_actions() if not isinstance(a, DeleteRowAction)]

    # Bulk action name -> the roles that may run it (DESIGN §4); absent means every role that
    # has the view. Checked again inside every endpoint that runs an action.
    action_roles: dict[str, frozenset[str]] = {}

    def is_action_allowed(self, name: str) -> bool:
        if name == "delete" and not self.can_delete:
            return False
        if self.role not in self.action_roles.get(name, STAFF):
            return False
        return self.is_accessible() and super().is_action_allowed(name)

    @expose("/action/", methods=("POST",))
    def action_view(self):
        """A bulk action this role may not run is refused outright (403), not bounced back to
        the list as if nothing had been asked."""
        name = request.form.get("action", "")
        if name in self._actions_data and not self.is_action_allowed(name):
            abort(403)
        return super().action_view()

    # --- queries ----------------------------------------------------------------------
    def base_query(self):
        """What this view may ever show; ``get_query``, counts and ``get_one`` build on it."""
        return db.session.query(self.model)

    # Relationships loaded with each page of rows (one extra statement each, whatever the
    # page size); many-to-one columns of column_list are added automatically.
    eager: tuple = ()
    details_eager: tuple = ()

    def eager_options(self) -> list:
        from sqlalchemy.orm import selectinload

        attrs = list(dict.fromkeys([*self._auto_joins, *self.eager]))
        return [selectinload(attr) for attr in attrs]

    def get_query(self):
        return self.base_query()

    def get_count_query(self):
        return self.base_query().with_entities(func.count(self.model.id))

    def get_one(self, id):
        try:
            key = record_id(id)
        except ValueError:
            return None
        from sqlalchemy.orm import selectinload

        options = [*self.eager_options(), *(selectinload(a) for a in self.details_eager)]
        return self.base_query().options(*options).filter(self.model.id == key).one_or_none()

    def _list_query(self, sort_column, sort_desc, search, filters):
        joins: dict = {}
        query = self.base_query()
        if self._search_supported and search:
            query, _, joins, _ = self._apply_search(query, None, joins, {}, search)
        if filters and self._filters:
            query, _, joins, _ = self._apply_filters(query, None, joins, {}, filters)
        unsorted = query
        if sort_column not in self._sortable_columns:
            sort_column = None  # a forged ?sort= on a column that is not sortable here
        newest_first = self.search_order(search) if search and sort_column is None else None
        if newest_first is not None:
            # a search in the default order: the order its index gives (no sort of matches)
            return unsorted, query.order_by(newest_first)
        if sort_column in self.inverted_sorts:
            # e.g. "overdue for" (an age) sorts its date the other way; rows without one last.
            column = self.inverted_sorts[sort_column]
            descending = not sort_desc
            query = query.order_by(nulls_last(column.desc() if descending else column.asc()))
        else:
            query, joins = self._apply_sorting(query, joins, sort_column, sort_desc)
            descending = sort_desc if sort_column is not None else self._default_descending()
            if sort_column is None and not search and not filters and self.default_order_index:
                # SQLite walks the whole table in rowid order for a deep page of the default
                # order (25 ms at page 10,000 of 1M) where the covering index takes 9 ms.
                query = query.with_hint(
                    self.model, f"INDEXED BY {self.default_order_index}", "sqlite"
                )
        # A unique tie-break in the same direction: stable pages, and the (column, id) index.
        return unsorted, query.order_by(self.model.id.desc() if descending else self.model.id)

    def _default_descending(self) -> bool:
        default = self.column_default_sort
        if isinstance(default, list):
            default = default[0] if default else None
        return bool(default[1]) if isinstance(default, tuple) else False

    def search_order(self, search: str):
        """An ORDER BY that the search's own index delivers, for the default order; or None."""
        return None

    def capped_count(self, query) -> int | None:
        """The number of matches up to ``count_cap``; None past it (the pager then shows
        previous/next only). An exact count of a million rows costs more than the page."""
        inner = query.with_entities(self.model.id).order_by(None).limit(self.count_cap + 1)
        count = db.session.execute(select(func.count()).select_from(inner.subquery())).scalar()
        return None if count > self.count_cap else count

    def get_list(self, page, sort_column, sort_desc, search, filters, execute=True,
                 page_size=None):
        unsorted, query = self._list_query(sort_column, sort_desc, search, filters)
        count = self.capped_count(unsorted)
        query = self._apply_pagination(query, page, page_size)
        if not execute:
            return count, query
        # Deferred join: page through ids alone (an index-only walk), then load 20 rows.
        ids = [row[0] for row in query.with_entities(self.model.id).all()]
        if not ids:
            return count, []
        rows = (
            self.base_query()
            .options(*self.eager_options())
            .filter(self.model.id.in_(ids))
            .all()
        )
        position = {key: index for index, key in enumerate(ids)}
        return count, sorted(rows, key=lambda row: position[row.id])

    # --- export: streamed, eager-loaded, formula-safe ----------------------------------
    def _export_data(self):
        view_args = self._get_list_extra_args()
        sort = self._get_column_by_idx(view_args.sort)
        _, query = self._list_query(
            sort[0] if sort else None, view_args.sort_desc, view_args.search, view_args.filters
        )
        query = query.options(*self.eager_options())
        if self.export_max_rows:
            query = query.limit(self.export_max_rows)
        return None, query.yield_per(1000)

    def get_export_value(self, model, name):
        value = super().get_export_value(model, name)
        if isinstance(getattr(model, name, None), Decimal | int | date):
            return value  # a number or a date, typed by us: -12.50 stays a number
        return neutralise_formula(value)

    # --- forms: optimistic locking ------------------------------------------------------
    def scaffold_form(self):
        form_class = super().scaffold_form()
        if "version" in self.model.__table__.c:
            form_class.edit_version = HiddenField()
        return form_class

    def edit_form(self, obj=None):
        form = super().edit_form(obj)
        if obj is not None and hasattr(form, "edit_version") and request.method == "GET":
            form.edit_version.data = str(obj.version)
        return form

    def update_model(self, form, model) -> bool:
        if hasattr(form, "edit_version"):
            seen = form.edit_version.data
            del form.edit_version
            if seen and seen != str(model.version):
                flash(STALE_MESSAGE, "error")
                return False
        return super().update_model(form, model)

    def create_model(self, form):
        if hasattr(form, "edit_version"):
            del form.edit_version
        return super().create_model(form)

    def handle_view_exception(self, exc):
        if isinstance(exc, StaleDataError):
            flash(STALE_MESSAGE, "error")
            return True
        if isinstance(exc, LedgerError):
            flash(str(exc), "error")
            return True
        if isinstance(exc, IntegrityError):
            flash(integrity_message(exc), "error")
            return True
        return super().handle_view_exception(exc)

    # --- audit ------------------------------------------------------------------------
    # Rows that hang off a customer (contacts, notes, ...) cannot be added to or edited on a
    # redacted customer: that would bring personal data back.
    guard_redacted = False

    def _refuse_redacted(self, model) -> None:
        with db.session.no_autoflush:
            customer = getattr(model, "customer", None)
            address = getattr(model, "work_address", None)
            if customer is None and address is not None:
                customer = address.customer
        if customer is not None and customer.redacted_at is not None:
            raise ValidationError(
                f"{customer.reference} has been redacted: its records can no longer be "
                "added to or changed."
            )

    def on_model_change(self, form, model, is_created):
        if self.guard_redacted:
            self._refuse_redacted(model)
        db.session.flush()
        changed = sorted(
            attr.key
            for attr in inspect(model).attrs
            if attr.key in self.model.__table__.c and attr.history.has_changes()
            and attr.key not in ("version", "updated_at", "created_at", "search_text")
        )
        record(
            db.session,
            actor=current_user._get_current_object(),
            verb="create" if is_created else "update",
            subject_type=self.model.__name__,
            subject_id=model.id,
            details={"fields": changed},
        )

    def on_model_delete(self, model):
        record(
            db.session,
            actor=current_user._get_current_object(),
            verb="delete",
            subject_type=self.model.__name__,
            subject_id=model.id,
        )


class RolePage(BaseView):
    """A page of the panel that is not a model view (possible duplicates, the outbox): one
    instance per role, like the model views, open to its own role only — and to ``roles``
    among them. Signed out: to the sign-in page; another role: 403."""

    role: str = ""
    roles: frozenset[str] = STAFF

    def is_accessible(self) -> bool:
        return bool(current_user.is_authenticated and current_user.role == self.role
                    and self.role in self.roles)

    def is_visible(self) -> bool:
        return self.is_accessible()

    def inaccessible_callback(self, name, **kwargs):
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        abort(403)


def _slugs_for(role: str) -> set[str]:
    return current_app.extensions.get("crm_role_slugs", {}).get(role, set())


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
        allowed_roles = getattr(spec, f"{verb}_roles")
        if allowed_roles is not None and role not in allowed_roles:
            attrs[f"can_{verb}"] = False
    return attrs


def role_views(spec: type[CrmModelView], *, name: str, category: str, slug: str) -> list:
    """One view instance per role of ``spec``, each at /admin/<role>/<slug>/."""
    views = []
    for role in sorted(spec.roles):
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
