"""Business operations, one module per verb (docs/architecture.md, "Writing an action").
Each is a plain function that takes a session, keyword-only ids and the acting user, works
inside the caller's transaction (it flushes; the caller commits), writes one audit event and
raises ``ActionError`` to refuse. Bulk forms take a *selection*: a list of ids or a SELECT of ids (every row matching
a list's filter), and work set-based, never row by row through the ORM."""

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import Select, select

# How many changed references and skipped rows a result spells out; the counts are exact.
SAMPLE = 200


class ActionError(Exception):
    """An action refused; the message is a sentence a person can read."""


@dataclass(frozen=True)
class Skip:
    reference: str
    reason: str

    def __str__(self) -> str:
        return f"{self.reference} skipped: {self.reason}"


@dataclass(frozen=True)
class ActionResult:
    """What an action did: how many records changed (and the first ``SAMPLE`` of their
    references), what was skipped and why, and a one-line summary."""

    verb: str
    changed: int = 0
    changed_refs: tuple[str, ...] = ()
    skipped: tuple[Skip, ...] = ()
    skipped_count: int = 0
    message: str = ""
    details: dict = field(default_factory=dict)


Selection = Iterable[int] | Select


def ids_select(selection: Selection, id_column) -> Select:
    """A SELECT of ids from either form of selection. A list of ids from a browser is only a
    request: the action still checks each row itself."""
    if isinstance(selection, Select):
        return selection
    ids = sorted({int(i) for i in selection})
    return select(id_column).where(id_column.in_(ids))
