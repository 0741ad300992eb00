"""The personal-data registry covers the whole schema: every column that can hold what a
person typed has exactly one decision on its model, every decision names a real column, and
redaction reaches every table with something to erase. Adding a text column or a foreign key
to a customer without deciding about it fails here, naming it."""

from sqlalchemy import String

from crm.actions import redact
from crm.models import Base, Customer, PortalAccount
from crm.personal_data import (
    DERIVED_KIND,
    ERASE_KIND,
    KEEP_KIND,
    PLACEHOLDER_KIND,
    Decision,
    decisions_by_table,
    is_text,
    registry,
    template_columns,
)

KINDS = {KEEP_KIND, ERASE_KIND, PLACEHOLDER_KIND, DERIVED_KIND}
MAPPERS = Base.registry.mappers

# Every foreign key to a customer, and how redaction deals with the rows behind it.
CUSTOMER_LINKS = {
    "customer.merged_into_id": "tombstones merged into a redacted customer are redacted too",
    "customer.related_to_id": "the link is cut both ways (nothing ties another person to it)",
    "customer_tag.customer_id": "the tag links are removed",
    "contact.customer_id": "wiped",
    "branch.customer_id": "wiped",
    "work_address.customer_id": "wiped (occupier and address)",
    "work_address.landlord_id": "kept: another customer's property, pointing at a placeholder",
    "lead.customer_id": "wiped",
    "booking.customer_id": "title and contact e-mail wiped",
    "note.customer_id": "body wiped",
    "invoice.customer_id": "kept for retention; notes wiped",
    "credit_note.customer_id": "kept for retention; description wiped",
    "payment.customer_id": "kept for retention; reference wiped",
    "portal_account.customer_id": "disabled, login replaced, secrets erased",
    "customer_merge.survivor_id": "the before-merge snapshot is erased",
    "sent_message.customer_id": "the stored messages are deleted, and their index rows",
}


def _text_columns() -> dict[str, set[str]]:
    return {
        table.name: {column.name for column in table.columns if is_text(column)}
        for table in Base.metadata.sorted_tables
    }


def test_every_text_column_has_a_decision():
    declared = decisions_by_table(MAPPERS)
    missing = [
        f"{table}.{column}"
        for table, columns in _text_columns().items()
        for column in sorted(columns)
        if column not in declared.get(table, {})
    ]
    assert missing == [], f"declare these in __personal_data__ on their model: {missing}"


def test_every_decision_names_a_text_column_of_its_table():
    columns = _text_columns()
    stray = [
        f"{table}.{column}"
        for table, decisions in decisions_by_table(MAPPERS).items()
        for column in decisions
        if column not in columns[table]
    ]
    assert stray == []


def test_decisions_are_well_formed():
    for model, decisions in registry(MAPPERS).items():
        table = model.__table__
        for name, decision in decisions.items():
            where = f"{table.name}.{name}"
            assert isinstance(decision, Decision) and decision.kind in KINDS, where
            column = table.c[name]
            if decision.kind == ERASE_KIND and not column.nullable:
                assert decision.value is not None, f"{where} is NOT NULL: erase('neutral')"
            if decision.kind == PLACEHOLDER_KIND:
                fields = template_columns(decision.value)
                assert fields and all(f in table.c for f in fields), where
            if decision.value is not None and isinstance(column.type, String):
                assert len(decision.value) <= (column.type.length or 10**6), where


def test_registry_maps_each_model_to_its_columns():
    found = registry(MAPPERS)
    assert found[Customer]["surname"].kind == PLACEHOLDER_KIND
    assert found[Customer]["reference"].kind == KEEP_KIND
    assert found[Customer]["email"].kind == ERASE_KIND
    assert found[PortalAccount]["email"].value == "redacted-{id}@invalid"


def test_redaction_reaches_every_table_with_personal_columns(session):
    reached = {model for model, _ in redact.scopes(session, [0])}
    personal = {
        model for model, decisions in registry(MAPPERS).items()
        if any(d.kind != KEEP_KIND for d in decisions.values())
    }
    assert {m.__name__ for m in personal - reached} == set()
    derived = {
        (model.__name__, name)
        for model, decisions in registry(MAPPERS).items()
        for name, d in decisions.items()
        if d.kind == DERIVED_KIND
    }
    assert derived == {("Customer", "search_text")}  # rebuilt by redact._extra_values


def test_every_foreign_key_to_a_customer_is_handled():
    links = {
        f"{table.name}.{fk.parent.name}"
        for table in Base.metadata.sorted_tables
        for fk in table.foreign_keys
        if fk.column.table.name == "customer"
    }
    assert sorted(links - set(CUSTOMER_LINKS)) == [], "decide how redact (and merge) treat it"
    assert sorted(set(CUSTOMER_LINKS) - links) == []
