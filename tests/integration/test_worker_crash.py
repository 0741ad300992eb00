"""A real job consumer (`flask --app app crm worker`) killed with SIGKILL in the middle of a
job, then started again: the job ends as an uninterrupted run would have — every statement
e-mailed once, every customer changed once, every audit row written once.

Once with the SQLite queue in a file, once with Redis (127.0.0.1:6379, a queue name of its
own, flushed afterwards). CI starts Redis, so there its absence fails the test; elsewhere it
is skipped. The application's database is a SQLite file migrated by `flask db upgrade`,
shared by this process (which starts the jobs and reads their progress) and the workers.
"""

import email
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from crm import create_app
from crm.extensions import db
from crm.jobs import start_job
from crm.models import AuditEvent, Customer, Job, SentMessage

ROOT = Path(__file__).resolve().parents[2]
FLASK = str(Path(sys.executable).with_name("flask"))
REDIS_URL = os.environ.get("CRM_TEST_REDIS_URL") or "redis://127.0.0.1:6379/15"
STALE = 1  # seconds without a heartbeat before a running job counts as stranded
CHUNK = 250  # customers per chunk of the bulk job (CRM_JOB_CHUNK_SIZE)
WAIT = 60  # seconds at most for anything to happen


def _redis_or_skip() -> str:
    import redis

    store = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3, socket_timeout=3)
    try:
        store.ping()
    except redis.RedisError as exc:
        message = (f"Redis is not reachable at {REDIS_URL} (start one, or set "
                   f"CRM_TEST_REDIS_URL to one that is): {exc}")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    finally:
        store.close()
    return REDIS_URL


class Setup:
    """One installation on disk: its database, queue, outbox and jobs folder, the
    environment its workers get, and an app in this process that shares them."""

    def __init__(self, folder: Path, redis_url: str | None, template: Path):
        self.folder = folder
        self.database = folder / "crm.sqlite"
        self.outbox = folder / "outbox"
        self.queue_name = f"crm-test-{uuid.uuid4().hex[:12]}"
        self.settings = {
            "DATABASE_URL": f"sqlite:///{self.database}",
            "CRM_QUEUE_FILE": str(folder / "jobs.huey"),
            "CRM_QUEUE_NAME": self.queue_name,
            "MAIL_OUTBOX_DIR": str(self.outbox),
            "CRM_JOBS_DIR": str(folder / "jobs"),
            "CRM_JOB_STALE_SECONDS": str(STALE),
            "CRM_JOB_RETRY_DELAY": "0",
            "CRM_JOB_CHUNK_SIZE": str(CHUNK),
            "SECRET_KEY": "test-secret-key",
        }
        if redis_url:
            self.settings["REDIS_URL"] = redis_url
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("CRM_", "MAIL_", "FLASK_"))
                    and k not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY")}
        self.env.update(self.settings, PYTHONUNBUFFERED="1")
        copy_database(template, self.database)
        self.app = create_app({
            "SQLALCHEMY_DATABASE_URI": self.settings["DATABASE_URL"],
            "CRM_QUEUE_FILE": self.settings["CRM_QUEUE_FILE"],
            "CRM_QUEUE_NAME": self.queue_name,
            "REDIS_URL": redis_url,
            "CRM_JOBS_IMMEDIATE": False,
            "MAIL_OUTBOX_DIR": str(self.outbox),
            "MAIL_BACKEND": "outbox",
            "CRM_JOBS_DIR": self.settings["CRM_JOBS_DIR"],
            "CRM_JOB_CHUNK_SIZE": CHUNK,
            "CRM_JOB_RETRY_DELAY": 0,
            "RATELIMIT_STORAGE_URI": "memory://",
            "SECRET_KEY": "test-secret-key",
        })
        self.workers: list[subprocess.Popen] = []

    # --- workers ------------------------------------------------------------------------------
    def start_worker(self) -> subprocess.Popen:
        log = (self.folder / f"worker-{len(self.workers) + 1}.log").open("w")
        worker = subprocess.Popen([FLASK, "--app", "app", "crm", "worker"], cwd=ROOT,
                                  env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.workers.append(worker)
        return worker

    def logs(self) -> str:
        return "\n".join(p.read_text()[-3000:] for p in sorted(self.folder.glob("worker-*.log")))

    def stop(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                worker.kill()
            worker.wait(timeout=WAIT)
        if self.settings.get("REDIS_URL"):
            from crm.jobs.queue import huey_of

            huey_of(self.app).flush()  # this test's queue only: its own name
        with self.app.app_context():
            db.engine.dispose()

    # --- the job as this process sees it ---------------------------------------------------------
    def job(self, job_id: int) -> dict:
        engine = create_engine(self.settings["DATABASE_URL"])
        try:
            with engine.connect() as conn:
                row = conn.execute(text("SELECT status, done, total, changed, skipped, error, "
                                        "summary FROM job WHERE id = :id"),
                                   {"id": job_id}).mappings().one()
            return dict(row)
        finally:
            engine.dispose()

    def wait_for(self, job_id: int, ready, what: str) -> dict:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            seen = self.job(job_id)
            if ready(seen):
                return seen
            if seen["status"] in ("failed", "cancelled"):
                break
            time.sleep(0.05)
        pytest.fail(f"job {job_id} never got to {what}: {self.job(job_id)}\n{self.logs()}")

    def start(self, kind: str, ids_query, params: dict | None = None) -> int:
        from crm.jobs.queue import enqueue

        with self.app.app_context():
            job = start_job(db.session, kind=kind, actor=None, title=f"Crash test: {kind}",
                            params=params or {}, items=ids_query, enqueue=enqueue)
            db.session.commit()
            return job.id


def copy_database(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite database (its WAL included)."""
    engine = create_engine(f"sqlite:///{source}")
    try:
        with engine.connect() as conn:
            conn.execute(text(f"VACUUM INTO '{target}'"))
    finally:
        engine.dispose()


def in_process_app(database: Path, folder: Path):
    """An app on ``database`` that runs jobs where they are queued (no worker)."""
    return create_app({
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}", "CRM_JOBS_IMMEDIATE": True,
        "CRM_JOBS_DIR": str(folder / "jobs"), "CRM_JOB_CHUNK_SIZE": CHUNK,
        "MAIL_OUTBOX_DIR": str(folder / "outbox"), "MAIL_BACKEND": "outbox",
        "RATELIMIT_STORAGE_URI": "memory://", "REDIS_URL": None,
        "CRM_QUEUE_FILE": str(folder / "jobs.huey"), "SECRET_KEY": "test-secret-key",
    })


def bulk_status(n: int) -> str:
    return "dormant" if n % 9 == 4 else "archived" if n % 13 == 6 else "active"


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A database migrated by `flask db upgrade` and seeded once for the module: 18
    customers to e-mail and 5,000 for the bulk job; and the bulk job run uninterrupted on
    a copy of it (what a crashed run must equal)."""
    folder = tmp_path_factory.mktemp("template")
    database = folder / "crm.sqlite"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CRM_", "MAIL_", "FLASK_")) and k != "REDIS_URL"}
    env.update(DATABASE_URL=f"sqlite:///{database}", SECRET_KEY="test-secret-key")
    migrated = subprocess.run([FLASK, "--app", "app", "db", "upgrade"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=WAIT * 2)
    assert migrated.returncode == 0, migrated.stderr[-2000:]
    seeding = in_process_app(database, folder)
    with seeding.app_context():
        to_mail = [Customer(
            first_name="Robin", surname=f"Crash{n}", email=f"robin{n}@example.com",
            address_line_1=f"{n} Quay Street", town="Bristol", postcode="BS1 4DJ",
            # every 8th asked for no statements, every 12th is dormant: both skipped
            wants_statements=n % 8 != 3, status="dormant" if n % 12 == 5 else "active")
            for n in range(18)]
        bulk = [Customer(first_name="Kim", surname=f"Bulk{n}", email=f"kim{n}@example.com",
                         address_line_1=f"{n} Dock Road", town="Hull", postcode="HU1 1AA",
                         status=bulk_status(n)) for n in range(5_000)]
        db.session.add_all(to_mail + bulk)
        db.session.commit()
        made = {
            "database": database,
            "to_mail": [c.id for c in to_mail],
            "eligible": {c.id: c.email for c in to_mail
                         if c.wants_statements and c.status == "active"},
            "bulk": [c.id for c in bulk],
            "active": sum(1 for n in range(5_000) if bulk_status(n) == "active"),
        }
        db.engine.dispose()
    twin = folder / "twin.sqlite"
    copy_database(database, twin)
    uninterrupted = in_process_app(twin, folder / "twin")
    with uninterrupted.app_context():
        from crm.jobs.runner import run_job

        job_id = start_bulk_job(made["bulk"])
        assert run_job(job_id) == "done"
        db.engine.dispose()
    made["uninterrupted"] = snapshot(twin)
    return made


def start_bulk_job(ids: list[int], enqueue=None) -> int:
    job = start_job(db.session, kind="bulk_set_dormant", actor=None, title="Set dormant",
                    params={"form": {}}, items=select(Customer.id).where(
                        Customer.id.between(ids[0], ids[-1])), enqueue=enqueue)
    db.session.commit()
    return job.id


@pytest.fixture(params=["sqlite-queue", "redis-queue"])
def setup(request, tmp_path, template):
    redis_url = _redis_or_skip() if request.param == "redis-queue" else None
    made = Setup(tmp_path, redis_url, template["database"])
    yield made
    made.stop()


def kill_mid_job(setup: Setup, job_id: int, after: int) -> dict:
    """Start a worker, SIGKILL it once the job has done ``after`` items (and is not done),
    wait until the job counts as stranded, start another; the job's row at the kill."""
    first = setup.start_worker()
    setup.wait_for(job_id, lambda job: job["done"] >= after, f"{after} items done")
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=WAIT)
    at_kill = setup.job(job_id)  # what the dead worker had committed
    assert at_kill["status"] == "running" and at_kill["done"] < at_kill["total"], (
        f"the job ended before the kill: {at_kill}")
    time.sleep(STALE + 0.5)
    setup.start_worker()
    return at_kill


def test_a_killed_worker_e_mails_each_statement_once(setup, template):
    everyone, eligible = template["to_mail"], template["eligible"]
    job_id = setup.start("email_statements", select(Customer.id).where(
        Customer.id.in_(everyone)))

    at_kill = kill_mid_job(setup, job_id, after=len(everyone) // 3)
    done = setup.wait_for(job_id, lambda job: job["status"] == "done", "done")

    assert 0 < at_kill["done"] < len(everyone)
    recipients = []
    for path in setup.outbox.glob("*.eml"):
        with path.open("rb") as source:
            recipients.append(email.message_from_binary_file(source)["To"])
    assert Counter(recipients) == Counter(eligible.values())  # each once, nobody else
    with setup.app.app_context():
        sent = Counter(db.session.scalars(select(SentMessage.customer_id)))
        audited = Counter(db.session.scalars(select(AuditEvent.subject_id).where(
            AuditEvent.verb == "email_statements", AuditEvent.subject_id.is_not(None))))
    assert sent == Counter(list(eligible))
    assert audited == Counter(list(eligible))
    assert (done["done"], done["changed"], done["skipped"]) == (
        len(everyone), len(eligible), len(everyone) - len(eligible))
    assert done["error"] is None

    # The second worker says which queue it takes, and Ctrl+C (what scripts/run.sh sends)
    # stops it cleanly.
    second = setup.workers[-1]
    second.send_signal(signal.SIGINT)
    assert second.wait(timeout=WAIT) == 0
    where = ("Redis" if setup.settings.get("REDIS_URL")
             else f"the SQLite file {setup.settings['CRM_QUEUE_FILE']}")
    assert f"queue in {where}" in setup.logs()


def snapshot(database: Path) -> dict:
    """What the job changed, comparable between two databases: each customer's status, the
    work addresses, every audit row (timestamps left out), the job's counts and summary."""
    engine = create_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as conn:
            return {
                "customers": conn.execute(text(
                    "SELECT id, status, kind, email FROM customer ORDER BY id")).all(),
                "work_addresses": conn.execute(text(
                    "SELECT id, status FROM work_address ORDER BY id")).all(),
                "audit": Counter(conn.execute(text(
                    "SELECT id, verb, subject_type, subject_id, details FROM audit_event"))
                    .all()),
                "job": conn.execute(text(
                    "SELECT id, status, total, done, changed, skipped, reasons, summary, "
                    "error FROM job")).all(),
            }
    finally:
        engine.dispose()


def test_a_killed_worker_changes_each_customer_once_as_an_uninterrupted_run(setup, template):
    from crm.jobs.queue import enqueue

    with setup.app.app_context():
        job_id = start_bulk_job(template["bulk"], enqueue=enqueue)

    at_kill = kill_mid_job(setup, job_id, after=1_000)
    setup.wait_for(job_id, lambda job: job["status"] == "done", "done")

    crashed, whole = snapshot(setup.database), template["uninterrupted"]
    assert 0 < at_kill["done"] < 5_000
    assert crashed["job"] == whole["job"]
    assert crashed["customers"] == whole["customers"]
    assert crashed["work_addresses"] == whole["work_addresses"]
    assert crashed["audit"] == whole["audit"]  # the chunks' summaries and each customer's row
    per_customer = Counter(subject for (_, _, _, subject, _) in crashed["audit"]
                           if subject is not None)
    assert len(per_customer) == template["active"] and set(per_customer.values()) == {1}
    with setup.app.app_context():
        job = db.session.get(Job, job_id)
        assert job.summary.startswith(f"Set {template['active']:,} customers dormant")
        assert db.session.scalar(select(func.count()).select_from(Customer).where(
            Customer.id.in_(template["bulk"]), Customer.status == "active")) == 0
