"""Every figure of the dashboard is read through an index (or from a stored total), so the
home page answers in the same time at a million customers as at a thousand. The plans are
read from the database itself."""

from datetime import date

import pytest
from sqlalchemy import select

from crm import dashboard
from crm.models import Booking, Customer, Invoice, Lead
from tests.unit.test_search_index import _plan

TODAY = date.today()


def _statements():
    start = dashboard._week_start(TODAY)
    return {
        "largest overdue": (
            select(Customer.id).where(Customer.merged_into_id.is_(None),
                                      Customer.overdue_amount > 0)
            .order_by(Customer.overdue_amount.desc(), Customer.id.desc()).limit(10),
            "ix_customer_overdue_amount_id"),
        "draft invoices": (
            select(Invoice.id).where(Invoice.status == "draft").limit(1001),
            "ix_invoice_draft_issue_date_id"),
        "new leads": (select(Lead.id).where(Lead.status == "new").limit(1001),
                      "ix_lead_status_created_at"),
        "upcoming bookings": (
            select(Booking.id).where(Booking.starts_at >= start,
                                     Booking.status.in_(dashboard.OPEN_BOOKINGS))
            .order_by(Booking.starts_at, Booking.id).limit(8),
            "ix_booking_starts_at"),
    }


@pytest.mark.parametrize("name", list(_statements()))
def test_each_dashboard_read_uses_its_index(session, name):
    stmt, index = _statements()[name]
    assert index in _plan(session, stmt, sorts=False), _plan(session, stmt, sorts=False)



def _page(app, endpoint: str, url: str):
    """(the SQL the list at ``url`` sends for its page of ids, as the database receives it;
    that statement)."""
    from sqlalchemy import event

    from crm.extensions import db

    view = next(v for v in app.extensions["admin"][0]._views if v.endpoint == endpoint)
    sent = []

    def keep(conn, cursor, statement, parameters, context, executemany):
        sent.append(statement)

    with app.test_request_context(url):
        args = view._get_list_extra_args()
        _, query = view._list_query(None, False, args.search, args.filters)
        page = query.with_entities(view.model.id).limit(20)
        event.listen(db.engine, "before_cursor_execute", keep)
        try:
            page.all()
        finally:
            event.remove(db.engine, "before_cursor_execute", keep)
        return sent[-1], page.statement


def test_the_draft_invoices_count_opens_a_list_read_from_the_drafts_index(app, session):
    """The "draft invoices" tile opens the invoice list filtered to drafts, newest first: the
    status reaches the database as a literal (SQLite uses a partial index only then) and the
    partial index of drafts serves the order, so a page stops after its rows."""
    from tests.factories import make_customer, make_invoice

    person = make_customer(session)
    for _ in range(3):
        make_invoice(session, person, amount="10.00", status="draft")
    session.commit()
    sql, stmt = _page(app, "invoice_owner", "/admin/owner/invoice/?flt0_0=draft")

    assert "status = 'draft'" in sql
    plan = _plan(session, stmt, sorts=False)
    assert "ix_invoice_draft_issue_date_id" in plan, plan
    assert "TEMP B-TREE" not in plan, plan


def test_the_due_reminders_list_reads_the_reminders_still_due(app, session):
    from tests.factories import make_customer, make_reminder, make_work_address

    site = make_work_address(session, make_customer(session, surname="Duesworth"))
    make_reminder(session, site)
    session.commit()
    sql, stmt = _page(app, "due_reminder_owner", "/admin/owner/due_reminder/")

    assert "status = 'due'" in sql
    plan = _plan(session, stmt, sorts=False)
    assert "ix_service_reminder_due_id" in plan, plan
    assert "TEMP B-TREE" not in plan, plan
