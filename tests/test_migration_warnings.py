"""`flask db upgrade` on a new database prints no SQLAlchemy warning: the one warning the
migrations expect (SQLite cannot reflect the duplicates key, an expression index) is
silenced in migrations/env.py, for that index only."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import _drop_postgres_database, _postgres_database

ROOT = Path(__file__).resolve().parents[1]


def _upgrade(url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": url, "CRM_ENV": "development",
           "PYTHONWARNINGS": "default"}  # every warning printed, none hidden by "once"
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "db", "upgrade"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path):
    base = os.environ.get("CRM_TEST_DATABASE_URL")
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'upgrade.sqlite'}"
        return
    if not base:
        pytest.skip("PostgreSQL: set CRM_TEST_DATABASE_URL")
    name = f"crm_upgrade_{uuid.uuid4().hex[:8]}"
    yield _postgres_database(base, name)
    _drop_postgres_database(base, name)


def test_upgrading_a_new_database_prints_no_sqlalchemy_warning(empty_database):
    done = _upgrade(empty_database)

    assert done.returncode == 0, done.stderr[-2000:]
    assert "Running upgrade" in done.stderr  # the migrations did run (Alembic logs to stderr)
    output = done.stdout + done.stderr
    assert "SAWarning" not in output, output[-2000:]


def test_only_the_expected_warning_is_silenced():
    """The filter names the one index; any other reflection warning would still print."""
    source = (ROOT / "migrations" / "env.py").read_text()
    assert "ix_customer_name_postcode_key" in source
    assert 'warnings.filterwarnings("ignore", message=EXPECTED_WARNING, category=SAWarning)' \
        in source
    assert "simplefilter" not in source
