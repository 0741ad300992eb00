"""CRM back office: create_app() builds the whole application."""

import sqlite3
from pathlib import Path

from flask import Flask, jsonify
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from crm.config import load_config
from crm.extensions import csrf, db, limiter, login_manager, migrate


def create_app(config: dict | None = None) -> Flask:
    app = Flask(
        __name__,
        instance_relative_config=True,
        template_folder="../templates",
        static_folder="../static",
    )
    app.config.update(load_config(app.instance_path))
    if config:
        app.config.update(config)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(Path(app.root_path).parent / "migrations"))
    csrf.init_app(app)
    limiter.init_app(app)
    _init_login(app)

    import crm.models.events  # noqa: F401  (session hooks)
    from crm.admin_views import init_admin
    from crm.auth import bp as auth_bp
    from crm.cli import bp as cli_bp

    app.register_blueprint(auth_bp)
    app.register_blueprint(cli_bp)
    init_admin(app)

    _init_timing(app)

    @app.get("/healthz")
    def healthz():
        db.session.execute(text("SELECT 1"))
        return jsonify(status="ok")

    @app.get("/")
    def home():
        from flask import redirect, url_for

        return redirect(url_for("admin.index"))

    return app


def _init_login(app: Flask) -> None:
    from crm.models import User

    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to continue."
    login_manager.session_protection = "strong"

    @login_manager.user_loader
    def load_user(user_id: str):
        if not user_id.isdigit():
            return None
        return db.session.get(User, int(user_id))


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """WAL and a busy timeout: concurrent writers wait instead of failing."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def _init_timing(app: Flask) -> None:
    """Server-Timing on every response: server time and SQL statements (for bench/ and ops)."""
    import time

    from flask import g

    @app.before_request
    def _start():
        g.request_started = time.perf_counter()
        g.sql_statements = 0

    @app.after_request
    def _timing(response):
        if "request_started" in g:
            elapsed = (time.perf_counter() - g.request_started) * 1000
            response.headers["Server-Timing"] = (
                f'app;dur={elapsed:.1f}, sql;desc="{g.sql_statements} statements"'
            )
            response.headers["X-SQL-Statements"] = str(g.sql_statements)
        return response


@event.listens_for(Engine, "before_cursor_execute")
def _count_statements(conn, cursor, statement, parameters, context, executemany) -> None:
    from flask import g, has_app_context

    if has_app_context() and "sql_statements" in g:
        g.sql_statements += 1
