"""Import customers, contacts and work addresses from a spreadsheet (CSV or XLSX).

Three steps, each usable without Flask (the screens, the jobs, the tests and the benchmark
call the same functions):

1. ``stage``: read the uploaded file once, as a stream (CSV through the ``csv`` module,
   XLSX through openpyxl's read-only ``iter_rows``), refuse what is not a spreadsheet with
   a sentence, and write it out as one plain UTF-8 CSV (``rows.csv``) with its header, row
   count and first rows. Every later step reads that file, a chunk at a time, from a byte
   offset (``read_rows``): a 100,000-row file is never in memory whole.
2. ``guess_mapping`` / ``check_mapping``: which column of the file feeds which field,
   guessed from the headers (case, spaces and punctuation ignored, usual synonyms known),
   corrected by a person, and saved under a name (``save_mapping``).
3. ``Importer.run``: for a chunk of rows, each row is created, updated, left unchanged or
   refused with a sentence, by the rules the admin forms apply (a name, one way to reach a
   customer, a whole address, e-mail addresses normalized, phones in E.164 read in the
   business's region, postcodes checked for their country, blocked addresses refused,
   redacted customers left alone). With ``write=False`` (the dry run) the same decisions
   are made and nothing is written.

Matching: a customer by its reference (when the column is mapped and the cell filled), else
by its normalized e-mail among live customers (two live customers with that address: the row
is refused, the reference must say which). A contact and a work address belong to the
customer their row names the same way; a contact is matched among that customer's contacts
by e-mail, else by first name and surname; a work address by its first line and postcode
(case, spaces and punctuation ignored). A match is updated with the cells that are filled (an
empty cell leaves the field as it is); no match, a new record. A row repeating an earlier
row's customer updates what that row made.

Money columns (``crm.permissions.GATES``) are never offered and never imported.
"""

import csv
import json
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm import validation
from crm.actions import ActionError
from crm.blocklist import blocked_addresses
from crm.models import Booking, Contact, Customer, ImportMapping, User, WorkAddress
from crm.models.base import TEXT_LIMITS
from crm.models.customer import CUSTOMER_KINDS, CUSTOMER_TYPES, TITLES
from crm.models.job import IMPORT_TARGETS
from crm.permissions import GATES

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
DEFAULT_MAX_ROWS = 200_000
MAX_COLUMNS = 200
MAX_CELL = 10_000  # characters in one cell (the longest field, a customer's notes)
PREVIEW_ROWS = 5
STAGED = "rows.csv"
META = "upload.json"


class ImportFileError(ActionError):
    """The file cannot be read as a spreadsheet; the message says why, for a person."""


# --- what can be imported -------------------------------------------------------------------
@dataclass(frozen=True)
class Field:
    name: str
    label: str
    synonyms: tuple[str, ...] = ()
    kind: str = "text"  # text, email, phone, postcode, country, bool, title, choice, match
    help: str = ""


@dataclass(frozen=True)
class Target:
    name: str
    label: str  # "Customers"
    noun: str  # "customer"
    model: type
    fields: tuple[Field, ...]
    needs: tuple[tuple[str, ...], ...] = ()  # each: at least one of these must be mapped


_CUSTOMER_KEYS = (
    Field("customer_reference", "Customer reference",
          ("customerreference", "customerref", "reference", "ref", "accountreference",
           "accountref", "customerno", "customernumber", "customerid", "custref",
           "custreference", "custno", "accountno", "accountnumber"), "match",
          "Finds the customer (C-000123)."),
    Field("customer_email", "Customer e-mail",
          ("customeremail", "customeremailaddress", "accountemail"), "match",
          "Finds the customer by its e-mail when there is no reference."),
)
_OPT_INS = (
    Field("email_opt_in", "E-mails", ("emailoptin", "emails", "emailconsent", "optinemail"),
          "bool", "yes or no"),
    Field("sms_opt_in", "Text messages", ("smsoptin", "sms", "textmessages", "texts"), "bool",
          "yes or no"),
)
_ADDRESS = (
    Field("address_line_1", "Address line 1",
          ("addressline1", "address1", "address", "street", "line1", "streetaddress",
           "addressline", "firstline", "siteaddress", "propertyaddress", "workaddress",
           "site", "property", "premises")),
    Field("address_line_2", "Address line 2", ("addressline2", "address2", "line2")),
    Field("town", "Town", ("town", "city", "towncity", "locality", "posttown")),
    Field("county", "County", ("county", "region", "state", "province")),
    Field("postcode", "Postcode", ("postcode", "postalcode", "zip", "zipcode", "postcodezip",
                                   "pcode"), "postcode"),
    Field("country", "Country", ("country", "countrycode"), "country",
          "two-letter code such as GB; empty: the business's own"),
)

TARGETS: dict[str, Target] = {
    "customers": Target(
        "customers", "Customers", "customer", Customer,
        (
            Field("reference", "Reference",
                  ("reference", "ref", "customerreference", "customerref", "accountreference",
                   "accountref", "customerno", "customernumber", "custref", "custreference",
                   "custno", "accountno", "accountnumber"), "match",
                  "Updates the customer with this reference; leave empty to match by e-mail "
                  "or create."),
            Field("customer_type", "Type", ("type", "customertype"), "choice",
                  "private, company or landlord"),
            Field("kind", "Kind", ("kind", "stage", "customerkind"), "choice",
                  "lead, prospect or client; only for new customers"),
            Field("title", "Title", ("title", "salutation"), "title"),
            Field("first_name", "First name", ("firstname", "forename", "givenname", "first",
                                               "firstnames", "forenames")),
            Field("surname", "Surname", ("surname", "lastname", "familyname", "last", "name")),
            Field("company_name", "Company name", ("companyname", "company", "organisation",
                                                   "organization", "business", "businessname")),
            Field("email", "E-mail", ("email", "emailaddress", "mail", "emailaddr"), "email"),
            Field("phone", "Phone", ("phone", "telephone", "tel", "phonenumber", "telephoneno",
                                     "mobile", "mobilephone", "landline"), "phone"),
            *_ADDRESS,
            Field("advertising_source", "Advertising source",
                  ("advertisingsource", "source", "leadsource", "heardfrom", "howdidyouhear",
                   "referral")),
            Field("notes", "Notes", ("notes", "note", "comments", "comment")),
            *_OPT_INS,
            Field("post_opt_in", "Post", ("postoptin", "post", "mailings"), "bool", "yes or no"),
        ),
    ),
    "contacts": Target(
        "contacts", "Contacts", "contact", Contact,
        (
            *_CUSTOMER_KEYS,
            Field("title", "Title", ("title", "salutation"), "title"),
            Field("first_name", "First name", ("firstname", "forename", "givenname", "first")),
            Field("surname", "Surname", ("surname", "lastname", "familyname", "last")),
            Field("position", "Position", ("position", "jobtitle", "role")),
            Field("email", "E-mail", ("email", "emailaddress", "contactemail", "mail"), "email"),
            Field("phone", "Phone", ("phone", "telephone", "tel", "landline", "phonenumber"),
                  "phone"),
            Field("mobile", "Mobile", ("mobile", "mobilephone", "cell", "cellphone",
                                       "mobilenumber"), "phone"),
            *_OPT_INS,
            Field("is_primary", "Primary contact", ("primary", "isprimary", "primarycontact",
                                                    "maincontact"), "bool", "yes or no"),
        ),
        needs=(("customer_reference", "customer_email"), ("surname",)),
    ),
    "work_addresses": Target(
        "work_addresses", "Work addresses", "work address", WorkAddress,
        (
            *_CUSTOMER_KEYS,
            *_ADDRESS,
            Field("occupier_title", "Occupier's title", ("occupiertitle", "tenanttitle"),
                  "title"),
            Field("occupier_first_name", "Occupier's first name",
                  ("occupierfirstname", "tenantfirstname")),
            Field("occupier_surname", "Occupier's surname",
                  ("occupiersurname", "occupier", "tenant", "tenantsurname", "occupiername")),
            Field("occupier_phone", "Occupier's phone", ("occupierphone", "tenantphone"),
                  "phone"),
            Field("occupier_email", "Occupier's e-mail", ("occupieremail", "tenantemail"),
                  "email"),
        ),
        needs=(("customer_reference", "customer_email"), ("address_line_1",), ("postcode",)),
    ),
}
assert tuple(TARGETS) == IMPORT_TARGETS


def offered(target: str) -> tuple[Field, ...]:
    """The fields a file may feed for ``target``: never a money column (``GATES``)."""
    spec = TARGETS[target]
    return tuple(f for f in spec.fields
                 if f"{spec.model.__name__}.{f.name}" not in GATES)


def needed(target: str) -> set[str]:
    """The fields a mapping must give ``target`` (one of each group of ``needs``)."""
    return {name for group in TARGETS[target].needs for name in group}


def target_of(name: str | None) -> Target:
    if name not in TARGETS:
        raise ActionError("Choose what the file holds: customers, contacts or work addresses.")
    return TARGETS[name]


# --- reading a file -----------------------------------------------------------------------------
@dataclass
class Staged:
    """An upload read and written out as ``rows.csv``: its header, how many rows follow it
    (blank ones at the end left out) and the first few, for the mapping page."""

    headers: list[str]
    rows: int
    preview: list[list[str]]
    format: str  # "csv" or "xlsx"
    filename: str = ""

    def as_dict(self) -> dict:
        return {"headers": self.headers, "rows": self.rows, "preview": self.preview,
                "format": self.format, "filename": self.filename}


def _cell(value) -> str:
    """A spreadsheet cell as text: whole numbers without ".0" (a phone number typed into a
    number cell), dates as ISO."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _csv_rows(path: Path) -> Iterator[list[str]]:
    """The records of a CSV file (UTF-8, with or without a byte-order mark; comma,
    semicolon or tab between cells, whichever the first line uses most), one at a time."""
    with open(path, "rb") as raw:
        sample = raw.read(64 * 1024)
    if b"\x00" in sample:
        raise ImportFileError("That file is not a spreadsheet: it holds binary data. Upload a "
                              "CSV or an Excel (.xlsx) file.")
    try:
        text = sample.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if exc.start < len(sample) - 4:  # not just a character cut at the sample's end
            raise ImportFileError(
                "That file is not UTF-8 text. In Excel choose Save As → \"CSV UTF-8\", or "
                "upload the .xlsx file itself.") from None
        text = sample[:exc.start].decode("utf-8-sig", errors="ignore")
    first = text.splitlines()[0] if text.strip() else ""
    delimiter = max((",", ";", "\t"), key=first.count)
    with open(path, encoding="utf-8-sig", newline="") as handle:
        try:
            yield from csv.reader(handle, delimiter=delimiter)
        except UnicodeDecodeError:
            raise ImportFileError(
                "Part of that file is not UTF-8 text. In Excel choose Save As → \"CSV "
                "UTF-8\", or upload the .xlsx file itself.") from None
        except csv.Error as exc:
            raise ImportFileError(f"That CSV file cannot be read ({exc}).") from None


def _xlsx_rows(path: Path) -> Iterator[list[str]]:
    """The rows of an Excel workbook's first sheet, read-only: one row at a time."""
    from openpyxl import load_workbook

    handle = open(path, "rb")  # a file object: openpyxl would judge a path by its extension
    try:
        try:
            book = load_workbook(handle, read_only=True, data_only=True)
        except Exception:  # a damaged or password-protected workbook, a ZIP of something else
            raise ImportFileError("That Excel file cannot be opened: it is damaged, protected "
                                  "or not a workbook. Save it again as .xlsx, or as CSV.") \
                from None
        try:
            sheet = book.worksheets[0] if book.worksheets else None
            if sheet is None:
                return
            for values in sheet.iter_rows(values_only=True):
                yield [_cell(v) for v in values]
        finally:
            book.close()
    finally:
        handle.close()


def file_rows(path: Path) -> tuple[str, Iterator[list[str]]]:
    """(format, the file's rows as lists of text), telling XLSX from CSV by content."""
    with open(path, "rb") as raw:
        head = raw.read(4)
    if not head:
        raise ImportFileError("That file is empty.")
    if head == b"PK\x03\x04":
        if not zipfile.is_zipfile(path):
            raise ImportFileError("That Excel file cannot be opened: it is damaged.")
        return "xlsx", _xlsx_rows(path)
    if head[:2] == b"\xd0\xcf":
        raise ImportFileError("That is an old Excel (.xls) file: save it as .xlsx or as CSV "
                              "UTF-8 and upload that.")
    return "csv", _csv_rows(path)


def _headers(values: list[str]) -> list[str]:
    """The header row as names a select can list: trimmed, blanks named by position,
    repeats numbered."""
    names: list[str] = []
    for position, value in enumerate(values, 1):
        name = " ".join(validation.without_control_characters(value).split())[:100] or \
            f"Column {position}"
        base, n = name, 2
        while name in names:
            name, n = f"{base} ({n})", n + 1
        names.append(name)
    while names and names[-1].startswith("Column ") and not values[len(names) - 1].strip():
        names.pop()
    return names


def stage(source: Path, folder: Path, *, filename: str = "",
          max_rows: int = DEFAULT_MAX_ROWS) -> Staged:
    """Read ``source`` (an uploaded CSV or XLSX) once and write ``folder/rows.csv``: the
    header, then every row (blank rows inside kept, so row numbers stay the file's; blank
    rows at the end dropped). Refuses, with a sentence, a file that is not a spreadsheet,
    has no header or no rows, or has more than ``max_rows`` rows."""
    fmt, rows = file_rows(source)
    folder.mkdir(parents=True, exist_ok=True)
    out_path = folder / STAGED
    preview: list[list[str]] = []
    count = 0
    headers: list[str] | None = None
    with open(out_path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        blanks = 0
        for values in rows:
            if headers is None:
                if not any(v.strip() for v in values):
                    raise ImportFileError("The first row is empty: it should name the columns "
                                          "(Surname, E-mail, Postcode, …).")
                headers = _headers(values)
                if len(headers) > MAX_COLUMNS:
                    raise ImportFileError(f"That file has {len(headers):,} columns; an import "
                                          f"takes at most {MAX_COLUMNS}.")
                writer.writerow(headers)
                continue
            values = values[:len(headers)]
            if not any(v.strip() for v in values):
                blanks += 1
                continue
            for _ in range(blanks):
                writer.writerow([])
            count += blanks + 1
            blanks = 0
            if count > max_rows:
                raise ImportFileError(f"That file has more than {max_rows:,} rows; split it "
                                      "into smaller files.")
            writer.writerow(values)
            if len(preview) < PREVIEW_ROWS:
                preview.append(values + [""] * (len(headers) - len(values)))
    if headers is None:
        raise ImportFileError("That file is empty.")
    if count == 0:
        raise ImportFileError("That file has a header but no rows under it.")
    staged = Staged(headers=headers, rows=count, preview=preview, format=fmt,
                    filename=filename[:200])
    (folder / META).write_text(json.dumps(staged.as_dict()))
    return staged


def staged_info(folder: Path) -> Staged | None:
    try:
        data = json.loads((folder / META).read_text())
    except (OSError, ValueError):
        return None
    return Staged(**data)


def _lines(handle) -> Iterator[tuple[str, int]]:
    """Each line of a binary file as text, with the byte offset just after it."""
    position = handle.tell()
    for line in handle:
        position += len(line)
        yield line.decode("utf-8"), position


def read_header(path: Path) -> tuple[list[str], int]:
    """The staged file's header and the offset of its first row."""
    with open(path, "rb") as handle:
        records = _Tracked(_lines(handle))
        header = next(csv.reader(records))
        return header, records.position


class _Tracked:
    """Feeds ``csv.reader`` line by line and knows how far it has read: after each record
    the reader has taken exactly that record's lines, so ``position`` is where the next one
    starts."""

    def __init__(self, lines: Iterator[tuple[str, int]]):
        self.lines = lines
        self.position = 0

    def __iter__(self):
        return self

    def __next__(self) -> str:
        text, self.position = next(self.lines)
        return text


@dataclass
class Row:
    number: int  # the row's number in the file (the header is row 1)
    values: list[str]
    end: int  # the byte offset just after it in rows.csv


def read_rows(path: Path, *, offset: int, first_number: int, limit: int) -> list[Row]:
    """Up to ``limit`` rows of the staged file from byte ``offset`` (where row
    ``first_number`` starts): one chunk, never the whole file."""
    found: list[Row] = []
    with open(path, "rb") as handle:
        handle.seek(offset)
        tracked = _Tracked(_lines(handle))
        tracked.position = offset
        reader = csv.reader(tracked)
        number = first_number
        for values in reader:
            found.append(Row(number, values, tracked.position))
            number += 1
            if len(found) >= limit:
                break
    return found


def iter_rows(path: Path) -> Iterator[Row]:
    """Every row of the staged file, one at a time (tests and the benchmark)."""
    _, offset = read_header(path)
    number = 2
    while True:
        chunk = read_rows(path, offset=offset, first_number=number, limit=1000)
        if not chunk:
            return
        yield from chunk
        offset, number = chunk[-1].end, chunk[-1].number + 1


# --- the mapping ------------------------------------------------------------------------------
def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def guess_mapping(target: str, headers: Iterable[str]) -> dict[str, str]:
    """{field: header} for the headers that name a field ("E-mail", "Email address", "Post
    code", "ZIP"...), each header used once, in the order the fields are listed."""
    by_key: dict[str, str] = {}
    for header in headers:
        by_key.setdefault(_key(header), header)
    mapping: dict[str, str] = {}
    used: set[str] = set()
    for spec in offered(target):
        for candidate in (spec.name, spec.label, *spec.synonyms):
            header = by_key.get(_key(candidate))
            if header is not None and header not in used:
                mapping[spec.name] = header
                used.add(header)
                break
    return mapping


def check_mapping(target: str, headers: list[str], mapping: dict) -> dict[str, str]:
    """The mapping as the import uses it ({field: header}, unmapped fields left out), or
    ActionError: a field that cannot be imported (a money column), a header the file does
    not have, nothing mapped, or what the target needs left unmapped."""
    spec = target_of(target)
    fields = {f.name: f for f in offered(target)}
    clean: dict[str, str] = {}
    for name, header in (mapping or {}).items():
        if not header:
            continue
        if name not in fields:
            raise ActionError(f"{name!s:.40} is not a field an import can fill.")
        if header not in headers:
            raise ActionError(f"The file has no column called {header!s:.100}.")
        clean[name] = header
    if not clean:
        raise ActionError("Choose the column of the file for at least one field.")
    for group in spec.needs:
        if not any(name in clean for name in group):
            labels = " or ".join(fields[name].label for name in group)
            raise ActionError(f"Choose the file's column for {labels}: "
                              f"{spec.label.lower()} cannot be imported without it.")
    if target == "customers" and not any(n in clean for n in ("reference", "surname",
                                                               "company_name", "email")):
        raise ActionError("Choose the file's column for the surname or company name (or the "
                          "reference or e-mail of customers to update).")
    return clean


def save_mapping(session: Session, *, target: str, name: str, columns: dict,
                 actor: User | None) -> tuple[ImportMapping, bool]:
    """Save ``columns`` as the mapping ``name`` for ``target`` (replacing one of that name);
    returns it and whether it was new. A person's working preference: not audited."""
    target_of(target)
    name = " ".join(validation.without_control_characters(name or "").split())
    if not name:
        raise ActionError("Give the mapping a name, such as \"Supplier's export\".")
    if len(name) > 100:
        raise ActionError("Keep the mapping's name to 100 characters or fewer.")
    fields = {f.name for f in offered(target)}
    columns = {k: str(v)[:100] for k, v in (columns or {}).items() if k in fields and v}
    if not columns:
        raise ActionError("Choose the file's column for at least one field before saving.")
    mapping = session.scalar(select(ImportMapping).where(ImportMapping.target == target,
                                                         ImportMapping.name == name))
    new = mapping is None
    if new:
        mapping = ImportMapping(target=target, name=name, columns=columns,
                                user_id=actor.id if actor is not None else None)
        session.add(mapping)
    else:
        mapping.columns = columns
        mapping.user_id = actor.id if actor is not None else mapping.user_id
    session.flush()
    return mapping, new


def saved_mappings(session: Session, target: str) -> list[ImportMapping]:
    return list(session.scalars(select(ImportMapping).where(ImportMapping.target == target)
                                .order_by(func.lower(ImportMapping.name)).limit(200)))


def apply_saved(mapping: ImportMapping, headers: list[str]) -> tuple[dict[str, str], list[str]]:
    """A saved mapping on this file: ({field: header} for the headers it has, the labels of
    the fields whose header this file lacks)."""
    fields = {f.name: f for f in offered(mapping.target)}
    applied, missing = {}, []
    for name, header in (mapping.columns or {}).items():
        if name not in fields:
            continue
        if header in headers:
            applied[name] = header
        else:
            missing.append(fields[name].label)
    return applied, missing


# --- one row ----------------------------------------------------------------------------------
@dataclass
class Outcome:
    row: int
    outcome: str  # created, updated, unchanged, refused, blank
    reason: str = ""
    reference: str = ""  # the customer's reference (created ones get theirs once written)
    record: object = field(default=None, repr=False, compare=False)
    label: str = ""  # what the row is, as the file says it ("1 High Street, LS1 1AA")


class Refused(Exception):
    """A row cannot go in; the message is why, for the refused-rows file."""


_YES = {"yes", "y", "true", "1", "x", "ticked", "on"}
_NO = {"no", "n", "false", "0", "off", "-"}
_COUNTRIES = {"UK": "GB", "UNITEDKINGDOM": "GB", "GREATBRITAIN": "GB", "ENGLAND": "GB",
              "SCOTLAND": "GB", "WALES": "GB", "NORTHERNIRELAND": "GB", "IRELAND": "IE",
              "EIRE": "IE"}
_TITLES = {t.lower(): t for t in TITLES if t}


def _limit(model, name: str) -> int | None:
    column = model.__table__.c.get(name)
    if column is None:
        return None
    limit = TEXT_LIMITS.get((model.__tablename__, name))
    return limit or getattr(column.type, "length", None)


_NOT_ALNUM = re.compile(r"[^a-z0-9]")


def _text_key(text: str | None) -> str:
    """What two spellings of a line or postcode share: lower case, letters and digits."""
    return _NOT_ALNUM.sub("", (text or "").lower())


def _postcode_forms(value: str) -> set[str]:
    """The ways a postcode may be stored, normalized: as typed (capitals, single spaces),
    without its space, and with one before the last three characters (LS11AA, LS1 1AA)."""
    typed = " ".join(value.upper().split())
    bare = typed.replace(" ", "")
    return {typed, bare, f"{bare[:-3]} {bare[-3:]}" if len(bare) > 3 else bare}


def _country(value: str) -> str:
    code = _COUNTRIES.get(_key(value).upper(), value.strip().upper())
    if not re.fullmatch(r"[A-Z]{2}", code):
        raise Refused("Country: use a two-letter code such as GB.")
    return code


def _choice(label: str, value: str, allowed: tuple[str, ...]) -> str:
    found = value.strip().lower()
    if found not in allowed:
        raise Refused(f"{label}: use one of {', '.join(allowed)}.")
    return found


class Importer:
    """Decides, and with ``write`` does, what each row of a chunk means for ``target``.
    ``run`` takes a chunk's rows and returns one ``Outcome`` per row, in order."""

    def __init__(self, session: Session, target: str, headers: list[str],
                 mapping: dict[str, str], *, region: str = "GB", actor: User | None = None,
                 write: bool = True):
        self.session = session
        self.target = target_of(target)
        self.fields = {f.name: f for f in offered(target)}
        self.columns = {name: headers.index(header) for name, header in mapping.items()
                        if name in self.fields and header in headers}
        self.region = region
        self.actor = actor
        self.write = write
        self.created: list = []
        self.fresh: list = []
        self.postcodes: dict[tuple[str, str], tuple[str | None, str | None]] = {}

    # -- cells -> clean values ---------------------------------------------------------------
    def cells(self, values: list[str]) -> dict[str, str]:
        found = {}
        for name, index in self.columns.items():
            text = values[index].strip() if index < len(values) else ""
            if text:
                found[name] = text
        return found

    def clean(self, cells: dict[str, str]) -> dict:
        """Each filled cell checked and normalized as the admin form would (the postcode
        waits for the country, which may come from the record)."""
        model = self.target.model
        clean: dict = {}
        for name, text in cells.items():
            spec = self.fields[name]
            if validation.has_control_characters(text):
                raise Refused(f"{spec.label}: holds control characters.")
            if spec.kind in ("text", "match"):  # the others' own checks say it better
                limit = _limit(model, name) or MAX_CELL
                if len(text) > limit:
                    raise Refused(f"{spec.label}: at most {limit:,} characters.")
            try:
                if spec.kind == "email":
                    clean[name] = validation.normalize_email(text)
                elif spec.kind == "phone":
                    clean[name] = validation.normalize_phone(text, self.region)
                elif spec.kind == "bool":
                    word = text.lower()
                    if word not in _YES | _NO:
                        raise Refused(f"{spec.label}: write yes or no.")
                    clean[name] = word in _YES
                elif spec.kind == "title":
                    title = _TITLES.get(text.rstrip(".").lower())
                    if title is None:
                        raise Refused(f"{spec.label}: use one of "
                                      f"{', '.join(t for t in TITLES if t)}.")
                    clean[name] = title
                elif spec.kind == "country":
                    clean[name] = _country(text)
                elif name == "customer_type":
                    clean[name] = _choice(spec.label, text, CUSTOMER_TYPES)
                elif name == "kind":
                    clean[name] = _choice(spec.label, text, CUSTOMER_KINDS)
                elif name == "customer_email":
                    clean[name] = validation.normalize_email(text)
                else:
                    clean[name] = " ".join(text.split()) if name != "notes" else text
            except ValueError as exc:
                raise Refused(f"{spec.label}: {exc}") from None
        return clean

    def postcode(self, values: dict, changed: bool) -> None:
        """Check (and normalize) the postcode against the record's country, when either
        was given in the row (each postcode and country once a chunk: a file repeats them)."""
        if not changed or not values.get("postcode"):
            return
        key = (values["postcode"], values.get("country") or self.region)
        if key not in self.postcodes:
            try:
                self.postcodes[key] = (validation.normalize_postcode(*key), None)
            except ValueError as exc:
                self.postcodes[key] = (None, f"Postcode: {exc}")
        normalized, refusal = self.postcodes[key]
        if refusal:
            raise Refused(refusal)
        values["postcode"] = normalized

    # -- a chunk -----------------------------------------------------------------------------
    def run(self, rows: list) -> list[Outcome]:
        """``rows``: objects with ``number`` and ``values`` (``Row``)."""
        parsed: list[tuple[int, dict | None, str, str]] = []
        for row in rows:
            cells = self.cells(row.values)
            label = self.label(cells)
            if not cells:
                parsed.append((row.number, None, "", label))
                continue
            try:
                parsed.append((row.number, self.clean(cells), "", label))
            except Refused as exc:
                parsed.append((row.number, None, str(exc), label))
        self.prepare([values for _, values, _, _ in parsed if values])
        outcomes = []
        for number, values, reason, label in parsed:
            if values is None:
                outcomes.append(Outcome(number, "refused" if reason else "blank", reason,
                                        label=label))
                continue
            try:
                with self.session.no_autoflush:
                    outcome = self.one(number, values)
            except Refused as exc:
                outcome = Outcome(number, "refused", str(exc))
            outcome.label = label
            outcomes.append(outcome)
        if self.write:
            self.insert_fresh()
            self.session.flush()
            self.after_flush(outcomes)
        return outcomes

    def insert_fresh(self) -> None:
        """The chunk's new contacts or work addresses in one INSERT (executemany), as the
        rows that follow may have left them; no hook needs them one by one."""
        if not self.fresh:
            return
        model = self.target.model
        names = ("customer_id", *(self.CONTACT_FIELDS if model is Contact
                                  else (*self.WORK_FIELDS, "status")))
        self.session.execute(model.__table__.insert(),  # the columns' defaults fill the rest
                             [{name: getattr(record, name) for name in names}
                              for record in self.fresh])

    LABELS = {"customers": (("company_name", "surname"), ("email", "postcode")),
              "contacts": (("surname",), ("email", "customer_reference")),
              "work_addresses": (("address_line_1",), ("postcode",))}

    def label(self, cells: dict[str, str]) -> str:
        """A few words from the row that say which it is, for the report."""
        parts = []
        for names in self.LABELS[self.target.name]:
            value = next((cells[n] for n in names if cells.get(n)), "")
            if names == ("surname",) and cells.get("first_name") and value:
                value = f"{cells['first_name']} {value}"
            if value:
                parts.append(validation.without_control_characters(value)[:60])
        return ", ".join(parts)

    # -- the look-ups of a chunk, a few statements for a thousand rows -----------------------
    def prepare(self, rows: list[dict]) -> None:
        customers = self.target.name == "customers"
        reference_key = "reference" if customers else "customer_reference"
        email_key = "email" if customers else "customer_email"
        references = {r[reference_key].strip().upper() for r in rows if r.get(reference_key)}
        emails = {r[email_key] for r in rows if r.get(email_key)}
        self.by_reference: dict[str, Customer] = {}
        self.by_email: dict[str, list[Customer]] = {}
        for part in _parts(sorted(references)):
            for customer in self.session.scalars(select(Customer).where(
                    Customer.reference.in_(part))):  # stored in capitals, uniquely indexed
                self.by_reference[customer.reference.upper()] = customer
        for part in _parts(sorted(emails)):
            for customer in self.session.scalars(
                    select(Customer).where(Customer.email.in_(part),
                                           Customer.merged_into_id.is_(None))
                    .order_by(Customer.id)):
                self.by_email.setdefault(customer.email, []).append(customer)
        given = {r[name] for r in rows for name in ("email", "occupier_email") if r.get(name)}
        self.blocked = blocked_addresses(self.session, given) if given else set()
        self.made: dict[str, Customer] = {}  # a key given in this chunk -> the customer
        # The contacts or work addresses of the chunk's customers, by what matches them.
        self.keys: dict[tuple, object] = {}
        self.primary: dict[int, Contact] = {}
        if not customers:
            ids = {c.id for c in self.by_reference.values()} | {
                c.id for found in self.by_email.values() for c in found}
            model = self.target.model
            if model is WorkAddress:
                # Only the addresses a row matches, loaded whole: first their ids, from a
                # narrow read of those at the chunk's postcodes (through the postcode's index;
                # stored normalized, with or without the space) among the chunk's customers.
                wanted = {(c.id, _text_key(r["address_line_1"]), _text_key(r["postcode"]))
                          for r in rows if r.get("address_line_1") and r.get("postcode")
                          for c in self._candidates(r)}
                forms = sorted({form for r in rows if r.get("postcode")
                                for form in _postcode_forms(r["postcode"])})
                owners = sorted(ids)
                pairs = {(owner, postcode.upper()) for owner, _, postcode in wanted}
                matched = []
                for part in _parts(forms):
                    matched += [row.id for row in self.session.execute(
                        select(WorkAddress.id, WorkAddress.customer_id,
                               WorkAddress.address_line_1, WorkAddress.postcode)
                        .where(WorkAddress.postcode.in_(part),
                               WorkAddress.customer_id.in_(owners)))
                        if (row.customer_id, row.postcode.replace(" ", "")) in pairs
                        and (row.customer_id, _text_key(row.address_line_1),
                             _text_key(row.postcode)) in wanted]
                wheres = [WorkAddress.id.in_(part) for part in _parts(sorted(matched))]
            else:
                wheres = [Contact.customer_id.in_(part) for part in _parts(sorted(ids))]
            for where in wheres:
                for child in self.session.scalars(select(model).where(where)
                                                  .order_by(model.id)):
                    self._index(child, {name: getattr(child, name) for name in (
                        self.CONTACT_FIELDS if model is Contact else self.WORK_FIELDS)})

    def _candidates(self, values: dict) -> list[Customer]:
        """The customers a contact's or work address's row may name (for the look-up)."""
        reference = values.get("customer_reference")
        if reference:
            found = self.by_reference.get(reference.strip().upper())
            return [found] if found is not None else []
        return self.by_email.get(values.get("customer_email") or "", [])

    def _index(self, record, values: dict) -> None:
        """Remember a contact or work address under the keys a later row matches it by."""
        customer_id = record.customer_id
        if self.target.name == "contacts":
            if values.get("email"):
                self.keys.setdefault((customer_id, "e", values["email"]), record)
            self.keys.setdefault((customer_id, "n", _text_key(values.get("first_name")),
                                  _text_key(values.get("surname"))), record)
            if values.get("is_primary"):
                self.primary[customer_id] = record
            elif self.primary.get(customer_id) is record:
                del self.primary[customer_id]
        else:
            self.keys.setdefault((customer_id, _text_key(values.get("address_line_1")),
                                  _text_key(values.get("postcode"))), record)

    def find_customer(self, values: dict, *, reference_key: str, email_key: str,
                      doing: str) -> Customer | None:
        """The customer a row names by reference, else by e-mail (None: no such customer
        by e-mail); refused for an unknown reference, a merged-away or redacted customer,
        and an e-mail two live customers share."""
        reference = values.get(reference_key)
        if reference:
            customer = self.by_reference.get(reference.upper())
            if customer is None:
                raise Refused("No customer has this reference.")
            if customer.merged_into_id is not None:
                survivor = self.session.get(Customer, customer.merged_into_id)
                raise Refused(f"{customer.reference} was merged into "
                              f"{survivor.reference if survivor else 'another customer'}: "
                              "use that reference.")
        else:
            email = values.get(email_key)
            found = self.by_email.get(email, []) if email else []
            if len(found) > 1:
                raise Refused(f"{len(found)} customers have this e-mail address: give the "
                              "reference of the one meant.")
            customer = found[0] if found else None
        if customer is not None and customer.redacted_at is not None:
            raise Refused(f"{customer.reference} has been redacted; {doing}.")
        return customer

    def owner(self, values: dict, doing: str) -> Customer:
        customer = self.find_customer(values, reference_key="customer_reference",
                                      email_key="customer_email", doing=doing)
        if customer is None:
            raise Refused("No customer has this e-mail address: import the customer first, "
                          "or give its reference.")
        return customer

    def check_blocked(self, email: str | None) -> None:
        if email and email in self.blocked:
            raise Refused("The e-mail address is blocked.")

    def one(self, number: int, values: dict) -> Outcome:
        if self.target.name == "customers":
            return self.customer(number, values)
        if self.target.name == "contacts":
            return self.contact(number, values)
        return self.work_address(number, values)

    def _after(self, record, values: dict, fields: tuple[str, ...]) -> dict:
        """What the record will hold: its values, with the row's filled cells over them."""
        after = {name: getattr(record, name) for name in fields}
        after.update({k: v for k, v in values.items() if k in after})
        return after

    def _save(self, number: int, record, after: dict, created: bool, reference: str) -> Outcome:
        """Write the changes (a new record always gets them: in a dry run it is never added
        to the session, so a later row can still find and update it)."""
        changes = {k: v for k, v in after.items() if getattr(record, k) != v}
        if created or self.write:
            for name, value in changes.items():
                setattr(record, name, value)
        if created and self.write:
            if isinstance(record, Customer):
                self.session.add(record)  # its reference, search text and flags come from the hooks
            else:
                self.fresh.append(record)  # inserted together at the end of the chunk
        outcome = "created" if created else ("updated" if changes else "unchanged")
        return Outcome(number, outcome, "", reference, record)

    # -- customers -----------------------------------------------------------------------------
    CUSTOMER_FIELDS = ("customer_type", "title", "first_name", "surname", "company_name",
                       "email", "phone", "address_line_1", "address_line_2", "town", "county",
                       "postcode", "country", "advertising_source", "notes", "email_opt_in",
                       "sms_opt_in", "post_opt_in")

    def customer(self, number: int, values: dict) -> Outcome:
        keys = [k for k in ((values.get("reference") or "").upper(), values.get("email")) if k]
        customer = next((self.made[k] for k in keys if k in self.made), None)
        if customer is None:
            customer = self.find_customer(values, reference_key="reference", email_key="email",
                                          doing="it can no longer be edited")
        created = customer is None
        if created:
            customer = Customer(kind=values.get("kind") or "client", customer_type="private",
                                country=self.region or "GB", email_opt_in=True,
                                sms_opt_in=True, post_opt_in=True)
        after = self._after(customer, values, self.CUSTOMER_FIELDS)
        after["customer_type"] = after["customer_type"] or "private"
        self.postcode(after, "postcode" in values or "country" in values)
        if after["customer_type"] == "company" and not after["company_name"]:
            raise Refused("A company needs its company name.")
        if after["customer_type"] != "company" and not after["surname"]:
            raise Refused("A surname is required (or the type Company, with the company "
                          "name).")
        problems = validation.address_problems(after)
        if problems:
            raise Refused(next(iter(problems.values())))
        if validation.unreachable(after["email"], after["phone"], after["address_line_1"]):
            raise Refused(validation.NO_WAY_TO_REACH)
        if after["email"] != customer.email:
            self.check_blocked(after["email"])
        outcome = self._save(number, customer, after, created, customer.reference or "")
        if created and self.write:
            self.created.append(customer)
        for key in (*keys, after["email"]):
            if key:
                self.made[key] = customer
        return outcome

    # -- contacts ------------------------------------------------------------------------------
    CONTACT_FIELDS = ("title", "first_name", "surname", "position", "email", "phone", "mobile",
                      "email_opt_in", "sms_opt_in", "is_primary")

    def contact(self, number: int, values: dict) -> Outcome:
        customer = self.owner(values, "its contacts can no longer be added or changed")
        email, surname = values.get("email"), values.get("surname")
        match = self.keys.get((customer.id, "e", email)) if email else None
        if match is None and surname:
            match = self.keys.get((customer.id, "n", _text_key(values.get("first_name")),
                                   _text_key(surname)))
        created = match is None
        record = match or _New(customer_id=customer.id, email_opt_in=True, sms_opt_in=True,
                               is_primary=False)
        after = self._after(record, values, self.CONTACT_FIELDS)
        if not after["surname"]:
            raise Refused("A contact needs a surname.")
        if after["is_primary"] and self.primary.get(customer.id) not in (None, record):
            raise Refused("The customer already has a primary contact: write no under Primary "
                          "contact, or untick the other one first.")
        if after["email"] != record.email:
            self.check_blocked(after["email"])
        outcome = self._save(number, record, after, created, customer.reference)
        self._index(record, after)
        return outcome

    # -- work addresses ------------------------------------------------------------------------
    WORK_FIELDS = ("address_line_1", "address_line_2", "town", "county", "postcode", "country",
                   "occupier_title", "occupier_first_name", "occupier_surname",
                   "occupier_phone", "occupier_email")

    def work_address(self, number: int, values: dict) -> Outcome:
        customer = self.owner(values, "its work addresses can no longer be added or changed")
        if not values.get("address_line_1") or not values.get("postcode"):
            raise Refused("A work address needs its first line and postcode.")
        match = self.keys.get((customer.id, _text_key(values["address_line_1"]),
                               _text_key(values["postcode"])))
        created = match is None
        record = match or _New(customer_id=customer.id, status="active",
                               occupier_surname="Occupier", country=self.region or "GB")
        after = self._after(record, values, self.WORK_FIELDS)
        self.postcode(after, True)
        after["occupier_surname"] = after["occupier_surname"] or "Occupier"
        if after["occupier_email"] != record.occupier_email:
            self.check_blocked(after["occupier_email"])
        outcome = self._save(number, record, after, created, customer.reference)
        self._index(record, after)
        return outcome

    # -- after the chunk is written ------------------------------------------------------------
    def after_flush(self, outcomes: list[Outcome]) -> None:
        """New customers' references go into the report; they take the bookings that waited
        for their e-mail, as the customer form does."""
        if self.target.name != "customers" or not self.created:
            return
        for outcome in outcomes:
            if outcome.outcome == "created" and outcome.record is not None:
                outcome.reference = outcome.record.reference or ""
        emails = sorted({c.email for c in self.created if c.email})
        waiting: set[str] = set()
        for part in _parts(emails):
            waiting.update(self.session.scalars(select(Booking.contact_email).where(
                Booking.customer_id.is_(None), Booking.contact_email.in_(part)).distinct()))
        if waiting:
            from crm.actions.attribution import attach_waiting

            for customer in self.created:
                if customer.email in waiting:
                    attach_waiting(self.session, customer, actor=self.actor)


class _New:
    """A contact or work address a chunk makes: plain attributes (an unset one reads None)
    until the chunk's one INSERT; in a dry run, never written."""

    def __init__(self, **values):
        self.__dict__.update(values)

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return None


def _parts(values: list, size: int = 1000) -> Iterator[list]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def refused_header(headers: list[str]) -> list[str]:
    return [*headers, "Row", "Reason"]


REPORT_HEADER = ["Row", "Outcome", "Reason", "Customer", "From the file"]
