import logging
import re
import warnings
from logging.config import fileConfig

from alembic import context
from flask import current_app
from sqlalchemy.exc import SAWarning

# this is the Alembic Config object, which provides
# access to the values within the .ini file in use.
config = context.config

# Interpret the config file for Python logging.
# This line sets up loggers basically.
# Keep the loggers that exist already (the app's, when migrations run inside a process that
# has them, as the tests do): fileConfig would silence every one not named in alembic.ini.
fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger('alembic.env')


def get_engine():
    return current_app.extensions['migrate'].db.engine


def get_engine_url():
    try:
        return get_engine().url.render_as_string(hide_password=False).replace(
            '%', '%%')
    except AttributeError:
        return str(get_engine().url).replace('%', '%%')


# add your model's MetaData object here
# for 'autogenerate' support
# from myapp import mymodel
# target_metadata = mymodel.Base.metadata
config.set_main_option('sqlalchemy.url', get_engine_url())
target_db = current_app.extensions['migrate'].db

# other values from the config, defined by the needs of env.py,
# can be acquired:
# my_important_option = config.get_main_option("my_important_option")
# ... etc.


def get_metadata():
    if hasattr(target_db, 'metadatas'):
        return target_db.metadatas[None]
    return target_db.metadata


def include_object(obj, name, type_, reflected, compare_to):
    """Leave out the search index objects made by hand in the migrations, and the expression
    index of the duplicates key (autogenerate cannot compare expression indexes: SQLite does
    not reflect them, PostgreSQL reflects them in its own spelling). tests/test_migrations.py
    checks that the migrations make them. (Written out here rather than imported from the
    application: a migration environment must not change when the live code does.)"""
    if type_ == "table" and (name == "customer_fts" or name.startswith("customer_fts_")):
        return False
    if type_ == "index" and name in ("ix_customer_search_trgm", "ix_customer_name_postcode_key"):
        return False
    return True


# The duplicates key is an expression index (made by migration 0003, checked by
# tests/test_migrations.py). SQLite's reflection cannot read such an index and says so each
# time a batch migration reflects the customer table; that is expected, so that one warning
# about that one index is silenced while the migrations run, and every other warning stays.
EXPECTED_WARNING = re.escape(
    "Skipped unsupported reflection of expression-based index ix_customer_name_postcode_key")


def run_migrations():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=EXPECTED_WARNING, category=SAWarning)
        context.run_migrations()


def run_migrations_offline():
    """Run migrations in 'offline' mode.

    This configures the context with just a URL
    and not an Engine, though an Engine is acceptable
    here as well.  By skipping the Engine creation
    we don't even need a DBAPI to be available.

    Calls to context.execute() here emit the given string to the
    script output.

    """
    url = config.get_main_option("sqlalchemy.url")
    context.configure(
        url=url, target_metadata=get_metadata(), literal_binds=True
    )

    with context.begin_transaction():
        run_migrations()


def run_migrations_online():
    """Run migrations in 'online' mode.

    In this scenario we need to create an Engine
    and associate a connection with the context.

    """

    # this callback is used to prevent an auto-migration from being generated
    # when there are no changes to the schema
    # reference: http://alembic.zzzcomputing.com/en/latest/cookbook.html
    def process_revision_directives(context, revision, directives):
        if getattr(config.cmd_opts, 'autogenerate', False):
            script = directives[0]
            if script.upgrade_ops.is_empty():
                directives[:] = []
                logger.info('No changes in schema detected.')

    conf_args = current_app.extensions['migrate'].configure_args
    conf_args.setdefault("include_object", include_object)
    conf_args.setdefault("render_as_batch", True)
    conf_args.setdefault("compare_type", True)
    if conf_args.get("process_revision_directives") is None:
        conf_args["process_revision_directives"] = process_revision_directives

    connectable = get_engine()

    with connectable.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # A batch migration copies a table and drops the old one; with foreign keys
            # enforced, SQLite's DROP TABLE deletes the rows first and fails on every row
            # another table refers to (an invoice with lines). The pragma only takes effect
            # outside a transaction, and is restored before the connection goes back to
            # the pool.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            context.configure(
                connection=connection,
                target_metadata=get_metadata(),
                **conf_args
            )

            with context.begin_transaction():
                run_migrations()
            if sqlite:
                connection.commit()
        finally:
            if sqlite:
                connection.rollback()
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
