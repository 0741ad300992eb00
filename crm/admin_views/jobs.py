"""Settings → Jobs: the background jobs (crm.jobs) a person may see, newest first, and each
job's page with its progress bar, summary, skipped items, result file and Cancel.

One instance per staff role like every page of the panel. Which jobs a person sees is
``crm.jobs.visible_to``: owners and admins see every job; a coordinator sees their own and
never a money job (statements, money exports) nor its file. Any other job is 404 on every
endpoint (page, progress, file, cancel), as if it did not exist.

The page's bar follows the job without reloading: ``static/js/jobs.js`` reads the progress
endpoint (JSON) about once a second while the job runs, then reloads the page once when it
has finished, so the summary, the skipped items and the file appear.
"""

from pathlib import Path

from flask import abort, current_app, flash, jsonify, redirect, request, send_file, url_for
from flask_admin import expose
from flask_login import current_user
from sqlalchemy import select

from crm import formatting
from crm.admin_views.access import RolePage, require
from crm.admin_views.record_links import kind_of, ref_url
from crm.audit_sentences import Ref
from crm.extensions import db
from crm.jobs import KINDS, jobs_folder, may_cancel, request_cancel, start_job, visible_to
from crm.models import Job, User
from crm.models.job import FINISHED, JOB_STATUSES

PAGE_SIZE = 50
LARGEST_ID = 2**31 - 1  # an id past any row: 404 without asking the database
STATUS_LABELS = {"queued": "Waiting", "running": "Running", "done": "Done",
                 "failed": "Failed", "cancelled": "Cancelled"}
STATUS_BADGES = {"queued": "secondary", "running": "primary", "done": "success",
                 "failed": "danger", "cancelled": "warning"}


def job_page_url(job_id: int) -> str:
    """The current user's own address of a job's page (where starting a job lands)."""
    return url_for(f"jobs_{current_user.role}.job_view", id=job_id)


def job_file_url(job_id: int) -> str:
    """The current user's own address of a job's result file."""
    return url_for(f"jobs_{current_user.role}.file_view", id=job_id)


def _count_labels(kind: str) -> tuple[str, str]:
    """How a job's page words its counts: ("sent", "skipped") for statement e-mails."""
    spec = KINDS.get(kind)
    return (spec.changed_label, spec.skipped_label) if spec else ("changed", "skipped")


def kind_label(kind: str) -> str:
    spec = KINDS.get(kind)
    return spec.label if spec is not None else kind


class JobsView(RolePage):
    """Every staff role has the page; the rows are what ``visible_to`` allows."""

    status_labels = STATUS_LABELS
    status_badges = STATUS_BADGES

    @property
    def can_run_jobs(self) -> bool:
        return self.can("run_jobs")

    def _job(self, job_id: int) -> Job:
        """The job, if the signed-in person may see it; otherwise 404."""
        if not 0 < job_id <= LARGEST_ID:
            abort(404)
        job = db.session.scalar(select(Job).where(Job.id == job_id, visible_to(current_user)))
        if job is None:
            abort(404)
        return job

    def reference_url(self, reference) -> str | None:
        """A skipped item's reference ("C-000123") as a link to the record, when it is one
        and the role has its screen; anything else stays text."""
        model = kind_of(str(reference))
        return ref_url(self.role, Ref(str(reference), model)) if model else None

    def may_cancel(self, job: Job) -> bool:
        return may_cancel(job, current_user)

    @staticmethod
    def result_file(job: Job) -> Path | None:
        """The job's result file when it is still there (and inside the jobs folder)."""
        if not job.result_path:
            return None
        root = jobs_folder(current_app.config).resolve()
        path = (root / job.result_path).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            return None
        return path

    def kinds(self) -> list[tuple[str, str]]:
        """The kinds a person may filter by: a coordinator is not offered the money ones."""
        shown = [(name, spec.label) for name, spec in KINDS.items()
                 if self.can("see_money") or not spec.money]
        return sorted(shown, key=lambda pair: pair[1])

    @expose("/")
    def index(self):
        kinds = dict(self.kinds())
        kind = request.args.get("kind") or None
        status = request.args.get("status") or None
        page = request.args.get("page", 0, type=int)
        if (kind is not None and kind not in kinds) or (
                status is not None and status not in JOB_STATUSES):
            flash("That filter is not one the list offers; showing every job.", "error")
            return redirect(url_for(".index"))
        page = max(0, min(page, 10_000))
        query = (select(Job, User).outerjoin(User, User.id == Job.user_id)
                 .where(visible_to(current_user))
                 .order_by(Job.created_at.desc(), Job.id.desc())
                 .limit(PAGE_SIZE + 1).offset(page * PAGE_SIZE))
        if kind is not None:
            query = query.where(Job.kind == kind)
        if status is not None:
            query = query.where(Job.status == status)
        rows = db.session.execute(query).all()
        return self.render(
            "admin/jobs/index.html",
            rows=rows[:PAGE_SIZE], more=len(rows) > PAGE_SIZE, page=page,
            kind=kind, status=status, kinds=kinds, statuses=STATUS_LABELS,
            filtered=kind is not None or status is not None,
        )

    @expose("/<int:id>/")
    def job_view(self, id: int):
        job = self._job(id)
        starter = db.session.get(User, job.user_id) if job.user_id is not None else None
        return self.render(
            "admin/jobs/job.html", job=job, starter=starter, kind=kind_label(job.kind),
            counts=_count_labels(job.kind),
            has_file=self.result_file(job) is not None,
            reasons=sorted((job.reasons or {}).items(), key=lambda pair: (-pair[1], pair[0])),
            skips=job.skips or [],
        )

    @expose("/<int:id>/progress")
    def progress_view(self, id: int):
        job = self._job(id)
        has_file = self.result_file(job) is not None
        response = jsonify(
            id=job.id, status=job.status, status_label=STATUS_LABELS.get(job.status, job.status),
            done=job.done, total=job.total, percent=job.percent, changed=job.changed,
            skipped=job.skipped, summary=job.summary, error=job.error,
            # The same numbers as the page writes them ("1,234"), for the script to show.
            text={name: formatting.number(value) if value is not None else ""
                  for name, value in (("done", job.done), ("total", job.total),
                                      ("changed", job.changed), ("skipped", job.skipped))},
            finished=job.status in FINISHED, cancel_requested=job.cancel_requested,
            started=formatting.moment(job.started_at),
            finished_at=formatting.moment(job.finished_at),
            result_url=url_for(".file_view", id=job.id) if has_file else None,
            result_name=job.result_name if has_file else None,
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    @expose("/<int:id>/file")
    def file_view(self, id: int):
        job = self._job(id)
        path = self.result_file(job)
        if path is None:
            abort(404)
        response = send_file(path, mimetype=job.result_type or "application/octet-stream",
                             as_attachment=True, download_name=job.result_name or path.name)
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    @expose("/<int:id>/cancel", methods=("POST",))
    def cancel_view(self, id: int):
        job = self._job(id)
        if job.finished:
            flash("This job had already finished; there was nothing to cancel.", "info")
        elif not self.may_cancel(job):
            flash("Only the person who started this job, an owner or an admin can cancel it.",
                  "error")
        else:
            request_cancel(db.session, job)
            db.session.commit()
            flash("Cancel asked: the job stops after the part it is working on; "
                  "what it has done so far stays done.", "success")
        return redirect(url_for(".job_view", id=id))

    @expose("/check-ledger", methods=("POST",))
    @require("run_jobs")
    def check_ledger_view(self):
        from crm.jobs.queue import enqueue

        job = start_job(db.session, kind="check_ledger", actor=current_user,
                        title="Check the ledger", enqueue=enqueue)
        db.session.commit()
        return redirect(job_page_url(job.id))
