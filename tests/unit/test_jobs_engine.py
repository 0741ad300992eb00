"""The job engine (crm.jobs, crm.jobs.runner, crm.jobs.queue): chunking and progress, resume
after a consumer dies part-way through a chunk, retries then failure, refusals, cancel, two
consumers on one job, the rescue of stranded jobs, the schedule, the e-mail claim, the
statement ZIP, and every kind run to its end, killed part-way and finished again.

A consumer killed by SIGKILL is simulated by a BaseException raised from inside a chunk after
its work: the runner's transaction is abandoned (rolled back) exactly as a dead process's
would be, and run_job is called again as the next consumer would. The real process kill is in
tests/integration/test_worker_crash.py."""

import dataclasses
import email
import zipfile
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

import crm.jobs.queue as queue
from crm import mail
from crm.jobs import KINDS, RUN_TASK, Job, JobItem, job_folder, request_cancel, start_job
from crm.jobs.customers import CLAIMED, IN_DOUBT
from crm.jobs.runner import MAX_ATTEMPTS, STOPPING, run_job
from crm.models import AuditEvent, Customer, SentMessage
from crm.models.base import utcnow
from tests.factories import make_booking, make_customer, make_invoice


class Killed(BaseException):
    """The consumer died: nothing after this point of the chunk happens."""


@pytest.fixture
def config(app, monkeypatch, tmp_path):
    """The app's configuration for this test: its own jobs folder and outbox, no delay
    between retries, and any running job's heartbeat counts as stale (the consumer that
    "died" left it running)."""
    monkeypatch.setitem(app.config, "CRM_JOBS_DIR", str(tmp_path / "jobs"))
    monkeypatch.setitem(app.config, "MAIL_OUTBOX_DIR", str(tmp_path / "outbox"))
    monkeypatch.setitem(app.config, "MAIL_BACKEND", "outbox")
    monkeypatch.setitem(app.config, "CRM_JOB_RETRY_DELAY", 0)
    monkeypatch.setitem(app.config, "CRM_JOB_STALE_SECONDS", 0)
    monkeypatch.setitem(app.config, "CRM_JOB_CHUNK_SIZE", 0)
    return app.config


def customers(session, n: int, **values) -> list[int]:
    made = [Customer(first_name="Sam", surname=f"Job{i}", email=f"sam{i}@example.com",
                     address_line_1=f"{i} Mill Lane", town="York", postcode="YO1 7HH",
                     **values) for i in range(n)]
    session.add_all(made)
    session.commit()
    return [c.id for c in made]


def job_for(session, kind: str, ids, *, params: dict | None = None, actor=None) -> int:
    job = start_job(session, kind=kind, actor=actor, title=f"Test {kind}", params=params or {},
                    items=select(Customer.id).where(Customer.id.in_(ids)))
    session.commit()
    return job.id


def job_row(session, job_id: int) -> Job:
    session.expire_all()
    return session.get(Job, job_id)


def statuses(session, ids) -> list[str]:
    session.expire_all()
    return list(session.scalars(select(Customer.status).where(Customer.id.in_(ids))
                                .order_by(Customer.id)))


def audit_per_customer(session, verb: str) -> dict[int, int]:
    return dict(session.execute(
        select(AuditEvent.subject_id, func.count()).where(
            AuditEvent.verb == verb, AuditEvent.subject_id.is_not(None))
        .group_by(AuditEvent.subject_id)).all())


def wrap_kind(monkeypatch, name: str, around):
    """Replace kind ``name``'s run_chunk with ``around(real_run_chunk, session, job,
    context, call_number)``."""
    kind = KINDS[name]
    calls = {"n": 0}

    def run_chunk(session, job, context):
        calls["n"] += 1
        return around(kind.run_chunk, session, job, context, calls["n"])

    monkeypatch.setitem(KINDS, name, dataclasses.replace(kind, run_chunk=run_chunk))
    return calls


def kill_on(chunk_number: int):
    """A run_chunk wrapper: chunk ``chunk_number`` does all its work, then the consumer dies
    before the runner commits it."""
    def around(real, session, job, context, n):
        chunk = real(session, job, context)
        if n == chunk_number:
            raise Killed
        return chunk

    return around


def outbox_recipients(config) -> list[str]:
    folder = Path(config["MAIL_OUTBOX_DIR"])
    found = []
    for path in sorted(folder.glob("*.eml")):
        with path.open("rb") as source:
            found.append(email.message_from_binary_file(source)["To"])
    return found


# --- chunking and progress ---------------------------------------------------------------------


def test_a_2500_customer_job_works_in_three_chunks_and_forgets_its_items(session, config,
                                                                          monkeypatch):
    ids = customers(session, 2_500)
    job_id = job_for(session, "bulk_set_dormant", ids)
    seen = []

    def around(real, s, job, context, n):
        seen.append((job.done, job.chunks))
        return real(s, job, context)

    wrap_kind(monkeypatch, "bulk_set_dormant", around)
    assert session.scalar(select(func.count()).select_from(JobItem)) == 2_500

    assert run_job(job_id) == "done"

    job = job_row(session, job_id)
    assert seen == [(0, 0), (1_000, 1), (2_000, 2)]  # progress committed chunk by chunk
    assert (job.status, job.total, job.done, job.changed, job.skipped, job.chunks) == (
        "done", 2_500, 2_500, 2_500, 0, 3)
    assert job.percent == 100
    assert job.summary == "Set 2,500 customers dormant."
    assert set(statuses(session, ids)) == {"dormant"}
    assert set(audit_per_customer(session, "set_dormant").values()) == {1}
    assert session.scalar(select(func.count()).select_from(JobItem)) == 0


def test_skipped_items_are_counted_by_reason_and_listed(session, config, monkeypatch):
    monkeypatch.setitem(config, "CRM_JOB_CHUNK_SIZE", 4)
    ids = customers(session, 10)
    session.execute(update(Customer).where(Customer.id.in_(ids[:3])).values(status="dormant"))
    session.commit()
    job_id = job_for(session, "bulk_set_dormant", ids)

    run_job(job_id)

    job = job_row(session, job_id)
    assert (job.done, job.changed, job.skipped, job.chunks) == (10, 7, 3, 3)
    assert job.reasons == {"already dormant": 3}
    assert sorted(reason for _, reason in job.skips) == ["already dormant"] * 3
    assert job.summary == "Set 7 customers dormant; 3 skipped (3 already dormant)."


# --- resume after a crash ----------------------------------------------------------------------


def test_a_consumer_killed_inside_a_chunk_resumes_where_the_last_chunk_committed(
        session, config, monkeypatch):
    monkeypatch.setitem(config, "CRM_JOB_CHUNK_SIZE", 10)
    ids = customers(session, 25)
    job_id = job_for(session, "bulk_set_dormant", ids)
    calls = wrap_kind(monkeypatch, "bulk_set_dormant", kill_on(2))

    with pytest.raises(Killed):
        run_job(job_id)

    # The second chunk's changes went with the dead consumer; the first chunk's stayed.
    job = job_row(session, job_id)
    assert (job.status, job.done, job.changed, job.chunks) == ("running", 10, 10, 1)
    assert job.cursor == ids[9]
    assert statuses(session, ids) == ["dormant"] * 10 + ["active"] * 15
    assert len(audit_per_customer(session, "set_dormant")) == 10

    assert run_job(job_id) == "done"  # the next consumer

    job = job_row(session, job_id)
    assert calls["n"] == 4  # chunk 2 once more, then 3 (nothing redone from chunk 1)
    assert (job.status, job.done, job.changed, job.skipped, job.chunks) == (
        "done", 25, 25, 0, 3)
    assert statuses(session, ids) == ["dormant"] * 25
    assert audit_per_customer(session, "set_dormant") == {i: 1 for i in ids}


def test_a_running_job_with_a_live_heartbeat_is_left_to_its_consumer(session, config,
                                                                      monkeypatch):
    monkeypatch.setitem(config, "CRM_JOB_STALE_SECONDS", 3600)
    ids = customers(session, 3)
    job_id = job_for(session, "bulk_set_dormant", ids)
    session.execute(update(Job).where(Job.id == job_id)
                    .values(status="running", heartbeat_at=utcnow()))
    session.commit()

    assert run_job(job_id) is None
    assert statuses(session, ids) == ["active"] * 3


def test_a_consumer_killed_while_finishing_finishes_on_the_next_run(session, config,
                                                                     monkeypatch):
    monkeypatch.setitem(config, "CRM_JOB_CHUNK_SIZE", 10)
    ids = customers(session, 5)
    job_id = job_for(session, "bulk_set_dormant", ids)
    kind = KINDS["bulk_set_dormant"]
    finishes = []

    def dying_finish(s, job, context):
        finishes.append(job.done)
        if len(finishes) == 1:
            raise Killed
        return kind.finish(s, job, context)

    monkeypatch.setitem(KINDS, "bulk_set_dormant", dataclasses.replace(kind, finish=dying_finish))
    with pytest.raises(Killed):
        run_job(job_id)
    assert job_row(session, job_id).state == {"finishing": True}

    assert run_job(job_id) == "done"
    assert finishes == [5, 5]
    assert job_row(session, job_id).summary == "Set 5 customers dormant."
    assert audit_per_customer(session, "set_dormant") == {i: 1 for i in ids}


# --- retries, refusals, cancel -------------------------------------------------------------------


def test_a_chunk_that_keeps_failing_is_retried_then_the_job_fails_with_a_sentence(
        session, config, monkeypatch):
    monkeypatch.setitem(config, "CRM_JOB_CHUNK_SIZE", 10)
    ids = customers(session, 25)
    job_id = job_for(session, "bulk_set_dormant", ids)

    def around(real, s, job, context, n):
        chunk = real(s, job, context)
        if n >= 2:
            raise OSError("No space left on device")
        return chunk

    calls = wrap_kind(monkeypatch, "bulk_set_dormant", around)

    assert run_job(job_id) == "failed"

    job = job_row(session, job_id)
    assert calls["n"] == 1 + MAX_ATTEMPTS
    assert job.attempts == MAX_ATTEMPTS
    assert job.error == ("It failed 3 times in a row on the same chunk (No space left on "
                         "device); the job stopped there.")
    assert job.summary == ("Stopped after 10 of 25 items: 10 changed. Everything finished "
                           "before it stopped stays done.")
    assert statuses(session, ids) == ["dormant"] * 10 + ["active"] * 15
    assert session.scalar(select(func.count()).select_from(JobItem)) == 0


def test_a_chunk_that_fails_twice_then_works_finishes_the_job(session, config, monkeypatch):
    monkeypatch.setitem(config, "CRM_JOB_CHUNK_SIZE", 10)
    ids = customers(session, 25)
    job_id = job_for(session, "bulk_set_dormant", ids)

    def around(real, s, job, context, n):
        chunk = real(s, job, context)
        if n in (2, 3):
            raise ConnectionError("server closed the connection unexpectedly")
        return chunk

    wrap_kind(monkeypatch, "bulk_set_dormant", around)

    assert run_job(job_id) == "done"
    job = job_row(session, job_id)
    assert (job.done, job.changed, job.attempts, job.error) == (25, 25, 0, None)
    assert audit_per_customer(session, "set_dormant") == {i: 1 for i in ids}


def test_a_refusal_fails_the_job_at_once(session, config, monkeypatch):
    ids = customers(session, 3)
    job_id = job_for(session, "bulk_change_kind", ids,
                     params={"form": {"kind": "supplier", "reason": "wrong"}})
    calls = wrap_kind(monkeypatch, "bulk_change_kind",
                      lambda real, s, job, context, n: real(s, job, context))

    assert run_job(job_id) == "failed"

    job = job_row(session, job_id)
    assert calls["n"] == 1  # no retry: a refusal stays a refusal
    assert job.error == "Choose the new kind: lead, prospect or client."
    assert job.summary.startswith("Stopped after 0 of 3 items")
    session.expire_all()
    assert set(session.scalars(select(Customer.kind).where(Customer.id.in_(ids)))) == {"client"}


def test_cancel_stops_at_the_next_chunk_boundary(session, config, monkeypatch):
    monkeypatch.setitem(config, "CRM_JOB_CHUNK_SIZE", 10)
    ids = customers(session, 25)
    job_id = job_for(session, "bulk_set_dormant", ids)

    def around(real, s, job, context, n):
        chunk = real(s, job, context)
        if n == 1:
            assert request_cancel(s, job)  # someone presses Cancel while chunk 1 runs
        return chunk

    calls = wrap_kind(monkeypatch, "bulk_set_dormant", around)

    assert run_job(job_id) == "cancelled"

    job = job_row(session, job_id)
    assert calls["n"] == 1
    assert (job.done, job.changed, job.chunks) == (10, 10, 1)
    assert job.summary == ("Cancelled after 10 of 25 items: 10 changed. Everything finished "
                           "before it stopped stays done.")
    assert statuses(session, ids) == ["dormant"] * 10 + ["active"] * 15
    assert not request_cancel(session, job)  # it has ended


def test_a_job_cancelled_before_it_starts_changes_nothing(session, config):
    ids = customers(session, 3)
    job_id = job_for(session, "bulk_set_dormant", ids)
    request_cancel(session, session.get(Job, job_id))
    session.commit()

    assert run_job(job_id) == "cancelled"
    assert statuses(session, ids) == ["active"] * 3
    assert job_row(session, job_id).summary == "Cancelled after 0 of 3 items: 0 changed."


def test_a_stopping_worker_puts_the_job_back_in_the_queue_after_its_chunk(app, session,
                                                                          config, monkeypatch):
    monkeypatch.setitem(config, "CRM_JOB_CHUNK_SIZE", 10)
    ids = customers(session, 25)
    job_id = job_for(session, "bulk_set_dormant", ids)
    queued = []
    monkeypatch.setitem(app.extensions, RUN_TASK, queued.append)

    def around(real, s, job, context, n):
        if n == 1:
            STOPPING.set()  # Ctrl+C while chunk 1 runs
        return real(s, job, context)

    wrap_kind(monkeypatch, "bulk_set_dormant", around)
    try:
        assert run_job(job_id) is None
    finally:
        STOPPING.clear()

    job = job_row(session, job_id)
    assert (job.status, job.done, job.heartbeat_at) == ("queued", 10, None)
    assert queued == [job_id]
    assert statuses(session, ids) == ["dormant"] * 10 + ["active"] * 15

    assert run_job(job_id) == "done"  # the next worker
    assert audit_per_customer(session, "set_dormant") == {i: 1 for i in ids}


def test_a_consumer_that_finds_the_job_moved_on_stands_down(session, config, monkeypatch):
    """Two consumers on one job: the other one committed this chunk first (its cursor moved),
    so this one's work is rolled back and it stops without ending the job."""
    monkeypatch.setitem(config, "CRM_JOB_CHUNK_SIZE", 10)
    ids = customers(session, 25)
    job_id = job_for(session, "bulk_set_dormant", ids)

    def around(real, s, job, context, n):
        chunk = real(s, job, context)
        s.execute(update(Job).where(Job.id == job.id).values(cursor=ids[9]))  # the other one
        return chunk

    wrap_kind(monkeypatch, "bulk_set_dormant", around)

    assert run_job(job_id) is None

    job = job_row(session, job_id)
    assert (job.status, job.done, job.cursor) == ("running", 0, 0)
    assert statuses(session, ids) == ["active"] * 25


def test_an_unknown_kind_fails_with_a_sentence(session, config):
    job = Job(kind="from_the_future", title="?", params={}, status="queued", skips=[],
              reasons={}, state={})
    session.add(job)
    session.commit()

    assert run_job(job.id) == "failed"
    assert "does not know jobs of kind 'from_the_future'" in job_row(session, job.id).error
    assert run_job(job.id) is None  # an ended job is not run again


# --- the queue: rescue and schedule ----------------------------------------------------------


def test_rescue_queues_again_the_jobs_whose_consumer_stopped(session, config, monkeypatch):
    monkeypatch.setitem(config, "CRM_JOB_STALE_SECONDS", 120)
    ids = customers(session, 4)
    long_ago = utcnow() - timedelta(minutes=10)
    dead = job_for(session, "bulk_set_dormant", ids[:1])
    lost = job_for(session, "bulk_set_dormant", ids[1:2])
    alive = job_for(session, "bulk_set_dormant", ids[2:3])
    fresh = job_for(session, "bulk_set_dormant", ids[3:])
    session.execute(update(Job).where(Job.id == dead).values(status="running",
                                                             heartbeat_at=long_ago))
    session.execute(update(Job).where(Job.id == lost).values(updated_at=long_ago))
    session.execute(update(Job).where(Job.id == alive).values(status="running",
                                                              heartbeat_at=utcnow()))
    session.commit()
    queued = []
    monkeypatch.setattr(queue, "enqueue", queued.append)

    assert queue.rescue() == [dead, lost]
    assert queued == [dead, lost]
    assert fresh not in queued and alive not in queued


def test_the_schedule_does_not_start_a_second_ageing_within_12_hours(session, config):
    first = queue.scheduled("age_ledger", "Re-age overdue figures (nightly)")
    assert first is not None
    assert job_row(session, first).status == "done"

    assert queue.scheduled("age_ledger", "Re-age overdue figures (nightly)") is None

    session.execute(update(Job).where(Job.id == first)
                    .values(created_at=utcnow() - timedelta(hours=13)))
    session.commit()
    second = queue.scheduled("age_ledger", "Re-age overdue figures (nightly)")
    assert second not in (None, first)
    assert session.scalar(select(func.count()).select_from(Job)
                          .where(Job.kind == "age_ledger")) == 2


def test_a_job_started_by_a_person_does_not_stop_the_nightly_one(session, config, owner):
    job = start_job(session, kind="age_ledger", actor=owner, title="Re-age now")
    session.commit()
    run_job(job.id)

    assert queue.scheduled("age_ledger", "Re-age overdue figures (nightly)") is not None


# --- e-mail: the claim -------------------------------------------------------------------------


def eligible(session, n: int) -> list[int]:
    return customers(session, n, email_opt_in=True, wants_statements=True)


def test_a_statement_sent_just_before_a_crash_is_counted_not_sent_again(session, config,
                                                                       monkeypatch):
    ids = eligible(session, 3)
    job_id = job_for(session, "email_statements", ids)
    wrap_kind(monkeypatch, "email_statements", kill_on(2))

    with pytest.raises(Killed):
        run_job(job_id)
    # The second customer's message went; the record of it died with the consumer.
    assert len(outbox_recipients(config)) == 2
    assert session.get(JobItem, (job_id, ids[1])).state == CLAIMED
    assert job_row(session, job_id).done == 1

    assert run_job(job_id) == "done"

    job = job_row(session, job_id)
    assert (job.done, job.changed, job.skipped) == (3, 3, 0)
    assert sorted(outbox_recipients(config)) == sorted(f"sam{i}@example.com" for i in range(3))
    sent = dict(session.execute(select(SentMessage.customer_id, func.count())
                                .group_by(SentMessage.customer_id)).all())
    assert sent == {i: 1 for i in ids}
    assert audit_per_customer(session, "email_statements") == {i: 1 for i in ids}
    assert job.summary == "Sent 3 customers their statement by e-mail."


def test_a_claimed_statement_not_in_the_outbox_is_sent(session, config):
    """The consumer died after the claim but before the message was written: an outbox
    message appears whole or not at all, so it was not sent, and is sent now, once."""
    ids = eligible(session, 2)
    job_id = job_for(session, "email_statements", ids)
    session.execute(update(JobItem).where(JobItem.item_id == ids[0]).values(state=CLAIMED))
    session.execute(update(Job).where(Job.id == job_id).values(status="running",
                                                               heartbeat_at=utcnow()))
    session.commit()

    assert run_job(job_id) == "done"
    assert sorted(outbox_recipients(config)) == ["sam0@example.com", "sam1@example.com"]
    assert job_row(session, job_id).changed == 2


def test_with_smtp_a_claimed_statement_is_skipped_as_in_doubt(session, config, monkeypatch):
    ids = eligible(session, 3)
    job_id = job_for(session, "email_statements", ids)
    session.execute(update(JobItem).where(JobItem.item_id == ids[1]).values(state=CLAIMED))
    session.execute(update(Job).where(Job.id == job_id).values(status="running",
                                                               heartbeat_at=utcnow()))
    session.commit()
    monkeypatch.setitem(config, "MAIL_BACKEND", "smtp")
    sent = []

    def smtp_send(message, config=None):
        sent.append(message.to)
        return f"<{message.key}@example.com>"

    monkeypatch.setattr(mail, "send", smtp_send)

    assert run_job(job_id) == "done"

    job = job_row(session, job_id)
    reference = session.get(Customer, ids[1]).reference
    assert sent == ["sam0@example.com", "sam2@example.com"]
    assert (job.done, job.changed, job.skipped) == (3, 2, 1)
    assert job.skips == [[reference, IN_DOUBT]]
    assert job.summary == (f"Sent 2 customers their statement by e-mail; 1 skipped (1 "
                           f"{IN_DOUBT}).")


def test_a_refused_send_unclaims_and_is_retried(session, config, monkeypatch):
    ids = eligible(session, 3)
    job_id = job_for(session, "email_statements", ids)
    tries = []
    real_send = mail.send

    def flaky(message, config=None):
        tries.append(message.to)
        if message.to == "sam1@example.com" and tries.count(message.to) == 1:
            raise mail.MailError("The mail server refused: 421 try again later.")
        return real_send(message, config=config)

    monkeypatch.setattr(mail, "send", flaky)

    assert run_job(job_id) == "done"

    assert tries == ["sam0@example.com", "sam1@example.com", "sam1@example.com",
                     "sam2@example.com"]
    assert sorted(outbox_recipients(config)) == [f"sam{i}@example.com" for i in range(3)]
    assert audit_per_customer(session, "email_statements") == {i: 1 for i in ids}


def test_a_send_that_keeps_failing_fails_the_job_and_keeps_who_was_sent(session, config,
                                                                       monkeypatch):
    ids = eligible(session, 3)
    job_id = job_for(session, "email_statements", ids)
    real_send = mail.send

    def down_after_one(message, config=None):
        if message.to != "sam0@example.com":
            raise mail.MailError("Could not connect to the mail server smtp.example:587.")
        return real_send(message, config=config)

    monkeypatch.setattr(mail, "send", down_after_one)

    assert run_job(job_id) == "failed"

    job = job_row(session, job_id)
    assert outbox_recipients(config) == ["sam0@example.com"]
    assert "Could not connect to the mail server" in job.error
    assert job.summary.startswith("Stopped after 1 of 3 items: 1 changed.")


def test_a_claim_taken_by_another_consumer_makes_this_one_stand_down(session, config,
                                                                     monkeypatch):
    ids = eligible(session, 2)
    job_id = job_for(session, "email_statements", ids)

    read = []

    def around(real, s, job, context, n):
        read.append(s.get(JobItem, (job.id, ids[0])))  # this consumer read it: not claimed
        # ... and the other consumer claims it before this one does
        s.execute(update(JobItem).where(JobItem.item_id == ids[0]).values(state=CLAIMED)
                  .execution_options(synchronize_session=False))
        return real(s, job, context)

    wrap_kind(monkeypatch, "email_statements", around)

    assert run_job(job_id) is None
    assert outbox_recipients(config) == []
    job = job_row(session, job_id)
    assert (job.status, job.done) == ("running", 0)


# --- statements: the ZIP ------------------------------------------------------------------------


def test_a_statement_zip_resumed_after_a_crash_holds_one_pdf_per_customer(session, config,
                                                                          monkeypatch):
    monkeypatch.setitem(config, "CRM_JOB_CHUNK_SIZE", 3)
    ids = customers(session, 7)
    job_id = job_for(session, "statements_zip", ids, params={"kind": "outstanding"})
    wrap_kind(monkeypatch, "statements_zip", kill_on(2))

    with pytest.raises(Killed):
        run_job(job_id)
    folder = job_folder(config, job_id)
    assert len(list(folder.glob("part-*.zip"))) == 2  # chunk 2's part was written, not recorded

    assert run_job(job_id) == "done"

    job = job_row(session, job_id)
    result = Path(config["CRM_JOBS_DIR"]) / job.result_path
    references = [session.get(Customer, i).reference for i in ids]
    with zipfile.ZipFile(result) as archive:
        assert archive.testzip() is None
        names = archive.namelist()
    assert sorted(names) == sorted(f"statement-{r}.pdf" for r in references)
    assert job.result_name == f"statements-{date.today().isoformat()}.zip"
    assert job.summary == "7 statements in the ZIP."
    assert list(folder.glob("part-*")) == [] and list(folder.glob(".*.tmp")) == []


# --- every kind: killed part-way, resumed, finished again --------------------------------------


def _setup_bulk(form: dict | None = None, before=None):
    def setup(session):
        ids = customers(session, 5, email_opt_in=True, wants_statements=True)
        if before is not None:
            before(session, ids)
        return ids, {"form": form or {}}

    return setup


def _make_dormant(session, ids):
    session.execute(update(Customer).where(Customer.id.in_(ids)).values(status="dormant"))
    session.commit()


def _to_hide(session):
    ids = customers(session, 5)
    return ids, {"form": {"related_to": make_customer(session).id}}


def _hidden(session, ids):
    from crm.actions.customer_kind import hide

    related_to = make_customer(session).id
    hide(session, selection=select(Customer.id).where(Customer.id.in_(ids)),
         related_to_id=related_to, actor=None)
    session.commit()


def _with_money(session):
    """Three customers with an overdue invoice and a completed booking, whose stored
    overdue figures and loyalty scores the calendar has made stale."""
    ids = customers(session, 3, email_opt_in=True, wants_statements=True)
    for i in ids:
        customer = session.get(Customer, i)
        make_invoice(session, customer, amount="120.00", days_overdue=40)
        make_booking(session, customer, status="completed",
                     starts_at=utcnow() - timedelta(days=30))
    session.commit()
    session.execute(update(Customer).where(Customer.id.in_(ids)).values(
        next_due_on=date.today() - timedelta(days=1), loyalty_score=0))
    session.commit()
    return ids, {}


def _old_job_files(session):
    ids = customers(session, 1)
    return ids, {}


ALL_KINDS = {
    "bulk_set_dormant": _setup_bulk(),
    "bulk_reactivate": _setup_bulk(before=_make_dormant),
    "bulk_deactivate": _setup_bulk({"reason": "Moved away"}),
    "bulk_change_kind": _setup_bulk({"kind": "prospect", "reason": "Met at the fair"}),
    "bulk_hide_related": _to_hide,
    "bulk_unhide_related": _setup_bulk(before=_hidden),
    "bulk_block_email": _setup_bulk({"block_reason": "spam", "note": ""}),
    "bulk_delete": _setup_bulk(),
    "bulk_redact": _setup_bulk({"word": "REDACT", "block": False, "block_reason": ""}),
    "bulk_portal_invite": _setup_bulk(),
    "statements_zip": _setup_bulk(),
    "email_statements": _setup_bulk(),
    "age_ledger": _with_money,
    "refresh_loyalty": _with_money,
    "check_ledger": _with_money,
    "remove_old_job_files": _old_job_files,
    "count_figures": _old_job_files,
}


def snapshot(session, config) -> dict:
    """What a user could notice: every customer row, the audit trail, the messages sent, the
    blocks, the jobs folder."""
    from crm.models import Base

    session.expire_all()
    customers_table = Base.metadata.tables["customer"]
    rows = session.execute(select(customers_table).order_by(customers_table.c.id)).all()
    outbox = Path(config["MAIL_OUTBOX_DIR"])
    files = Path(config["CRM_JOBS_DIR"])
    return {
        "customers": [tuple(row) for row in rows],
        "audit": session.scalar(select(func.count()).select_from(AuditEvent)),
        "sent": session.scalar(select(func.count()).select_from(SentMessage)),
        "blocked": session.scalar(select(func.count()).select_from(
            Base.metadata.tables["blocked_email"])),
        "outbox": sorted(p.name for p in outbox.glob("*.eml")),
        "files": sorted(str(p.relative_to(files)) for p in files.rglob("*")) if files.exists()
        else [],
    }


@pytest.mark.parametrize("kind", sorted(ALL_KINDS))
def test_every_kind_killed_part_way_resumes_and_finishing_again_changes_nothing(
        session, config, monkeypatch, kind):
    monkeypatch.setitem(config, "CRM_JOB_CHUNK_SIZE", 2)
    ids, params = ALL_KINDS[kind](session)
    if kind.startswith("bulk_") or kind in ("statements_zip", "email_statements"):
        job_id = job_for(session, kind, ids, params=params)
    else:
        job = start_job(session, kind=kind, actor=None, title=kind, params=params)
        session.commit()
        job_id = job.id
    wrap_kind(monkeypatch, kind, kill_on(1))

    with pytest.raises(Killed):
        run_job(job_id)
    assert run_job(job_id) == "done", job_row(session, job_id).error

    job = job_row(session, job_id)
    assert job.error is None and job.summary
    for verb, counts in _audit_by_verb(session).items():
        assert set(counts.values()) <= {1}, f"{verb} audited twice for a customer"
    sent = session.execute(select(SentMessage.customer_id, func.count())
                           .group_by(SentMessage.customer_id)).all()
    assert all(n == 1 for _, n in sent)
    before = snapshot(session, config)

    # Finished again, as after a consumer that died during its finish, or run again: the
    # same data, the same files, the same messages.
    session.execute(update(Job).where(Job.id == job_id).values(
        status="running", heartbeat_at=utcnow() - timedelta(hours=1),
        state={"finishing": True}))
    session.commit()
    assert run_job(job_id) == "done"
    assert run_job(job_id) is None
    assert snapshot(session, config) == before
    assert job_row(session, job_id).summary == job.summary


def _audit_by_verb(session) -> dict[str, dict[int, int]]:
    found: dict[str, dict[int, int]] = {}
    for verb, subject, n in session.execute(
            select(AuditEvent.verb, AuditEvent.subject_id, func.count())
            .where(AuditEvent.subject_id.is_not(None), AuditEvent.subject_type == "Customer")
            .group_by(AuditEvent.verb, AuditEvent.subject_id)).all():
        found.setdefault(verb, {})[subject] = n
    return found


def test_hide_related_as_a_job(session, config, monkeypatch):
    monkeypatch.setitem(config, "CRM_JOB_CHUNK_SIZE", 2)
    ids = customers(session, 5)
    related_to = make_customer(session).id
    session.commit()
    job_id = job_for(session, "bulk_hide_related", ids,
                     params={"form": {"related_to": related_to}})
    wrap_kind(monkeypatch, "bulk_hide_related", kill_on(2))

    with pytest.raises(Killed):
        run_job(job_id)
    assert run_job(job_id) == "done"

    session.expire_all()
    assert set(session.scalars(select(Customer.related_to_id)
                               .where(Customer.id.in_(ids)))) == {related_to}
    assert audit_per_customer(session, "hide_related") == {i: 1 for i in ids}


def test_old_job_folders_are_removed_and_their_jobs_say_so(session, config):
    ids = customers(session, 2)
    old = job_for(session, "statements_zip", ids)
    run_job(old)
    recent = job_for(session, "statements_zip", ids)
    run_job(recent)
    stray = job_folder(config, 999_999_999)  # a job no longer on record
    stray.mkdir(parents=True)
    session.execute(update(Job).where(Job.id == old)
                    .values(finished_at=utcnow() - timedelta(days=8)))
    session.commit()

    cleanup = start_job(session, kind="remove_old_job_files", actor=None, title="Clean up")
    session.commit()
    assert run_job(cleanup.id) == "done"

    assert not job_folder(config, old).exists() and not stray.exists()
    assert job_folder(config, recent).exists()
    assert job_row(session, old).result_path is None
    assert job_row(session, old).summary.endswith("Its file was removed after 7 days.")
    assert job_row(session, recent).result_path is not None
    assert job_row(session, cleanup.id).summary == (
        "Removed the files of 2 job(s) ended more than 7 days ago.")


def test_the_ledger_check_lists_each_difference_on_its_job(session, config):
    ids, _ = _with_money(session)
    session.execute(update(Customer).where(Customer.id == ids[0])
                    .values(balance=999, next_due_on=None))
    session.commit()
    job = start_job(session, kind="check_ledger", actor=None, title="Check the ledger")
    session.commit()

    assert run_job(job.id) == "done"

    job = job_row(session, job.id)
    reference = session.get(Customer, ids[0]).reference
    assert job.skipped >= 1
    assert any(ref == reference and reason.startswith("balance: stored 999")
               for ref, reason in job.skips)
    assert job.summary.startswith(f"{job.skipped:,} difference(s) between the stored ledger")


# --- the command line ---------------------------------------------------------------------------


def test_start_job_queues_a_ledger_check_whose_page_lists_the_differences(app, session, config):
    ids, _ = _with_money(session)
    session.execute(update(Customer).where(Customer.id == ids[0])
                    .values(balance=999, next_due_on=None))
    session.commit()

    result = app.test_cli_runner().invoke(args=["crm", "start-job", "check_ledger"])

    assert result.exit_code == 0, result.output
    job = session.scalar(select(Job).where(Job.kind == "check_ledger"))
    assert f"Job #{job.id} ran here (done)" in result.output  # the tests run jobs in place
    assert job.title == "Check the ledger (command line)"
    assert job.skipped >= 1 and "difference(s) between the stored ledger" in job.summary


def test_check_ledger_as_a_job(app, session, config):
    result = app.test_cli_runner().invoke(args=["crm", "check-ledger", "--as-job"])

    assert result.exit_code == 0, result.output
    job = session.scalar(select(Job).where(Job.kind == "check_ledger"))
    assert job.summary == "The ledger agrees with the documents."


def test_start_job_refuses_a_kind_that_needs_a_selection(app, session, config):
    result = app.test_cli_runner().invoke(args=["crm", "start-job", "bulk_delete"])

    assert result.exit_code == 2
    assert "'bulk_delete' is not one of 'age_ledger', 'check_ledger'" in result.output
    assert session.scalar(select(func.count()).select_from(Job)) == 0


def test_age_ledger_and_refresh_loyalty_work_through_every_window_of_ids(
        app, session, config, monkeypatch):
    import crm.cli.progress as cli_progress

    monkeypatch.setattr(cli_progress, "WINDOW", 2)  # 3 customers: two windows
    ids, _ = _with_money(session)

    aged = app.test_cli_runner().invoke(args=["crm", "age-ledger"])
    refreshed = app.test_cli_runner().invoke(args=["crm", "refresh-loyalty"])

    assert aged.exit_code == 0 and "Re-aged 3 customer(s)." in aged.output
    assert refreshed.exit_code == 0 and "Loyalty scores: 3 changed." in refreshed.output
    session.expire_all()
    stored = session.execute(select(Customer.next_due_on, Customer.loyalty_score)
                             .where(Customer.id.in_(ids))).all()
    assert all(due is None and score > 0 for due, score in stored)
    again = app.test_cli_runner().invoke(args=["crm", "age-ledger"])
    assert "Re-aged 0 customer(s)." in again.output


def test_run_job_runs_a_queued_job_in_the_foreground(app, session, config):
    ids = customers(session, 3)
    job_id = job_for(session, "bulk_set_dormant", ids, params={"form": {}})

    result = app.test_cli_runner().invoke(args=["crm", "run-job", str(job_id)])

    assert result.exit_code == 0, result.output
    assert "Set 3 customers dormant." in result.output
    assert statuses(session, ids) == ["dormant"] * 3
    again = app.test_cli_runner().invoke(args=["crm", "run-job", str(job_id)])
    assert again.exit_code == 1 and f"Job {job_id} has already ended (done)." in again.output
