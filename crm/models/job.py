"""Background jobs as people see them: one ``job`` row per run (what, who, how far, the
result file), the items it works through (``job_item``), and the column mappings saved for
imports (``import_mapping``).

The queue (Huey) carries only a job's id; everything a run needs and everything it has done
is here, in the application's database, so a consumer that dies part-way is replaced by
another that reads where the run stands and carries on (``crm.jobs.runner``).

No personal data is stored on a job: its parameters are ids and list filters, its skipped
items are references with a reason. Files a job makes (a ZIP of statements, an export, an
import's refused rows) live under the jobs folder and are removed with the job's files after
``CRM_JOB_FILES_DAYS``.
"""

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from crm.models.base import Base, Timestamped
from crm.personal_data import KEEP

JOB_STATUSES = ("queued", "running", "done", "failed", "cancelled")
FINISHED = ("done", "failed", "cancelled")
IMPORT_TARGETS = ("customers", "contacts", "work_addresses")
SENTENCE_MAX = 2_000  # a job's summary or error: a few sentences, cut to this


class Job(Timestamped, Base):
    """One run of background work: its kind, who started it, its parameters, its progress
    (``done`` of ``total`` items, how many changed and how many were skipped), and where it
    stands (``cursor``: the last item finished; chunks commit it with their work)."""

    __tablename__ = "job"
    __table_args__ = (
        CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed', 'cancelled')", name="status"),
        Index("ix_job_created_at", "created_at"),
        Index("ix_job_user_id_created_at", "user_id", "created_at"),
        Index("ix_job_kind_created_at", "kind", "created_at"),
    )

    kind: Mapped[str] = mapped_column(String(40), nullable=False)
    # Who started it; none for scheduled work (the nightly ageing of the ledger).
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))
    # A money job (statements, money exports) is never shown to a coordinator.
    money: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False,
                                        server_default=text("false"))
    title: Mapped[str] = mapped_column(String(200), nullable=False)  # "Set 300,000 customers dormant"
    params: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    status: Mapped[str] = mapped_column(String(12), nullable=False, default="queued",
                                        server_default="queued")
    total: Mapped[int | None] = mapped_column(Integer)  # items to go through, when known
    done: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    changed: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    skipped: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    # The first skipped items, [[reference, reason], ...]; the counts above are exact.
    skips: Mapped[list] = mapped_column(JSON, nullable=False, default=list)
    # Skip reasons and how many of each, {reason: n}.
    reasons: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    cursor: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    chunks: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    # State a kind keeps between chunks (the size of an export file at the last chunk).
    state: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False,
                                                   server_default=text("false"))
    summary: Mapped[str | None] = mapped_column(String(SENTENCE_MAX))
    error: Mapped[str | None] = mapped_column(String(SENTENCE_MAX))
    result_path: Mapped[str | None] = mapped_column(String(300))  # inside the jobs folder
    result_name: Mapped[str | None] = mapped_column(String(200))  # the download's file name
    result_type: Mapped[str | None] = mapped_column(String(100))
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)

    # Ids, references, reasons and list filters without their values; the free text a
    # bulk action's form carried (a reason, a note) leaves ``params`` when the job ends.
    __personal_data__ = {
        name: KEEP for name in ("kind", "title", "status", "summary", "error", "result_path",
                                "result_name", "result_type", "params", "skips", "reasons",
                                "state")
    }

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def percent(self) -> int:
        if self.status == "done":
            return 100
        if not self.total:
            return 0
        return min(100, int(self.done * 100 / self.total))


class JobItem(Base):
    """An item a job goes through (a customer's id, for most kinds), fixed when the job
    starts: the run covers what the person confirmed, even if the list's filter would
    match other rows by the time a chunk gets there. Removed when the job finishes."""

    __tablename__ = "job_item"

    job_id: Mapped[int] = mapped_column(ForeignKey("job.id", ondelete="CASCADE"),
                                        primary_key=True)
    item_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    # For e-mail: "claimed" is committed just before a message is handed to the mail server,
    # so a run that resumes knows a message may have gone and does not send it twice.
    state: Mapped[str | None] = mapped_column(String(12))

    __personal_data__ = {"state": KEEP}


class ImportMapping(Timestamped, Base):
    """A named column mapping for imports ("Suppliers' export"): which header of the file
    feeds which field, for one kind of import."""

    __tablename__ = "import_mapping"
    __table_args__ = (
        UniqueConstraint("target", "name"),
        CheckConstraint("target IN ('customers', 'contacts', 'work_addresses')",
                        name="target"),
    )

    target: Mapped[str] = mapped_column(String(20), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    # {field name: header in the file}
    columns: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"))

    __personal_data__ = {"target": KEEP, "name": KEEP, "columns": KEEP}  # headers, not values
