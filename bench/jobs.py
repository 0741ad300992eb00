"""Background jobs at 1,000,000 customers: statements e-mailed per minute with one and two
consumers, a bulk set-dormant of 500,000 customers as a job, an import of 100,000 work
addresses and the CSV / XLSX export of every customer. Never run as a timed test.

    .venv/bin/python bench/jobs.py --databases sqlite postgresql [--size 1000000] [--reuse]
                                   [--only statements dormant import export]

The databases are bench/run.py's (``run.prepare``: the SQLite file
``bench/work/bench-<size>.sqlite`` and the PostgreSQL database ``crm_bench``, seeded with
``--seed 1``; ``--reuse`` keeps the ones seeded before, otherwise they are made afresh).

Every job runs the way it does in production: the bench process records it with
``crm.jobs.start_job`` (as the owner ``bench-owner@example.com``) and queues it once that
commits; real consumers, ``flask --app app crm worker --no-schedule`` started as child
processes, take it from a Huey SQLite queue file and run it. Files live under
``bench/work/jobs-<database>-<size>/``: the queue file, and per measure its own
``CRM_JOBS_DIR`` and ``MAIL_OUTBOX_DIR`` (the outbox backend: e-mail is written to files, not
sent); every measure starts its own fresh consumers.

Measured per job: the time from the first job's commit until the bench sees every job
finished (polled every 0.25 s), the job's own time (``started_at`` to ``finished_at``, set by
the consumer), items per second, the consumers' CPU time (user + system, from /proc: what a
statement costs whatever the load; a PostgreSQL server's own work is not in it), and each
consumer's resident memory: VmRSS once it is idle and ready, VmHWM (its peak, from start-up)
just before it is stopped.

1. **Statements by e-mail** over ``--statements`` customers who may be e-mailed (everyone the
   ``EMAIL_SKIPS`` of ``crm.actions.statement_run`` leaves, taken from the middle of the
   table). The e-mail kind works one customer per chunk, and one job is run by one consumer
   at a time, so a second consumer only helps with a second job: one job of N with one
   consumer, then two jobs of N/2 with two consumer processes, then the same two jobs with
   one process of two threads (``--workers 2``), and last one job of N with two consumer
   processes (to show that the second one stays idle). ``--repeat 2`` runs the four in turn
   twice; the median run (by rate) stands for each, and every run's rate is kept.
2. **Bulk set-dormant** of ``--dormant`` active customers (the lowest ids) as a
   ``bulk_set_dormant`` job, then the same customers reactivated by a ``bulk_reactivate``
   job (also timed), so later measures start from the same customers (their audit rows stay;
   PostgreSQL is vacuumed afterwards, untimed).
3. **Import** of ``--import-rows`` new work addresses from a CSV whose customer references
   exist in the database (``import_work_addresses``; ``--import-dry-run``: a dry run is timed
   first). The file is staged untimed-by-the-job (``crm.actions.imports.stage``, what the
   upload does) and its staging time recorded; the work addresses made are deleted again
   afterwards (untimed).
4. **Export** of every customer as CSV and as XLSX (``export_csv`` / ``export_xlsx``), when
   those kinds exist: time, rows per second, file size and the consumer's peak memory.

Results: ``bench/results/jobs-<database>.json`` (a measure run again replaces its own part
and keeps the others). The machine has 2 cores, shared with other work while measuring:
the load average is recorded before and after each measure.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import run  # noqa: E402

ROOT = run.ROOT
MEASURES = ("statements", "dormant", "import", "export")
POLL = 0.25


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def kib(pid: int, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (its own threads included)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def mb(value_kib: int | None) -> float | None:
    return None if value_kib is None else round(value_kib / 1024, 1)


# --------------------------------------------------------------------------------------------
# Consumers


class Consumers:
    """``processes`` × ``flask crm worker --workers threads``, stopped (by their own pids) on
    exit; their peak memory read just before."""

    def __init__(self, env: dict, folder: Path, processes: int = 1, threads: int = 1) -> None:
        self.env, self.folder = env, folder
        self.processes, self.threads = processes, threads
        self.children: list[subprocess.Popen] = []
        self.logs = []

    def __enter__(self) -> Consumers:
        for n in range(self.processes):
            log_path = self.folder / f"worker-{n}.log"
            out = open(log_path, "w")  # noqa: SIM115
            self.logs.append((log_path, out))
            self.children.append(subprocess.Popen(
                [str(run.VENV_BIN / "flask"), "--app", "app", "crm", "worker", "--no-schedule",
                 "--workers", str(self.threads)],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
            ))
        deadline = time.monotonic() + 120
        for child, (log_path, _) in zip(self.children, self.logs, strict=True):
            while "consumer started" not in log_path.read_text():
                if child.poll() is not None:
                    raise run.BenchError(f"the worker exited:\n{log_path.read_text()[-3000:]}")
                if time.monotonic() > deadline:
                    raise run.BenchError("a worker did not start within 120 s")
                time.sleep(0.2)
        time.sleep(0.5)  # its threads are polling the queue
        self.idle = [mb(kib(c.pid, "VmRSS")) for c in self.children]
        self.cpu_at_start = [cpu_seconds(c.pid) or 0.0 for c in self.children]
        return self

    def cpu(self) -> float:
        """CPU seconds the consumers used since they were ready (load-independent, unlike
        the wall time; a PostgreSQL server's own work is not in it)."""
        return round(sum((cpu_seconds(c.pid) or 0.0) - start
                         for c, start in zip(self.children, self.cpu_at_start, strict=True)), 2)

    def peaks(self) -> list[float | None]:
        return [mb(kib(c.pid, "VmHWM")) for c in self.children]

    def __exit__(self, *exc) -> None:
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGINT)  # Huey: finish the task in hand, then stop
        for child in self.children:
            try:
                child.wait(timeout=60)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        for _, out in self.logs:
            out.close()


# --------------------------------------------------------------------------------------------
# One database


class Bench:
    def __init__(self, database: str, info: dict, args) -> None:
        self.database, self.info, self.args = database, info, args
        self.url = info["url"]
        self.root = run.WORK / f"jobs-{database}-{args.size}"
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True)
        self.base_env = {k: v for k, v in os.environ.items()
                         if k not in ("REDIS_URL", "MAIL_SERVER", "CRM_JOBS_IMMEDIATE")}
        self.base_env.update(DATABASE_URL=self.url, MAIL_BACKEND="outbox",
                             PYTHONUNBUFFERED="1", FLASK_APP="app")
        self.queue_file = self.root / "queue.huey"
        from crm import create_app

        self.app = create_app({"SQLALCHEMY_DATABASE_URI": self.url,
                               "CRM_QUEUE_FILE": str(self.queue_file),
                               "CRM_JOBS_DIR": str(self.root / "bench-process-jobs"),
                               "CRM_JOBS_IMMEDIATE": False, "REDIS_URL": None})
        self.context = self.app.app_context()
        self.context.push()
        self._forget_unfinished()

    def close(self) -> None:
        from crm.extensions import db

        db.session.remove()
        db.engine.dispose()
        self.context.pop()

    # --- plumbing ---------------------------------------------------------------------------

    def use_folder(self, name: str) -> Path:
        """A measure's own jobs folder and outbox, for its consumers (the queue file is the
        database's, shared by the bench process and every consumer)."""
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        self.env = dict(self.base_env, CRM_QUEUE_FILE=str(self.queue_file),
                        CRM_JOBS_DIR=str(folder / "jobs"),
                        MAIL_OUTBOX_DIR=str(folder / "outbox"))
        self.folder = folder
        return folder

    def _forget_unfinished(self) -> None:
        """A bench run stopped part-way leaves jobs a new consumer would rescue; end them."""
        from sqlalchemy import update

        from crm.extensions import db
        from crm.models import Job

        ended = db.session.execute(update(Job).where(Job.status.in_(("queued", "running")))
                                   .values(status="cancelled", error="bench: left over")
                                   ).rowcount
        db.session.commit()
        if ended:
            run.log(f"{self.database}: {ended} unfinished job(s) from an earlier run ended")

    def owner(self):
        from sqlalchemy import select

        from crm.extensions import db
        from crm.models import User

        user = db.session.scalar(select(User).where(User.email == run.OWNER_EMAIL))
        if user is None:
            raise run.BenchError(f"No user {run.OWNER_EMAIL} in the bench database")
        return user

    def start(self, kind: str, title: str, items=None, params=None) -> int:
        from crm.extensions import db
        from crm.jobs import start_job
        from crm.jobs.queue import enqueue

        job = start_job(db.session, kind=kind, actor=self.owner(), title=title, params=params,
                        items=items, enqueue=enqueue)
        db.session.commit()
        return job.id

    def jobs(self, ids: list[int]) -> list[dict]:
        from sqlalchemy import select

        from crm.extensions import db
        from crm.models import Job

        with db.engine.connect() as conn:
            rows = conn.execute(select(Job.__table__).where(Job.id.in_(ids))
                                .order_by(Job.id)).mappings()
            return [dict(row) for row in rows]

    def run_jobs(self, starts: list, processes: int = 1, threads: int = 1,
                 timeout: float = 3 * 3600) -> dict:
        """Start fresh consumers, queue the jobs ``starts`` make, wait for them all to end."""
        before = load()
        with Consumers(self.env, self.folder, processes, threads) as consumers:
            begun = time.perf_counter()
            ids = [start() for start in starts]
            queued = time.perf_counter() - begun
            deadline = time.monotonic() + timeout
            finishing: dict[int, float] = {}  # when the bench first saw a job finishing
            while True:
                jobs = self.jobs(ids)
                for j in jobs:
                    if (j["state"] or {}).get("finishing") and j["id"] not in finishing:
                        finishing[j["id"]] = time.perf_counter()
                if all(j["status"] in ("done", "failed", "cancelled") for j in jobs):
                    break
                if time.monotonic() > deadline:
                    raise run.BenchError(f"jobs {ids} did not end within {timeout:.0f} s")
                if any(c.poll() is not None for c in consumers.children):
                    raise run.BenchError("a worker exited while its jobs ran; see "
                                         f"{self.folder}/worker-*.log")
                time.sleep(POLL)
            ended = time.perf_counter()
            wall = ended - begun
            peaks = consumers.peaks()
            idle = consumers.idle
            cpu = consumers.cpu()
        failed = [j for j in jobs if j["status"] != "done"]
        if failed:
            raise run.BenchError("; ".join(f"job {j['id']} {j['status']}: {j['error']}"
                                           for j in failed))
        started = min(j["started_at"] for j in jobs)
        finished = max(j["finished_at"] for j in jobs)
        return {
            "jobs": [{"id": j["id"], "kind": j["kind"], "total": j["total"], "done": j["done"],
                      "changed": j["changed"], "skipped": j["skipped"],
                      "reasons": j["reasons"], "chunks": j["chunks"],
                      "seconds": round((j["finished_at"] - j["started_at"]).total_seconds(), 2),
                      "summary": j["summary"]} for j in jobs],
            "consumers": {"processes": processes, "threads": threads},
            "queue_seconds": round(queued, 2),
            "wall_seconds": round(wall, 2),  # from the first commit to the last job seen ended
            "run_seconds": round((finished - started).total_seconds(), 2),
            # the last chunk committed -> the job ended: its finish (a workbook built from
            # its parts, say), as seen by polling (±POLL)
            "finishing_seconds": round(ended - min(finishing.values()), 2) if finishing
            else None,
            "idle_rss_mb": idle,
            "consumer_cpu_seconds": cpu,
            "peak_rss_mb": peaks,
            "load_before": before,
            "load_after": load(),
        }

    # --- 1. statements by e-mail -------------------------------------------------------------

    def eligible(self, n: int) -> list[int]:
        from sqlalchemy import case, func, select

        from crm.actions.bulk import CHANGE
        from crm.actions.statement_run import EMAIL_SKIPS
        from crm.extensions import db
        from crm.models import Customer

        middle = db.session.scalar(select(func.max(Customer.id))) // 2
        ids = list(db.session.scalars(
            select(Customer.id).where(Customer.id >= middle,
                                      case(*EMAIL_SKIPS, else_=CHANGE) == CHANGE)
            .order_by(Customer.id).limit(n)))
        db.session.rollback()
        if len(ids) < n:
            raise run.BenchError(f"only {len(ids):,} customers may be e-mailed")
        return ids

    def statements(self) -> dict:
        from sqlalchemy import select

        from crm.models import Customer

        n = self.args.statements
        ids = self.eligible(n)
        half = n // 2
        result = {"customers": n, "first_id": ids[0], "last_id": ids[-1], "variants": {}}

        def job(chosen: list[int], label: str):
            return lambda: self.start("email_statements", f"Bench: e-mail {label}",
                                      items=select(Customer.id).where(Customer.id.in_(chosen)))

        variants = {
            "one_job_one_consumer": ([job(ids, f"{n:,} statements")], 1, 1),
            "two_jobs_two_processes": ([job(ids[:half], "first half"),
                                        job(ids[half:], "second half")], 2, 1),
            "two_jobs_one_process_two_threads": ([job(ids[:half], "first half"),
                                                  job(ids[half:], "second half")], 1, 2),
            # what a second consumer does for a single job: nothing (it runs on one of them)
            "one_job_two_processes": ([job(ids, f"{n:,} statements")], 2, 1),
        }
        runs: dict[str, list[dict]] = {}
        chosen = [(name, spec) for name, spec in variants.items()
                  if not self.args.variants or name in self.args.variants]
        # the variants in turn, --repeat times (ABCDABCD): a change of load on the shared
        # machine then falls on every variant rather than on one
        for (name, (starts, processes, threads)) in chosen * self.args.repeat:
            folder = self.use_folder(f"statements-{name}")
            run.log(f"{self.database}: statements, {name} ({n:,} customers)")
            figures = self.run_jobs(starts, processes, threads)
            sent = sum(j["changed"] for j in figures["jobs"])
            files = sum(1 for _ in (folder / "outbox").rglob("*") if _.is_file()) \
                if (folder / "outbox").exists() else 0
            figures.update(sent=sent, outbox_files=files,
                           per_minute=round(sent / figures["run_seconds"] * 60, 1),
                           per_minute_wall=round(sent / figures["wall_seconds"] * 60, 1),
                           cpu_ms_per_statement=round(
                               figures["consumer_cpu_seconds"] * 1000 / max(sent, 1), 1))
            run.log(f"  sent {sent:,} ({files:,} files in the outbox) in "
                    f"{figures['run_seconds']} s: {figures['per_minute']}/min; consumer CPU "
                    f"{figures['cpu_ms_per_statement']} ms a statement; peak RSS "
                    f"{figures['peak_rss_mb']} MB; load {figures['load_after']}")
            runs.setdefault(name, []).append(figures)
            shutil.rmtree(folder / "outbox", ignore_errors=True)
        for name, done in runs.items():
            # the median run by rate stands for the variant; every run's rate is kept
            ordered = sorted(done, key=lambda f: f["per_minute"])
            result["variants"][name] = dict(
                ordered[(len(ordered) - 1) // 2],
                runs=[{"per_minute": f["per_minute"], "run_seconds": f["run_seconds"],
                       "cpu_ms_per_statement": f["cpu_ms_per_statement"],
                       "load_before": f["load_before"], "load_after": f["load_after"]}
                      for f in done])
        return result

    # --- 2. bulk set dormant -------------------------------------------------------------------

    def dormant(self) -> dict:
        from sqlalchemy import func, select

        from crm.extensions import db
        from crm.models import AuditEvent, Customer

        n = self.args.dormant
        session = db.session
        active = (Customer.status == "active") & Customer.merged_into_id.is_(None)
        counts_before = dict(session.execute(
            select(Customer.status, func.count()).group_by(Customer.status)).all())
        last = session.scalar(select(Customer.id).where(active).order_by(Customer.id)
                              .offset(n - 1).limit(1))
        if last is None:
            raise run.BenchError(f"fewer than {n:,} active customers")
        before = session.scalar(select(func.coalesce(func.max(AuditEvent.id), 0)))
        session.rollback()
        self.use_folder("dormant")
        run.log(f"{self.database}: set {n:,} customers dormant (ids up to {last:,}) as a job")
        dormant = self.run_jobs([lambda: self.start(
            "bulk_set_dormant", f"Bench: set {n:,} customers dormant",
            items=select(Customer.id).where(active, Customer.id <= last),
            params={"verb": "set_dormant", "form": {}})])
        job = dormant["jobs"][0]
        dormant["per_second"] = round(job["changed"] / dormant["run_seconds"], 1)
        run.log(f"  {job['summary']} in {dormant['run_seconds']} s "
                f"({dormant['per_second']:,}/s); peak RSS {dormant['peak_rss_mb']} MB")
        those = select(AuditEvent.subject_id).where(
            AuditEvent.id > before, AuditEvent.verb == "set_dormant",
            AuditEvent.subject_type == "Customer", AuditEvent.subject_id.is_not(None))
        self.use_folder("reactivate")
        run.log(f"{self.database}: reactivate them as a job")
        back = self.run_jobs([lambda: self.start(
            "bulk_reactivate", f"Bench: reactivate {n:,} customers", items=those,
            params={"verb": "reactivate", "form": {}})])
        job = back["jobs"][0]
        back["per_second"] = round(job["changed"] / back["run_seconds"], 1)
        run.log(f"  {job['summary']} in {back['run_seconds']} s ({back['per_second']:,}/s)")
        counts_after = dict(session.execute(
            select(Customer.status, func.count()).group_by(Customer.status)).all())
        session.rollback()
        if counts_after != counts_before:
            raise run.BenchError(f"customers by status before {counts_before}, after "
                                 f"{counts_after}: not restored")
        self.vacuum()
        return {"customers": n, "set_dormant": dormant, "reactivate": back,
                "status_counts": counts_before}

    def vacuum(self) -> None:
        from sqlalchemy import text

        from crm.extensions import db

        if db.engine.dialect.name != "postgresql":
            return
        run.log(f"{self.database}: VACUUM ANALYZE (untimed)")
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in ("customer", "work_address", "note", "audit_event", "job_item", "job"):
                conn.execute(text(f"VACUUM ANALYZE {table}"))

    # --- 3. import of work addresses ------------------------------------------------------------

    def import_rows(self) -> dict:
        from crm.jobs import KINDS

        if "import_work_addresses" not in KINDS:
            return {"missing": "no import_work_addresses kind of job in this version"}
        return self._import(KINDS["import_work_addresses"])

    def import_csv(self, path: Path, rows: int) -> int:
        """``rows`` new work addresses of live customers spread over the table (references
        that exist), each with a first line and postcode no other row has."""
        from sqlalchemy import func, select

        from crm.extensions import db
        from crm.models import Customer

        top = db.session.scalar(select(func.max(Customer.id)))
        step = max(1, top // rows)
        references = list(db.session.scalars(
            select(Customer.reference).where(Customer.merged_into_id.is_(None),
                                             Customer.redacted_at.is_(None),
                                             Customer.id % step == 0)
            .order_by(Customer.id).limit(rows)))
        db.session.rollback()
        if not references:
            raise run.BenchError("no live customers to import work addresses for")
        streets = ("Bench Street", "Import Road", "Chunk Lane", "Worker Avenue", "Queue Close")
        towns = (("Leeds", "LS1 4AP"), ("Manchester", "M1 1AE"), ("Bristol", "BS1 4DJ"),
                 ("York", "YO1 7HH"), ("Norwich", "NR2 1NH"))
        with open(path, "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(["Customer reference", "Address line 1", "Address line 2", "Town",
                             "Postcode", "Country", "Occupier's first name",
                             "Occupier's surname", "Occupier's phone", "Occupier's e-mail"])
            for n in range(rows):
                town, postcode = towns[n % len(towns)]
                writer.writerow([references[n % len(references)],
                                 f"{n + 1} {streets[n % len(streets)]}",
                                 f"Unit {n % 40 + 1}" if n % 3 == 0 else "", town, postcode,
                                 "GB", ("Sam", "Alex", "Jo", "Chris")[n % 4], f"Tenant {n}",
                                 f"020 7946 0{n % 1000:03d}", f"tenant{n}@work.example.com"])
        return len(references)

    def _import(self, kind) -> dict:
        import secrets

        from sqlalchemy import delete, func, select

        from crm.actions.imports import check_mapping, guess_mapping, stage
        from crm.extensions import db
        from crm.jobs.imports import upload_folder
        from crm.models import WorkAddress

        rows = self.args.import_rows
        folder = self.use_folder("import")
        source = folder / "work-addresses.csv"
        customers = self.import_csv(source, rows)
        token = secrets.token_urlsafe(24)
        upload = upload_folder({"CRM_JOBS_DIR": self.env["CRM_JOBS_DIR"]}, token)
        begun = time.perf_counter()
        staged = stage(source, upload, filename=source.name)
        staging = time.perf_counter() - begun
        mapping = check_mapping("work_addresses", staged.headers,
                                guess_mapping("work_addresses", staged.headers))
        result = {"rows": staged.rows, "customers": customers,
                  "file_mb": round(source.stat().st_size / 2**20, 1),
                  "staging_seconds": round(staging, 2), "mapping": mapping}
        run.log(f"{self.database}: import of {staged.rows:,} work addresses "
                f"({result['file_mb']} MB, staged in {staging:.1f} s)")
        before = db.session.scalar(select(func.coalesce(func.max(WorkAddress.id), 0)))
        db.session.rollback()
        runs = (("dry_run", True),) if self.args.import_dry_run else ()
        for name, dry_run in (*runs, ("import", False)):
            figures = self.run_jobs([lambda dry_run=dry_run: self.start(
                kind.name, f"Bench: import {staged.rows:,} work addresses"
                + (" (dry run)" if dry_run else ""),
                params={"target": "work_addresses", "upload": token, "mapping": mapping,
                        "dry_run": dry_run, "filename": source.name})])
            job = figures["jobs"][0]
            figures["rows_per_second"] = round(job["done"] / figures["run_seconds"], 1)
            run.log(f"  {name}: {job['summary']} {figures['run_seconds']} s "
                    f"({figures['rows_per_second']:,} rows/s); peak RSS "
                    f"{figures['peak_rss_mb']} MB (idle {figures['idle_rss_mb']})")
            result[name] = figures
        made = db.session.scalar(select(func.count()).select_from(WorkAddress)
                                 .where(WorkAddress.id > before))
        result["created"] = made
        # untimed: the bench database goes back to the work addresses it was seeded with
        db.session.execute(delete(WorkAddress).where(WorkAddress.id > before))
        db.session.commit()
        run.log(f"  {made:,} work addresses were created; removed again (untimed)")
        return result

    # --- 4. exports -------------------------------------------------------------------------

    def export(self) -> dict:
        from crm.jobs import KINDS

        result = {}
        for name in (f"export_{fmt}" for fmt in self.args.exports):
            if name not in KINDS:
                result[name] = {"missing": f"no {name} kind of job in this version"}
                continue
            result[name] = self._export(name)
        return result

    def _export(self, name: str) -> dict:
        from sqlalchemy import func, select

        from crm.admin_views.exports import start_export
        from crm.extensions import db
        from crm.jobs.queue import enqueue
        from crm.models import Customer

        fmt = name.split("_")[1]
        folder = self.use_folder(name)
        customers = db.session.scalar(select(func.count()).select_from(Customer))
        db.session.rollback()

        def begin() -> int:
            job = start_export(db.session, self.owner(), self.args.export_list, fmt,
                               enqueue=enqueue)
            db.session.commit()
            return job.id

        run.log(f"{self.database}: export {self.args.export_list} to {fmt.upper()} "
                f"({customers:,} customers in the table)")
        figures = self.run_jobs([begin])
        job = figures["jobs"][0]
        row = self.jobs([job["id"]])[0]
        path = Path(self.env["CRM_JOBS_DIR"]) / (row["result_path"] or "")
        figures.update(rows=job["changed"], list=self.args.export_list,
                       rows_per_second=round(job["changed"] / figures["run_seconds"], 1),
                       file_mb=round(path.stat().st_size / 2**20, 1) if path.is_file() else None,
                       columns=len((row["params"] or {}).get("columns") or []),
                       measured_at=time.strftime("%Y-%m-%d %H:%M:%S"))
        run.log(f"  {job['summary']} {figures['run_seconds']} s "
                f"({figures['rows_per_second']:,} rows/s), {figures['file_mb']} MB; peak RSS "
                f"{figures['peak_rss_mb']} MB (idle {figures['idle_rss_mb']}); finishing "
                f"{figures['finishing_seconds']} s")
        shutil.rmtree(folder / "jobs", ignore_errors=True)
        return figures


# --------------------------------------------------------------------------------------------


def write(results: Path, database: str, size: int, info: dict, measured: dict) -> Path:
    path = results / f"jobs-{database}.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data.update(database=database, size=size,
                seed={"seed": info["seed"], "seconds": info["seed_seconds"],
                      "seeded_at": info["seeded_at"]},
                environment=run.environment())
    for name, figures in measured.items():
        figures.setdefault("measured_at", time.strftime("%Y-%m-%d %H:%M:%S"))
        if name == "export":  # one format measured again keeps the other's figures
            figures = {**data.get(name, {}), **figures}
        data[name] = figures
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


def table(results: Path) -> str:
    """The figures of jobs-sqlite.json and jobs-postgresql.json as bench/README.md's table."""
    data = {db: json.loads((results / f"jobs-{db}.json").read_text())
            for db in ("sqlite", "postgresql") if (results / f"jobs-{db}.json").exists()}

    def cell(db: str, *path, fmt=None) -> str:
        value = data.get(db)
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is None:
            return "—"
        return fmt(value) if fmt else str(value)

    def peak(values) -> str:
        return " + ".join(f"{v:.0f}" for v in values) + " MB"

    def load_of(figures) -> str:
        return f"{figures['load_before'][0]:.1f} → {figures['load_after'][0]:.1f}"

    def statement_cell(f) -> str:
        runs = f.get("runs") or [f]
        rates = ", ".join(f"{r['per_minute']:.0f}" for r in runs)
        cpu = f.get("cpu_ms_per_statement")
        return (f"{f['per_minute']:.0f}/min" + (f" (runs: {rates})" if len(runs) > 1 else "")
                + f"; {f['sent']:,} in {f['run_seconds']:.0f} s"
                + (f"; consumer CPU {cpu:.0f} ms a statement" if cpu is not None else "")
                + f"; peak {peak(f['peak_rss_mb'])}; load "
                + ", ".join(f"{r['load_before'][0]:.1f}" for r in runs))

    lines = ["| measure | SQLite | PostgreSQL |", "|---|---|---|"]
    s = ("statements", "variants")
    for name, label in (("one_job_one_consumer", "1 job of N, 1 consumer"),
                        ("two_jobs_two_processes", "2 jobs of N/2, 2 consumer processes"),
                        ("two_jobs_one_process_two_threads",
                         "2 jobs of N/2, 1 process × 2 threads"),
                        ("one_job_two_processes", "1 job of N, 2 consumer processes")):
        lines.append(f"| statements e-mailed, {label} | " + " | ".join(
            cell(db, *s, name, fmt=statement_cell) for db in ("sqlite", "postgresql")) + " |")
    for key, label in (("set_dormant", "set dormant"), ("reactivate", "reactivate")):
        lines.append(f"| {label}, 500,000 customers, 1 consumer | " + " | ".join(
            cell(db, "dormant", key, fmt=lambda f: f"{f['run_seconds']:.0f} s, "
                 f"{f['per_second']:,.0f}/s; peak {peak(f['peak_rss_mb'])}; load "
                 f"{load_of(f)}") for db in ("sqlite", "postgresql")) + " |")
    lines.append("| import of work addresses, 1 consumer | " + " | ".join(
        cell(db, "import", "import", fmt=lambda f: f"{f['jobs'][0]['done']:,} rows in "
             f"{f['run_seconds']:.0f} s, {f['rows_per_second']:,.0f} rows/s; peak "
             f"{peak(f['peak_rss_mb'])} (idle {peak(f['idle_rss_mb'])}); load {load_of(f)}")
        for db in ("sqlite", "postgresql")) + " |")
    for key in ("export_csv", "export_xlsx"):
        lines.append(f"| {key.split('_')[1].upper()} export, 1 consumer | " + " | ".join(
            cell(db, "export", key, fmt=lambda f: f"{f['rows']:,} rows in "
                 f"{f['run_seconds']:.0f} s, {f['rows_per_second']:,.0f} rows/s, "
                 f"{f['file_mb']} MB; peak {peak(f['peak_rss_mb'])} (idle "
                 f"{peak(f['idle_rss_mb'])}); finish {f['finishing_seconds']} s; load "
                 f"{load_of(f)}") for db in ("sqlite", "postgresql")) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--databases", nargs="+", choices=["sqlite", "postgresql"],
                        default=["sqlite"])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pg-url", default=run.PG_DEFAULT)
    parser.add_argument("--reuse", action="store_true",
                        help="keep the databases bench/run.py seeded before (same size, seed)")
    parser.add_argument("--only", nargs="+", choices=MEASURES, default=list(MEASURES))
    parser.add_argument("--statements", type=int, default=600,
                        help="customers e-mailed in each statement variant")
    parser.add_argument("--variants", nargs="*", default=None,
                        help="statement variants to run (default: all four)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run the statement variants in turn this many times")
    parser.add_argument("--dormant", type=int, default=500_000)
    parser.add_argument("--import-rows", type=int, default=100_000)
    parser.add_argument("--exports", nargs="+", choices=["csv", "xlsx"], default=["csv", "xlsx"])
    parser.add_argument("--export-list", default="customer_owner",
                        help="the list exported (an admin endpoint: one role's customer list)")
    parser.add_argument("--import-dry-run", action="store_true",
                        help="time a dry run of the import (nothing written) before it")
    parser.add_argument("--results", type=Path, default=run.RESULTS,
                        help="folder of jobs-<database>.json (a trial run: somewhere else)")
    parser.add_argument("--table", action="store_true",
                        help="print the results as bench/README.md's table, measure nothing")
    args = parser.parse_args(argv)
    if args.table:
        print(table(args.results))
        return 0
    failures = 0
    for database in args.databases:
        info = run.prepare(database, args.size, args.seed, args.pg_url, args.reuse)
        bench = Bench(database, info, args)
        measured: dict = {}
        try:
            for name in args.only:
                try:
                    measured[name] = {"statements": bench.statements, "dormant": bench.dormant,
                                      "import": bench.import_rows,
                                      "export": bench.export}[name]()
                except run.BenchError as error:
                    run.log(f"{database} {name}: FAILED: {error}")
                    failures += 1
                finally:
                    if measured:
                        write(args.results, database, args.size, info, measured)
        finally:
            bench.close()
        path = write(args.results, database, args.size, info, measured)
        run.log(f"{database}: {path}")
    return 1 if failures else 0


if __name__ == "__main__":
    in_venv = Path(sys.prefix).resolve() == (ROOT / ".venv").resolve()
    if not in_venv and (run.VENV_BIN / "python").exists() and not os.environ.get("CRM_BENCH_VENV"):
        os.environ["CRM_BENCH_VENV"] = "1"
        os.execv(str(run.VENV_BIN / "python"), [str(run.VENV_BIN / "python"), *sys.argv])
    sys.exit(main())
