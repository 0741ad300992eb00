"""Redaction (the right to erasure): after it, none of the person's data is left in any text
column of any table; the invoices, credit notes and payments keep their numbers, dates and
amounts; nothing else changes; a wrong word, a second run or a failure part-way change
nothing at all."""

import json
import uuid
from dataclasses import dataclass, field

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from crm import ledger
from crm.actions import ActionError
from crm.actions import redact as redact_module
from crm.actions.guards import ensure_not_redacted
from crm.actions.redact import (
    CONFIRMATION_WORD,
    redact_customer,
    redact_customers,
)
from crm.blocklist import is_email_blocked
from crm.extensions import db
from crm.models import (
    Allocation,
    AuditEvent,
    Base,
    BlockedEmail,
    Booking,
    CreditNote,
    CreditNoteLine,
    Customer,
    CustomerMerge,
    Invoice,
    InvoiceLine,
    Lead,
    Note,
    Payment,
    PortalAccount,
    PortalToken,
    ServiceReminder,
    WorkAddress,
)
from crm.models.base import utcnow
from crm.personal_data import is_text
from crm.search_index import search_customers
from crm.security import email_block_hash
from crm.validation import customer_search_text
from tests.conftest import create_user
from tests.factories import (
    make_allocation,
    make_booking,
    make_branch,
    make_contact,
    make_credit_note,
    make_customer,
    make_invoice,
    make_invoice_with_lines,
    make_lead,
    make_note,
    make_payment,
    make_reminder,
    make_tag,
    make_work_address,
)


@dataclass
class Person:
    """A customer with a row of every kind that can hold its data, each value a token that
    appears nowhere else."""

    customer: Customer
    tokens: set[str] = field(default_factory=set)

    def token(self, label: str, length: int = 10) -> str:
        value = (label + uuid.uuid4().hex)[:length]
        self.tokens.add(value)
        return value

    def email(self, label: str) -> str:
        # eight random hex digits whatever the label's length: two ("newlogin" + 2) let the
        # other customer's address share a token one run in 256
        return f"{self.token(label, len(label) + 8)}@example.com"


def _customer_values(p: Person) -> dict:
    return dict(
        title="Dr", first_name=p.token("fn"), surname=p.token("sn"),
        company_name=p.token("co"), email=p.email("em"), phone=p.token("ph"),
        advertising_source=p.token("src"), third_party_reference=p.token("tpr"),
        notes=p.token("notes", 20), address_line_1=p.token("al1"),
        address_line_2=p.token("al2"), town=p.token("town"), county=p.token("cty"),
        postcode=p.token("pc"),
    )


def make_person(session, *, with_tombstones: bool = True) -> Person:
    p = Person(customer=None)
    customer = p.customer = make_customer(session, **_customer_values(p))
    make_contact(session, customer, title="Mr", first_name=p.token("cfn"),
                 surname=p.token("csn"), position=p.token("pos"), email=p.email("cem"),
                 phone=p.token("cph"), mobile=p.token("cmob"), is_primary=True)
    make_branch(session, customer, name=p.token("br"), phone=p.token("bph"),
                address_line_1=p.token("bal"), address_line_2=p.token("bal2"),
                town=p.token("btown"), county=p.token("bcty"), postcode=p.token("bpc"))
    work = make_work_address(
        session, customer, address_line_1=p.token("wal"), address_line_2=p.token("wal2"),
        town=p.token("wtown"), county=p.token("wcty"), postcode=p.token("wpc"),
        occupier_title="Ms", occupier_first_name=p.token("ofn"),
        occupier_surname=p.token("osn"), occupier_phone=p.token("oph"),
        occupier_email=p.email("oem"),
    )
    make_reminder(session, work, description=p.token("rem", 30))
    make_note(session, customer, body=p.token("note", 30))
    make_note(session, None, work_address=work, body=p.token("wnote", 30))
    lead = make_lead(session, customer=customer, first_name=p.token("lfn"),
                     surname=p.token("lsn"), company_name=p.token("lco"),
                     email=p.email("lem"), phone=p.token("lph"), source=p.token("lsrc"),
                     message=p.token("lmsg", 30))
    make_lead(session, surname=p.token("same"), email=customer.email)  # not linked
    make_lead(session, surname=p.token("csame"), email=customer.contacts[0].email)
    make_booking(session, customer, work_address=work, lead=lead, title=p.token("bk", 30),
                 contact_email=p.email("bem"))
    invoice = make_invoice_with_lines(session, customer,
                                      [{"description": p.token("line", 30),
                                        "unit_price": "120.00"}],
                                      notes=p.token("inv", 30))
    note = make_credit_note(session, customer, amount="20.00", invoice=invoice,
                            description=p.token("cn", 30))
    note.lines[0].description = p.token("cnl", 30)
    payment = make_payment(session, customer, amount="50.00", reference=p.token("pay", 30))
    make_allocation(session, invoice, payment=payment, amount="50.00")
    make_allocation(session, invoice, credit_note=note, amount="20.00")
    account = PortalAccount(customer=customer, email=p.email("portal"),
                            password_hash=p.token("pwh", 60))
    session.add(account)
    # A change of login e-mail waiting for its confirmation: the new address is theirs too.
    session.add(PortalToken(account=account, purpose="email", token_hash=uuid.uuid4().hex,
                            new_email=p.email("newlogin"), expires_at=utcnow()))
    customer.tags.append(make_tag(session))
    # A colleague's note on a block that names the person (the reason is a code).
    session.add(BlockedEmail(kind="domain", domain=f"d{uuid.uuid4().hex[:8]}.example",
                             reason="abuse", note=f"{customer.surname} was abusive on the phone"))
    if with_tombstones:
        _tombstones(session, p)
    session.flush()
    return p


def _tombstones(session, p: Person) -> None:
    """Two older records of the same person merged away: one into the customer, one into
    that tombstone (merged_into_id set directly, as a merge leaves it)."""
    first = make_customer(session, surname=p.token("ts1"), email=p.email("ts1em"),
                          merged_into_id=p.customer.id)
    make_contact(session, first, surname=p.token("ts1c"))
    make_note(session, first, body=p.token("ts1n", 30))
    make_customer(session, surname=p.token("ts2"), phone=p.token("ts2ph"),
                  email=p.email("ts2em"), merged_into_id=first.id)
    session.add(CustomerMerge(survivor=p.customer, duplicate_ids=[first.id],
                              survivor_before={"surname": p.token("before"),
                                               "email": p.email("bfem")}))


def dump(session) -> dict:
    """Every value of every text column of every table, keyed by (table, column, row)."""
    found = {}
    for table in Base.metadata.sorted_tables:
        columns = [c for c in table.columns if is_text(c)]
        if not columns:
            continue
        keys = list(table.primary_key.columns)
        for row in session.execute(select(*keys, *columns)):
            for column, value in zip(columns, row[len(keys):], strict=True):
                if isinstance(value, dict | list):
                    value = json.dumps(value)
                found[(table.name, column.name, tuple(row[:len(keys)]))] = value
    return found


def where(tokens: set[str], values: dict) -> list[tuple]:
    """(table, column, token) wherever one of ``tokens`` appears, in any letter case."""
    return sorted(
        (key[0], key[1], token)
        for key, value in values.items()
        if value
        for token in tokens
        if token.lower() in str(value).lower()
    )


def money_rows(session) -> dict:
    """The kept documents and the stored ledger, as the database holds them."""
    tables = {
        Invoice: (Invoice.id, Invoice.customer_id, Invoice.number, Invoice.status,
                  Invoice.issue_date, Invoice.due_date, Invoice.subtotal, Invoice.tax_total,
                  Invoice.total, Invoice.outstanding),
        InvoiceLine: (InvoiceLine.id, InvoiceLine.invoice_id, InvoiceLine.category,
                      InvoiceLine.quantity, InvoiceLine.unit_price, InvoiceLine.tax_rate,
                      InvoiceLine.net_amount, InvoiceLine.tax_amount),
        CreditNote: (CreditNote.id, CreditNote.customer_id, CreditNote.invoice_id,
                     CreditNote.number, CreditNote.status, CreditNote.issue_date,
                     CreditNote.total),
        CreditNoteLine: (CreditNoteLine.id, CreditNoteLine.credit_note_id,
                         CreditNoteLine.unit_price, CreditNoteLine.net_amount),
        Payment: (Payment.id, Payment.customer_id, Payment.received_on, Payment.method,
                  Payment.amount),
        Allocation: (Allocation.id, Allocation.invoice_id, Allocation.payment_id,
                     Allocation.credit_note_id, Allocation.amount),
        Customer: (Customer.id, Customer.reference, Customer.balance,
                   Customer.account_credit, Customer.overdue_amount,
                   Customer.oldest_overdue_on, Customer.next_due_on),
    }
    return {
        model.__name__: session.execute(select(*cols).order_by(cols[0])).all()
        for model, cols in tables.items()
    }


def audit_events(session, verb: str = "redact") -> list[AuditEvent]:
    return session.execute(select(AuditEvent).where(AuditEvent.verb == verb)).scalars().all()


@pytest.fixture
def owner(session):
    return create_user("owner")


@pytest.fixture
def person(session):
    p = make_person(session)
    session.commit()
    return p


@pytest.fixture
def other(session):
    p = make_person(session)
    session.commit()
    return p


def redact(session, person: Person, actor, **kwargs):
    result = redact_customer(session, customer_id=person.customer.id, actor=actor,
                             confirmation=f"  {CONFIRMATION_WORD} ", **kwargs)
    session.commit()
    return result


# -- what is left -----------------------------------------------------------------------


def test_none_of_the_persons_data_is_left_in_any_text_column(session, person, other, owner):
    # Another customer's booking made from the person's address.
    elsewhere = make_booking(session, other.customer, title=other.token("obk", 30),
                             contact_email=person.customer.email)
    session.commit()

    result = redact(session, person, owner)

    values = dump(session)
    assert where(person.tokens, values) == []
    assert {token for *_, token in where(other.tokens, values)} == other.tokens
    assert session.get(Booking, elsewhere.id).contact_email is None
    assert result.changed == 1 and result.changed_refs == (person.customer.reference,)
    assert result.details == {"tombstones": 2, "email_blocked": False, "messages_removed": 0}
    assert result.message == "Redacted 1 customer and 2 merged records of theirs."


def test_the_redacted_records_read_as_placeholders(session, person, owner):
    before = session.execute(
        select(Customer.version).where(Customer.id == person.customer.id)
    ).scalar_one()

    redact(session, person, owner)

    customer = session.get(Customer, person.customer.id)
    reference = customer.reference
    assert customer.surname == f"Redacted customer {reference}"
    assert customer.display_name == f"Redacted customer {reference}"
    assert (customer.title, customer.first_name, customer.company_name, customer.email,
            customer.phone, customer.notes, customer.address_line_2, customer.town) == (None,) * 8
    assert (customer.address_line_1, customer.postcode, customer.country) == ("Redacted", "", "GB")
    assert not (customer.email_opt_in or customer.sms_opt_in or customer.post_opt_in)
    assert customer.redacted_at is not None and customer.version == before + 1
    assert customer.search_text == customer_search_text(
        reference, None, customer.surname, None, None, None, ""
    )
    assert customer.tags == []
    assert customer.email_blocked is False
    contact = customer.contacts[0]
    assert (contact.surname, contact.email, contact.email_opt_in) == ("Redacted contact", None,
                                                                      False)
    assert customer.branches[0].name == "Redacted branch"
    work = session.execute(select(WorkAddress).filter_by(customer_id=customer.id)).scalar_one()
    assert (work.occupier_surname, work.occupier_email, work.address_line_1) == (
        "Occupier", None, "Redacted")
    reminder = session.execute(
        select(ServiceReminder).filter_by(work_address_id=work.id)
    ).scalar_one()
    assert (reminder.description, reminder.status) == ("[redacted]", "cancelled")
    bodies = session.execute(
        select(Note.body).where((Note.customer_id == customer.id) | (Note.work_address_id
                                                                       == work.id))
    ).scalars().all()
    assert bodies == ["[redacted]", "[redacted]"]
    account = session.execute(select(PortalAccount).filter_by(customer_id=customer.id)).scalar_one()
    assert account.email == f"redacted-{account.id}@invalid"
    assert (account.password_hash, account.disabled) == (None, True)
    merge = session.execute(select(CustomerMerge).filter_by(survivor_id=customer.id)).scalar_one()
    assert merge.survivor_before is None and merge.duplicate_ids != []


def test_leads_from_the_persons_addresses_are_wiped(session, person, owner):
    emails = {person.customer.email, person.customer.contacts[0].email}
    redact(session, person, owner)

    leads = session.execute(select(Lead)).scalars().all()
    assert len(leads) == 3
    assert {(lead.surname, lead.email) for lead in leads} == {("[redacted]", None)}
    assert not emails & set(session.execute(select(Lead.email)).scalars())


def test_tombstones_merged_into_the_customer_are_redacted_with_it(session, person, owner):
    tombstones = session.execute(
        select(Customer).where(Customer.merged_into_id.is_not(None))
    ).scalars().all()

    redact(session, person, owner)

    for tombstone in tombstones:
        session.refresh(tombstone)
        assert tombstone.redacted_at is not None
        assert tombstone.surname == f"Redacted customer {tombstone.reference}"


def test_the_search_no_longer_finds_the_person(session, person, owner):
    surname, reference = person.customer.surname, person.customer.reference
    dialect = db.engine.dialect.name

    def found(term):
        query, _ = search_customers(session.query(Customer.id), dialect, [term.lower()])
        return query.all()

    assert found(surname) != []
    redact(session, person, owner)
    assert found(surname) == []
    assert found(reference) != [] and found("Redacted customer") != []


# -- what is kept -----------------------------------------------------------------------


def test_invoices_credit_notes_and_payments_keep_numbers_dates_and_amounts(
    session, person, other, owner
):
    before = money_rows(session)

    redact(session, person, owner)

    assert money_rows(session) == before
    assert ledger.differences(session) == ([], 0)
    invoice = session.execute(
        select(Invoice).filter_by(customer_id=person.customer.id)
    ).scalar_one()
    assert invoice.notes is None and invoice.lines[0].description == "[redacted]"
    assert str(invoice.customer) == f"{invoice.customer.reference} Redacted customer " \
                                     f"{invoice.customer.reference}"


def test_other_customers_are_untouched(session, person, other, owner):
    def rows_of(p):
        values = dump(session)
        return {key: value for key, value in values.items()
                if where(p.tokens, {key: value})}

    before = rows_of(other)
    redact(session, person, owner)
    assert rows_of(other) == before


# -- refusals and repeats ---------------------------------------------------------------


@pytest.mark.parametrize("word", ["", "redact", "REDACTED", "yes", None])
def test_a_wrong_confirmation_word_changes_nothing(session, person, owner, word):
    before = dump(session)
    with pytest.raises(ActionError, match=r"^Type REDACT to confirm; nothing was changed\.$"):
        redact_customers(session, selection=[person.customer.id], actor=owner,
                         confirmation=word)
    session.commit()
    assert dump(session) == before
    assert audit_events(session) == []


def test_an_unknown_customer_is_refused(session, owner):
    with pytest.raises(ActionError, match="no customer #999999"):
        redact_customer(session, customer_id=999999, actor=owner, confirmation="REDACT")


def test_a_redacted_customer_is_skipped_and_nothing_changes(session, person, owner):
    redact(session, person, owner)
    before = dump(session)

    again = redact(session, person, owner)

    assert again.changed == 0 and again.skipped_count == 1
    assert [str(s) for s in again.skipped] == [
        f"{person.customer.reference} skipped: already redacted"]
    assert again.message == "Nothing was redacted; 1 skipped."
    assert dump(session) == before
    assert len(audit_events(session)) == 1


def test_a_tombstone_cannot_be_redacted_on_its_own(session, person, owner):
    tombstone = session.execute(
        select(Customer).where(Customer.merged_into_id == person.customer.id)
    ).scalar_one()
    before = dump(session)

    result = redact_customers(session, selection=[tombstone.id], actor=owner,
                              confirmation="REDACT")

    assert result.changed == 0
    assert result.skipped[0].reason == (
        f"merged into {person.customer.reference}; redact that customer")
    assert dump(session) == before


def test_ensure_not_redacted_refuses_edits_of_a_redacted_customer(session, person, owner):
    ensure_not_redacted(person.customer)  # not yet: no refusal
    redact(session, person, owner)
    with pytest.raises(ActionError) as refused:
        ensure_not_redacted(session.get(Customer, person.customer.id))
    assert str(refused.value) == (
        f"{person.customer.reference} has been redacted; it can no longer be edited.")


def test_an_edit_begun_before_the_redaction_cannot_save_over_it(session, person, owner):
    with Session(db.engine) as editor:
        stale = editor.get(Customer, person.customer.id)
        redact(session, person, owner)
        stale.first_name = "Back again"
        with pytest.raises(StaleDataError):
            editor.flush()
        editor.rollback()


def test_a_failure_part_way_leaves_everything_unchanged(session, person, other, owner,
                                                       monkeypatch):
    before, money = dump(session), money_rows(session)
    blocks = session.execute(select(func.count()).select_from(BlockedEmail)).scalar()
    real = redact_module._extra_values

    def fail_at_the_customer(model, now):
        if model is Customer:  # the last table, after every other has been wiped
            raise RuntimeError("disk full")
        return real(model, now)

    monkeypatch.setattr(redact_module, "_extra_values", fail_at_the_customer)
    with pytest.raises(RuntimeError):
        redact(session, person, owner, block_email=True)
    session.rollback()

    assert dump(session) == before
    assert money_rows(session) == money
    assert audit_events(session) == [] and audit_events(session, "block_email") == []
    assert session.execute(select(func.count()).select_from(BlockedEmail)).scalar() == blocks


# -- bulk, block, audit -----------------------------------------------------------------


def test_bulk_redaction_over_a_filtered_selection(session, owner):
    people = [make_person(session, with_tombstones=False) for _ in range(3)]
    for p in people:
        p.customer.company_name = "Bulk Builders " + p.customer.company_name
    done = make_person(session, with_tombstones=False)
    session.commit()
    redact(session, done, owner)
    tombstone = make_customer(session, company_name="Bulk Builders (old)",
                              merged_into_id=people[0].customer.id)
    bystander = make_person(session, with_tombstones=False)
    session.commit()

    # Every customer matching a list filter: the filter reads a column redaction changes.
    # (The redacted one is picked by id: its company name is gone already.)
    selection = select(Customer.id).where(
        Customer.company_name.like("Bulk Builders%") | (Customer.id == done.customer.id)
    )
    result = redact_customers(session, selection=selection, actor=owner,
                              confirmation="REDACT")
    session.commit()

    references = tuple(p.customer.reference for p in people)
    assert (result.changed, result.changed_refs) == (3, references)
    assert result.skipped_count == 2
    assert {s.reason for s in result.skipped} == {
        "already redacted", f"merged into {people[0].customer.reference}; redact that customer"}
    assert result.message == "Redacted 3 customers and 1 merged record of theirs; 2 skipped."
    values = dump(session)
    assert where(set().union(*(p.tokens for p in people)), values) == []
    assert {token for *_, token in where(bystander.tokens, values)} == bystander.tokens
    assert session.get(Customer, tombstone.id).redacted_at is not None
    events = audit_events(session)
    summary = next(e for e in events if e.subject_id is None)
    assert summary.details == {"email_blocked": False, "count": 3}
    # and one row per customer, for each customer's timeline
    each = sorted((e.subject_id, e.details["summary_id"]) for e in events
                  if e.details.get("summary_id"))  # (the earlier redaction of `done` has none)
    assert each == sorted((p.customer.id, summary.id) for p in people)


def test_the_block_option_keeps_the_address_blocked_after_redaction(session, person, owner):
    email, old = person.customer.email, session.execute(
        select(Customer.email).where(Customer.merged_into_id == person.customer.id)
    ).scalar_one()

    result = redact(session, person, owner, block_email=True, block_reason="abuse")

    assert session.get(Customer, person.customer.id).email is None
    assert is_email_blocked(session, email) and is_email_blocked(session, old.upper())
    block = session.execute(
        select(BlockedEmail).where(BlockedEmail.address_hash == email_block_hash(email))
    ).scalar_one()
    assert (block.kind, block.reason, block.created_by_id) == ("address", "abuse",
                                                              owner.id)
    assert session.get(Customer, person.customer.id).email_blocked is True
    assert result.details["email_blocked"] is True and result.details["emails_blocked"] == 3
    assert audit_events(session)[0].details == {"email_blocked": True}
    assert where(person.tokens, dump(session)) == []


def test_the_block_option_without_a_reason_says_why_itself(session, person, owner):
    redact(session, person, owner, block_email=True)
    made = session.execute(select(BlockedEmail.reason, BlockedEmail.note)
                           .where(BlockedEmail.kind == "address")).all()
    assert made and set(made) == {(redact_module.BLOCK_REASON, None)}


def test_block_notes_naming_the_person_are_erased_and_others_kept(session, person, other,
                                                                 owner):
    redact(session, person, owner)

    notes = session.execute(select(BlockedEmail.note).order_by(BlockedEmail.id)).scalars().all()
    assert notes == [None, f"{other.customer.surname} was abusive on the phone"]


def test_the_audit_event_says_who_and_when_never_what(session, person, owner):
    redact(session, person, owner)

    [event] = audit_events(session)
    assert (event.actor_id, event.actor_label) == (owner.id, owner.email)
    assert (event.subject_type, event.subject_id) == ("Customer", person.customer.id)
    assert event.details == {"email_blocked": False}
    assert event.created_at is not None


def test_a_merge_record_naming_the_customer_as_duplicate_is_wiped(session, person, other,
                                                                  owner):
    # An undone merge of the person into the other customer keeps the other's snapshot.
    undone = CustomerMerge(survivor=other.customer, duplicate_ids=[person.customer.id],
                           survivor_before={"surname": "Snapshot"})
    unrelated = CustomerMerge(survivor=other.customer, duplicate_ids=[other.customer.id + 10**6],
                              survivor_before={"surname": "Unrelated"})
    session.add_all([undone, unrelated])
    session.commit()

    redact(session, person, owner)

    assert session.get(CustomerMerge, undone.id).survivor_before is None
    assert session.get(CustomerMerge, unrelated.id).survivor_before == {"surname": "Unrelated"}


def test_long_selections_are_redacted_in_parts(session, owner, monkeypatch):
    monkeypatch.setattr(redact_module, "CHUNK", 2)
    people = [make_person(session) for _ in range(3)]  # 3 customers, 6 tombstones
    session.commit()
    emails = [p.customer.email for p in people]

    result = redact_customers(session, selection=[p.customer.id for p in people], actor=owner,
                              confirmation="REDACT", block_email=True)
    session.commit()

    assert (result.changed, result.details["tombstones"]) == (3, 6)
    assert result.details["emails_blocked"] == 9
    assert where(set().union(*(p.tokens for p in people)), dump(session)) == []
    assert all(is_email_blocked(session, email) for email in emails)
    # one summary and one row per selected customer
    assert sorted(e.subject_id or 0 for e in audit_events(session)) == sorted(
        [0, *(p.customer.id for p in people)])


def test_rows_with_nothing_personal_are_not_rewritten(session, person, owner):
    plain = make_invoice(session, person.customer, amount="10.00")  # no notes
    session.commit()
    version = plain.version

    redact(session, person, owner)

    session.refresh(plain)
    assert (plain.version, plain.notes) == (version, None)
    assert plain.lines[0].description == "[redacted]"
