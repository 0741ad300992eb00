"""The customer list sorted by loyalty walks its index (``ix_customer_loyalty_score_id``)
both ways, on SQLite (with and without statistics) and PostgreSQL: no sort of a million
customers. The plans are read from the database itself."""

import pytest
from sqlalchemy import select

from crm.extensions import db
from crm.models import Customer
from tests.unit.test_search_index import LIVE, _plan, _some_customers

SHOWN = Customer.status != "archived"  # the list's default: archived customers hidden


def _sorted(descending: bool, offset: int = 0):
    order = ((Customer.loyalty_score.desc(), Customer.id.desc()) if descending
             else (Customer.loyalty_score.asc(), Customer.id.asc()))
    return select(Customer.id).where(LIVE, SHOWN).order_by(*order).limit(20).offset(offset)


@pytest.mark.parametrize("descending", [True, False], ids=["desc", "asc"])
@pytest.mark.parametrize("offset", [0, 199_980], ids=["page 1", "page 10,000"])
def test_the_list_sorted_by_loyalty_walks_its_index(session, descending, offset):
    _some_customers(session)

    plan = _plan(session, _sorted(descending, offset), sorts=False)

    assert "ix_customer_loyalty_score_id" in plan, plan
    assert "TEMP B-TREE" not in plan, plan


def test_sqlite_walks_the_loyalty_index_once_it_has_statistics(tmp_path):
    """What the seed (which runs ANALYZE) and the bench get, on a database of its own."""
    from flask_migrate import upgrade

    from tests.conftest import make_app

    application = make_app(f"sqlite:///{tmp_path / 'stats.sqlite'}")
    with application.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("statistics of a SQLite file")
        upgrade()
        _some_customers(db.session, 30)
        db.session.connection().exec_driver_sql("ANALYZE")
        db.session.commit()
        with db.engine.connect() as conn:
            plans = [_plan(db.session, _sorted(d), conn) for d in (True, False)]
        db.session.remove()
        db.engine.dispose()

    for plan in plans:
        assert "ix_customer_loyalty_score_id" in plan, plan
        assert "TEMP B-TREE" not in plan, plan
