"""The loyalty score (crm.loyalty): the formula on histories worked out by hand, its shape
(monotone in recency and frequency, always 0..100) on random histories, the stored score
kept current by every way a booking changes, the check, and the nightly commands."""

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select, update

from crm import loyalty
from crm.actions.merge import merge_customers
from crm.actions.merge_undo import undo_merge
from crm.models import Booking, Customer
from crm.models.sequence import next_number
from tests.factories import make_booking, make_customer

TODAY = date.today()


def _at(days_ago: int, hour: int = 19) -> datetime:
    return datetime.combine(TODAY - timedelta(days=days_ago), datetime.min.time()).replace(
        hour=hour)


def _completed(session, customer, days_ago: int, value: str | None = "250.00", **extra):
    return make_booking(session, customer, status="completed", starts_at=_at(days_ago),
                        value=None if value is None else Decimal(value), **extra)


def _stored(session, customer) -> int:
    return session.execute(
        select(Customer.loyalty_score).where(Customer.id == customer.id)
    ).scalar_one()


def _score(session, customer, today=TODAY) -> int:
    return loyalty.expected(session, [customer.id], today=today)[customer.id]


# --- the formula, on histories worked out by hand ------------------------------------------

def test_a_customer_without_bookings_scores_0(session):
    customer = make_customer(session)
    session.commit()

    assert _score(session, customer) == 0
    assert _stored(session, customer) == 0


def test_the_worked_example_of_the_module_docstring(session):
    """86 days ago £400, 644 days ago £800: recency 40*644//730 = 35, frequency 12, value
    30*1200//3000 = 12."""
    customer = make_customer(session)
    _completed(session, customer, 86, "400.00")
    _completed(session, customer, 644, "800.00")
    session.commit()

    assert _score(session, customer) == 35 + 12 + 12
    assert _stored(session, customer) == 59


@pytest.mark.parametrize(("history", "score"), [
    # one booking today worth nothing: full recency, one booking's frequency
    ([(0, "0.00")], 40 + 6 + 0),
    # today, 3,000.00 or more: everything but frequency is full
    ([(0, "3000.00")], 40 + 6 + 30),
    ([(0, "9999.99")], 40 + 6 + 30),
    # five bookings or more: frequency stops at 30; 6 x 500 = 3,000 fills value
    ([(d, "500.00") for d in (1, 30, 60, 90, 120, 150)], 40 * 729 // 730 + 30 + 30),
    # a year ago: 40 * 365 // 730 = 20; 1,500.00 is half the value points
    ([(365, "1500.00")], 20 + 6 + 15),
    # two years ago or more: no recency points, but within three years it still counts
    ([(730, "100.00")], 0 + 6 + 1),
    ([(1094, "100.00")], 0 + 6 + 1),
    # a booking without a value counts for frequency and recency only
    ([(10, None)], 40 * 720 // 730 + 6),
    # value in whole cents: 30 * 99.99 // 3000 is 0
    ([(100, "99.99")], 40 * 630 // 730 + 6 + 0),
    ([(100, "100.00")], 40 * 630 // 730 + 6 + 1),
])
def test_exact_scores_of_hand_worked_histories(session, history, score):
    customer = make_customer(session)
    for days_ago, value in history:
        _completed(session, customer, days_ago, value)
    session.commit()

    assert _score(session, customer) == score
    assert _stored(session, customer) == score


def test_what_does_not_count(session):
    """Older than three years, in the future, or not completed: nothing."""
    customer = make_customer(session)
    _completed(session, customer, 1095, "5000.00")  # three years ago: out of the window
    make_booking(session, customer, status="completed", starts_at=_at(-1), value=Decimal("10"))
    for status in ("enquiry", "confirmed", "cancelled"):
        make_booking(session, customer, status=status, starts_at=_at(5), value=Decimal("900"))
    session.commit()

    assert _score(session, customer) == 0
    assert _stored(session, customer) == 0


def test_a_booking_later_today_counts_once_completed(session):
    customer = make_customer(session)
    make_booking(session, customer, status="completed", starts_at=_at(0, hour=23),
                 value=Decimal("300.00"))
    session.commit()

    assert _stored(session, customer) == 40 + 6 + 3


def test_recency_falls_with_the_calendar_and_the_nightly_refresh_follows(session):
    customer = make_customer(session)
    _completed(session, customer, 0, "0.00")
    session.commit()
    later = TODAY + timedelta(days=365)

    assert loyalty.check(session, today=later)[0].expected == 20 + 6
    assert loyalty.refresh(session, today=later) == 1
    assert _stored(session, customer) == 26
    assert loyalty.refresh(session, today=later) == 0  # only rows whose score changes


# --- the shape of the formula, on random histories -----------------------------------------

histories = st.lists(
    st.tuples(st.integers(min_value=-30, max_value=1200),
              st.sampled_from(["completed", "completed", "confirmed", "cancelled"]),
              st.one_of(st.none(), st.decimals(min_value=0, max_value=5000, places=2))),
    max_size=8,
)
SETTINGS = dict(max_examples=25, deadline=None, database=None,
                phases=[Phase.explicit, Phase.generate, Phase.shrink],
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


def _customer_with(session, history):
    customer = make_customer(session)
    for days_ago, status, value in history:
        make_booking(session, customer, status=status, starts_at=_at(days_ago), value=value)
    session.commit()
    return customer


@settings(**SETTINGS)
@given(history=histories)
def test_the_score_is_always_between_0_and_100_and_stored(session, history):
    customer = _customer_with(session, history)

    score = _score(session, customer)

    assert 0 <= score <= 100
    assert _stored(session, customer) == score


@settings(**SETTINGS)
@given(history=histories, days_ago=st.integers(min_value=1, max_value=1200),
       later_by=st.integers(min_value=1, max_value=1200))
def test_moving_the_last_completed_booking_later_never_lowers_the_score(
        session, history, days_ago, later_by):
    customer = _customer_with(session, history)
    last = _completed(session, customer, days_ago, "100.00")
    session.commit()
    before = _stored(session, customer)

    last.starts_at = _at(max(days_ago - later_by, 0))
    session.commit()

    assert _stored(session, customer) >= before


@settings(**SETTINGS)
@given(history=histories, days_ago=st.integers(min_value=0, max_value=1200),
       value=st.one_of(st.none(), st.decimals(min_value=0, max_value=5000, places=2)))
def test_another_completed_booking_never_lowers_the_score(session, history, days_ago, value):
    customer = _customer_with(session, history)
    before = _stored(session, customer)

    make_booking(session, customer, status="completed", starts_at=_at(days_ago), value=value)
    session.commit()

    assert _stored(session, customer) >= before


# --- kept current, whatever writes the bookings ---------------------------------------------

@pytest.fixture
def pair(session):
    first, second = make_customer(session, surname="First"), make_customer(session,
                                                                          surname="Second")
    session.commit()
    return first, second


def test_adding_changing_and_deleting_a_booking_refreshes_the_score(session, pair):
    customer, _ = pair
    booking = make_booking(session, customer, status="confirmed", starts_at=_at(3),
                           value=Decimal("600.00"))
    session.commit()
    assert _stored(session, customer) == 0

    booking.status = "completed"
    session.commit()
    assert _stored(session, customer) == 40 * 727 // 730 + 6 + 6

    booking.value = Decimal("3000.00")
    session.commit()
    assert _stored(session, customer) == 39 + 6 + 30

    booking.starts_at = _at(365)
    session.commit()
    assert _stored(session, customer) == 20 + 6 + 30

    session.delete(booking)
    session.commit()
    assert _stored(session, customer) == 0


def test_a_booking_moved_to_another_customer_moves_its_points(session, pair):
    first, second = pair
    booking = _completed(session, first, 0, "3000.00")
    session.commit()
    assert (_stored(session, first), _stored(session, second)) == (76, 0)

    booking.customer = second
    session.commit()
    assert (_stored(session, first), _stored(session, second)) == (0, 76)

    session.expire_all()  # the old owner not loaded: the hook reads it from the row
    booking = session.get(Booking, booking.id)
    booking.customer_id = first.id
    session.commit()
    assert (_stored(session, first), _stored(session, second)) == (76, 0)


def test_a_booking_detached_from_its_customer_takes_its_points_away(session, pair):
    customer, _ = pair
    booking = _completed(session, customer, 0, "3000.00")
    session.commit()

    booking.customer = None
    session.commit()

    assert _stored(session, customer) == 0


def test_a_title_change_leaves_the_scores_alone(session, pair):
    customer, _ = pair
    booking = _completed(session, customer, 0, "3000.00")
    session.commit()
    session.execute(update(Customer).where(Customer.id == customer.id)
                    .values(loyalty_score=1))  # tampered, so a refresh would show
    session.commit()

    booking.title = "Renamed gig"
    session.commit()

    assert _stored(session, customer) == 1


def test_set_based_statements_on_bookings_refresh_the_scores(session, pair):
    first, second = pair
    booking = _completed(session, first, 0, "3000.00")
    session.commit()

    session.execute(update(Booking.__table__).where(Booking.__table__.c.id == booking.id)
                    .values(customer_id=second.id))
    session.commit()
    assert (_stored(session, first), _stored(session, second)) == (0, 76)

    session.execute(update(Booking).where(Booking.customer_id == second.id)
                    .values(status="cancelled"))
    session.commit()
    assert _stored(session, second) == 0

    session.execute(insert(Booking), [dict(
        reference=next_number(session, "booking"), customer_id=first.id, title="Gig",
        status="completed", starts_at=_at(0), value=Decimal("3000.00"))])
    session.commit()
    assert _stored(session, first) == 76

    session.execute(delete(Booking).where(Booking.customer_id == first.id))
    session.commit()
    assert _stored(session, first) == 0


def test_a_merge_and_its_undo_carry_the_bookings_points(session, pair, owner):
    survivor, duplicate = pair
    _completed(session, survivor, 365, "0.00")
    _completed(session, duplicate, 0, "3000.00")
    session.commit()
    assert (_stored(session, survivor), _stored(session, duplicate)) == (26, 76)

    result = merge_customers(session, survivor_id=survivor.id, duplicate_ids=[duplicate.id],
                             actor=owner)
    session.commit()
    assert (_stored(session, survivor), _stored(session, duplicate)) == (40 + 12 + 30, 0)

    undo_merge(session, merge_id=result.merge_id, actor=owner)
    session.commit()
    assert (_stored(session, survivor), _stored(session, duplicate)) == (26, 76)
    assert loyalty.check(session, today=TODAY) == []


def test_a_rolled_back_change_leaves_nothing_to_refresh(session, pair):
    customer, _ = pair
    _completed(session, customer, 0, "3000.00")
    session.rollback()

    assert not loyalty.is_dirty(session)
    assert _stored(session, customer) == 0


# --- the check and the nightly commands -----------------------------------------------------

def test_the_check_finds_a_tampered_score(session, pair):
    customer, other = pair
    _completed(session, customer, 0, "3000.00")
    session.commit()
    assert loyalty.check(session, today=TODAY) == []

    session.execute(update(Customer).where(Customer.id == customer.id)
                    .values(loyalty_score=3))
    session.commit()

    found = loyalty.check(session, today=TODAY)
    assert [(d.reference, d.stored, d.expected) for d in found] == [(customer.reference, 3, 76)]
    assert str(found[0]) == f"{customer.reference}: loyalty score stored 3 expected 76"


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()
    return lambda *args: runner.invoke(args=["crm", *args])


def test_check_loyalty_and_refresh_loyalty_commands(cli, session, pair):
    customer, _ = pair
    _completed(session, customer, 0, "3000.00")
    session.commit()
    assert cli("check-loyalty").exit_code == 0
    session.execute(update(Customer).where(Customer.id == customer.id).values(loyalty_score=3))
    session.commit()

    checked = cli("check-loyalty")
    assert checked.exit_code == 1
    assert f"{customer.reference}: loyalty score stored 3 expected 76" in checked.output

    refreshed = cli("refresh-loyalty")
    assert refreshed.exit_code == 0, refreshed.output
    assert "Loyalty scores: 1 changed." in refreshed.output
    assert "agree with the bookings" in cli("check-loyalty").output
    assert _stored(session, customer) == 76


def test_a_refresh_is_not_a_change_to_the_customer(session, pair):
    """The nightly refresh leaves "last changed" and the edit version alone."""
    customer, _ = pair
    _completed(session, customer, 0, "3000.00")
    session.commit()
    before = session.execute(select(Customer.updated_at, Customer.version)
                             .where(Customer.id == customer.id)).one()

    assert loyalty.refresh(session, today=TODAY + timedelta(days=100)) == 1
    session.commit()

    assert session.execute(select(Customer.updated_at, Customer.version)
                           .where(Customer.id == customer.id)).one() == before
