"""What a list remembers for each staff user: the columns they chose ("Columns" menu) and
their saved filters ("Saved filters" menu), on every list of the panel.

The columns a user may choose are the list columns of their role's own view, which
``spec.role_views`` has already stripped of what the role may not see: a forged POST naming
a money column on a coordinator's list is refused, and a preference naming a column that is
not offered (any more) is ignored when the list is drawn. Columns not chosen are not
rendered at all (``shown_columns``); the header keeps Flask-Admin's column numbers, so
``?sort=N`` means the same with any choice.

A saved filter is only ever a query string made by ``crm.actions.list_settings.list_query``
from the arguments this list knows (search, sort, page size, its own filters with values
they accept), opened at the list's own address: it cannot lead anywhere else.

The user's settings for a list cost one statement per page (both kinds in one UNION).
"""

import json
import re
from urllib.parse import parse_qsl

from flask import flash, g, redirect, request
from flask_admin import expose
from flask_login import current_user
from sqlalchemy import Text, cast, literal_column, null, select, union_all

from crm.actions.list_settings import (
    choose_columns,
    delete_filter,
    list_query,
    reset_columns,
    save_filter,
)
from crm.admin_views.adapters import record_id, run_action
from crm.extensions import db
from crm.models.settings import ListPreference, SavedFilter

FILTER_ARG = re.compile(r"^flt\d{1,2}_(\w{1,40})$")
INDENT = re.compile(r"\n\s+")  # a line break and the blanks and empty lines after it
COMMENT = re.compile(r"<!--(?!\[).*?-->", re.S)  # HTML comments (not conditional ones)


class ListSettingsMixin:
    """Mixed into every model view (``spec.CrmModelView``)."""

    # The columns shown to a user who chose none (in the list's order); None: all of them.
    # Names the view's role may not see are left out with the rest of the gated surface.
    default_columns: tuple[str, ...] | None = None

    # The count line's noun, one and many ("1,906 customers"); None: "matches".
    count_nouns: tuple[str, str] | None = None

    # Extra classes of the list's table (lists.css: "reminder-cards" on a phone).
    list_table_class: str = ""

    # --- what the list shows --------------------------------------------------------------
    def choosable_columns(self) -> list[tuple[str, str]]:
        """(name, label) of every column this role's list can show, in the list's order."""
        return list(self._list_columns)

    def default_column_names(self) -> list[str]:
        names = [name for name, _ in self._list_columns]
        if self.default_columns is None:
            return names
        return [name for name in names if name in self.default_columns] or names

    def shown_columns(self) -> set[str]:
        """The columns drawn for the signed-in user: their choice, or the defaults."""
        names = {name for name, _ in self._list_columns}
        chosen = [c for c in self._user_settings()["columns"] or () if c in names]
        return set(chosen or self.default_column_names())

    def columns_are_chosen(self) -> bool:
        return bool(self._user_settings()["columns"])

    def saved_filters(self) -> list[dict]:
        return self._user_settings()["filters"]

    def saved_filter_url(self, saved: dict) -> str:
        return f"{self.get_url('.index_view')}?{saved['query']}"

    def current_list_query(self) -> str:
        """This page's list query as a saved filter would keep it ('' when there is none)."""
        return list_query(request.args.items(multi=True), known=self.known_list_argument)

    def _user_settings(self) -> dict:
        """Both kinds of the user's settings for this list, in one statement per request."""
        key = f"list_settings_{self.endpoint}"
        if key in g:
            return g.get(key)
        settings: dict = {"columns": None, "filters": []}
        if current_user.is_authenticated:
            columns = select(literal_column("'columns'").label("kind"),
                             literal_column("0").label("id"),
                             cast(null(), Text).label("name"),
                             cast(ListPreference.columns, Text).label("value")).where(
                ListPreference.user_id == current_user.id, ListPreference.view == self.slug)
            filters = select(literal_column("'filter'"), SavedFilter.id,
                             cast(SavedFilter.name, Text), cast(SavedFilter.query, Text)).where(
                SavedFilter.user_id == current_user.id, SavedFilter.view == self.slug)
            for kind, key_, name, value in db.session.execute(union_all(columns, filters)):
                if kind == "columns":
                    settings["columns"] = _column_names(value)
                else:
                    settings["filters"].append({"id": key_, "name": name, "query": value})
            settings["filters"].sort(key=lambda f: f["name"].casefold())
        setattr(g, key, settings)
        return settings

    def render(self, template, **kwargs):
        """A list page without the templates' indentation and HTML comments: Flask-Admin's
        and our layout templates indent every line, about a third of a list page's bytes.
        Only leading blanks, empty lines and comments go (a page with <pre> or <textarea>
        is left as it is)."""
        html = super().render(template, **kwargs)
        if template != self.list_template or not isinstance(html, str):
            return html
        if "<pre" in html or "<textarea" in html:
            return html
        return INDENT.sub("\n", COMMENT.sub("", html))

    # --- which list arguments a saved filter may keep ------------------------------------
    def known_list_argument(self, key: str, value: str) -> bool:
        if key == "search":
            return bool(self._search_supported) and len(value) <= 200
        if key == "desc":
            return value == "1"
        if key == "sort":
            return (value.isascii() and value.isdigit() and len(value) < 4
                    and self._get_column_by_idx(int(value)) is not None
                    and self._get_column_by_idx(int(value))[0] in self._sortable_columns)
        if key == "page_size":
            return value.isascii() and value.isdigit() and int(value) in (
                self.page_size_options or ())
        match = FILTER_ARG.match(key)
        if match and self._filter_args and match.group(1) in self._filter_args:
            _, flt = self._filter_args[match.group(1)]
            try:
                return bool(flt.validate(value))
            except (ValueError, TypeError):
                return False
        return False

    # --- endpoints --------------------------------------------------------------------------
    @expose("/columns/", methods=("POST",))
    def columns_view(self):
        """Save the ticked columns for the signed-in user, or reset them ("reset")."""
        slug = self.slug
        if request.form.get("reset"):
            result, error = run_action(reset_columns, view=slug)
        else:
            allowed = [name for name, _ in self.choosable_columns()]
            result, error = run_action(choose_columns, view=slug,
                                       columns=request.form.getlist("column"),
                                       allowed=allowed)
        return self._back_to_list(result, error)

    @expose("/filters/", methods=("POST",))
    def save_filter_view(self):
        """Save the list query posted (this page's) under the name given."""
        query = list_query(parse_qsl(request.form.get("query", ""), keep_blank_values=False),
                           known=self.known_list_argument)
        result, error = run_action(save_filter, view=self.slug,
                                   name=request.form.get("name", ""), query=query)
        if error:
            return self._back_to_list(None, error)
        flash(result.message, "success")
        return redirect(f"{self.get_url('.index_view')}?{query}", 303)

    @expose("/filters/delete/", methods=("POST",))
    def delete_filter_view(self):
        key = request.form.get("id", type=record_id)
        if key is None:
            return self._back_to_list(None, "There is no such saved filter of yours; nothing was "
                                    "deleted.")
        result, error = run_action(delete_filter, filter_id=key)
        return self._back_to_list(result, error)

    def _back_to_list(self, result, error):
        """To the list with the query it was posted from (only this list's arguments)."""
        if error:
            flash(error, "error")
        elif result is not None:
            flash(result.message, "success")
        query = list_query(parse_qsl(request.form.get("query", "")),
                           known=self.known_list_argument)
        target = self.get_url(".index_view")
        return redirect(f"{target}?{query}" if query else target, 303)


def _column_names(value) -> list[str] | None:
    """The stored JSON list of column names (text on SQLite, json cast to text on
    PostgreSQL); anything else is no choice."""
    try:
        names = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return None
    if not isinstance(names, list):
        return None
    return [n for n in names if isinstance(n, str)] or None
