"""An inquiry sent through the public form becomes a lead (crm/actions/inquiry.py): checked
field by field, normalized, never stored for a blocked address, not made twice by a double
click, followed up on the next working day, audited without what the person typed."""

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from crm.actions.block_email import block_email
from crm.actions.inquiry import (
    DAYS_AHEAD,
    INQUIRY_FORM,
    InquiryError,
    capture_inquiry,
    next_working_day,
)
from crm.models import AuditEvent, Lead

TODAY = date(2026, 12, 4)  # a Friday


def send(session, **overrides):
    values = dict(first_name="Sam", surname="Lee", email="Sam.Lee@Example.COM",
                  phone="07911 123456", message="Our wedding in June.",
                  purpose="Wedding, 120 guests", preferred_date=date(2027, 6, 12),
                  today=TODAY)
    values.update(overrides)
    return capture_inquiry(session, **values)


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_an_inquiry_becomes_a_new_lead_with_the_address_and_number_normalized(session):
    lead = send(session)
    session.commit()

    stored = session.get(Lead, lead.id)
    assert (stored.first_name, stored.surname) == ("Sam", "Lee")
    assert stored.email == "sam.lee@example.com"
    assert stored.phone == "+447911123456"
    assert (stored.purpose, stored.message) == ("Wedding, 120 guests", "Our wedding in June.")
    assert stored.preferred_date == date(2027, 6, 12)
    assert (stored.status, stored.source) == ("new", "Website form")
    assert stored.follow_up_on == date(2026, 12, 7)  # sent on a Friday: the Monday


def test_one_audit_event_names_the_lead_and_the_fields_never_their_values(session):
    lead = send(session, phone=None)

    events = session.scalars(select(AuditEvent)).all()
    assert len(events) == 1
    event = events[0]
    assert (event.verb, event.subject_type, event.subject_id) == ("create", "Lead", lead.id)
    assert event.actor_id is None and event.actor_label == INQUIRY_FORM
    assert event.details == {"fields": ["email", "first_name", "message", "preferred_date",
                                        "purpose", "surname"], "via": "inquiry_form"}
    said = str(event.details).lower()
    for typed in ("sam", "lee", "example", "wedding", "2027"):
        assert typed not in said


@pytest.mark.parametrize(("sent_on", "follow_up"), [
    (date(2026, 11, 30), date(2026, 12, 1)),  # Monday: Tuesday
    (date(2026, 12, 3), date(2026, 12, 4)),  # Thursday: Friday
    (date(2026, 12, 4), date(2026, 12, 7)),  # Friday: Monday
    (date(2026, 12, 5), date(2026, 12, 7)),  # Saturday: Monday
    (date(2026, 12, 6), date(2026, 12, 7)),  # Sunday: Monday
])
def test_the_follow_up_is_the_next_working_day(sent_on, follow_up):
    assert next_working_day(sent_on) == follow_up


def test_only_a_surname_and_an_e_mail_address_are_needed(session):
    lead = send(session, first_name="  ", phone="", message=None, purpose=None,
                preferred_date=None)

    assert (lead.first_name, lead.phone, lead.message, lead.purpose, lead.preferred_date) \
        == (None, None, None, None, None)


@pytest.mark.parametrize("value", ["@example.com", "sam.lee@example.com"])
def test_a_blocked_address_or_domain_stores_nothing_not_even_an_audit_row(session, owner,
                                                                          value):
    block_email(session, value=value, reason="spam", actor=owner)
    session.commit()
    events = count(session, AuditEvent)

    assert send(session) is None
    session.commit()

    assert count(session, Lead) == 0
    assert count(session, AuditEvent) == events


def test_a_block_on_another_domain_lets_the_inquiry_through(session, owner):
    block_email(session, value="@mail.example.com", reason="spam", actor=owner)

    assert send(session) is not None


def test_every_problem_is_said_at_once_by_field_and_nothing_is_stored(session):
    with pytest.raises(InquiryError) as refused:
        send(session, surname=" ", email="", phone="12", message="x" * 5_001,
             preferred_date=date(2026, 12, 3), purpose="p" * 201, first_name="f" * 101)

    assert refused.value.problems == {
        "first_name": "Keep your first name to 100 characters or fewer.",
        "surname": "Enter your surname.",
        "email": "Enter your e-mail address, so that we can reply.",
        "phone": "Check your phone number: write it in digits, with the country code "
                 "(such as +33) if it is from abroad.",
        "purpose": "Keep what it is for to 200 characters or fewer.",
        "message": "Keep your message to 5,000 characters or fewer.",
        "preferred_date": "Choose a date from today (4 Dec 2026) onwards.",
    }
    assert count(session, Lead) == 0 and count(session, AuditEvent) == 0


def test_an_address_that_is_not_one_is_refused_with_the_reason(session):
    with pytest.raises(InquiryError) as refused:
        send(session, email="sam.example.com")

    assert refused.value.problems == {
        "email": "Check your e-mail address: an email address must have an @-sign."}


def test_a_message_of_exactly_the_limit_is_taken_and_windows_line_breaks_count_once(session):
    # 7,499 characters as a browser sends them; 5,000 as typed (a line break is one).
    lead = send(session, message=("a\r\n" * 2_500)[:-2] + "b")

    assert len(lead.message) == 5_000
    assert "\r" not in lead.message


def test_control_characters_are_refused(session):
    with pytest.raises(InquiryError) as refused:
        send(session, surname="Le\x00e", message="Hi\x1b")

    assert set(refused.value.problems) == {"surname", "message"}
    assert "control character" in refused.value.problems["surname"]


@pytest.mark.parametrize(("typed", "expected"), [
    ("4 Dec 2026", date(2026, 12, 4)),  # today is fine
    ("12 June 2027", date(2027, 6, 12)),
    ("2027-06-12", date(2027, 6, 12)),
    ("12/06/2027", date(2027, 6, 12)),  # the locale's order (en_GB)
    ("", None),
])
def test_the_preferred_date_is_read_as_pages_write_dates(session, typed, expected):
    assert send(session, preferred_date=typed).preferred_date == expected


@pytest.mark.parametrize(("typed", "sentence"), [
    ("yesterday", "Type a date like 4 Dec 2026."),
    ("31 Feb 2027", "Type a date like 4 Dec 2026."),
    ("3 Dec 2026", "Choose a date from today (4 Dec 2026) onwards."),
    ("1 Jan 9999", "we cannot book further ahead"),
    (TODAY + timedelta(days=DAYS_AHEAD + 1), "we cannot book further ahead"),
])
def test_a_date_that_is_not_one_in_the_past_or_absurdly_far_is_refused(session, typed,
                                                                        sentence):
    with pytest.raises(InquiryError) as refused:
        send(session, preferred_date=typed)

    assert sentence in refused.value.problems["preferred_date"]
    assert count(session, Lead) == 0


def test_a_datetime_counts_as_its_day(session):
    assert send(session, preferred_date=datetime(2027, 1, 2, 18, 0)).preferred_date \
        == date(2027, 1, 2)


def test_the_same_inquiry_sent_twice_makes_one_lead(session):
    first = send(session)
    session.commit()
    again = send(session, email="sam.lee@example.com")
    session.commit()

    assert again.id == first.id
    assert count(session, Lead) == 1 and count(session, AuditEvent) == 1


def test_another_message_from_the_same_person_is_a_new_lead(session):
    first = send(session)
    second = send(session, message="And a party in August.")

    assert second.id != first.id and count(session, Lead) == 2
