"""Possible duplicates: live customers who share a blocking key.

Three keys, each compared in SQL so that a million customers are never compared in pairs:

- ``email``: the stored address (stored normalized, so equal addresses are equal strings);
- ``phone``: the stored E.164 number;
- ``name_postcode``: ``lower(surname) || '|' || replace(upper(postcode), ' ', '')``, so
  "Smith, LS1 1AA" and "smith, ls11aa" meet. ``lower`` folds ASCII only on SQLite and all of
  Unicode on PostgreSQL; each database is consistent with itself, which is all a key needs.

Candidates are live customers (not merged away) that are not redacted: a tombstone has
already been merged and a redacted customer cannot be merged. Archived and dormant
customers are included, because a new record typed in for an old customer is exactly the
duplicate worth finding.

Reading changes nothing, so nothing here writes an audit event.
"""

import base64
import binascii
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import String, cast, func, literal_column, or_, select
from sqlalchemy.orm import Session

from crm.actions import ActionError
from crm.models import Customer

REASONS = ("email", "phone", "name_postcode")
REASON_LABELS = {
    "email": "Same e-mail",
    "phone": "Same phone",
    "name_postcode": "Same surname and postcode",
}
# A page shows at most this many customers of one group; ``DuplicateGroup.size`` is exact.
GROUP_SAMPLE = 50
PAGE_MAX = 200
_STREAM_BATCH = 500
_LOAD_CHUNK = 10_000
_BAD_CURSOR = "That page link is not valid any more: start again from the first page."


# Constants written into the SQL, not bound: an expression index only serves a query whose
# expression is the same text, and PostgreSQL only accepts a GROUP BY expression it can
# match to the selected one.
_SPACE, _NOTHING, _BAR = (literal_column(f"'{c}'", String) for c in (" ", "", "|"))


def postcode_key(column):
    """The postcode with every space removed, upper-cased: "ls1 1aa" and "LS11AA" agree."""
    return func.replace(func.upper(column), _SPACE, _NOTHING, type_=String)


def name_postcode_key(surname, postcode):
    return func.lower(surname, type_=String).concat(_BAR).concat(postcode_key(postcode))


def _key(reason: str):
    if reason == "email":
        return Customer.email
    if reason == "phone":
        return Customer.phone
    return name_postcode_key(Customer.surname, Customer.postcode)


def _candidates() -> tuple:
    return Customer.merged_into_id.is_(None), Customer.redacted_at.is_(None)


def _has_key(reason: str) -> tuple:
    if reason == "name_postcode":  # a key of "|LS11AA" or "smith|" matches too much
        return Customer.surname != "", Customer.postcode != ""
    return ()


@dataclass(frozen=True)
class DuplicateGroup:
    """Live customers sharing one key, oldest first. ``customers`` holds at most
    ``GROUP_SAMPLE`` of them on a page (all of them when streamed); ``size`` counts all."""

    reason: str
    key: str
    customers: list[Customer]
    size: int | None = None

    def __post_init__(self) -> None:
        if self.size is None:
            object.__setattr__(self, "size", len(self.customers))

    @property
    def label(self) -> str:
        return REASON_LABELS[self.reason]

    @property
    def customer_ids(self) -> list[int]:
        return [c.id for c in self.customers]


@dataclass(frozen=True)
class DuplicatePage:
    """One page of groups; ``next_after`` is the cursor of the next page (None at the end)."""

    groups: list[DuplicateGroup] = field(default_factory=list)
    next_after: str | None = None


@dataclass(frozen=True)
class Candidate:
    """Another live customer who may be the same person, and which keys they share."""

    customer: Customer
    reasons: tuple[str, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(REASON_LABELS[r] for r in self.reasons)


@dataclass(frozen=True)
class _Row:
    reason: str
    key: str
    size: int
    ids: list[int]


# --- groups ------------------------------------------------------------------------------


def _groups_select(reason: str, after: str):
    """Keys shared by more than one candidate, in key order, after ``after``. The ids come
    back aggregated so that one more statement loads the customers of a whole page."""
    key = _key(reason)
    ids = func.aggregate_strings(cast(Customer.id, String), ",")
    return (
        select(key.label("key"), func.count().label("size"), ids.label("ids"))
        .where(*_candidates(), *_has_key(reason), key > after)
        .group_by(key)
        .having(func.count() > 1)
        .order_by(key)
    )


def _row(reason: str, found, sample: int | None) -> _Row:
    ids = sorted(int(i) for i in found.ids.split(","))
    return _Row(reason, found.key, found.size, ids[:sample] if sample else ids)


def _load(session: Session, rows: list[_Row]) -> list[DuplicateGroup]:
    wanted = sorted({i for row in rows for i in row.ids})
    by_id: dict[int, Customer] = {}
    # One statement for any page (PAGE_MAX x GROUP_SAMPLE ids); a streamed group shared by
    # tens of thousands would pass SQLite's limit of bound parameters in one.
    for start in range(0, len(wanted), _LOAD_CHUNK):
        chunk = wanted[start:start + _LOAD_CHUNK]
        by_id.update((c.id, c) for c in session.scalars(
            select(Customer).where(Customer.id.in_(chunk))))
    return [
        DuplicateGroup(row.reason, row.key, [by_id[i] for i in row.ids if i in by_id], row.size)
        for row in rows
    ]


def _reasons(reason: str | None) -> tuple[str, ...]:
    if reason is None:
        return REASONS
    if reason not in REASONS:
        raise ActionError(f"There is no kind of duplicate called {reason!r}.")
    return (reason,)


def encode_cursor(reason: str, key: str) -> str:
    """Opaque in URLs: a page link should not spell out someone's e-mail address."""
    return base64.urlsafe_b64encode(f"{reason}:{key}".encode()).decode().rstrip("=")


def _decode_cursor(after: str | None, reasons: tuple[str, ...]) -> tuple[str, str]:
    if not after:
        return reasons[0], ""
    try:
        raw = base64.urlsafe_b64decode(after + "=" * (-len(after) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ActionError(_BAD_CURSOR) from None
    reason, sep, key = raw.partition(":")
    if not sep or reason not in reasons:
        raise ActionError(_BAD_CURSOR)
    return reason, key


def find_duplicate_groups(
    session: Session, *, reason: str | None = None, after: str | None = None, limit: int = 25
) -> DuplicatePage:
    """One page of duplicate groups, keyset-paged on the key (never OFFSET).

    With no ``reason`` the kinds come one after another: every e-mail group, then every
    phone group, then every surname-and-postcode group; a page that ends one kind is filled
    from the next. At most one grouping statement per kind and one loading the customers:
    four statements whatever the page size.
    """
    if not 1 <= limit <= PAGE_MAX:
        raise ActionError(f"A page holds between 1 and {PAGE_MAX} groups.")
    reasons = _reasons(reason)
    start, start_key = _decode_cursor(after, reasons)
    rows: list[_Row] = []
    next_after = None
    for kind in reasons[reasons.index(start):]:
        wanted = limit - len(rows)
        stmt = _groups_select(kind, start_key if kind == start else "").limit(wanted + 1)
        found = [_row(kind, r, GROUP_SAMPLE) for r in session.execute(stmt)]
        rows += found[:wanted]
        if len(found) > wanted:  # one more than fits: this kind goes on
            next_after = encode_cursor(kind, rows[-1].key if wanted else "")
            break
    return DuplicatePage(_load(session, rows), next_after)


def count_duplicate_groups(session: Session) -> int:
    """How many groups there are to review, of every kind: one full grouping scan per kind
    (seconds at a million customers), so it is made nightly and stored
    (``crm.actions.stored_counts``), never on a page view."""
    found = 0
    for kind in _reasons(None):
        keys = _groups_select(kind, "").with_only_columns(_key(kind)).order_by(None)
        found += session.execute(select(func.count()).select_from(keys.subquery())).scalar_one()
    return found


def iter_duplicate_groups(session: Session, reason: str | None = None) -> Iterator[DuplicateGroup]:
    """Every group of every kind (or of ``reason``), with all of its customers, in the order
    of ``find_duplicate_groups``. One grouping scan per kind, streamed; customers are loaded
    a batch of groups at a time, so memory stays flat however many groups there are."""
    for kind in _reasons(reason):
        result = session.execute(
            _groups_select(kind, ""), execution_options={"yield_per": _STREAM_BATCH}
        )
        for batch in result.partitions():
            yield from _load(session, [_row(kind, r, None) for r in batch])


# --- one customer ------------------------------------------------------------------------


def _postcode_forms(key: str, stored: str) -> list[str]:
    """The ways a postcode with this key is stored: as this customer has it, without a
    space, or with the space before the inward code (forms upper-case and collapse spaces),
    and the same in lower case for rows written around the forms. Only these are looked up
    through the postcode index; the grouping scan also finds any other spelling."""
    forms = {stored, key}
    if len(key) > 3:
        forms.add(f"{key[:-3]} {key[-3:]}")
    return sorted(forms | {form.lower() for form in forms})


def duplicates_of(session: Session, *, customer_id: int, limit: int = 20) -> list[Candidate]:
    """The other live customers sharing this customer's e-mail, phone, or surname and
    postcode, oldest first: two statements, each answered through an index (e-mail, phone,
    postcode), never a scan. A tombstone or a redacted customer has none to merge."""
    name_key = name_postcode_key(Customer.surname, Customer.postcode)
    found = session.execute(
        select(Customer, name_key).where(Customer.id == customer_id)
    ).one_or_none()
    if found is None:
        raise ActionError(f"There is no customer with id {customer_id}.")
    customer, key = found
    if customer.merged_into_id is not None or customer.redacted_at is not None:
        return []
    shared = []
    if customer.email:
        shared.append(Customer.email == customer.email)
    if customer.phone:
        shared.append(Customer.phone == customer.phone)
    has_name = bool(customer.surname) and bool(customer.postcode)
    if has_name:
        forms = _postcode_forms(key.partition("|")[2], customer.postcode)
        # The postcode index is partial (live rows): SQLite uses it inside an OR only when
        # the branch itself says so; without it the whole table is scanned (0.4 s at 1M).
        shared.append(
            Customer.merged_into_id.is_(None) & Customer.postcode.in_(forms) & (name_key == key)
        )
    if not shared:
        return []
    rows = session.execute(
        select(Customer, name_key)
        .where(*_candidates(), Customer.id != customer.id, or_(*shared))
        .order_by(Customer.id)
        .limit(limit)
    )
    candidates = []
    for other, other_key in rows:
        reasons = tuple(
            reason for reason, same in (
                ("email", bool(customer.email) and other.email == customer.email),
                ("phone", bool(customer.phone) and other.phone == customer.phone),
                ("name_postcode", has_name and other_key == key),
            ) if same
        )
        if reasons:
            candidates.append(Candidate(other, reasons))
    return candidates
