"""Shared by the unit tests of the actions: an owner to act as, and a count of the SQL
statements a block of code sends (the structural half of the speed budgets)."""

from contextlib import contextmanager

import pytest
from sqlalchemy import event

from crm.models import User


@pytest.fixture
def owner(session):
    user = User(email="owner@example.com", role="owner", password_hash="-")
    session.add(user)
    session.commit()
    return user


@contextmanager
def count_statements(session):
    """The SQL statements sent while the block runs, in order."""
    seen: list[str] = []

    def count(conn, cursor, statement, *args):
        seen.append(statement)

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)
