"""List pages that stay fast at a million rows (their exports: ``crm.admin_views.exports``).

- Paging is a deferred join: the page's ids come from an index-only walk, then only those
  rows are loaded, with their relationships (one statement per relationship, whatever the
  page size).
- Counts stop at ``count_cap``: past it the pager shows previous/next only (an exact count
  of a million rows costs more than the page).
- Every sort ends with the id in the same direction: pages are stable and the
  (column, id) indexes serve them. A ``?sort=`` on a column that is not sortable here is
  ignored, so it reveals nothing.
- A search in the default order is read in the order its index gives (no sort of matches).
- Exports (CSV, XLSX; ``crm.admin_views.exports``) read the same query, eager-loaded.
"""

from flask import current_app
from sqlalchemy import func, nulls_last, select
from sqlalchemy.orm import selectinload

from crm.admin_views.adapters import record_id
from crm.extensions import db

# The furthest page a list goes to (a million rows at the largest page size is 10,000).
MAX_PAGE = 1_000_000


class PagedList:
    """Mixed into ``CrmModelView`` (before Flask-Admin's ``ModelView``)."""

    _count_cap: int | None = None  # a view's own cap; None: CRM_COUNT_CAP (10,000)
    # Sorting these columns ascending means sorting the stored column descending.
    inverted_sorts: dict[str, object] = {}
    # An index that serves the default order of base_query(); used as a hint on SQLite.
    default_order_index: str | None = None
    # Relationships loaded with each page of rows (one extra statement each, whatever the
    # page size); many-to-one columns of column_list are added automatically.
    eager: tuple = ()
    details_eager: tuple = ()

    def base_query(self):
        """What this view may ever show; ``get_query``, counts and ``get_one`` build on it."""
        return db.session.query(self.model)

    def eager_options(self) -> list:
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
        options = [*self.eager_options(), *(selectinload(a) for a in self.details_eager)]
        return self.base_query().options(*options).filter(self.model.id == key).one_or_none()

    def _list_query(self, sort_column, sort_desc, search, filters):
        """(the filtered query without order, the same query in page order)."""
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
            return unsorted, query.order_by(newest_first)
        if sort_column in self.inverted_sorts:
            # e.g. "overdue for" (an age) sorts its date the other way; rows without one last.
            column = self.inverted_sorts[sort_column]
            descending = not sort_desc
            query = query.order_by(nulls_last(column.desc() if descending else column.asc()))
        else:
            query, joins = self._apply_sorting(query, joins, sort_column, sort_desc)
            descending = sort_desc if sort_column is not None else self._default_descending()
            if sort_column is None and not search and self._dense(filters) \
                    and self.default_order_index:
                # SQLite walks the whole table in rowid order for a deep page of the default
                # order (25 ms at page 10,000 of 1M) where the covering index takes 9 ms. A
                # filter that keeps a good share of the rows (``dense = True``) still finds a
                # page of them soon along that index, where SQLite would otherwise gather
                # every match through the filter's own index and sort them all.
                query = query.with_hint(
                    self.model, f"INDEXED BY {self.default_order_index}", "sqlite"
                )
        return unsorted, query.order_by(self.model.id.desc() if descending else self.model.id)

    def _dense(self, filters) -> bool:
        """No filter, or only filters marked ``dense`` (see ``_list_query``)."""
        return all(getattr(self._filters[index], "dense", False) for index, *_ in filters or ())

    def _default_descending(self) -> bool:
        default = self.column_default_sort
        if isinstance(default, list):
            default = default[0] if default else None
        return bool(default[1]) if isinstance(default, tuple) else False

    def search_order(self, search: str):
        """An ORDER BY that the search's own index delivers, for the default order; or None."""
        return None

    @property
    def count_cap(self) -> int:
        """Lists count matches up to this, then page with Next/Previous."""
        if self._count_cap is not None:
            return self._count_cap
        return int(current_app.config.get("CRM_COUNT_CAP", 10_000))

    @count_cap.setter
    def count_cap(self, value: int) -> None:
        self._count_cap = value

    def capped_count(self, query) -> int | None:
        """The number of matches up to ``count_cap``; None past it."""
        inner = query.with_entities(self.model.id).order_by(None).limit(self.count_cap + 1)
        count = db.session.execute(select(func.count()).select_from(inner.subquery())).scalar()
        return None if count > self.count_cap else count

    def get_list(self, page, sort_column, sort_desc, search, filters, execute=True,
                 page_size=None):
        # ?page= from the URL: never negative, never an OFFSET past what the database holds.
        page = max(0, min(page or 0, MAX_PAGE))
        unsorted, query = self._list_query(sort_column, sort_desc, search, filters)
        count = self.capped_count(unsorted)
        query = self._apply_pagination(query, page, page_size)
        if not execute:
            return count, query
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
