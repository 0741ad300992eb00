"""The service-reminder round: book, postpone, skip this time, stop for good and the reminder
e-mails, each over a selection — what changes, what is skipped and why, the refusals, the
month-end rule and the audit trail a customer's timeline reads."""

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from crm import mail
from crm.actions import ActionError
from crm.actions.block_email import block_email
from crm.actions.reminders import (
    MAX_REMINDERS,
    add_months,
    book_jobs,
    every,
    next_due,
    postpone,
    send_reminder_emails,
    skip_this_time,
    stop_for_good,
)
from crm.audit_sentences import Ref, sentence
from crm.models import AuditEvent, Booking, Note, SentMessage, ServiceReminder
from tests import factories as f

TODAY = date.today()


@pytest.fixture
def outbox(app, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "MAIL_BACKEND", "outbox")
    monkeypatch.setitem(app.config, "MAIL_OUTBOX_DIR", str(tmp_path / "outbox"))
    return mail.Outbox(tmp_path / "outbox")


def reminder(session, customer=None, *, address_status="active", **values):
    customer = customer or f.make_customer(session)
    site = f.make_work_address(session, customer, status=address_status)
    values.setdefault("interval_months", 12)
    return f.make_reminder(session, site, **values)


def stored(session, item) -> tuple:
    return session.execute(select(ServiceReminder.due_on, ServiceReminder.status,
                                  ServiceReminder.version)
                           .where(ServiceReminder.id == item.id)).one()


def events(session, verb):
    return session.scalars(select(AuditEvent).where(AuditEvent.verb == verb)
                           .order_by(AuditEvent.id)).all()


# --- month arithmetic ----------------------------------------------------------------------


@pytest.mark.parametrize(("start", "months", "expected"), [
    (date(2027, 1, 31), 1, date(2027, 2, 28)),
    (date(2028, 1, 31), 1, date(2028, 2, 29)),  # a leap year
    (date(2027, 3, 31), 1, date(2027, 4, 30)),
    (date(2027, 11, 30), 3, date(2028, 2, 29)),
    (date(2027, 12, 15), 1, date(2028, 1, 15)),
    (date(2028, 2, 29), 12, date(2029, 2, 28)),
    (date(2027, 6, 5), 120, date(2037, 6, 5)),
])
def test_months_are_added_with_the_day_clamped_to_the_months_end(start, months, expected):
    assert add_months(start, months) == expected


def test_the_next_due_date_counts_from_the_original_day_so_a_31st_comes_back():
    # 31 Jan, monthly: 28 Feb, then 31 Mar (not 28 Mar)
    assert next_due(date(2027, 1, 31), 1, after=date(2027, 2, 1)) == date(2027, 2, 28)
    assert next_due(date(2027, 1, 31), 1, after=date(2027, 3, 1)) == date(2027, 3, 31)
    # a long-overdue annual service moves to its first date after the day given
    assert next_due(date(2020, 5, 10), 12, after=date(2026, 12, 5)) == date(2027, 5, 10)
    assert next_due(date(2020, 5, 10), 12, after=date(2027, 5, 10)) == date(2028, 5, 10)
    assert next_due(date(2027, 5, 10), 12, after=date(2020, 1, 1)) == date(2028, 5, 10)


def test_a_repetition_is_said_in_words():
    assert [every(None), every(1), every(12)] == ["one-off", "every month", "every 12 months"]


# --- book -----------------------------------------------------------------------------------


def test_booking_makes_a_confirmed_job_and_moves_the_reminder_on(session, owner):
    annual = reminder(session, due_on=TODAY - timedelta(days=3), description="Boiler service")
    once = reminder(session, due_on=TODAY, interval_months=None, description="Fit a valve")
    session.commit()
    starts = datetime.combine(TODAY + timedelta(days=7), datetime.min.time()).replace(hour=9)

    result = book_jobs(session, reminder_ids=[annual.id, once.id], starts_at=starts,
                       actor=owner)
    session.commit()

    bookings = session.scalars(select(Booking).order_by(Booking.id)).all()
    assert [(b.title, b.status, b.attribution, b.starts_at, b.work_address_id)
            for b in bookings] == [
        ("Boiler service", "confirmed", "manual", starts, annual.work_address_id),
        ("Fit a valve", "confirmed", "manual", starts, once.work_address_id)]
    assert [b.customer_id for b in bookings] == [annual.work_address.customer_id,
                                                 once.work_address.customer_id]
    assert all(b.reference.startswith("B-") for b in bookings)
    assert stored(session, annual)[:2] == (add_months(TODAY - timedelta(days=3), 12), "due")
    assert stored(session, once)[:2] == (TODAY, "done")
    assert result.changed == 2 and result.changed_refs == tuple(
        f"{b.reference}: {r.work_address.customer.reference} {b.title} (due {was:%-d %b %Y})"
        for b, r, was in zip(bookings, (annual, once), (TODAY - timedelta(days=3), TODAY),
                             strict=True))
    assert result.message == f"Booked 2 jobs for {starts:%-d %b %Y}."


def test_a_blocked_customers_reminder_is_not_booked(session, owner):
    fine = reminder(session)
    flagged = reminder(session, f.make_customer(session, email="x@spam.example"))
    session.commit()
    block_email(session, value="@spam.example", reason="spam", actor=None)
    session.commit()

    result = book_jobs(session, reminder_ids=[fine.id, flagged.id],
                       starts_at=datetime.combine(TODAY, datetime.min.time()), actor=owner)

    assert result.changed == 1
    [skip] = result.skipped
    assert skip.reason == "e-mail blocked" and skip.reference.startswith(
        flagged.work_address.customer.reference)
    assert stored(session, flagged)[:2] == (flagged.due_on, "due")
    assert session.scalar(select(Booking.customer_id)) == fine.work_address.customer_id


def test_a_job_in_the_past_or_out_of_range_is_refused_and_nothing_booked(session, owner):
    item = reminder(session)
    session.commit()

    with pytest.raises(ActionError, match="has passed: book the job for today or later"):
        book_jobs(session, reminder_ids=[item.id], actor=owner,
                  starts_at=datetime.combine(TODAY - timedelta(days=1), datetime.min.time()))
    with pytest.raises(ActionError, match="Enter a date between 1900 and 2100"):
        book_jobs(session, reminder_ids=[item.id], actor=owner,
                  starts_at=datetime(2300, 1, 1, 9))

    assert session.scalar(select(Booking.id)) is None
    assert stored(session, item)[:2] == (item.due_on, "due")


# --- postpone, skip, stop -------------------------------------------------------------------


def test_postponing_sets_the_new_date_and_moves_the_version_on(session, owner):
    item = reminder(session, due_on=TODAY - timedelta(days=40))
    session.commit()
    version = stored(session, item)[2]
    until = TODAY + timedelta(days=30)

    result = postpone(session, reminder_ids=[item.id], until=until, actor=owner)
    session.commit()

    assert stored(session, item) == (until, "due", version + 1)
    assert result.message == f"Postponed 1 reminder to {until:%-d %b %Y}."


@pytest.mark.parametrize(("until", "sentence"), [
    (TODAY, "Postpone to a day after today"),
    (TODAY - timedelta(days=5), "Postpone to a day after today"),
    (date(2201, 1, 1), "Enter a date between 1900 and 2100"),
])
def test_postponing_to_today_the_past_or_a_silly_date_is_refused(session, owner, until,
                                                                 sentence):
    item = reminder(session)
    session.commit()

    with pytest.raises(ActionError, match=sentence):
        postpone(session, reminder_ids=[item.id], until=until, actor=owner)
    assert stored(session, item)[:2] == (item.due_on, "due")
    assert events(session, "postpone_reminders") == []


def test_skipping_moves_a_repeating_reminder_to_its_next_date_and_a_one_off_is_refused(
        session, owner):
    end_of_month = date(TODAY.year - 1, 1, 31)
    monthly = reminder(session, due_on=end_of_month, interval_months=1)
    once = reminder(session, interval_months=None, description="One job")
    session.commit()

    result = skip_this_time(session, reminder_ids=[monthly.id, once.id], actor=owner)
    session.commit()

    due, status, _ = stored(session, monthly)
    assert status == "due" and TODAY < due <= add_months(TODAY, 1)
    assert due == next_due(end_of_month, 1, after=TODAY)
    assert stored(session, once)[:2] == (once.due_on, "due")
    assert result.changed == 1
    assert [s.reason for s in result.skipped] == ["one-off, no next time to skip to"]
    assert result.message == ("Moved 1 reminder on to the next due date; 1 skipped (1 one-off, "
                              "no next time to skip to).")


def test_stopping_for_good_needs_a_reason_which_goes_on_a_note(session, owner):
    item = reminder(session, description="Gas safety check")
    session.commit()

    for blank in ("", "   "):
        with pytest.raises(ActionError, match="Give a reason for stopping"):
            stop_for_good(session, reminder_ids=[item.id], reason=blank, actor=owner)
    with pytest.raises(ActionError, match="500 characters or fewer"):
        stop_for_good(session, reminder_ids=[item.id], reason="x" * 501, actor=owner)
    assert stored(session, item)[1] == "due"

    result = stop_for_good(session, reminder_ids=[item.id], reason="Boiler replaced",
                           actor=owner)
    session.commit()

    assert stored(session, item)[1] == "stopped"
    [note] = session.scalars(select(Note)).all()
    assert note.body == "Service reminder stopped for good (Gas safety check): Boiler replaced"
    assert (note.customer_id, note.work_address_id, note.author_id) == (
        item.work_address.customer_id, item.work_address_id, owner.id)
    assert result.message == "Stopped 1 reminder for good."
    [event] = events(session, "stop_reminders")
    assert "Boiler replaced" not in str(event.details)  # the reason is on the note only


def test_every_decision_skips_what_is_no_longer_its_to_decide(session, owner):
    keen = reminder(session)
    done = reminder(session, status="done")
    dormant = reminder(session, f.make_customer(session, status="dormant"))
    archived = reminder(session, f.make_customer(session, status="archived"))
    closed_site = reminder(session, address_status="dormant")
    session.commit()
    ids = [r.id for r in (keen, done, dormant, archived, closed_site)]

    result = postpone(session, reminder_ids=ids, until=TODAY + timedelta(days=9), actor=owner)
    session.commit()

    assert result.changed == 1 and result.skipped_count == 4
    assert sorted(s.reason for s in result.skipped) == [
        "archived", "dormant", "no longer due (booked, stopped or cancelled already)",
        "work address dormant"]
    assert stored(session, dormant)[0] == dormant.due_on


def test_an_empty_or_oversized_selection_is_refused(session, owner):
    for ids in ([], list(range(1, MAX_REMINDERS + 2))):
        with pytest.raises(ActionError, match="Select between 1 and 1,000 reminders"):
            skip_this_time(session, reminder_ids=ids, actor=owner)


# --- audit ----------------------------------------------------------------------------------


def test_one_customers_reminders_are_one_event_on_that_customer(session, owner):
    person = f.make_customer(session)
    first, second = reminder(session, person), reminder(session, person)
    session.commit()

    skip_this_time(session, reminder_ids=[first.id, second.id], actor=owner)
    session.commit()

    [event] = events(session, "skip_reminders")
    assert (event.subject_type, event.subject_id, event.actor_id) == (
        "Customer", person.id, owner.id)
    assert event.details == {"count": 2, "skipped": 0}


def test_many_customers_get_a_summary_and_one_row_each(session, owner):
    items = [reminder(session) for _ in range(3)]
    gone = reminder(session, f.make_customer(session, status="dormant"))
    session.commit()
    until = TODAY + timedelta(days=14)

    postpone(session, reminder_ids=[i.id for i in items] + [gone.id], until=until,
             actor=owner)
    session.commit()

    found = events(session, "postpone_reminders")
    [summary] = [e for e in found if e.subject_id is None]
    assert summary.details == {"count": 3, "skipped": 1, "customers": 3,
                               "until": until.isoformat()}
    rows = [e for e in found if e.subject_id is not None]
    assert sorted(e.subject_id for e in rows) == sorted(
        i.work_address.customer_id for i in items)
    assert all(e.details == {"summary_id": summary.id, "until": until.isoformat()}
               for e in rows)


def test_nothing_changed_writes_no_event(session, owner):
    item = reminder(session, status="stopped")
    session.commit()

    result = skip_this_time(session, reminder_ids=[item.id], actor=owner)

    assert result.changed == 0 and result.skipped_count == 1
    assert events(session, "skip_reminders") == []


# --- e-mails --------------------------------------------------------------------------------


def test_reminder_emails_go_only_to_those_who_want_them(session, owner, outbox):
    def of(**customer):
        return reminder(session, f.make_customer(session, **customer))

    made = {
        "ann": of(first_name="Ann", email="ann@example.com"),
        "no_reminders": of(wants_reminders=False),
        "no_email_consent": of(email_opt_in=False),
        "no_address": of(email=None),
        "dormant": of(status="dormant"),
        "archived": of(status="archived"),
        "redacted": of(redacted_at=datetime(2025, 1, 1), email=None),
        "blocked": of(email="someone@blocked.example"),
    }
    session.commit()
    block_email(session, value="@blocked.example", reason="spam", actor=None)
    session.commit()

    result = send_reminder_emails(session, reminder_ids=[r.id for r in made.values()],
                                  actor=owner)
    session.commit()

    assert result.changed == 1
    reasons = {s.reference.split(" ")[0]: s.reason for s in result.skipped}
    ref = {k: r.work_address.customer.reference for k, r in made.items()}
    assert reasons == {
        ref["no_reminders"]: "opted out of service reminders",
        ref["no_email_consent"]: "opted out of e-mail",
        ref["no_address"]: "no e-mail address",
        ref["dormant"]: "dormant",
        ref["archived"]: "archived",
        ref["redacted"]: "redacted",
        ref["blocked"]: "e-mail blocked",
    }
    [name] = outbox.names()
    message = outbox.read(name)
    assert str(message["To"]) == "ann@example.com"
    text = message.get_body(("plain",)).get_content()
    assert "Dear Ann" in text and "Annual service at 2 Work Lane, B1 1AA" in text
    assert f"is due on {made['ann'].due_on:%-d %b %Y}" in text and "every 12 months" in text
    assert session.scalar(select(SentMessage.kind)) == "service_reminder"
    [event] = events(session, "email_reminders")
    assert event.subject_id == made["ann"].work_address.customer_id


def test_a_run_sends_once_per_reminder_even_when_it_is_selected_twice(session, owner):
    item = reminder(session)
    session.commit()
    sent = []

    result = send_reminder_emails(session, reminder_ids=[item.id, item.id, str(item.id)],
                                  actor=owner, send=lambda m: sent.append(m) or "x")

    assert len(sent) == 1 and result.changed == 1


def test_a_sending_failure_stops_the_run_and_says_who_was_not_sent(session, owner):
    items = [reminder(session, due_on=TODAY + timedelta(days=n)) for n in range(3)]
    session.commit()
    calls = []

    def send(message):
        calls.append(message)
        if len(calls) == 2:
            raise mail.MailError("The mail server refused the login.")
        return "id"

    result = send_reminder_emails(session, reminder_ids=[i.id for i in items], actor=owner,
                                  send=send)

    assert len(calls) == 2 and result.changed == 1
    assert sorted(s.reason for s in result.skipped) == [
        "not sent: the run stopped at a sending failure", "sending failed"]
    assert "The mail server refused the login." in result.message
    assert "the 1 already sent cannot be unsent; 2 were not sent" in result.message


# --- the trail read as sentences ------------------------------------------------------------


def said(parts) -> str:
    return "".join(p.text if isinstance(p, Ref) else p for p in parts)


def test_the_timeline_and_the_audit_log_say_what_the_round_did(session, owner):
    person = f.make_customer(session)
    mine = reminder(session, person)
    others = [reminder(session) for _ in range(2)]
    session.commit()
    until = TODAY + timedelta(days=10)
    starts = datetime.combine(TODAY, datetime.min.time()).replace(hour=9)

    book_jobs(session, reminder_ids=[mine.id], starts_at=starts, actor=owner)
    postpone(session, reminder_ids=[o.id for o in others], until=until, actor=owner)
    session.commit()

    [booked] = events(session, "book_reminders")
    reference = session.scalar(select(Booking.reference))
    assert said(sentence(booked, "coordinator")) == (
        f"booked {reference} from service reminders")
    assert said(sentence(booked, "owner", subject=Ref(person.reference, "Customer", person.id),
                         actor="Owner")) == (
        f"Owner booked {reference} from service reminders of {person.reference}")
    summary, *rows = events(session, "postpone_reminders")
    assert said(sentence(summary, "owner", actor="Owner")) == (
        f"Owner postponed 2 service reminders for 2 customers to {until:%-d %b %Y}")
    assert said(sentence(rows[0], "coordinator")) == (
        f"postponed service reminders to {until:%-d %b %Y}")
