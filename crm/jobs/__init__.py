"""Background jobs: long work (statement runs, large bulk actions, exports, imports, the
nightly ageing) runs outside the request, in chunks, on a Huey consumer
(``flask crm worker``), and people follow it on its page (Settings → Jobs).

The pieces:

- ``crm.models.job``: the ``job`` row people see and the items it works through.
- here: what a *kind* of job is (``Kind``: how to do one chunk, how to finish), the registry
  of kinds, and ``start_job``, which records a job and its items in the caller's
  transaction and queues it once that commits.
- ``crm.jobs.runner``: runs a job chunk by chunk; each chunk's work and its progress commit
  together, so a consumer killed part-way resumes where it stopped.
- ``crm.jobs.queue``: the Huey instance of an app (SQLite file in ``instance/`` or Redis),
  its tasks and periodic tasks, and the consumer.
- ``crm.jobs.customers``, ``crm.jobs.ledger``: the kinds that act on customers (bulk
  actions, statements) and the ledger's scheduled work. Screens register their own kinds
  (exports, imports) the same way.

A job's parameters are ids and filters, never personal data; the queue carries only its id.
"""

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Select, delete, func, insert, literal, select
from sqlalchemy.orm import Session

from crm.after_commit import after_commit
from crm.models import Job, JobItem, User
from crm.permissions import can

# Where an application keeps its queue (crm.jobs.queue) and the task that runs a job.
QUEUE_EXTENSION = "crm_huey"
RUN_TASK = QUEUE_EXTENSION + "_run"

# Selections at most this big run inside the request, as they always did; past it they
# become a job (CRM_JOB_THRESHOLD).
DEFAULT_THRESHOLD = 1_000
SAMPLE = 200  # skipped items a job lists by reference; the counts are exact


class Superseded(Exception):
    """Another consumer moved the job on (or claimed its item) while this one worked on the
    same chunk: this one rolls back and stops."""


@dataclass
class Chunk:
    """What one chunk did. ``cursor`` is where the next chunk starts (a customer id, a row
    number); ``last`` says nothing follows."""

    cursor: int
    processed: int = 0
    changed: int = 0
    skips: Sequence[tuple[str, str]] = ()  # (reference, reason): listed on the job's page
    reasons: dict[str, int] | None = None  # every skip counted by reason (default: skips)
    last: bool = False

    def reason_counts(self) -> Counter:
        if self.reasons is not None:
            return Counter(self.reasons)
        return Counter(reason for _, reason in self.skips)


@dataclass(frozen=True)
class Context:
    """What a chunk may use besides the session: the job's own folder (created on demand)
    and the user who started it (None for scheduled work)."""

    folder: Path
    actor: User | None
    config: dict = field(default_factory=dict)

    def path(self, name: str) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        return self.folder / name


@dataclass(frozen=True)
class Kind:
    """A kind of job. ``run_chunk(session, job, context) -> Chunk`` does the next chunk
    inside the runner's transaction (flush, never commit); it must be safe to run again
    after a rollback. ``finish(session, job, context) -> str`` runs once the last chunk has
    committed (it may run again if the consumer dies during it), returns the summary, and
    may set the result file (``set_result``)."""

    name: str
    label: str  # "Set customers dormant"
    run_chunk: Callable[[Session, Job, Context], Chunk]
    finish: Callable[[Session, Job, Context], str] | None = None
    capability: str | None = None  # what a role needs to start this kind (crm.permissions)
    money: bool = False  # statements, money exports: never shown to a coordinator
    chunk_size: int = 1_000
    # How the job's page words its two counts: "1,198 sent · 42 skipped".
    changed_label: str = "changed"
    skipped_label: str = "skipped"


KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    KINDS[kind.name] = kind
    return kind


def threshold(config: dict) -> int:
    return int(config.get("CRM_JOB_THRESHOLD") or DEFAULT_THRESHOLD)


def chunk_size(kind: Kind, config: dict) -> int:
    """How many items a chunk of ``kind`` takes: its own size, or less when
    ``CRM_JOB_CHUNK_SIZE`` says so (never more: an e-mail chunk stays one customer)."""
    cap = int(config.get("CRM_JOB_CHUNK_SIZE") or 0)
    return min(kind.chunk_size, cap) if cap > 0 else kind.chunk_size


def jobs_folder(config: dict) -> Path:
    return Path(config["CRM_JOBS_DIR"])


def job_folder(config: dict, job_id: int) -> Path:
    return jobs_folder(config) / f"job-{job_id}"


def start_job(
    session: Session,
    *,
    kind: str,
    actor: User | None,
    title: str,
    params: dict | None = None,
    items: Select | None = None,
    total: int | None = None,
    enqueue: Callable[[int], object] | None = None,
) -> Job:
    """Record a job (queued) and, from ``items`` (a SELECT of ids), the items it will work
    through, in the caller's transaction; once that commits, ``enqueue(job.id)`` hands it
    to the queue. Without ``items`` the kind finds its own chunks (``total`` if known)."""
    spec = KINDS[kind]
    job = Job(kind=kind, user_id=actor.id if actor is not None else None, money=spec.money,
              title=title[:200], params=params or {}, status="queued", total=total,
              skips=[], reasons={}, state={})
    session.add(job)
    session.flush()
    if items is not None:
        ids = items.subquery()
        column = next(iter(ids.c))
        session.execute(insert(JobItem).from_select(
            ["job_id", "item_id"],
            select(literal(job.id), column).distinct(),
        ))
        job.total = session.scalar(
            select(func.count()).select_from(JobItem).where(JobItem.job_id == job.id))
    if enqueue is not None:
        job_id = job.id
        after_commit(session, lambda: enqueue(job_id))
    return job


def next_items(session: Session, job: Job, size: int | None = None) -> list[int]:
    """The ids of the job's next chunk of items: after its cursor, in order."""
    limit = size or KINDS[job.kind].chunk_size
    return list(session.scalars(
        select(JobItem.item_id).where(JobItem.job_id == job.id, JobItem.item_id > job.cursor)
        .order_by(JobItem.item_id).limit(limit)
    ))


def items_select(job: Job, ids: Sequence[int]) -> Select:
    """A chunk's ids as a SELECT (what the set-based actions take as a selection)."""
    return select(JobItem.item_id).where(
        JobItem.job_id == job.id, JobItem.item_id >= ids[0], JobItem.item_id <= ids[-1])


def forget_items(session: Session, job_id: int) -> None:
    session.execute(delete(JobItem).where(JobItem.job_id == job_id))


def set_result(job: Job, context: Context, path: Path, *, name: str, mimetype: str) -> None:
    """Make ``path`` (inside the job's folder) the job's result file, downloaded as ``name``."""
    job.result_path = str(path.relative_to(context.folder.parent))
    job.result_name = name[:200]
    job.result_type = mimetype


def visible_to(user: User):
    """Criterion: the jobs ``user`` may see. Owners and admins see every job; other staff
    see their own, and never a money job unless their role handles money."""
    if can(user.role, "run_jobs"):
        return literal(True)
    mine = Job.user_id == user.id
    if can(user.role, "see_money"):
        return mine
    return mine & Job.money.is_(False)


def may_cancel(job: Job, user: User) -> bool:
    """Who may stop a job: the person who started it, or an owner or admin (run_jobs)."""
    return not job.finished and (job.user_id == user.id or can(user.role, "run_jobs"))


def request_cancel(session: Session, job: Job) -> bool:
    """Ask a queued or running job to stop at its next chunk boundary; False if it had
    already finished."""
    if job.finished:
        return False
    job.cancel_requested = True
    return True

