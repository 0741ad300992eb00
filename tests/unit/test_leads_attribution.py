"""Leads to customers and bookings: the pipeline, conversion and attribution by e-mail."""

from datetime import date, datetime

import pytest
from sqlalchemy import func, select

from crm.actions import ActionError
from crm.actions.attribution import (
    attach_waiting,
    attribute,
    confirm_related,
    detach,
    names_agree,
    to_review,
)
from crm.actions.block_email import block_email
from crm.actions.leads import BookingDetails, convert, move, open_duplicates
from crm.actions.merge import merge_customers
from crm.actions.redact import CONFIRMATION_WORD, redact_customers
from crm.audit_sentences import Ref, sentence
from crm.models import AuditEvent, Booking, Contact, Customer
from crm.models.sequence import next_number
from tests.factories import make_contact, make_customer, make_lead


def _lead(session, **overrides):
    values = dict(first_name="Robin", surname="Hart", email="robin.hart@example.com",
                  phone="+447700900123", purpose="Wedding reception, 120 guests",
                  preferred_date=date(2027, 6, 12), source="Website form")
    values.update(overrides)
    return make_lead(session, **values)


def _booking(session, **overrides):
    values = dict(reference=next_number(session, "booking"), title="Summer party",
                  starts_at=datetime(2027, 7, 1, 19, 0), status="confirmed",
                  contact_email="robin.hart@example.com", contact_first_name="Robin",
                  contact_surname="Hart")
    values.update(overrides)
    booking = Booking(**values)
    session.add(booking)
    return booking


def _count(session, model, *where):
    return session.scalar(select(func.count()).select_from(model).where(*where))


# -- the pipeline ---------------------------------------------------------------------------

def test_a_lead_moves_through_the_open_stages_and_back(session, owner):
    lead = _lead(session)
    for stage in ("contacted", "quoted", "contacted"):
        result = move(session, lead_ids=[lead.id], stage=stage, actor=owner)
        assert result.changed == 1 and lead.status == stage
    events = session.scalars(select(AuditEvent).where(AuditEvent.verb == "move_lead")).all()
    assert [(e.details["from"], e.details["to"]) for e in events] == [
        ("new", "contacted"), ("contacted", "quoted"), ("quoted", "contacted")]


def test_lost_needs_a_reason_and_a_lost_lead_can_be_reopened(session, owner):
    lead = _lead(session)
    with pytest.raises(ActionError, match="why the lead was lost"):
        move(session, lead_ids=[lead.id], stage="lost", actor=owner, lost_reason="  ")
    assert lead.status == "new"
    move(session, lead_ids=[lead.id], stage="lost", actor=owner, lost_reason="Too expensive")
    assert (lead.status, lead.lost_reason) == ("lost", "Too expensive")
    move(session, lead_ids=[lead.id], stage="new", actor=owner)
    assert (lead.status, lead.lost_reason) == ("new", None)


def test_won_is_reached_only_by_converting_and_a_won_lead_stays_won(session, owner):
    lead = _lead(session)
    with pytest.raises(ActionError, match="Convert"):
        move(session, lead_ids=[lead.id], stage="won", actor=owner)
    convert(session, lead_ids=[lead.id], actor=owner)
    result = move(session, lead_ids=[lead.id], stage="contacted", actor=owner)
    assert result.changed == 0 and "already converted" in str(result.skipped[0])
    assert lead.status == "won"


def test_an_unknown_stage_is_refused(session, owner):
    lead = _lead(session)
    with pytest.raises(ActionError, match="Choose a stage"):
        move(session, lead_ids=[lead.id], stage="archived", actor=owner)


def test_two_open_leads_with_one_email_are_flagged_as_duplicates(session):
    first = _lead(session)
    second = _lead(session, first_name="R.")
    other = _lead(session, email="someone.else@example.com")
    lost = _lead(session, status="lost", lost_reason="Date taken")
    flags = open_duplicates(session, [first, second, other, lost])
    assert flags == {first.id: 1, second.id: 1}


# -- conversion -----------------------------------------------------------------------------

def test_converting_a_lead_makes_a_client_a_primary_contact_and_a_booking_linked_together(
        session, owner):
    lead = _lead(session)
    result = convert(session, lead_ids=[lead.id], actor=owner)
    assert result.changed == 1 and "1 new client" in result.message
    customer = lead.customer
    assert (customer.kind, customer.surname, customer.email, customer.phone) == (
        "client", "Hart", "robin.hart@example.com", "+447700900123")
    assert customer.advertising_source == "Website form"
    (contact,) = customer.contacts
    assert (contact.is_primary, contact.surname, contact.email) == (
        True, "Hart", "robin.hart@example.com")
    booking = session.scalars(select(Booking).where(Booking.lead_id == lead.id)).one()
    assert booking.customer_id == customer.id and booking.attribution == "exact"
    assert booking.title == "Wedding reception, 120 guests"
    assert booking.starts_at == datetime(2027, 6, 12, 9, 0)
    assert lead.status == "won"
    event = session.scalars(select(AuditEvent).where(AuditEvent.verb == "convert_lead")).one()
    assert (event.subject_type, event.subject_id) == ("Customer", customer.id)
    assert event.details["booking"] == booking.reference and event.details["new_customer"]


def test_conversion_reuses_the_customer_whose_email_matches(session, owner):
    existing = make_customer(session, first_name="Robin", surname="Hart",
                             email="robin.hart@example.com", kind="prospect")
    make_contact(session, existing, is_primary=True, surname="Hart")
    lead = _lead(session, email="  Robin.Hart@Example.com ".strip().lower())
    convert(session, lead_ids=[lead.id], actor=owner)
    assert lead.customer_id == existing.id
    assert existing.kind == "client"  # a booking makes a client of a prospect
    assert _count(session, Contact, Contact.customer_id == existing.id) == 1  # had a primary
    assert _count(session, Customer) == 1


def test_a_matching_email_with_another_name_books_as_related(session, owner):
    existing = make_customer(session, first_name="Alex", surname="Stone",
                             email="robin.hart@example.com")
    lead = _lead(session)
    convert(session, lead_ids=[lead.id], actor=owner)
    booking = session.scalars(select(Booking).where(Booking.lead_id == lead.id)).one()
    assert (booking.customer_id, booking.attribution) == (existing.id, "related")
    assert session.scalars(to_review()).all() == [booking]


def test_conversion_follows_a_merged_away_record_to_its_survivor(session, owner):
    survivor = make_customer(session, surname="Hart", email="robin@elsewhere.example")
    merged = make_customer(session, surname="Hart", email="robin.hart@example.com")
    session.commit()
    merge_customers(session, survivor_id=survivor.id, duplicate_ids=[merged.id], actor=owner)
    session.commit()
    lead = _lead(session)
    convert(session, lead_ids=[lead.id], actor=owner)
    assert lead.customer_id == survivor.id


def test_conversion_refuses_a_redacted_customer_with_the_reason(session, owner):
    person = make_customer(session, surname="Hart", email="robin.hart@example.com")
    tombstone = make_customer(session, surname="Hart", email="robin.old@example.com",
                              merged_into_id=person.id)
    session.commit()
    redact_customers(session, selection=[person.id], actor=owner,
                     confirmation=CONFIRMATION_WORD)
    session.commit()
    # The tombstone keeps no address once its survivor is redacted; a lead from a stray
    # copy of the old record's address must not attach to the redacted one either.
    session.get(Customer, tombstone.id).email = "robin.old@example.com"
    lead = _lead(session, email="robin.old@example.com")
    result = convert(session, lead_ids=[lead.id], actor=owner)
    assert result.changed == 0
    assert "has been redacted" in str(result.skipped[0])
    assert lead.status == "new" and lead.customer_id is None


def test_conversion_refuses_a_blocked_address_and_changes_nothing(session, owner):
    block_email(session, value="@spam.example", reason="spam", actor=owner)
    lead = _lead(session, email="robin@spam.example")
    result = convert(session, lead_ids=[lead.id], actor=owner)
    assert result.changed == 0 and "is blocked" in str(result.skipped[0])
    assert _count(session, Customer) == 0 and _count(session, Booking) == 0
    assert lead.status == "new"


def test_conversion_refuses_a_customer_whose_address_was_blocked_since(session, owner):
    customer = make_customer(session, surname="Hart", email="robin.hart@example.com")
    lead = _lead(session)
    block_email(session, value="robin.hart@example.com", reason="abuse", actor=owner)
    result = convert(session, lead_ids=[lead.id], actor=owner)
    assert result.changed == 0 and "is blocked" in str(result.skipped[0])
    assert _count(session, Booking) == 0 and lead.customer_id is None
    assert customer.email_blocked


def test_two_open_leads_with_one_email_end_on_one_customer_with_two_bookings(session, owner):
    first = _lead(session)
    second = _lead(session, purpose="Christmas party", preferred_date=date(2027, 12, 18))
    result = convert(session, lead_ids=[first.id, second.id], actor=owner)
    assert result.changed == 2 and "1 new client, 1 matched by e-mail" in result.message
    assert first.customer_id == second.customer_id
    assert _count(session, Customer) == 1
    assert _count(session, Booking, Booking.customer_id == first.customer_id) == 2
    assert _count(session, Contact) == 1  # the second found a primary contact already


def test_a_lead_without_a_preferred_date_needs_one_given(session, owner):
    lead = _lead(session, preferred_date=None)
    result = convert(session, lead_ids=[lead.id], actor=owner)
    assert result.changed == 0 and "no preferred date" in str(result.skipped[0])
    convert(session, lead_ids=[lead.id], actor=owner,
            booking=BookingDetails(title="First dance", starts_at=datetime(2027, 8, 1, 18, 30)))
    booking = session.scalars(select(Booking).where(Booking.lead_id == lead.id)).one()
    assert (booking.title, booking.starts_at) == ("First dance", datetime(2027, 8, 1, 18, 30))


def test_convert_to_prospect_makes_no_booking(session, owner):
    lead = _lead(session)
    result = convert(session, lead_ids=[lead.id], actor=owner, with_booking=False)
    assert result.changed == 1 and "1 new prospect" in result.message
    assert lead.customer.kind == "prospect" and lead.status == "won"
    assert _count(session, Booking) == 0


def test_lost_and_won_leads_are_not_converted(session, owner):
    lost = _lead(session, status="lost", lost_reason="Too expensive")
    result = convert(session, lead_ids=[lost.id], actor=owner)
    assert result.changed == 0 and "reopen it" in str(result.skipped[0])


# -- attribution ----------------------------------------------------------------------------

def test_names_agree_ignores_case_accents_and_initials():
    assert names_agree("robin", "HART", [("Robin", "Hart")])
    assert names_agree("R", "Hart", [("Robin", "Hart")])
    assert names_agree(None, "Hårt", [("Robin", "Hart")])
    assert names_agree("Robin", None, [("Alex", "Stone")])  # no name given: cannot disagree
    assert not names_agree("Sam", "Hart", [("Robin", "Hart")])
    assert not names_agree("Robin", "Hart", [("Robin", "Harte")])


def test_an_exact_match_attaches_the_booking(session, owner):
    customer = make_customer(session, first_name="Robin", surname="Hart",
                             email="robin.hart@example.com")
    booking = _booking(session, contact_email="ROBIN.HART@example.com")
    result = attribute(session, booking, actor=owner)
    assert (result.outcome, booking.customer_id, booking.attribution) == (
        "exact", customer.id, "exact")
    assert booking.contact_email == "robin.hart@example.com"


def test_a_match_through_a_contact_of_that_email_is_exact(session, owner):
    customer = make_customer(session, company_name="Hart Events", surname=None,
                             customer_type="company", email="robin.hart@example.com")
    make_contact(session, customer, first_name="Robin", surname="Hart",
                 email="robin.hart@example.com")
    booking = _booking(session)
    assert attribute(session, booking, actor=owner).outcome == "exact"


def test_a_name_that_differs_attaches_as_related_for_review(session, owner):
    customer = make_customer(session, first_name="Alex", surname="Stone",
                             email="robin.hart@example.com")
    booking = _booking(session)
    result = attribute(session, booking, actor=owner)
    assert (result.outcome, booking.customer_id) == ("related", customer.id)
    assert session.scalars(to_review()).all() == [booking]


def test_no_match_on_a_confirmed_booking_creates_a_client(session, owner):
    booking = _booking(session, contact_phone="+447700900123")
    result = attribute(session, booking, actor=owner)
    assert result.outcome == "new"
    customer = booking.customer
    assert (customer.kind, customer.first_name, customer.surname, customer.email,
            customer.phone) == ("client", "Robin", "Hart", "robin.hart@example.com",
                                "+447700900123")
    assert customer.address_line_1 is None  # a name and an e-mail are enough


def test_an_enquiry_without_a_match_waits_then_is_picked_up_by_a_new_customer(session, owner):
    waiting = _booking(session, status="enquiry")
    other_name = _booking(session, status="enquiry", contact_first_name="Sam")
    assert attribute(session, waiting, actor=owner).outcome == "waiting"
    assert attribute(session, other_name, actor=owner).outcome == "waiting"
    assert waiting.customer_id is None and _count(session, Customer) == 0
    customer = make_customer(session, first_name="Robin", surname="Hart",
                             email="robin.hart@example.com")
    assert attach_waiting(session, customer, actor=owner) == 2
    assert (waiting.customer_id, waiting.attribution) == (customer.id, "exact")
    assert (other_name.customer_id, other_name.attribution) == (customer.id, "related")


def test_two_customers_sharing_an_email_the_oldest_gets_it_for_review(session, owner):
    oldest = make_customer(session, first_name="Robin", surname="Hart",
                           email="robin.hart@example.com")
    make_customer(session, first_name="Robin", surname="Hart", email="robin.hart@example.com")
    booking = _booking(session)
    result = attribute(session, booking, actor=owner)
    assert (result.outcome, booking.customer_id) == ("related", oldest.id)


def test_a_blocked_booking_email_is_refused(session, owner):
    block_email(session, value="robin.hart@example.com", reason="abuse", actor=owner)
    booking = _booking(session)
    with pytest.raises(ActionError, match="is blocked"):
        attribute(session, booking, actor=owner)


def test_confirming_a_related_booking_takes_it_off_the_review_list(session, owner):
    make_customer(session, first_name="Alex", surname="Stone", email="robin.hart@example.com")
    booking = _booking(session)
    attribute(session, booking, actor=owner)
    assert confirm_related(session, booking_ids=[booking.id], actor=owner) == 1
    assert booking.reviewed_at is not None and booking.attribution == "related"
    assert session.scalars(to_review()).all() == []
    with pytest.raises(ActionError, match="no longer waiting"):
        confirm_related(session, booking_ids=[booking.id], actor=owner)


def test_detaching_to_a_new_customer_and_to_another_one(session, owner):
    alex = make_customer(session, first_name="Alex", surname="Stone",
                         email="robin.hart@example.com")
    other = make_customer(session, surname="Elsewhere")
    first, second = _booking(session), _booking(session)
    attribute(session, first, actor=owner)
    attribute(session, second, actor=owner)
    made = detach(session, booking_id=first.id, actor=owner)
    assert made.id not in (alex.id, other.id) and made.surname == "Hart"
    assert (first.customer_id, first.attribution) == (made.id, "manual")
    detach(session, booking_id=second.id, actor=owner, to_customer_id=other.id)
    assert second.customer_id == other.id
    assert session.scalars(to_review()).all() == []
    events = session.scalars(select(AuditEvent).where(AuditEvent.verb == "detach_booking")).all()
    assert {e.subject_id for e in events} == {alex.id, made.id, other.id}


def test_detaching_to_the_same_customer_is_refused(session, owner):
    alex = make_customer(session, first_name="Alex", surname="Stone",
                         email="robin.hart@example.com")
    booking = _booking(session)
    attribute(session, booking, actor=owner)
    with pytest.raises(ActionError, match="confirm it instead"):
        detach(session, booking_id=booking.id, actor=owner, to_customer_id=alex.id)
    assert booking.customer_id == alex.id and booking.reviewed_at is None


def test_attribution_reads_a_constant_number_of_statements(session, owner):
    from tests.unit.conftest import count_statements

    for n in range(30):
        make_customer(session, surname=f"Other{n}", email=f"other{n}@example.com")
    make_customer(session, first_name="Robin", surname="Hart", email="robin.hart@example.com")
    session.commit()
    counts = []
    for _ in range(4):
        booking = _booking(session)
        session.flush()
        with count_statements(session) as seen:
            attribute(session, booking, actor=owner)
        counts.append(len(seen))
    # The first one loads the customer; after that each booking costs the same few.
    assert counts[1] == counts[2] == counts[3] and counts[1] <= 6


# -- what the audit log and the timeline say ---------------------------------------------------

def _said(parts) -> str:
    return "".join(p.text if isinstance(p, Ref) else p for p in parts)


def _event(session, verb):
    return session.scalars(select(AuditEvent).where(AuditEvent.verb == verb)
                           .order_by(AuditEvent.id)).all()


def test_the_timeline_and_the_log_say_a_lead_was_converted(session, owner):
    lead = _lead(session)
    convert(session, lead_ids=[lead.id], actor=owner)
    booking = session.scalars(select(Booking)).one()
    (event,) = _event(session, "convert_lead")
    assert _said(sentence(event, "coordinator")) == (
        f"converted lead #{lead.id} into a new customer with booking {booking.reference}")
    customer = lead.customer
    assert _said(sentence(event, "owner", subject=Ref(customer.reference, "Customer",
                                                      customer.id), actor="Owner")) == (
        f"Owner converted lead #{lead.id} into {customer.reference} with booking "
        f"{booking.reference}")


def test_the_timeline_says_how_a_booking_was_attached_and_detached(session, owner):
    alex = make_customer(session, first_name="Alex", surname="Stone",
                         email="robin.hart@example.com")
    booking = _booking(session)
    attribute(session, booking, actor=owner)
    (attached,) = _event(session, "attribute_booking")
    assert _said(sentence(attached, "coordinator")) == (
        f"attached booking {booking.reference} (its e-mail matches, not the name: to review)")
    made = detach(session, booking_id=booking.id, actor=owner)
    first = _event(session, "detach_booking")[0]
    assert _said(sentence(first, "coordinator")) == (
        f"moved booking {booking.reference} from {alex.reference} to {made.reference} "
        "(a new customer)")


# -- index use (the structural half of the board's and the review's speed) --------------------

def _plan(session, query) -> str:
    sql = str(query.compile(session.get_bind(), compile_kwargs={"literal_binds": True}))
    raw = session.connection().connection.driver_connection
    return " / ".join(row[-1] for row in raw.execute(f"EXPLAIN QUERY PLAN {sql}"))


def test_follow_ups_and_the_review_list_read_their_partial_indexes(session):
    if session.get_bind().dialect.name != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's (PostgreSQL plans by its statistics)")
    from crm.actions.leads import follow_ups_due

    due = _plan(session, follow_ups_due(date.today()).limit(8))
    review = _plan(session, to_review().order_by(Booking.id).limit(51))
    assert "INDEX ix_lead_open_follow_up_on" in due and "TEMP B-TREE" not in due
    assert "INDEX ix_booking_to_review" in review and "TEMP B-TREE" not in review


def test_the_lead_form_keeps_the_pipeline_rules(session):
    from crm.actions.leads import check_edit

    lead = _lead(session)
    lead.status = "lost"
    with pytest.raises(ActionError, match="why the lead was lost"):
        check_edit(lead, is_created=False)
    lead.lost_reason = "x" * 201
    with pytest.raises(ActionError, match="200 characters"):
        check_edit(lead, is_created=False)
    lead.lost_reason = "  Date taken "
    check_edit(lead, is_created=False)
    assert lead.lost_reason == "Date taken"
    lead.status = "won"
    with pytest.raises(ActionError, match="won by converting"):
        check_edit(lead, is_created=False)
    lead.status = "quoted"
    check_edit(lead, is_created=False)
    assert lead.lost_reason is None
