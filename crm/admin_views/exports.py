"""Export → CSV and Export → XLSX of every list, for the roles that have the list and with the
columns that role's list exports (``column_export_list``, already stripped of what the role
may not see by ``spec.role_views``).

- **At once**: up to ``CRM_EXPORT_THRESHOLD`` matching rows (10,000) the file is made inside
  the request: the CSV is streamed row by row from the list's own query (eager-loaded, read
  1,000 rows at a time), the XLSX is written by openpyxl's write-only workbook into a
  temporary file, which is then sent. Neither holds the rows or the sheet in memory.
- **As a job**: past it the request only asks to confirm (a POST with its CSRF token: a link
  alone never starts work) and starts an ``export_csv`` or ``export_xlsx`` job, and the user
  lands on the job's page, where the file is downloaded when it is ready.

Every text cell goes through ``neutralise_formula`` (one function for both formats), so text
a customer typed can never run as a spreadsheet formula. In the XLSX, numbers and dates are
typed cells: an amount is a number cell formatted with two decimals (written from the
Decimal; spreadsheets keep numbers as binary floating point, which holds every amount of
``Numeric(12, 2)`` exactly to the cent), a date a date cell, a date and time a date-time cell.

A job's parameters are the list's endpoint (which fixes the role and so the columns), its
sort, search and filters, and the column names: no personal data. The search words and
filter values are dropped from the job once its rows are chosen (its first chunk).

How a job works through a million rows (docs/exports.md):

1. The first chunk writes the ids of every matching row, in the export's order, to
   ``ids.bin`` in the job's folder (8 bytes an id; under a temporary name, then renamed):
   the export covers the rows that matched when it started, in the order the list showed
   them, whatever the sort. The job's cursor is a position in that file.
2. Each chunk (``CHUNK`` rows) loads its slice of ids with the list's eager loads.
   CSV: the file is cut back to the size recorded by the last committed chunk
   (``job.state["bytes"]``) and the chunk's rows appended; the new size commits with the
   chunk, so a chunk that is retried after a crash writes its rows once. XLSX: the chunk's
   typed cells go to a part file (``part-<position>.jsonl``, temporary name then rename);
   ``finish`` builds the workbook from the parts in order, renames it into place, and only
   then removes the parts (a finish that is run again after the rename keeps the file).
3. A row deleted or merged away since the job started is left out and counted as skipped.
"""

import csv
import json
import os
import re
import tempfile
import time
import uuid
from array import array
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from flask import (
    Response,
    current_app,
    flash,
    redirect,
    request,
    send_file,
    stream_with_context,
)
from flask_admin import expose
from flask_admin.helpers import get_redirect_target
from flask_login import current_user
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ERROR_CODES, ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from werkzeug.utils import secure_filename

from crm.actions import ActionError
from crm.admin_views.formatters import is_money_column
from crm.extensions import db
from crm.jobs import (
    Chunk,
    Context,
    Kind,
    Superseded,
    chunk_size,
    register,
    set_result,
    start_job,
)
from crm.models import Job
from crm.models.base import utcnow
from crm.permissions import GATES

XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MIMETYPES = {"csv": "text/csv", "xlsx": XLSX_MIMETYPE}
NAMES = {"csv": "CSV", "xlsx": "Excel (XLSX)"}
# Up to this many rows an export is made inside the request (a few seconds at most);
# past it, it is a background job (CRM_EXPORT_THRESHOLD).
DEFAULT_EXPORT_THRESHOLD = 10_000
CHUNK = 5_000  # rows a job's chunk writes
STREAM_ROWS = 1_000  # rows read at a time by an export made inside the request
BEAT_SECONDS = 20  # while a workbook is built, the job says it is alive this often
ID = array("q")  # the snapshot's format: signed 8-byte ids, machine order
MONEY_FORMAT = "#,##0.00"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
XLSX_TEXT_LIMIT = 32_767  # what one spreadsheet cell holds
SHEET_TITLE_BAD = re.compile(r"[\[\]:*?/\\]")

# What makes a spreadsheet read a cell as a formula: = + - @, and their full-width forms,
# which spreadsheets fold to the same characters.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20")
# Skipped by spreadsheets before the first character that counts.
LEADING_BLANKS = " \t\r\n\u00a0\u3000"


def neutralise_formula(value):
    """A cell that a spreadsheet would run as a formula (= + - @ or their full-width forms,
    also after leading spaces or line breaks, and any cell starting with a tab or a line
    break) is made plain text with a leading apostrophe. The one rule of both CSV and XLSX."""
    if not isinstance(value, str) or not value:
        return value
    if value[0] in "\t\r\n" or value.lstrip(LEADING_BLANKS).startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def export_threshold(config) -> int:
    return int(config.get("CRM_EXPORT_THRESHOLD") or DEFAULT_EXPORT_THRESHOLD)


# --- cells ------------------------------------------------------------------------------------
def xlsx_value(value):
    """A value as an XLSX cell holds it: numbers, dates and yes/no typed; anything else text,
    without the control characters a workbook cannot hold, formula-safe, at most what a cell
    takes."""
    if value is None or value == "":
        return None
    if isinstance(value, bool | int | Decimal | float):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value
    if isinstance(value, date):
        return value
    text = ILLEGAL_CHARACTERS_RE.sub("", str(value))
    return neutralise_formula(text)[:XLSX_TEXT_LIMIT] or None


def _typed(view, model, name):
    """The export value of column ``name`` before it is turned into text: the column's
    export formatter if it has one, else the attribute itself (with its choice label)."""
    return view._get_list_value(None, model, name, view.column_formatters_export, {})


def _encode(value):
    if isinstance(value, Decimal):
        return {"n": str(value)}
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    if isinstance(value, date):
        return {"d": value.isoformat()}
    raise TypeError(f"cannot keep {type(value).__name__} in an export part")


def _decode(obj: dict):
    if "n" in obj:
        return Decimal(obj["n"])
    if "t" in obj:
        return datetime.fromisoformat(obj["t"])
    if "d" in obj:
        return date.fromisoformat(obj["d"])
    return obj


class _Echo:
    def write(self, value):
        return value


def csv_writer():
    """A writer whose ``writerow`` returns the line (Flask-Admin's streamed CSV dialect)."""
    return csv.writer(_Echo())


def sheet_title(name: str) -> str:
    return SHEET_TITLE_BAD.sub(" ", name or "Export")[:31].strip() or "Export"


class XlsxSheet:
    """A write-only workbook of one sheet (openpyxl ``Workbook(write_only=True)``): each
    row is written out as it is appended, never kept; the header is bold and stays in view."""

    def __init__(self, title: str, header: list[str]):
        self.workbook = Workbook(write_only=True)
        self.sheet = self.workbook.create_sheet(title=sheet_title(title))
        self._cells: dict[tuple[int, str], WriteOnlyCell] = {}
        self.sheet.freeze_panes = "A2"
        for index, label in enumerate(header, start=1):
            width = max(10, min(40, len(label) + 4))
            self.sheet.column_dimensions[get_column_letter(index)].width = width
        bold = Font(bold=True)
        cells = []
        for label in header:
            cell = WriteOnlyCell(self.sheet, value=xlsx_value(label))
            cell.font = bold
            cells.append(cell)
        self.sheet.append(cells)

    def append(self, values: list) -> None:
        row = []
        for index, value in enumerate(values):
            if isinstance(value, Decimal):
                row.append(self._styled(index, MONEY_FORMAT, value))
            elif isinstance(value, datetime):
                row.append(self._styled(index, DATETIME_FORMAT, value))
            elif isinstance(value, str) and value in ERROR_CODES:
                cell = WriteOnlyCell(self.sheet, value=value)
                cell.data_type = "s"  # text that looks like "#N/A", not an error value
                row.append(cell)
            else:
                row.append(value)
        self.sheet.append(row)

    def _styled(self, index: int, number_format: str, value):
        """The column's formatted cell, made once and given each row's value (a row is
        written out before the next is appended; setting a format costs more than a cell)."""
        cell = self._cells.get((index, number_format))
        if cell is None:
            cell = self._cells[(index, number_format)] = WriteOnlyCell(self.sheet)
            cell.number_format = number_format
        cell.value = value
        return cell

    def save(self, target) -> None:
        self.workbook.save(target)


# --- what a list exports ----------------------------------------------------------------------
class ExportMixin:
    """Mixed into ``CrmModelView`` (before ``PagedList`` and Flask-Admin's ``ModelView``)."""

    export_types = ["csv", "xlsx"]
    export_labels = {"csv": "Export CSV", "xlsx": "Export Excel (XLSX)"}  # the Export menu

    def export_args(self) -> dict:
        """The request's sort, search and filters, as a job keeps them (JSON)."""
        view_args = self._get_list_extra_args()
        sort = self._get_column_by_idx(view_args.sort)
        return {
            "sort": sort[0] if sort else None,
            "desc": 1 if view_args.sort_desc else 0,
            "search": view_args.search or None,
            "filters": [[idx, name, value] for idx, name, value in view_args.filters or ()],
        }

    def export_query(self, args: dict):
        """The list's query in the list's order (what the page shows, every page of it)."""
        filters = [tuple(item) for item in args.get("filters") or ()]
        _, query = self._list_query(args.get("sort"), args.get("desc"), args.get("search"),
                                    filters)
        return query

    def export_count_over(self, args: dict, limit: int) -> bool:
        """Whether more than ``limit`` rows match (counting no further than that)."""
        filters = [tuple(item) for item in args.get("filters") or ()]
        unsorted, _ = self._list_query(None, None, args.get("search"), filters)
        inner = unsorted.with_entities(self.model.id).order_by(None).limit(limit + 1)
        count = db.session.execute(select(func.count()).select_from(inner.subquery())).scalar()
        return count > limit

    def export_columns(self, names: list[str] | None = None) -> list[tuple[str, str]]:
        """(name, label) of the columns this role's list exports (those of ``names`` only,
        when given: a job's columns, which can only ever be fewer)."""
        columns = list(self._export_columns)
        if names is not None:
            wanted = set(names)
            columns = [column for column in columns if column[0] in wanted]
        return columns

    def exports_money(self, columns) -> bool:
        """A money list, or a money column among ``columns``: such a job is never shown to a
        role without money (which could not have exported those columns anyway)."""
        model = self.model.__name__
        return self.capability == "see_money" or any(
            GATES.get(f"{model}.{name}") == "see_money" or is_money_column(self, name)
            for name, _ in columns)

    def get_export_value(self, model, name):
        """A CSV cell: the export formatters' text, formula-safe; numbers and dates typed by
        us (``-12.50``) are left as they are."""
        value = super().get_export_value(model, name)
        if isinstance(getattr(model, name, None), Decimal | int | date):
            return value
        return neutralise_formula(value)

    # A million rows of thirty columns is thirty million cells: Flask-Admin's general path
    # (formatter look-ups, choices, a dotted-name getattr) costs about 20 µs a cell. A plain
    # attribute with no export formatter and no choices is read directly, with the type
    # formatter of its type found once; the result is the same text (a test holds them equal).
    def _plain_columns(self, columns) -> tuple[bool, ...]:
        key = tuple(name for name, _ in columns)
        cache = self.__dict__.setdefault("_export_plain", {})
        if key not in cache:
            formatters = self.column_formatters_export or {}
            choices = self._column_choices_map or {}
            cache[key] = tuple(not (name in formatters or choices.get(name) or "." in name)
                               for name in key)
        return cache[key]

    def _type_formatter(self, kind: type):
        cache = self.__dict__.setdefault("_export_type_formatters", {})
        if kind not in cache:
            cache[kind] = next((formatter for typeobj, formatter
                                in (self.column_type_formatters_export or {}).items()
                                if issubclass(kind, typeobj)), None)
        return cache[kind]

    def csv_cells(self, model, columns) -> list[str]:
        """A row of the CSV: what ``get_export_value`` gives, as text."""
        cells = []
        for (name, _), plain in zip(columns, self._plain_columns(columns), strict=True):
            if not plain:
                cells.append(_text(self.get_export_value(model, name)))
                continue
            value = getattr(model, name, None)
            formatter = self._type_formatter(type(value))
            text = formatter(self, value, name) if formatter is not None else value
            if not isinstance(value, Decimal | int | date):
                text = neutralise_formula(text)
            cells.append(_text(text))
        return cells

    def xlsx_cells(self, model, columns) -> list:
        """A row of the XLSX: the values before they are made text (``xlsx_value``)."""
        return [xlsx_value(getattr(model, name, None) if plain else _typed(self, model, name))
                for (name, _), plain in zip(columns, self._plain_columns(columns), strict=True)]

    def export_file_name(self, fmt: str) -> str:
        return secure_filename(self.get_export_name(export_type=fmt))

    # --- the endpoint ---------------------------------------------------------------------
    @expose("/export/<export_type>/", methods=("GET", "POST"))
    def export(self, export_type):
        return_url = get_redirect_target() or self.get_url(".index_view")
        if not self.can_export or export_type not in self.export_types:
            flash("This list cannot be exported in that format.", "error")
            return redirect(return_url)
        args = self.export_args()
        if self.export_count_over(args, export_threshold(current_app.config)):
            if request.method == "POST":
                return self._start_export_job(export_type, args)
            return self.render("admin/crm/export_job.html", fmt=export_type,
                               fmt_name=NAMES[export_type],
                               threshold=export_threshold(current_app.config),
                               narrowed=bool(args["search"] or args["filters"]),
                               list_url=self.get_url(".index_view", **request.args.to_dict()))
        query = self.export_query(args).options(*self.eager_options()).yield_per(STREAM_ROWS)
        columns = self.export_columns()
        if export_type == "xlsx":
            return self._xlsx_response(query, columns)
        return self._csv_response(query, columns)

    def _csv_response(self, query, columns):
        writer = csv_writer()

        def generate():
            yield writer.writerow([_text(label) for _, label in columns])
            for row in query:
                yield writer.writerow(self.csv_cells(row, columns))

        disposition = f"attachment;filename={self.export_file_name('csv')}"
        return Response(stream_with_context(generate()), mimetype="text/csv",
                        headers={"Content-Disposition": disposition})

    def _xlsx_response(self, query, columns):
        out = tempfile.TemporaryFile()
        sheet = XlsxSheet(self.name, [label for _, label in columns])
        for row in query:
            sheet.append(self.xlsx_cells(row, columns))
        sheet.save(out)
        out.seek(0)
        return send_file(out, mimetype=XLSX_MIMETYPE, as_attachment=True,
                         download_name=self.export_file_name("xlsx"), max_age=0)

    def _start_export_job(self, fmt: str, args: dict):
        from crm.admin_views.jobs import job_page_url
        from crm.jobs.queue import enqueue

        job = start_export(db.session, current_user, self.endpoint, fmt, args, enqueue=enqueue)
        db.session.commit()
        return redirect(job_page_url(job.id))


def _text(value) -> str:
    return "" if value is None else str(value)


# --- exports as jobs --------------------------------------------------------------------------
def list_view(endpoint: str):
    """The view instance behind ``endpoint`` (``customer_owner``) in this application."""
    for admin in current_app.extensions.get("admin", ()):
        for view in admin._views:
            if view.endpoint == endpoint and isinstance(view, ExportMixin):
                return view
    return None


def start_export(session: Session, user, endpoint: str, fmt: str, args: dict | None = None, *,
                 enqueue=None) -> Job:
    """Record an ``export_csv`` / ``export_xlsx`` job of the list ``endpoint`` (one role's
    instance, e.g. ``customer_owner``) for ``user``, with the list's ``args`` (``sort``:
    a column name, ``desc``, ``search``, ``filters``: [[index, name, value]], as
    ``ExportMixin.export_args`` reads them; none: the whole list in its default order).
    The caller commits; ``enqueue`` queues it after the commit. Needs an app context."""
    if fmt not in MIMETYPES:
        raise ActionError(f"Lists export as CSV or XLSX, not {fmt!r}.")
    view = list_view(endpoint)
    if view is None:
        raise ActionError(f"There is no list {endpoint!r} to export.")
    if user is None or user.role != view.role:
        raise ActionError("Only a user of the list's own role can export it.")
    args = dict(args or {})
    columns = view.export_columns()
    label = "CSV" if fmt == "csv" else "XLSX"
    narrowed = " (searched or filtered)" if args.get("search") or args.get("filters") else ""
    job = start_job(
        session, kind=f"export_{fmt}", actor=user,
        title=f"Export {view.name} to {label}{narrowed}",
        params={"endpoint": endpoint, "list": view.name, "format": fmt,
                "sort": args.get("sort"), "desc": 1 if args.get("desc") else 0,
                "search": args.get("search") or None, "filters": args.get("filters") or [],
                "columns": [name for name, _ in columns]},
        enqueue=enqueue,
    )
    job.money = view.exports_money(columns)
    session.flush()
    return job


def _job_view(job: Job, context: Context):
    """The list the job exports, checked again: the user who started it still has that
    role (a role changed since would otherwise export what the user may no longer see)."""
    view = list_view(job.params.get("endpoint", ""))
    if view is None:
        raise ActionError("The list this export was started from no longer exists.")
    actor = context.actor
    if actor is None or not actor.is_enabled or actor.role != view.role:
        raise ActionError("The user who started this export no longer has that list's role; "
                          "nothing more was exported.")
    return view, view.export_columns(job.params.get("columns") or [])


def _hold(session: Session, job: Job) -> None:
    """Lock the job's row for this chunk (PostgreSQL: ``FOR UPDATE``) and check nobody moved
    it on: a second consumer given the same job waits here, then finds the cursor moved and
    stops, before it writes a byte to the file the first one is appending to. (SQLite has
    no row locks; there the runner's cursor guard alone decides, see docs/exports.md.)"""
    cursor = session.scalar(select(Job.cursor).where(Job.id == job.id).with_for_update())
    if cursor != job.cursor:
        raise Superseded


def _start_afresh(folder: Path) -> None:
    """Nothing of an earlier attempt (or of an older job that had this id) is kept."""
    if folder.exists():
        for leftover in [*folder.glob("part-*.jsonl"), *folder.glob("export.*")]:
            leftover.unlink(missing_ok=True)


def _snapshot(session: Session, view, job: Job, path: Path) -> int:
    """Write the ids of every row to export, in the export's order; return how many."""
    args = job.params
    query = view.export_query(args).with_session(session).with_entities(view.model.id)
    temporary = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
    count = 0
    with open(temporary, "wb") as out:
        batch = array(ID.typecode)
        for (key,) in query.yield_per(10_000):
            batch.append(key)
            if len(batch) >= 10_000:
                batch.tofile(out)
                count += len(batch)
                batch = array(ID.typecode)
        batch.tofile(out)
        count += len(batch)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)
    # The rows are chosen: the search words and filter values are not kept any longer.
    job.params = {**job.params, "search": None, "filters": [],
                  "narrowed": bool(args.get("search") or args.get("filters"))}
    job.total = count
    return count


def _slice(path: Path, start: int, size: int) -> list[int]:
    ids = array(ID.typecode)
    with open(path, "rb") as source:
        source.seek(start * ids.itemsize)
        ids.frombytes(source.read(size * ids.itemsize))
    return ids.tolist()


def _rows(session: Session, view, ids: list[int]) -> list:
    """The rows of ``ids`` still on the list, in the order of ``ids``."""
    if not ids:
        return []
    found = (view.base_query().with_session(session).options(*view.eager_options())
             .filter(view.model.id.in_(ids)).all())
    by_id = {row.id: row for row in found}
    return [by_id[key] for key in ids if key in by_id]


def _export_chunk(fmt: str):
    def run_chunk(session: Session, job: Job, context: Context) -> Chunk:
        view, columns = _job_view(job, context)
        _hold(session, job)
        ids_path = context.path("ids.bin")
        with current_app.test_request_context():  # formatters and filters may flash
            if job.cursor == 0:
                _start_afresh(context.folder)
                _snapshot(session, view, job, ids_path)
            total = job.total or 0
            ids = _slice(ids_path, job.cursor, chunk_size(KINDS_BY_FORMAT[fmt], context.config))
            rows = _rows(session, view, ids)
            if fmt == "csv":
                _append_csv(view, job, context, columns, rows)
            else:
                _write_part(view, job, context, columns, rows)
        session.flush()
        end = job.cursor + len(ids)
        gone = len(ids) - len(rows)
        return Chunk(cursor=end, processed=len(ids), changed=len(rows),
                     reasons={"deleted or merged since the export started": gone} if gone
                     else {}, last=end >= total)

    return run_chunk


def _append_csv(view, job: Job, context: Context, columns, rows) -> None:
    """Cut the file back to what the last committed chunk left, then append this chunk."""
    path = context.path("export.csv")
    size = int((job.state or {}).get("bytes", 0)) if job.cursor else 0
    writer = csv_writer()
    with open(path, "r+b" if path.exists() else "w+b") as out:
        out.truncate(size)
        out.seek(size)
        if size == 0:
            out.write(writer.writerow([_text(label) for _, label in columns]).encode())
        for row in rows:
            out.write(writer.writerow(view.csv_cells(row, columns)).encode())
        out.flush()
        os.fsync(out.fileno())
        size = out.tell()
    job.state = {**(job.state or {}), "bytes": size}


def _part_name(position: int) -> str:
    return f"part-{position:010d}.jsonl"


def _write_part(view, job: Job, context: Context, columns, rows) -> None:
    """This chunk's typed cells in their own part file, whole or absent; parts at or after
    this position left by an attempt that did not commit are removed first."""
    folder = context.folder
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("part-*.jsonl"):
        if int(stale.stem.split("-")[1]) >= job.cursor:
            stale.unlink(missing_ok=True)
    path = context.path(_part_name(job.cursor))
    temporary = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
    with open(temporary, "w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(view.xlsx_cells(row, columns), default=_encode,
                                 ensure_ascii=False, separators=(",", ":")))
            out.write("\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)


def _finish(fmt: str):
    def finish(session: Session, job: Job, context: Context) -> str:
        view, columns = _job_view(job, context)
        name = f"{view.name}_{date.today().isoformat()}.{fmt}"
        if fmt == "csv":
            path = context.path("export.csv")
        else:
            path = context.path("export.xlsx")
            if not path.exists():  # a finish run again after the rename keeps the file
                _build_xlsx(view, context, columns, path, beat=lambda: _beat(session, job))
        for leftover in [*context.folder.glob("part-*.jsonl"), context.folder / "ids.bin"]:
            leftover.unlink(missing_ok=True)
        set_result(job, context, path, name=secure_filename(name), mimetype=MIMETYPES[fmt])
        rows = f"{job.changed:,} row{'' if job.changed == 1 else 's'}"
        text = f"Exported {rows} of {view.name} to {fmt.upper()}."
        if job.skipped:
            text += f" {job.skipped:,} deleted or merged since the export started are not in it."
        return text

    return finish


def _beat(session: Session, job: Job) -> None:
    """Say the job is alive: building a workbook of a million rows takes minutes, longer
    than ``CRM_JOB_STALE_SECONDS``, after which another consumer would take it over."""
    session.execute(update(Job).where(Job.id == job.id, Job.status == "running")
                    .values(heartbeat_at=utcnow()).execution_options(synchronize_session=False))
    session.commit()


def _build_xlsx(view, context: Context, columns, path: Path, beat=None) -> None:
    temporary = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
    sheet = XlsxSheet(view.name, [label for _, label in columns])
    last_beat = time.monotonic()
    for part in sorted(context.folder.glob("part-*.jsonl")):
        with open(part, encoding="utf-8") as source:
            for line in source:
                sheet.append(json.loads(line, object_hook=_decode))
        if beat is not None and time.monotonic() - last_beat > BEAT_SECONDS:
            beat()
            last_beat = time.monotonic()
    with open(temporary, "wb") as out:
        sheet.save(out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)


KINDS_BY_FORMAT = {
    fmt: register(Kind(name=f"export_{fmt}", label=f"Export a list to {fmt.upper()}",
                       run_chunk=_export_chunk(fmt), finish=_finish(fmt), chunk_size=CHUNK,
                       changed_label="rows written", skipped_label="left out"))
    for fmt in ("csv", "xlsx")
}
