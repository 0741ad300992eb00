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
            "ix_invoice_draft_id"),
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
