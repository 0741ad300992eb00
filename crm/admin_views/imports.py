"""Customers → Import: bring customers, contacts or work addresses in from a spreadsheet.

1. Upload (``index``, ``upload_view``): the file and what it holds. It is read once, as a
   stream, into the upload's folder (``crm.actions.imports.stage``); a file that is not a
   spreadsheet gets a sentence and nothing is kept.
2. Match the columns (``map_view``): the file's columns with their first values beside a
   select per field, guessed from the headers; a saved mapping can be applied, and this one
   saved under a name.
3. Check (``check_view``): a dry-run job goes through every row and says, per row, what the
   import would do and why a row would be refused; the first 200 rows are listed.
4. Import (``run_view``): the same rows and mapping as a job; its page follows it and offers
   the refused rows as a file.

Every role with ``import_records`` has the page (coordinators too: nothing here touches
money). An upload and its checks are only ever shown to the person who uploaded it; anyone
else gets 404. Uploads up to ``CRM_IMPORT_MAX_BYTES`` (50 MB) are taken here, however small
the rest of the panel's limit.
"""

import csv
import json
import re
import secrets
import shutil
import time
from itertools import islice
from pathlib import Path

from flask import abort, current_app, flash, redirect, request, url_for
from flask_admin import expose
from flask_login import current_user
from werkzeug.exceptions import RequestEntityTooLarge

from crm.actions import ActionError
from crm.actions.imports import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ROWS,
    TARGETS,
    apply_saved,
    check_mapping,
    guess_mapping,
    needed,
    offered,
    save_mapping,
    saved_mappings,
    stage,
    staged_info,
    target_of,
)
from crm.admin_views.access import RolePage
from crm.admin_views.adapters import record_id, run_action
from crm.admin_views.jobs import job_file_url, job_page_url
from crm.extensions import db
from crm.jobs import job_folder
from crm.jobs.imports import OWNER, REPORT, start_staged, upload_folder, uploads_folder
from crm.models import ImportMapping, Job
from crm.validation import without_control_characters

LISTED = 200  # rows of the check listed on the page; the file has them all
SAMPLES = 5  # values shown beside each of the file's columns: its first five rows

_UPLOAD_PATH = re.compile(r"^/admin/[a-z]+/imports/upload/?$")


def max_bytes(config) -> int:
    return int(config.get("CRM_IMPORT_MAX_BYTES") or DEFAULT_MAX_BYTES)


def max_rows(config) -> int:
    return int(config.get("CRM_IMPORT_MAX_ROWS") or DEFAULT_MAX_ROWS)


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):,.0f} MB"


def _import_limit():
    """Before every other hook (the CSRF check reads the form, so the body): the upload of
    an import may be up to ``CRM_IMPORT_MAX_BYTES``; past it, back to the page with the
    sentence, before a byte of it is read."""
    if request.method != "POST" or not _UPLOAD_PATH.match(request.path):
        return None
    limit = max_bytes(current_app.config)
    if request.content_length is not None and request.content_length > limit:
        flash(f"That file is larger than {_megabytes(limit)}, the most an import takes: "
              "split it into smaller files.", "error")
        return redirect(request.path.rsplit("/upload", 1)[0] + "/", code=303)
    request.max_content_length = limit
    return None


def _clean_name(name: str | None) -> str:
    name = without_control_characters(Path((name or "").replace("\\", "/")).name)
    return " ".join(name.split())[:200] or "upload"


class ImportsView(RolePage):
    capability = "import_records"

    def create_blueprint(self, admin):
        app = admin.app
        if app is not None and not app.extensions.get("crm_import_limit"):
            app.extensions["crm_import_limit"] = True
            app.before_request_funcs.setdefault(None, []).insert(0, _import_limit)
        return super().create_blueprint(admin)

    # --- 1. upload -------------------------------------------------------------------------
    @expose("/")
    def index(self):
        return self._index()

    def _index(self, *, error: str | None = None, target: str | None = None,
               status: int = 200):
        config = current_app.config
        return self.render("admin/imports/index.html", targets=TARGETS, error=error,
                           chosen=target or request.args.get("target") or "customers",
                           limit=_megabytes(max_bytes(config)),
                           rows_limit=f"{max_rows(config):,}",
                           fields={name: offered(name) for name in TARGETS}), status

    @expose("/upload/", methods=("POST",))
    def upload_view(self):
        config = current_app.config
        target = request.form.get("target")
        try:
            spec = target_of(target)
        except ActionError as exc:
            return self._index(error=str(exc), status=400)
        try:
            upload = request.files.get("file")
        except RequestEntityTooLarge:
            return self._index(error=f"That file is larger than "
                               f"{_megabytes(max_bytes(config))}, the most an import takes.",
                               target=target, status=413)
        if upload is None or not upload.filename:
            return self._index(error="Choose the file to import.", target=target, status=400)
        _remove_old_uploads(config)
        token = secrets.token_urlsafe(18)
        folder = upload_folder(config, token)
        folder.mkdir(parents=True)
        raw = folder / "upload"
        upload.save(raw)
        name = _clean_name(upload.filename)
        try:
            stage(raw, folder, filename=name, max_rows=max_rows(config))
        except ActionError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            return self._index(error=str(exc), target=target, status=400)
        finally:
            raw.unlink(missing_ok=True)
        (folder / OWNER).write_text(json.dumps({"user_id": current_user.id,
                                                "target": spec.name}))
        return redirect(self.get_url(".map_view", token=token), code=303)

    # --- 2. the mapping ----------------------------------------------------------------------
    def _upload(self, token: str):
        """(folder, what the upload holds, its target) of the signed-in person's own upload;
        404 for anything else."""
        try:
            folder = upload_folder(current_app.config, token)
            owner = json.loads((folder / OWNER).read_text())
        except (ValueError, OSError):
            abort(404)
        staged = staged_info(folder)
        if staged is None or owner.get("user_id") != current_user.id \
                or owner.get("target") not in TARGETS:
            abort(404)
        return folder, staged, TARGETS[owner["target"]]

    @expose("/map/<token>/", methods=("GET", "POST"))
    def map_view(self, token: str):
        folder, staged, spec = self._upload(token)
        if request.method == "POST":
            return self._map_post(token, staged, spec)
        mapping = guess_mapping(spec.name, staged.headers)
        chosen = request.args.get("mapping", type=record_id)
        if chosen is not None:
            saved = db.session.get(ImportMapping, chosen)
            if saved is None or saved.target != spec.name:
                flash("That saved mapping is not there any more.", "error")
            else:
                mapping, missing = apply_saved(saved, staged.headers)
                if missing:
                    flash(f"Applied “{saved.name}”; this file has no column for "
                          f"{', '.join(missing)}: choose them below.", "warning")
                else:
                    flash(f"Applied “{saved.name}”.", "info")
        return self._map_page(token, staged, spec, mapping, chosen=chosen)

    def _map_page(self, token, staged, spec, mapping, *, error=None, name="", chosen=None,
                  status=200):
        samples = {header: [row[i] for row in staged.preview[:SAMPLES] if i < len(row)]
                   for i, header in enumerate(staged.headers)}
        return self.render("admin/imports/map.html", token=token, staged=staged, spec=spec,
                           fields=offered(spec.name), mapping=mapping, samples=samples,
                           needed=needed(spec.name),
                           saved=saved_mappings(db.session, spec.name), error=error,
                           name=name, chosen=chosen), status

    def _posted_mapping(self, spec) -> dict[str, str]:
        return {f.name: request.form.get(f"field-{f.name}", "")[:200]
                for f in offered(spec.name)} | {
            key[6:]: value[:200] for key, value in request.form.items()
            if key.startswith("field-") and key[6:] not in {f.name for f in offered(spec.name)}
        }

    def _map_post(self, token, staged, spec):
        mapping = self._posted_mapping(spec)
        shown = {k: v for k, v in mapping.items() if v}
        if request.form.get("do") == "save":
            name = request.form.get("name", "")

            def save(session, *, actor):
                return save_mapping(session, target=spec.name, name=name,
                                    columns=check_mapping(spec.name, staged.headers, mapping),
                                    actor=actor)

            result, error = run_action(save)
            if error:
                return self._map_page(token, staged, spec, shown, error=error, name=name,
                                      status=400)
            saved, new = result
            flash(f"Saved the mapping “{saved.name}”." if new
                  else f"Replaced the saved mapping “{saved.name}”.", "success")
            return redirect(self.get_url(".map_view", token=token, mapping=saved.id), code=303)
        try:
            clean = check_mapping(spec.name, staged.headers, mapping)
        except ActionError as exc:
            return self._map_page(token, staged, spec, shown, error=str(exc), status=400)
        job, error = run_action(self._start, token=token, spec=spec, staged=staged,
                                mapping=clean, dry_run=True)
        if error:
            return self._map_page(token, staged, spec, shown, error=error, status=400)
        return redirect(self.get_url(".check_view", token=token, job_id=job.id), code=303)

    @staticmethod
    def _start(session, *, actor, token, spec, staged, mapping, dry_run):
        from crm.jobs.queue import enqueue

        return start_staged(session, actor=actor, token=token, target=spec.name,
                            staged=staged, mapping=mapping, dry_run=dry_run, enqueue=enqueue)

    # --- 3. the check ------------------------------------------------------------------------
    def _dry_run(self, token: str, job_id: int) -> Job:
        job = db.session.get(Job, job_id)
        if job is None or job.user_id != current_user.id or not (job.params or {}).get(
                "dry_run") or (job.params or {}).get("upload") != token:
            abort(404)
        return job

    @expose("/check/<token>/<int:job_id>/")
    def check_view(self, token: str, job_id: int):
        folder, staged, spec = self._upload(token)
        job = self._dry_run(token, job_id)
        rows, refused = [], []
        if job.status == "done":
            rows, refused = _report_rows(job_folder(current_app.config, job.id) / REPORT)
        state = job.state or {}
        return self.render("admin/imports/check.html", token=token, staged=staged, spec=spec,
                           job=job, rows=rows, refused=refused, listed=LISTED,
                           counts={k: state.get(k, 0) for k in ("created", "updated",
                                                                "unchanged", "refused")},
                           file_url=_job_file_url(job), mapping=job.params.get("mapping"),
                           fields={f.name: f.label for f in offered(spec.name)})

    # --- 4. the import -----------------------------------------------------------------------
    @expose("/run/<token>/<int:job_id>/", methods=("POST",))
    def run_view(self, token: str, job_id: int):
        folder, staged, spec = self._upload(token)
        checked = self._dry_run(token, job_id)
        if checked.status != "done":
            flash("Wait for the check to finish before importing.", "warning")
            return redirect(self.get_url(".check_view", token=token, job_id=job_id), code=303)
        job, error = run_action(self._start, token=token, spec=spec, staged=staged,
                                mapping=checked.params.get("mapping") or {}, dry_run=False)
        if error:
            flash(error, "error")
            return redirect(self.get_url(".check_view", token=token, job_id=job_id), code=303)
        return redirect(job_page_url(job.id), code=303)


def _report_rows(report: Path) -> tuple[list[list[str]], list[list[str]]]:
    """(the first ``LISTED`` rows of a check's report, its first ``LISTED`` refused rows),
    read as a stream: the report of 100,000 rows is never loaded whole."""
    rows: list[list[str]] = []
    refused: list[list[str]] = []
    if not report.exists():
        return rows, refused
    with open(report, encoding="utf-8", newline="") as handle:
        for row in islice(csv.reader(handle), 1, None):
            row = (row + [""] * 5)[:5]
            if len(rows) < LISTED:
                rows.append(row)
            if row[1] == "refused":
                refused.append(row)
                if len(refused) >= LISTED:
                    break
    return rows, refused


def _job_file_url(job: Job) -> str | None:
    return job_file_url(job.id) if job.result_path else None


def _remove_old_uploads(config) -> None:
    """Uploads are kept ``CRM_JOB_FILES_DAYS`` (the jobs that read them keep theirs as
    long); older ones go when someone uploads again."""
    root = uploads_folder(config)
    if not root.exists():
        return
    before = time.time() - float(config.get("CRM_JOB_FILES_DAYS", 7)) * 86400
    for folder in root.iterdir():
        try:
            if folder.is_dir() and folder.stat().st_mtime < before:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            continue


def import_url(role: str, target: str | None = None) -> str:
    """The import page of ``role`` (for links from other screens)."""
    return url_for(f"imports_{role}.index", target=target)
