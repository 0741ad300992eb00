"""The migrations are the only way the schema is made: an empty database upgraded to head
must match the models exactly, downgrade and upgrade again cleanly, and name every constraint
by the naming convention (so later migrations can drop and alter them by name)."""

import ast
import os
import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import ClauseElement

from crm.extensions import db, migrate
from crm.models import Base
from crm.models.sequence import PREFIXES
from tests.conftest import _drop_postgres_database, _postgres_database, make_app

ENV_PY = Path(__file__).resolve().parent.parent / "migrations" / "env.py"


def _env_include_object():
    """The very ``include_object`` function of migrations/env.py (env.py itself cannot be
    imported: it runs the migrations when loaded)."""
    tree = ast.parse(ENV_PY.read_text())
    node = next(
        n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "include_object"
    )
    namespace: dict = {}
    exec(compile(ast.Module(body=[node], type_ignores=[]), str(ENV_PY), "exec"), namespace)  # noqa: S102
    return namespace["include_object"]


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_app(request, tmp_path):
    """An app bound to a brand-new, empty database (nothing created yet)."""
    base = os.environ.get("CRM_TEST_DATABASE_URL")
    name = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    elif base:
        name = f"crm_migrations_{uuid.uuid4().hex[:8]}"
        url = _postgres_database(base, name)
    else:
        pytest.skip("PostgreSQL: set CRM_TEST_DATABASE_URL")
    application = make_app(url)
    with application.app_context():
        assert inspect(db.engine).get_table_names() == [], "the database should start empty"
        yield application
        db.session.remove()
        db.engine.dispose()
    if name:
        _drop_postgres_database(base, name)


def _model_diff() -> list:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"include_object": _env_include_object(), "compare_type": True}
        )
        return compare_metadata(context, Base.metadata)


def _schema_snapshot() -> dict:
    """Everything about the schema a query or a later migration could depend on."""
    snapshot: dict = {}
    if db.engine.dialect.name == "sqlite":
        rows = db.session.execute(
            text("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name")
        ).all()
        # A table's CREATE text is SQLite's own record of how it was made (a batch migration
        # that copies a table writes it anew): its structure is compared through the
        # inspector below; indexes and triggers are compared as written.
        snapshot["sqlite_master"] = [
            (kind, name, table, None if kind == "table" else sql)
            for kind, name, table, sql in rows
        ]
    else:
        snapshot["indexes"] = db.session.execute(
            text("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
                 "ORDER BY indexname")
        ).all()
        snapshot["extensions"] = _pg_extensions()
    inspector = inspect(db.engine)
    for table in sorted(inspector.get_table_names()):
        snapshot[table] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                for c in inspector.get_columns(table)
            ],
            "pk": inspector.get_pk_constraint(table),
            "fks": sorted(inspector.get_foreign_keys(table), key=lambda fk: fk["name"] or ""),
            "indexes": sorted(inspector.get_indexes(table), key=lambda ix: ix["name"]),
            "uniques": sorted(inspector.get_unique_constraints(table), key=lambda u: u["name"]),
            "checks": sorted(inspector.get_check_constraints(table), key=lambda c: c["name"]),
        }
    db.session.rollback()
    return _plain(snapshot)


def _plain(value):
    """Reflected values with SQL expressions (partial index predicates) as their text."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, ClauseElement):
        return str(value)
    return value


def _pg_extensions() -> set[str]:
    return set(db.session.execute(text("SELECT extname FROM pg_extension")).scalars())


def _search_index_objects() -> set[str]:
    """The hand-made search objects that exist (their names)."""
    if db.engine.dialect.name == "sqlite":
        names = db.session.execute(
            text("SELECT name FROM sqlite_master WHERE name LIKE 'customer_fts%' "
                 "AND type IN ('table', 'trigger')")
        ).scalars()
    else:
        names = db.session.execute(
            text("SELECT indexname FROM pg_indexes WHERE indexname = 'ix_customer_search_trgm'")
        ).scalars()
    found = set(names)
    if db.engine.dialect.name == "postgresql" and "pg_trgm" in _pg_extensions():
        found.add("pg_trgm")
    db.session.rollback()
    return found


def _expected_search_objects() -> set[str]:
    if db.engine.dialect.name == "sqlite":
        return {"customer_fts", "customer_fts_ai", "customer_fts_ad", "customer_fts_au"}
    return {"ix_customer_search_trgm", "pg_trgm"}


def _current_revision() -> str | None:
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def test_empty_database_upgraded_to_head_matches_the_models(empty_app):
    upgrade()

    assert _model_diff() == []
    head = ScriptDirectory.from_config(migrate.get_config()).get_current_head()
    assert _current_revision() == head


def test_search_index_objects_are_made_by_the_migrations(empty_app):
    upgrade()

    assert _expected_search_objects() <= _search_index_objects()


def _index_sql(name: str) -> str | None:
    """The CREATE INDEX statement the database keeps for ``name`` (None: no such index)."""
    if db.engine.dialect.name == "sqlite":
        query = "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :n"
    else:
        query = "SELECT indexdef FROM pg_indexes WHERE indexname = :n"
    found = db.session.execute(text(query), {"n": name}).scalar()
    db.session.rollback()
    return found


def test_the_duplicates_name_key_index_is_made_by_the_migrations(empty_app):
    """Autogenerate cannot compare expression indexes (migrations/env.py leaves this one
    out), so check it here: an index over the very expression the duplicates finder groups
    by, over live customers only."""
    upgrade()

    made = _index_sql("ix_customer_name_postcode_key")
    assert made is not None
    flat = " ".join(made.lower().replace("::text", "").replace("(", " ").replace(")", " ").split())
    assert "lower surname" in flat and "replace upper postcode" in flat
    assert "merged_into_id is null" in flat


def test_downgrading_the_newest_revision_and_upgrading_again_restores_the_schema(empty_app):
    upgrade()
    before = _schema_snapshot()
    script = ScriptDirectory.from_config(migrate.get_config())
    newest = script.get_revision(script.get_current_head())

    downgrade(revision="-1")

    assert _current_revision() == newest.down_revision
    if newest.down_revision is None:
        left = set(inspect(db.engine).get_table_names()) - {"alembic_version"}
        assert left == set(), "downgrading the first revision should leave no tables"
        assert _search_index_objects() - {"pg_trgm"} == set()

    upgrade()

    assert _schema_snapshot() == before
    assert _expected_search_objects() <= _search_index_objects()
    assert _model_diff() == []


def test_document_sequences_exist_after_upgrade(empty_app):
    upgrade()

    rows = dict(db.session.execute(text("SELECT name, next_value FROM document_sequence")).all())
    assert rows == {name: 1 for name in PREFIXES}


def _reflected_names(inspector, table: str) -> dict[str, set]:
    """Constraint and index names found in the database (search index objects left out,
    as env.py leaves them out of autogenerate)."""
    include = _env_include_object()
    return {
        "pk": {inspector.get_pk_constraint(table)["name"]},
        "fk": {fk["name"] for fk in inspector.get_foreign_keys(table)},
        "ck": {ck["name"] for ck in inspector.get_check_constraints(table)},
        "uq": {uq["name"] for uq in inspector.get_unique_constraints(table)},
        "ix": {
            ix["name"] for ix in inspector.get_indexes(table)
            if include(None, ix["name"], "index", True, None)
            and not ix.get("duplicates_constraint")  # PostgreSQL: a unique constraint's index
        },
    }


def _model_names(table, dialect: str) -> dict[str, set]:
    from sqlalchemy import CheckConstraint, ForeignKeyConstraint, UniqueConstraint

    def made_here(constraint) -> bool:  # a constraint declared for one database only
        only = getattr(constraint, "_ddl_if", None)
        return only is None or only.dialect in (None, dialect)

    def named(kind) -> set:
        return {c.name for c in table.constraints if isinstance(c, kind) and made_here(c)}

    return {
        "pk": {table.primary_key.name},
        "fk": named(ForeignKeyConstraint),
        "ck": named(CheckConstraint),
        "uq": named(UniqueConstraint),
        "ix": {ix.name for ix in table.indexes
               if _env_include_object()(ix, ix.name, "index", False, None)},
    }


def test_constraint_names_follow_the_naming_convention(empty_app):
    upgrade()
    inspector = inspect(db.engine)

    for table in Base.metadata.sorted_tables:
        found = _reflected_names(inspector, table.name)
        assert found["pk"] == {f"pk_{table.name}"}, table.name
        for fk in inspector.get_foreign_keys(table.name):
            expected = f"fk_{table.name}_{fk['constrained_columns'][0]}_{fk['referred_table']}"
            assert fk["name"] == expected, table.name
        for uq in inspector.get_unique_constraints(table.name):
            assert uq["name"] == f"uq_{table.name}_{'_'.join(uq['column_names'])}", table.name
        assert all(name.startswith(f"ck_{table.name}_") for name in found["ck"]), found["ck"]
        assert all(name.startswith(("ix_", "uq_")) for name in found["ix"]), found["ix"]
        # The database holds exactly the names the models derive from the convention.
        assert found == _model_names(table, db.engine.dialect.name), table.name

    customer = _reflected_names(inspector, "customer")
    assert "ck_customer_status" in customer["ck"]
    assert "fk_contact_customer_id_customer" in _reflected_names(inspector, "contact")["fk"]


def test_the_long_text_limits_are_made_by_the_migrations(empty_app):
    """PostgreSQL gets a CHECK per long-text column (the naming test above sees those);
    SQLite, where adding a CHECK means rebuilding the table, a pair of triggers."""
    from crm.models.base import TEXT_LIMITS

    upgrade()
    if db.engine.dialect.name == "postgresql":
        checks = {c["name"] for table, _ in TEXT_LIMITS
                  for c in inspect(db.engine).get_check_constraints(table)}
        expected = {f"ck_{table}_{column}_length" for table, column in TEXT_LIMITS}
    else:
        checks = set(db.session.execute(
            text("SELECT name FROM sqlite_master WHERE type = 'trigger'")).scalars())
        expected = {f"ck_{table}_{column}_length_{when}" for table, column in TEXT_LIMITS
                    for when in ("insert", "update")}
    assert expected <= checks


def test_upgrading_a_database_that_holds_money_keeps_every_row(empty_app):
    """Migration 0005 copies the invoice table on SQLite (a batch migration); with foreign
    keys enforced, dropping the old copy failed on every invoice with lines. The rows must
    survive, and foreign keys be enforced again afterwards."""
    upgrade(revision="0004")
    statements = [
        "INSERT INTO customer (id, reference, kind, customer_type, surname, status, "
        " address_line_1, postcode, country, email_opt_in, sms_opt_in, post_opt_in, "
        " search_text, balance, account_credit, overdue_amount, email_blocked, version, "
        " created_at, updated_at) VALUES (1, 'C-000001', 'client', 'private', 'Held', "
        " 'active', '1 Road', 'LS1 1AA', 'GB', true, true, true, '', 0, 0, 0, false, 1, "
        " '2026-01-01', '2026-01-01')",
        "INSERT INTO invoice (id, customer_id, number, status, issue_date, due_date, subtotal, "
        " tax_total, total, outstanding, version, created_at, updated_at) VALUES (1, 1, "
        " 'INV-000001', 'issued', '2026-01-01', '2026-01-31', 10, 0, 10, 10, 1, "
        " '2026-01-01', '2026-01-01')",
        "INSERT INTO invoice_line (id, invoice_id, position, category, description, quantity, "
        " unit_price, tax_rate, net_amount, tax_amount, version, created_at, updated_at) "
        " VALUES (1, 1, 0, 'labour', 'Work', 1, 10, 0, 10, 0, 1, '2026-01-01', '2026-01-01')",
    ]
    for statement in statements:
        db.session.execute(text(statement))
    db.session.commit()

    upgrade()

    assert db.session.execute(text("SELECT number FROM invoice")).scalars().all() == ["INV-000001"]
    assert db.session.execute(text("SELECT invoice_id FROM invoice_line")).scalars().all() == [1]
    db.session.rollback()
    with pytest.raises(IntegrityError):  # a line of a missing invoice is still refused
        db.session.execute(text(
            "INSERT INTO invoice_line (invoice_id, position, category, description, quantity, "
            " unit_price, tax_rate, net_amount, tax_amount, version, created_at, updated_at) "
            " VALUES (999, 0, 'labour', 'Orphan', 1, 1, 0, 1, 0, 1, '2026-01-01', '2026-01-01')"))
        db.session.flush()
    db.session.rollback()
