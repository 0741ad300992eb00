"""Every foreign key to a customer is either moved by merge or deliberately left alone: a
new table that points at customers fails here until merge says what to do with it."""

from crm.actions.merge_records import NOT_MOVED, REFERENCES
from crm.models import Base


def _customer_references() -> set[tuple[str, str]]:
    return {
        (table.name, fk.parent.name)
        for table in Base.metadata.sorted_tables
        for fk in table.foreign_keys
        if fk.column.table.name == "customer" and fk.column.name == "id"
    }


def test_merge_handles_every_reference_to_a_customer():
    handled = {(ref.column.table.name, ref.column.name) for ref in REFERENCES}
    unhandled = _customer_references() - handled - set(NOT_MOVED)
    assert not unhandled, f"merge does not move or exclude: {sorted(unhandled)}"


def test_merge_names_no_reference_that_does_not_exist():
    declared = {(ref.column.table.name, ref.column.name) for ref in REFERENCES} | set(NOT_MOVED)
    assert declared <= _customer_references(), sorted(declared - _customer_references())


def test_each_reference_is_declared_once_with_its_own_kind():
    pairs = [(ref.column.table.name, ref.column.name) for ref in REFERENCES]
    assert len(pairs) == len(set(pairs))
    assert len({ref.kind for ref in REFERENCES}) == len(REFERENCES)
    assert not set(pairs) & set(NOT_MOVED)


def test_the_known_references_are_there():
    """A guard on the walk itself: it must see a self-reference and a second FK per table."""
    found = _customer_references()
    assert {("customer", "merged_into_id"), ("work_address", "landlord_id"),
            ("customer_tag", "customer_id"), ("customer_merge", "survivor_id")} <= found
