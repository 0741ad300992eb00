"""Every text column has one length limit, held by the model, the forms and the database:
long free text used to be unbounded (5 MB customer notes, a 5 MB lead message, 200 KB
invoice notes that took the PDF 5 s)."""

import pytest
from sqlalchemy import String, Text, insert
from sqlalchemy.exc import IntegrityError

from crm.models import Base, Customer, Invoice, Lead, Note
from crm.models.base import TEXT_LIMITS, utcnow
from tests.factories import make_customer

# Derived from bounded columns (crm.validation.customer_search_text), never typed.
DERIVED = {("customer", "search_text")}


def test_every_text_column_has_a_limit():
    unbounded = [
        (table.name, column.name)
        for table in Base.metadata.sorted_tables for column in table.columns
        if isinstance(column.type, String) and (table.name, column.name) not in DERIVED
        and not (column.type.length or column.info.get("max_length"))
    ]
    assert unbounded == []


def test_each_long_text_limit_is_on_its_column_and_checked_by_postgresql():
    for (table, column), limit in TEXT_LIMITS.items():
        col = Base.metadata.tables[table].c[column]
        assert isinstance(col.type, Text) and col.info["max_length"] == limit
        names = {c.name for c in Base.metadata.tables[table].constraints}
        assert f"ck_{table}_{column}_length" in names


CASES = [
    (Note, "body", lambda c: {"customer_id": c.id, "kind": "note"}),
    (Lead, "message", lambda c: {"surname": "Lead", "status": "new"}),
    (Customer, "notes", lambda c: {"reference": "C-LIMIT", "surname": "Long",
                                   "address_line_1": "1 Road", "postcode": "LS1 1AA"}),
    (Invoice, "notes", lambda c: {"customer_id": c.id, "issue_date": utcnow().date(),
                                  "due_date": utcnow().date()}),
    (Invoice, "address_format", lambda c: {"customer_id": c.id, "issue_date": utcnow().date(),
                                           "due_date": utcnow().date()}),
]


@pytest.mark.parametrize(("model", "column", "values"), CASES,
                         ids=[f"{m.__tablename__}.{c}" for m, c, _ in CASES])
def test_the_database_refuses_text_past_the_limit_whoever_writes_it(session, model, column,
                                                                      values):
    owner = make_customer(session)
    session.commit()
    limit = TEXT_LIMITS[(model.__tablename__, column)]
    row = {"version": 1, "created_at": utcnow(), "updated_at": utcnow(), **values(owner)}

    session.execute(insert(model.__table__).values(**row, **{column: "x" * limit}))
    session.rollback()
    with pytest.raises(IntegrityError, match=f"{model.__tablename__}_{column}_length"):
        session.execute(insert(model.__table__).values(**row, **{column: "x" * (limit + 1)}))
    session.rollback()
