"""The customer list must stay index-backed at a million rows: search through the FTS5 /
trigram index, balance sorting and the overdue filter through their own indexes. The plans
are read from the database itself; the search is then exercised end to end."""


import pytest
from sqlalchemy import select

from crm.extensions import db
from crm.models import Customer
from crm.search_index import search_customers
from tests.factories import make_customer

LIVE = Customer.merged_into_id.is_(None)  # the admin list only ever shows live customers


def _plan(session, stmt, conn=None, ordered_scans: bool = True, sorts: bool = True) -> str:
    """The database's plan for ``stmt``. PostgreSQL would rightly scan a tiny table
    sequentially, so sequential scans are priced out: the plan then shows whether an index
    *can* answer the query. ``sorts=False`` prices out sorting too (PostgreSQL): on a
    near-empty table walking any index and sorting a row or two costs the same as walking
    the sort's index, and which one wins then depends on the statistics of the moment."""
    dialect = db.engine.dialect
    sql = str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    conn = conn or session.connection()
    if dialect.name == "sqlite":
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql).all()
        plan = "\n".join(row[-1] for row in rows)
    else:
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        if not ordered_scans:  # a tiny table may also be walked in id order and filtered
            conn.exec_driver_sql("SET LOCAL enable_indexscan = off")
        if not sorts:
            conn.exec_driver_sql("SET LOCAL enable_sort = off")
        plan = "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + sql).all())
    session.rollback()
    return plan


def _some_customers(session, n=5):
    for i in range(n):
        make_customer(session, surname=f"Smithson{i}")
    session.commit()


def _sqlite():
    return db.engine.dialect.name == "sqlite"


def _searched(session, *terms: str, live: bool = False):
    """The customer list's search query (crm.search_index.search_customers), newest first."""
    query = session.query(Customer)
    if live:
        query = query.filter(LIVE)
    query, newest_first = search_customers(query, db.engine.dialect.name, list(terms))
    return query.with_entities(Customer.id).order_by(newest_first)


def test_customer_search_uses_the_search_index(session):
    _some_customers(session)
    stmt = _searched(session, "smiths").limit(20).statement

    plan = _plan(session, stmt, ordered_scans=False)

    if _sqlite():
        assert "customer_fts VIRTUAL TABLE INDEX" in plan, plan
    else:
        assert "ix_customer_search_trgm" in plan, plan


def test_live_customer_search_still_uses_the_search_index_on_sqlite(session):
    if not _sqlite():
        pytest.skip("the FTS5 table is SQLite's search index")
    _some_customers(session)
    stmt = _searched(session, "smiths", live=True).limit(20).statement

    assert "customer_fts VIRTUAL TABLE INDEX" in _plan(session, stmt)


# Without ANALYZE (every SQLite file the panel creates and fills through the UI) the
# planner must still walk the sort's index, not sort every live customer (USE TEMP B-TREE).
def test_customer_list_sorted_by_balance_uses_its_index(session):
    _some_customers(session)
    stmt = (select(Customer.id).where(LIVE)
            .order_by(Customer.balance.desc(), Customer.id.desc()).limit(20))

    plan = _plan(session, stmt, sorts=False)

    assert "ix_customer_balance_id" in plan, plan
    assert "TEMP B-TREE" not in plan, plan


def test_overdue_customers_sorted_by_overdue_amount_use_their_index(session):
    """The overdue filter (overdue_amount > 0) with the list sorted by what is overdue: the
    index answers both the filter and the order. (With the default newest-first order a walk
    of the id index that skips non-overdue rows is as good, and the planner may choose it.)"""
    _some_customers(session)
    stmt = (select(Customer.id).where(LIVE, Customer.overdue_amount > 0)
            .order_by(Customer.overdue_amount.desc(), Customer.id.desc()).limit(20))

    plan = _plan(session, stmt, sorts=False)

    assert "ix_customer_overdue_amount_id" in plan, plan
    assert "TEMP B-TREE" not in plan, plan


def test_sqlite_uses_the_sort_indexes_once_it_has_statistics(tmp_path):
    """What the seed (which runs ANALYZE) and the bench get. On a database of its own: the
    statistics would change the plans of every other test."""
    from flask_migrate import upgrade

    from tests.conftest import make_app

    application = make_app(f"sqlite:///{tmp_path / 'stats.sqlite'}")
    with application.app_context():
        upgrade()
        _some_customers(db.session, 30)
        db.session.connection().exec_driver_sql("ANALYZE")
        db.session.commit()
        with db.engine.connect() as conn:  # a connection that reads the statistics
            balance = _plan(db.session, select(Customer.id).where(LIVE)
                            .order_by(Customer.balance.desc(), Customer.id.desc()).limit(20),
                            conn)
            overdue = _plan(db.session, select(Customer.id).where(LIVE, Customer.overdue_amount > 0)
                            .order_by(Customer.overdue_amount.desc(), Customer.id.desc())
                            .limit(20), conn)
        db.session.remove()
        db.engine.dispose()

    assert "USING INDEX ix_customer_balance_id" in balance or \
        "COVERING INDEX ix_customer_balance_id" in balance, balance
    assert "ix_customer_overdue_amount_id" in overdue, overdue
    assert "TEMP B-TREE" not in balance + overdue


# --- the search, end to end ---------------------------------------------------------------

def _search(session, text: str) -> set[int]:
    """What the customer list's search box finds (every word must match)."""
    return {row.id for row in _searched(session, *text.lower().split(), live=True).limit(20)}


@pytest.fixture
def pennington(session):
    target = make_customer(
        session, first_name="Joanna", surname="Pennington", email="jo.penn@brightmail.test",
        phone="+447700900461", postcode="LS6 2AB",
    )
    make_customer(session, first_name="Mark", surname="Smith", email="mark@otherhost.test",
                  phone="+447700900999", postcode="M1 1AA")
    session.commit()
    return target


@pytest.mark.parametrize(
    "typed",
    ["ennin", "PENNINGTON", "penn@bright", "brightmail", "07700900461", "447700900461",
     "+447700900461", "ls62ab"],
)
def test_search_finds_a_customer_by_what_staff_type(session, pennington, typed):
    assert _search(session, typed) == {pennington.id}


def test_search_does_not_find_what_is_not_there(session, pennington):
    assert _search(session, "jones") == set()


def test_every_word_of_a_search_must_match(session, pennington):
    assert _search(session, "joanna pennington") == {pennington.id}
    assert _search(session, "LS6 2AB") == {pennington.id}
    assert _search(session, "pennington smith") == set()
    assert _search(session, "joanna ls1") == set()


def test_search_follows_a_change_of_surname(session, pennington):
    pennington.surname = "Oakridge"
    session.commit()

    assert _search(session, "pennington") == set()
    assert _search(session, "oakrid") == {pennington.id}


def test_search_follows_a_change_of_email(session, pennington):
    pennington.email = "joanna@newdomain.test"
    session.commit()

    assert _search(session, "brightmail") == set()
    assert _search(session, "newdomain") == {pennington.id}


def test_a_deleted_customer_is_no_longer_found(session, pennington):
    session.delete(pennington)
    session.commit()

    assert _search(session, "pennington") == set()


def test_a_rolled_back_customer_is_not_found(session, pennington):
    make_customer(session, surname="Transient")
    session.rollback()

    assert _search(session, "transient") == set()


def test_deep_pages_of_the_default_customer_order_walk_the_live_index(app, session):
    """SQLite would walk the whole table in rowid order for page 10,000; the list hints the
    covering partial index instead (a third of the time at 1M customers)."""
    if not _sqlite():
        pytest.skip("the INDEXED BY hint is SQLite's; PostgreSQL chooses the index itself")
    _some_customers(session)
    view = next(v for v in app.extensions["admin"][0]._views if v.endpoint == "customer_owner")
    with app.test_request_context("/admin/owner/customer/?page=10000"):
        _, query = view._list_query(None, False, None, None)
        stmt = query.with_entities(Customer.id).limit(20).offset(200_000).statement
        # the planner's choice on a tiny table proves nothing, so the hint itself is checked,
        # and the plan shows SQLite accepts it (a hint it cannot follow is an error)
        assert "INDEXED BY ix_customer_live_id" in str(stmt.compile(db.engine))
        # archived customers are hidden by default: the status check is read from the index
        # too, so the walk stays index-only
        assert "status" in str(stmt.compile(db.engine))
        assert "COVERING INDEX ix_customer_live_id" in _plan(session, stmt)
        _, searched = view._list_query(None, False, "smithson", None)
        assert "INDEXED BY" not in str(searched.statement.compile(db.engine))


def test_a_search_in_the_default_order_is_read_newest_first_from_its_index(app, session):
    """A common word must not collect every match and sort them: the FTS5 table is read in
    rowid order (SQLite) and the page stops after 20."""
    for i in range(30):
        make_customer(session, surname=f"Commonname{i}", email=f"person{i}@example.com")
    session.commit()
    view = next(v for v in app.extensions["admin"][0]._views if v.endpoint == "customer_owner")
    with app.test_request_context("/admin/owner/customer/?search=example.com+commonname"):
        _, query = view._list_query(None, False, "example.com commonname", None)
        ids = [row.id for row in query.with_entities(Customer.id).limit(20)]
        assert len(ids) == 20 and ids == sorted(ids, reverse=True)
        if _sqlite():
            plan = _plan(session, query.with_entities(Customer.id).limit(20).statement)
            assert "VIRTUAL TABLE INDEX" in plan.splitlines()[0], plan
            assert "TEMP B-TREE" not in plan, plan


def _customer_view(app):
    return next(v for v in app.extensions["admin"][0]._views if v.endpoint == "customer_owner")


def test_an_aging_bar_pages_through_its_customers_along_the_default_order_index(app, session):
    """The dashboard's aging bars open the customer list filtered to an age. A bucket holds a
    good share of the customers who owe: SQLite must find a page of them along the default
    order's index (newest first) instead of collecting every match and sorting them."""
    from datetime import date, timedelta

    from crm.admin_views.dashboard import AgingFilter

    today = date.today()
    late = [make_customer(session, surname=f"Lately{i}") for i in range(3)]
    on_time = make_customer(session, surname="Ontime")
    for person in late:
        person.oldest_overdue_on = today - timedelta(days=10)
    on_time.next_due_on = today + timedelta(days=5)
    session.commit()
    view = _customer_view(app)
    index = next(i for i, flt in enumerate(view._filters) if isinstance(flt, AgingFilter))
    with app.test_request_context("/admin/owner/customer/"):
        _, query = view._list_query(None, False, None, [(index, "Aging", "1_30")])
        ids = [row.id for row in query.with_entities(Customer.id).limit(20)]
        assert ids == sorted((p.id for p in late), reverse=True)  # that bucket, newest first
        stmt = query.with_entities(Customer.id).limit(20).statement
        if _sqlite():
            assert "INDEXED BY ix_customer_live_id" in str(stmt.compile(db.engine))
            assert "TEMP B-TREE" not in _plan(session, stmt), _plan(session, stmt)
        # a filter that may keep a handful of rows in a million keeps its own index
        other = next(i for i, flt in enumerate(view._filters) if not getattr(flt, "dense", False))
        _, narrow = view._list_query(None, False, None, [(other, "", "x")])
        assert "INDEXED BY" not in str(narrow.statement.compile(db.engine))


def test_the_due_reminders_list_walks_the_due_date_index(app, session):
    """Reminders due, oldest first, joined to their address and customer: the page is read
    along the partial index of reminders still due (ix_service_reminder_due_id) and stops
    after a page, whatever the table's size."""
    from crm.models import ServiceReminder
    from tests.factories import make_reminder, make_work_address

    person = make_customer(session, surname="Duesworth")
    site = make_work_address(session, person)
    for _ in range(3):
        make_reminder(session, site)
    session.commit()
    view = next(v for v in app.extensions["admin"][0]._views if v.endpoint == "due_reminder_owner")
    with app.test_request_context("/admin/owner/due_reminder/"):
        _, query = view._list_query(None, False, None, None)
        assert len(query.all()) == 3
        stmt = query.with_entities(ServiceReminder.id).limit(20).statement
    plan = _plan(session, stmt, sorts=False)
    assert "ix_service_reminder_due_id" in plan, plan
    assert "TEMP B-TREE" not in plan, plan
