"""Imports as jobs: ``import_customers``, ``import_contacts`` and ``import_work_addresses``,
each run either as a dry run (``params["dry_run"]``: every row checked, nothing written) or
for real. The row logic is ``crm.actions.imports``; this module feeds it a chunk of rows at
a time and keeps the files.

- The upload lives in ``<CRM_JOBS_DIR>/uploads/<token>/rows.csv`` (written by
  ``crm.actions.imports.stage``); a chunk reads ``CHUNK`` rows from the byte offset the last
  chunk stopped at (``job.state["offset"]``), so a 100,000-row file is read once, a chunk at
  a time, and never held whole.
- ``job.cursor`` is the number of the last row done (the header is row 1).
- Two files grow in the job's folder: ``report.csv`` (row, outcome, reason, customer) and
  ``refused.csv`` (the refused rows as they were, with their row number and the reason).
  Their sizes are recorded in ``job.state`` with each chunk's commit, and each chunk first
  cuts them back to those sizes: what a chunk that crashed had written vanishes with its
  database work, so a resumed run writes every row once.
- One audit event per chunk (the job, the rows it covered and the counts; never a value of
  a row).
"""

import csv
import json
import os
import re
import secrets
from collections import Counter
from pathlib import Path

from sqlalchemy.orm import Session

from crm.actions import ActionError
from crm.actions.imports import (
    DEFAULT_MAX_ROWS,
    REPORT_HEADER,
    STAGED,
    TARGETS,
    Importer,
    check_mapping,
    guess_mapping,
    read_header,
    read_rows,
    refused_header,
    stage,
)
from crm.jobs import Chunk, Context, Kind, jobs_folder, register, set_result, start_job
from crm.models import Job, User
from crm.models.audit import record

CHUNK = 1_000
REPORT = "report.csv"
REFUSED = "refused.csv"
OWNER = "owner.json"  # who uploaded it and what it holds: only they see it on the screens
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")


def kind_name(target: str) -> str:
    return f"import_{target}"


def uploads_folder(config: dict) -> Path:
    return jobs_folder(config) / "uploads"


def upload_folder(config: dict, token: str) -> Path:
    """The folder of one upload; ValueError for a token that is not one of ours."""
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        raise ValueError("not an upload token")
    return uploads_folder(config) / token


def start_import(session: Session, *, source: Path, target: str, actor: User | None,
                 config: dict, mapping: dict | None = None, dry_run: bool = False,
                 filename: str | None = None, enqueue=None) -> Job:
    """Stage ``source`` (a CSV or XLSX file) as an upload and start its import job in the
    caller's transaction, with ``mapping`` ({field: header}; guessed from the headers when
    None): what the screens do, for scripts, the CLI and the benchmark. Refuses a bad file
    or mapping with ``ActionError``; run the job with ``crm.jobs.runner.run_job``."""
    token = secrets.token_urlsafe(18)
    folder = upload_folder(config, token)
    staged = stage(source, folder, filename=filename or source.name,
                   max_rows=int(config.get("CRM_IMPORT_MAX_ROWS") or DEFAULT_MAX_ROWS))
    clean = check_mapping(target, staged.headers,
                          guess_mapping(target, staged.headers) if mapping is None else mapping)
    (folder / OWNER).write_text(json.dumps({"user_id": actor.id if actor else None,
                                            "target": target}))
    return start_staged(session, actor=actor, token=token, target=target, staged=staged,
                        mapping=clean, dry_run=dry_run, enqueue=enqueue)


def start_staged(session: Session, *, actor: User | None, token: str, target: str, staged,
                 mapping: dict, dry_run: bool, enqueue=None) -> Job:
    """Start the check (``dry_run``) or the import of an upload already staged under
    ``token`` with a checked ``mapping``: the one way the screens, the CLI and the bench
    record an import job."""
    what = TARGETS[target].label.lower()
    title = (f"Check an import of {what} from {staged.filename}" if dry_run
             else f"Import {what} from {staged.filename}")
    return start_job(session, kind=kind_name(target), actor=actor, title=title,
                     total=staged.rows, enqueue=enqueue,
                     params={"target": target, "upload": token, "mapping": mapping,
                             "dry_run": dry_run, "filename": staged.filename})


def _resume(path: Path, size: int | None, header: list[str]) -> None:
    """Cut ``path`` back to what the last committed chunk left (or start it with its
    header)."""
    if size is None or not path.exists():
        with open(path, "w", encoding="utf-8", newline="") as out:
            csv.writer(out).writerow(header)
        return
    with open(path, "r+b") as out:
        out.truncate(size)


def _append(path: Path, rows: list[list]) -> int:
    with open(path, "a", encoding="utf-8", newline="") as out:
        if rows:
            csv.writer(out).writerows(rows)
        out.flush()
        os.fsync(out.fileno())
    return path.stat().st_size


def _grouped(reason: str) -> str:
    """A reason as the job's counts group it: without the customer's reference."""
    reason = re.sub(r"^C-\d+ was merged into \S+: use that reference\.$",
                    "The customer was merged into another: use that one's reference.", reason)
    return re.sub(r"^C-\d+ ", "The customer ", reason)


def run_chunk(session: Session, job: Job, context: Context) -> Chunk:
    params = job.params or {}
    target = params.get("target")
    if target not in TARGETS:
        raise ActionError("This import does not say what it imports.")
    dry_run = bool(params.get("dry_run"))
    try:
        source = upload_folder(context.config, params.get("upload")) / STAGED
    except ValueError:
        raise ActionError("This import names no uploaded file.") from None
    if not source.exists():
        raise ActionError("The uploaded file is no longer there (uploads are kept a few "
                          "days): upload it again.")
    headers, start = read_header(source)
    state = dict(job.state or {})
    report, refused = context.path(REPORT), context.path(REFUSED)
    _resume(report, state.get("report_size"), REPORT_HEADER)
    _resume(refused, state.get("refused_size"), refused_header(headers))
    rows = read_rows(source, offset=state.get("offset") or start,
                     first_number=max(job.cursor, 1) + 1, limit=CHUNK)
    if not rows:
        return Chunk(cursor=job.cursor, last=True)
    importer = Importer(session, target, headers, params.get("mapping") or {},
                        region=context.config.get("CRM_DEFAULT_REGION") or "GB",
                        actor=context.actor, write=not dry_run)
    outcomes = importer.run(rows)
    by_number = {row.number: row for row in rows}
    counts = Counter(o.outcome for o in outcomes)
    state["report_size"] = _append(report, [
        [o.row, o.outcome, o.reason, o.reference, o.label] for o in outcomes
        if o.outcome != "blank"])
    state["refused_size"] = _append(refused, [
        [*by_number[o.row].values, *[""] * (len(headers) - len(by_number[o.row].values)),
         o.row, o.reason]
        for o in outcomes if o.outcome == "refused"])
    state["offset"] = rows[-1].end
    for outcome in ("created", "updated", "unchanged", "refused", "blank"):
        state[outcome] = state.get(outcome, 0) + counts.get(outcome, 0)
    job.state = state
    if not dry_run and (counts["created"] or counts["updated"] or counts["refused"]):
        record(session, actor=context.actor, verb=kind_name(target), subject_type="Job",
               subject_id=job.id,
               details={"rows": [rows[0].number, rows[-1].number],
                        "created": counts["created"], "updated": counts["updated"],
                        "refused": counts["refused"]})
    session.flush()
    refusals = [o for o in outcomes if o.outcome == "refused"]
    return Chunk(
        cursor=rows[-1].number,
        processed=len(rows),
        changed=counts["created"] + counts["updated"],
        skips=[(f"row {o.row}", o.reason) for o in refusals],
        reasons=dict(Counter(_grouped(o.reason) for o in refusals)),
        last=len(rows) < CHUNK or rows[-1].end >= source.stat().st_size,
    )


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def finish(session: Session, job: Job, context: Context) -> str:
    params = job.params or {}
    state = job.state or {}
    spec = TARGETS[params["target"]]
    stem = Path(params.get("filename") or "import").stem[:60] or "import"
    report, refused = context.path(REPORT), context.path(REFUSED)
    for path in (report, refused):
        if not path.exists():
            path.write_text("")
    created, updated = state.get("created", 0), state.get("updated", 0)
    unchanged, refusals = state.get("unchanged", 0), state.get("refused", 0)
    if params.get("dry_run"):
        set_result(job, context, report, name=f"check-{stem}.csv", mimetype="text/csv")
        return (f"Checked {_plural(job.done, 'row')}: {created:,} would be created, "
                f"{updated:,} updated, {unchanged:,} unchanged, {refusals:,} refused. "
                "Nothing was changed.")
    if refusals:
        set_result(job, context, refused, name=f"refused-rows-{stem}.csv", mimetype="text/csv")
    else:
        set_result(job, context, report, name=f"import-report-{stem}.csv", mimetype="text/csv")
    text = (f"Imported {spec.label.lower()}: {created:,} created, {updated:,} updated, "
            f"{unchanged:,} unchanged")
    if refusals:
        return (f"{text}, {refusals:,} refused. Every other row went in; the refused rows "
                "are in the file below, each with its row number and the reason.")
    return f"{text}. Every row went in."


KINDS = {
    target: register(Kind(
        name=kind_name(target), label=f"Import {spec.label.lower()}", run_chunk=run_chunk,
        finish=finish, capability="import_records", chunk_size=CHUNK,
        changed_label="created or updated", skipped_label="refused",
    ))
    for target, spec in TARGETS.items()
}
