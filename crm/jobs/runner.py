"""Run a job chunk by chunk (see ``crm.jobs``).

Each chunk is one transaction: the kind's work and the job's progress (its cursor, counts,
skipped items) commit together, guarded by the cursor the chunk started from, so:

- a consumer killed part-way (SIGKILL, a lost machine) leaves the last chunk's work rolled
  back with its progress, and the next run starts from the last committed cursor: nothing
  is done twice, nothing half-done;
- two consumers given the same job (a re-queued job whose first consumer was only slow)
  cannot both commit one chunk: the second finds the cursor moved and stops.

A chunk that raises is retried (``MAX_ATTEMPTS`` in all, ``CRM_JOB_RETRY_DELAY`` seconds
apart); then the job fails with a sentence, and its summary says how far it got: finished
chunks stay done. An ``ActionError`` is a refusal, not an accident, and fails the job at
once. A cancel asked for on the job's page is seen at the next chunk boundary.

A worker asked to stop (Ctrl+C: ``stop_at_chunk_boundary``) lets each job in hand finish its
chunk, puts it back in the queue and returns, so the next worker continues it at once.
"""

import logging
import threading
import time
from collections import Counter
from datetime import timedelta

from flask import current_app
from sqlalchemy import update
from sqlalchemy.orm import Session

from crm.actions import ActionError
from crm.extensions import db
from crm.jobs import (
    KINDS,
    RUN_TASK,
    SAMPLE,
    Chunk,
    Context,
    Job,
    Superseded,
    forget_items,
    job_folder,
)
from crm.models import User
from crm.models.base import utcnow
from crm.models.job import SENTENCE_MAX

log = logging.getLogger("crm.jobs")
MAX_ATTEMPTS = 3
STOPPING = threading.Event()  # set when the worker is asked to stop (Ctrl+C)

__all__ = ["MAX_ATTEMPTS", "STOPPING", "Superseded", "run_job", "stop_at_chunk_boundary"]


def stop_at_chunk_boundary() -> None:
    """Ask every job running in this process to stop after its chunk in hand and go back to
    the queue (what ``flask crm worker`` does on Ctrl+C)."""
    STOPPING.set()


def run_job(job_id: int) -> str | None:
    """Run job ``job_id`` to its end (or until cancelled, failed or superseded); returns
    its final status, or None when there was nothing to do. Needs an application context."""
    config = current_app.config
    with Session(db.engine, expire_on_commit=False) as session:
        job = session.get(Job, job_id)
        if job is None or job.finished:
            return None
        if not _claim(session, job, config):
            return None
        kind = KINDS.get(job.kind)
        if kind is None:
            return _end(session, job, "failed", error=f"This version does not know jobs of "
                        f"kind {job.kind!r}; it cannot be run.")
        actor = session.get(User, job.user_id) if job.user_id else None
        context = Context(folder=job_folder(config, job.id), actor=actor, config=dict(config))
        delay = float(config.get("CRM_JOB_RETRY_DELAY", 2))
        while True:
            session.refresh(job)
            finishing = bool((job.state or {}).get("finishing"))
            if job.cancel_requested and not finishing:
                return _end(session, job, "cancelled", summary=_so_far(job, "Cancelled"))
            if STOPPING.is_set():
                return _put_back(session, job)
            try:
                if not finishing:
                    started_from = job.cursor
                    chunk = kind.run_chunk(session, job, context)
                    _record(session, job, chunk, started_from)
                    session.commit()
                    if not chunk.last:
                        continue
                summary = kind.finish(session, job, context) if kind.finish else _so_far(
                    job, "Done")
                return _end(session, job, "done", summary=summary)
            except Superseded:
                session.rollback()
                log.info("Job %s: another consumer is running it; this one stops.", job_id)
                return None
            except ActionError as exc:
                session.rollback()
                return _end(session, session.get(Job, job_id), "failed", error=str(exc),
                            summary=_so_far(job, "Stopped"))
            except Exception as exc:  # an accident: retry, then fail with a sentence
                session.rollback()
                log.exception("Job %s (%s), chunk %s failed", job_id, job.kind, job.chunks + 1)
                job = session.get(Job, job_id)
                job.attempts += 1
                if job.attempts >= MAX_ATTEMPTS:
                    return _end(session, job, "failed", error=_sentence(exc, job.attempts),
                                summary=_so_far(job, "Stopped"))
                session.commit()
                time.sleep(delay * job.attempts)


def _claim(session: Session, job: Job, config) -> bool:
    """Mark the job running (once), unless another consumer is visibly running it (a
    heartbeat newer than ``CRM_JOB_STALE_SECONDS``)."""
    now = utcnow()
    stale = now - timedelta(seconds=float(config.get("CRM_JOB_STALE_SECONDS", 120)))
    if job.status == "running" and job.heartbeat_at and job.heartbeat_at > stale:
        return False
    as_seen = (Job.heartbeat_at.is_(None) if job.heartbeat_at is None
               else Job.heartbeat_at == job.heartbeat_at)
    claimed = session.execute(
        update(Job).where(Job.id == job.id, Job.status == job.status, as_seen)
        .values(status="running", heartbeat_at=now, started_at=job.started_at or now)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.commit()
    session.refresh(job)
    return bool(claimed)


def _record(session: Session, job: Job, chunk: Chunk, started_from: int) -> None:
    """Add the chunk's progress to the job, in the chunk's transaction, provided nobody
    else moved the job on meanwhile."""
    reasons = Counter(job.reasons or {})
    reasons.update(chunk.reason_counts())
    skips = list(job.skips or [])
    if len(skips) < SAMPLE:
        skips.extend([list(s) for s in chunk.skips][:SAMPLE - len(skips)])
    state = dict(job.state or {})
    if chunk.last:
        state["finishing"] = True
    moved = session.execute(
        update(Job).where(Job.id == job.id, Job.cursor == started_from,
                          Job.status == "running")
        .values(cursor=chunk.cursor, done=Job.done + chunk.processed,
                changed=Job.changed + chunk.changed,
                skipped=Job.skipped + sum(chunk.reason_counts().values()),
                skips=skips, reasons=dict(reasons), state=state, chunks=Job.chunks + 1,
                attempts=0, heartbeat_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    if not moved:
        raise Superseded
    # what the chunk itself may have put in job.state (an export's file size) is kept above
    session.expire(job)


def _put_back(session: Session, job: Job) -> None:
    """The worker is stopping: the job goes back to the queue as it stands (its finished
    chunks committed), for the next worker to continue."""
    job.status = "queued"
    job.heartbeat_at = None
    session.commit()
    log.info("Job %s: the worker is stopping; queued again after %s chunk(s).", job.id,
             job.chunks)
    current_app.extensions[RUN_TASK](job.id)  # crm.jobs.queue.enqueue


def _end(session: Session, job: Job, status: str, *, summary: str | None = None,
         error: str | None = None) -> str:
    """The job's end, whatever it is: its items are no longer needed (a failed or cancelled
    job is not resumed; people start a new one for what was left)."""
    forget_items(session, job.id)
    job.status = status
    job.finished_at = utcnow()
    job.heartbeat_at = job.finished_at
    if summary is not None:
        job.summary = _cut(summary)
    if error is not None:
        job.error = _cut(error)
    if (job.params or {}).get("form"):
        # What a bulk action's form carried (a reason, a note for colleagues) was needed to
        # run it; the customers' own records keep it where it belongs, the job does not.
        job.params = {**job.params, "form": {k: v for k, v in job.params["form"].items()
                                             if k not in FREE_TEXT}}
    session.commit()
    return status


FREE_TEXT = ("reason", "note", "word")


def _cut(text: str) -> str:
    return text if len(text) <= SENTENCE_MAX else text[:SENTENCE_MAX - 1] + "…"


def _so_far(job: Job, how: str) -> str:
    """"Done: 5,000 of 5,000 customers; 4,800 changed, 200 skipped." and the like."""
    total = f" of {job.total:,}" if job.total is not None else ""
    text = f"{how} after {job.done:,}{total} item{'s' if (job.total or job.done) != 1 else ''}"
    parts = [f"{job.changed:,} changed"]
    if job.skipped:
        parts.append(f"{job.skipped:,} skipped")
    text += ": " + ", ".join(parts) + "."
    if how != "Done" and job.chunks:
        text += " Everything finished before it stopped stays done."
    return text


def _sentence(exc: Exception, attempts: int) -> str:
    what = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
    return (f"It failed {attempts} times in a row on the same chunk ({what}); the job "
            "stopped there.")
