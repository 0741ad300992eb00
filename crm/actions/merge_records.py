"""What a customer merge and its undo both work from: every foreign key to ``customer.id``
(``REFERENCES``, with how a person counts the rows behind it), the fields whose value the
user chooses (``FIELDS``), the table that records each row moved (``MOVES``) and the
ledger recompute that follows a move either way.

``crm.actions.merge`` moves rows from these declarations and ``crm.actions.merge_undo`` puts
them back; ``tests/unit/test_merge_coverage.py`` fails when the schema gains a reference
that ``REFERENCES`` does not name (or ``NOT_MOVED`` does not explain).
"""

from dataclasses import dataclass

from sqlalchemy import Column
from sqlalchemy.orm import Session

from crm import ledger
from crm.actions import ActionError
from crm.models import (
    Booking,
    Branch,
    Contact,
    CreditNote,
    Customer,
    CustomerMergeMove,
    Invoice,
    Lead,
    Note,
    Payment,
    PortalAccount,
    SentMessage,
    WorkAddress,
    customer_tag,
)

MOVES = CustomerMergeMove.__table__
CUSTOMERS = Customer.__table__


@dataclass(frozen=True)
class Reference:
    """A foreign key to ``customer.id`` and how a person counts the rows behind it."""

    kind: str  # the key of preview counts and of ``MergeResult.moved``
    one: str
    many: str
    column: Column

    def noun(self, count: int) -> str:
        return f"{count} {self.one if count == 1 else self.many}"


REFERENCES: tuple[Reference, ...] = (
    Reference("contacts", "contact", "contacts", Contact.__table__.c.customer_id),
    Reference("branches", "branch", "branches", Branch.__table__.c.customer_id),
    Reference("work_addresses", "work address", "work addresses",
              WorkAddress.__table__.c.customer_id),
    Reference("landlord_work_addresses", "work address as landlord",
              "work addresses as landlord", WorkAddress.__table__.c.landlord_id),
    Reference("bookings", "booking", "bookings", Booking.__table__.c.customer_id),
    Reference("leads", "lead", "leads", Lead.__table__.c.customer_id),
    Reference("notes", "note", "notes", Note.__table__.c.customer_id),
    Reference("invoices", "invoice", "invoices", Invoice.__table__.c.customer_id),
    Reference("credit_notes", "credit note", "credit notes", CreditNote.__table__.c.customer_id),
    Reference("payments", "payment", "payments", Payment.__table__.c.customer_id),
    Reference("portal_account", "portal account", "portal accounts",
              PortalAccount.__table__.c.customer_id),
    Reference("sent_messages", "e-mail sent", "e-mails sent",
              SentMessage.__table__.c.customer_id),
    # Not moved but united: the survivor gets every duplicate's tags, once each.
    Reference("tags", "tag", "tags", customer_tag.c.customer_id),
    # Records merged into a duplicate earlier now point at the survivor, so that their old
    # addresses lead to a live record in one step.
    Reference("merged_records", "record merged earlier", "records merged earlier",
              CUSTOMERS.c.merged_into_id),
    # Hidden related people (a spouse, a child) now belong to the survivor.
    Reference("related_people", "related person", "related people",
              CUSTOMERS.c.related_to_id),
)

KINDS: tuple[str, ...] = tuple(ref.kind for ref in REFERENCES)

# References to a customer that a merge deliberately leaves where they are.
NOT_MOVED: dict[tuple[str, str], str] = {
    # History: an older merge keeps naming the survivor it made, even once that survivor is
    # itself merged away. Its undo then refuses until the later merge is undone.
    ("customer_merge", "survivor_id"): "the record of an earlier merge",
}

# (name, label) of every field whose value the user chooses; the last three are money.
FIELDS: tuple[tuple[str, str], ...] = (
    ("kind", "Kind"), ("customer_type", "Type"), ("title", "Title"),
    ("first_name", "First name"), ("surname", "Surname"), ("company_name", "Company name"),
    ("email", "E-mail"), ("phone", "Phone"), ("address_line_1", "Address line 1"),
    ("address_line_2", "Address line 2"), ("town", "Town"), ("county", "County"),
    ("postcode", "Postcode"), ("country", "Country"),
    ("advertising_source", "Advertising source"), ("notes", "Notes"),
    ("email_opt_in", "E-mail opt-in"), ("sms_opt_in", "SMS opt-in"),
    ("post_opt_in", "Post opt-in"), ("creditor_days", "Creditor days"),
    ("price_book", "Price book"), ("third_party_reference", "Third-party reference"),
)
FINANCE_FIELDS = frozenset({"creditor_days", "price_book", "third_party_reference"})
FIELD_LABELS = dict(FIELDS)


def and_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def recompute_ledger(session: Session, customer_ids: list[int]) -> None:
    """The moved documents now count for the survivor; tombstones end at zero."""
    session.expire_all()
    ledger.recompute(session, customer_ids)
    try:
        ledger.check_consistency(session, customer_ids)
    except ledger.LedgerError as exc:
        raise ActionError(str(exc)) from exc
