"""The service-reminder round on screen: the due list says how often each reminder comes
round and flags customers who want no reminders; ticked reminders get a decision (book a job,
postpone, skip this time, stop for good, send reminder e-mails) through a confirmation page
and a results page, as a coordinator; bad input gets a sentence and changes nothing."""

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from crm.actions.block_email import block_email
from crm.extensions import db
from crm.models import AuditEvent, Booking, Note, ServiceReminder
from tests import factories as f
from tests.integration.helpers import by_testid, cells, text_of, url

TODAY = date.today()


def _make(app, **customers):
    """One yearly reminder per named customer (its overrides), due a week ago; their ids."""
    with app.app_context():
        made = {}
        for name, overrides in customers.items():
            interval = overrides.pop("interval_months", 12)
            person = f.make_customer(db.session, surname=name.title(), **overrides)
            site = f.make_work_address(db.session, person, address_line_1=f"1 {name} Road")
            made[name] = f.make_reminder(db.session, site, due_on=TODAY - timedelta(days=7),
                                         description=f"{name.title()} boiler service",
                                         interval_months=interval).id
        db.session.commit()
        return made


def _stored(app, key):
    with app.app_context():
        return db.session.execute(select(ServiceReminder.due_on, ServiceReminder.status)
                                  .where(ServiceReminder.id == key)).one()


def decide(client, role, verb, ids, **form):
    return client.post(url(role, "due_reminder", f"decide/{verb}/"),
                       data={"ids": [str(i) for i in ids], "confirm": "1", **form})


def test_the_due_list_shows_the_interval_flags_opt_outs_and_leaves_dormant_out(app, client,
                                                                             login):
    made = _make(app, keen={}, quiet={"wants_reminders": False},
                 once={"interval_months": None}, asleep={"status": "dormant"})
    login("coordinator")

    page = text_of(client.get(url("coordinator", "due_reminder")))

    assert sorted(cells(page, "description")) == [
        "Keen boiler service", "Once boiler service", "Quiet boiler service"]
    repeats = dict(zip(cells(page, "description"), cells(page, "interval_months"),
                       strict=True))
    assert repeats["Keen boiler service"] == "every 12 months"
    assert repeats["Once boiler service"] == "one-off"
    customers = dict(zip(cells(page, "description"), cells(page, "customer"), strict=True))
    assert customers["Quiet boiler service"].endswith("opted out")
    assert not customers["Keen boiler service"].endswith("opted out")
    for label in ("Book a job", "Postpone to a date", "Skip this time", "Stop for good",
                  "Send reminder e-mails"):
        assert f">{label}</a>" in page
    assert f'value="{made["asleep"]}"' not in page


def test_a_menu_entry_shows_the_confirmation_page_and_changes_nothing(app, client, login):
    made = _make(app, keen={})
    login("coordinator")

    page = client.post(url("coordinator", "due_reminder", "action/"),
                       data={"action": "book_jobs", "rowid": str(made["keen"])})

    html = text_of(page)
    assert page.status_code == 200
    assert by_testid(html, "confirm-count") == ["1 reminder selected:"]
    assert "Keen boiler service" in html and 'name="when"' in html
    assert by_testid(html, "confirm-button") == ["Book 1 job"]
    assert _stored(app, made["keen"]) == (TODAY - timedelta(days=7), "due")


def test_a_coordinator_books_jobs_and_the_results_page_says_what_was_done(app, client, login):
    made = _make(app, keen={}, once={"interval_months": None},
                 walled={"email": "walled@spam.example"})
    with app.app_context():
        block_email(db.session, value="@spam.example", reason="spam", actor=None)
        db.session.commit()
    login("coordinator")
    when = TODAY + timedelta(days=3)

    done = decide(client, "coordinator", "book_jobs", made.values(),
                  when=f"{when:%-d %b %Y}, 09:30")

    html = text_of(done)
    assert done.status_code == 200
    assert by_testid(html, "result-message") == [
        f"Booked 2 jobs for {when:%-d %b %Y}; 1 skipped (1 e-mail blocked)."]
    assert "Walled boiler service" in html and "skipped: e-mail blocked" in html
    with app.app_context():
        first = db.session.scalar(select(Booking.reference).order_by(Booking.id))
    assert by_testid(html, "changed-list")[0].startswith(f"{first} C-")
    assert f'/customer/ref/{first}/"' in html  # the booking, linked
    assert by_testid(html, "results-back") == ["Back to the due list"]
    with app.app_context():
        titles = db.session.scalars(select(Booking.title).order_by(Booking.title)).all()
        assert titles == ["Keen boiler service", "Once boiler service"]
    assert _stored(app, made["keen"]) == (TODAY - timedelta(days=7) + _a_year(TODAY), "due")
    assert _stored(app, made["once"])[1] == "done"


def _a_year(start: date) -> timedelta:
    from crm.actions.reminders import add_months

    start = start - timedelta(days=7)
    return add_months(start, 12) - start


@pytest.mark.parametrize(("until", "sentence"), [
    ("next tuesday", "The new due date: type a date like 4 Dec 2026. Nothing was changed."),
    ("", "Say which day to postpone to, like 4 Dec 2026. Nothing was changed."),
    (f"{TODAY - timedelta(days=1):%-d %b %Y}", "Postpone to a day after today"),
    ("1 Jan 2300", "Enter a date between 1900 and 2100."),
])
def test_a_bad_postpone_date_gets_a_sentence_and_changes_nothing(app, client, login, until,
                                                                 sentence):
    made = _make(app, keen={})
    login("coordinator")

    page = decide(client, "coordinator", "postpone", [made["keen"]], until=until)

    assert page.status_code == 400
    [error] = by_testid(text_of(page), "action-error")
    assert sentence in error
    assert 'name="until"' in text_of(page)  # asked again, the selection kept
    assert _stored(app, made["keen"]) == (TODAY - timedelta(days=7), "due")


def test_a_bad_job_time_gets_a_sentence_and_nothing_is_booked(app, client, login):
    made = _make(app, keen={})
    login("coordinator")

    page = decide(client, "coordinator", "book_jobs", [made["keen"]], when="tomorrow-ish")

    assert page.status_code == 400
    assert by_testid(text_of(page), "action-error") == [
        "The job's start: type a date and time like 4 Dec 2026, 20:00. Nothing was booked."]
    with app.app_context():
        assert db.session.scalar(select(Booking.id)) is None


def test_postpone_skip_and_stop_end_to_end(app, client, login):
    made = _make(app, later={}, skipped={}, once={"interval_months": None}, ended={})
    login("coordinator")
    until = TODAY + timedelta(days=20)

    postponed = text_of(decide(client, "coordinator", "postpone", [made["later"]],
                               until=f"{until:%-d %b %Y}"))
    skipped = text_of(decide(client, "coordinator", "skip", [made["skipped"], made["once"]]))
    stopped = text_of(decide(client, "coordinator", "stop", [made["ended"]],
                             reason="Boiler taken out"))

    assert by_testid(postponed, "result-message") == [
        f"Postponed 1 reminder to {until:%-d %b %Y}."]
    assert _stored(app, made["later"]) == (until, "due")
    assert "skipped: one-off, no next time to skip to" in skipped
    assert _stored(app, made["skipped"])[0] > TODAY
    assert _stored(app, made["once"]) == (TODAY - timedelta(days=7), "due")
    assert by_testid(stopped, "result-message") == ["Stopped 1 reminder for good."]
    assert _stored(app, made["ended"])[1] == "stopped"
    with app.app_context():
        assert db.session.scalar(select(Note.body)).endswith(": Boiler taken out")
        verbs = set(db.session.scalars(select(AuditEvent.verb)))
    assert {"postpone_reminders", "skip_reminders", "stop_reminders"} <= verbs
    # off the due list now: postponed to the future stays (not due yet), stopped leaves it
    listed = cells(text_of(client.get(url("coordinator", "due_reminder"))), "description")
    assert "Ended boiler service" not in listed and "Later boiler service" in listed


def test_stop_without_a_reason_is_refused(app, client, login):
    made = _make(app, keen={})
    login("coordinator")

    page = decide(client, "coordinator", "stop", [made["keen"]], reason="  ")

    assert page.status_code == 400
    assert "Give a reason for stopping" in by_testid(text_of(page), "action-error")[0]
    assert _stored(app, made["keen"])[1] == "due"


def test_reminder_emails_are_sent_and_the_opted_out_skipped_with_the_reason(
        app, client, login, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "MAIL_OUTBOX_DIR", str(tmp_path))
    made = _make(app, keen={"email": "keen@example.com"}, quiet={"wants_reminders": False},
                 nomail={"email_opt_in": False})
    login("coordinator")

    html = text_of(decide(client, "coordinator", "email", made.values()))

    assert by_testid(html, "result-message") == [
        "Sent 1 reminder by e-mail; 2 skipped (1 opted out of e-mail, 1 opted out of service "
        "reminders)."]
    [message] = list(tmp_path.glob("*.eml"))
    assert b"keen@example.com" in message.read_bytes()


def test_decisions_need_the_csrf_token(app, client, login):
    made = _make(app, keen={})
    login("coordinator")

    page = client.post(url("coordinator", "due_reminder", "decide/skip/"),
                       data={"ids": str(made["keen"]), "confirm": "1"}, csrf=False)

    assert page.status_code == 400
    assert _stored(app, made["keen"]) == (TODAY - timedelta(days=7), "due")


def test_no_selection_or_an_unknown_decision_is_answered_with_a_sentence(app, client, login):
    login("coordinator")

    empty = client.get(url("coordinator", "due_reminder", "decide/skip/?ids=x"))
    unknown = client.get(url("coordinator", "due_reminder", "decide/explode/?ids=1"))

    assert empty.status_code == 400
    assert by_testid(text_of(empty), "action-error") == [
        "Select between 1 and 1,000 reminders on the due list. Nothing was changed."]
    assert unknown.status_code == 404


def test_the_reminder_form_takes_an_interval_and_refuses_a_silly_one(app, client, login):
    with app.app_context():
        site = f.make_work_address(db.session, f.make_customer(db.session))
        db.session.commit()
        site_id = site.id
    login("coordinator")
    new = url("coordinator", "service_reminder", "new/")

    form = text_of(client.get(new))
    bad = client.post(new, data={"work_address": str(site_id), "due_on": "4 Dec 2027",
                                 "description": "Gas check", "interval_months": "500",
                                 "status": "due"})
    good = client.post(new, data={"work_address": str(site_id), "due_on": "4 Dec 2027",
                                  "description": "Gas check", "interval_months": "12",
                                  "status": "due"})

    assert "Repeat every N months" in form
    assert "Repeat every 1 to 120 months" in text_of(bad)
    assert good.status_code == 302
    with app.app_context():
        assert db.session.scalars(select(ServiceReminder.interval_months)).all() == [12]


def test_a_reminders_own_page_offers_each_decision_for_it_alone(app, client, login):
    made = _make(app, keen={})
    login("coordinator")

    page = text_of(client.get(url("coordinator", "due_reminder",
                                  f"details/?id={made['keen']}")))
    link = f"/admin/coordinator/due_reminder/decide/skip/?ids={made['keen']}"
    confirm = text_of(client.get(link))

    assert by_testid(page, "reminder-decisions") == [
        "Book a job Postpone to a date Skip this time Stop for good Send reminder e-mails"]
    assert f'href="{link}"' in page
    assert by_testid(confirm, "confirm-button") == ["Skip 1 reminder this time"]
