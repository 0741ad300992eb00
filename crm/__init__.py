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

    if app.config["CRM_TRUSTED_PROXIES"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = app.config["CRM_TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    from crm.security import set_blocklist_key

    set_blocklist_key(app.config["SECRET_KEY"])
    db.init_app(app)
    migrate.init_app(app, db, directory=str(Path(app.root_path).parent / "migrations"))
    csrf.init_app(app)
    limiter.init_app(app)
    _init_login(app)

    import crm.session_hooks  # noqa: F401  (registers the session hooks)
    from crm.admin_views import init_admin
    from crm.auth import bp as auth_bp
    from crm.cli import bp as cli_bp
    from crm.formatting import FILTERS
    from crm.inquiry import bp as inquiry_bp
    from crm.portal import bp as portal_bp

    app.jinja_env.filters.update(FILTERS)
    app.register_blueprint(auth_bp)
    app.register_blueprint(portal_bp)
    app.register_blueprint(inquiry_bp)
    app.register_blueprint(cli_bp)
    init_admin(app)
    from crm.jobs.queue import init_app as init_jobs

    init_jobs(app)

    _init_errors(app)
    _init_input_guard(app)
    _init_streamed_responses(app)
    _init_daily_aging(app)
    _init_timing(app)
    from crm.security_headers import init_security_headers
    init_security_headers(app)

    @app.get("/healthz")
    def healthz():
        db.session.execute(text("SELECT 1"))
        return jsonify(status="ok")

    @app.get("/favicon.ico")
    def favicon():
        # Browsers ask for it at the root on every site, whatever the page links to.
        from flask import send_from_directory

        return send_from_directory(app.static_folder, "favicon.ico",
                                   mimetype="image/vnd.microsoft.icon", max_age=86400)

    @app.get("/")
    def home():
        from flask import redirect, url_for

        return redirect(url_for("admin.index"))

    return app


def _init_login(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to continue."
    login_manager.session_protection = "strong"

    @login_manager.user_loader
    def load_user(cookie_id: str):
        from crm.actions.staff_sessions import signed_in_user

        return signed_in_user(db.session, cookie_id)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """WAL and a busy timeout: concurrent writers wait instead of failing."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Deleted and overwritten content is zeroed, not left in free space: an erased
        # customer's name must not stay readable in the database file.
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()


ERRORS = {
    400: ("Bad request", "The request could not be understood. Reload the page and try again."),
    403: ("Not allowed", "Your role does not give access to this page."),
    404: ("Not found", "There is nothing here, or it is not yours to see."),
    413: ("Too large", "That upload is larger than allowed."),
    429: ("Too many attempts", "Too many attempts in a short time; wait a while and try again."),
}


PORTAL_ERRORS = {
    403: ("Not here", "That cannot be done from this page."),
    404: ("Not found", "There is nothing here. It may have moved, or the address is not "
                       "quite right."),
}


def _init_errors(app: Flask) -> None:
    from flask import render_template, request
    from flask_wtf.csrf import CSRFError

    def render(code: int, message: str | None = None):
        title, default = ERRORS[code]
        if request.blueprint == "portal":  # the customer's own look and words
            title, default = PORTAL_ERRORS.get(code, (title, default))
            return render_template("portal/error.html", title=title,
                                   message=message or default), code
        return render_template("error.html", title=title, message=message or default), code

    for code in ERRORS:
        app.register_error_handler(code, lambda exc, code=code: render(code, _description(exc)))
    app.register_error_handler(
        CSRFError,
        lambda exc: render(400, "The form expired or did not come from this site "
                                f"({exc.description}) Reload the page and try again."),
    )


def _description(exc) -> str | None:
    # Only our own messages (rate limits, aborts with a sentence); never werkzeug's defaults.
    text_ = getattr(exc, "description", None)
    default = type(exc).description if hasattr(type(exc), "description") else None
    return text_ if text_ and text_ != default else None


def _init_input_guard(app: Flask) -> None:
    """No control character (NUL and the like; tab and line breaks are text) reaches a
    form, a search or the database from any query string or form field: PostgreSQL refuses
    NUL with an error, SQLite's full-text search fails on it, and nobody types them. The
    request is refused with a sentence naming the field, and nothing is done."""
    from flask import abort, request

    from crm.validation import has_control_characters

    # A search or a filter value is a few words; what is longer is not one (a 100,000
    # character LIKE pattern is too complex for SQLite, and a filter's error message
    # quoting it would overflow the session cookie).
    MAX_QUERY_VALUE = 1000

    @app.before_request
    def _refuse_control_characters():
        sources = [request.args]
        if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            sources.append(request.form)
        for name, values in request.args.lists():
            if any(len(value) > MAX_QUERY_VALUE for value in values):
                shown = "".join(c for c in name if c.isprintable())[:60] or "a field"
                abort(400, f"“{shown}” is longer than a search or filter can be "
                           f"({MAX_QUERY_VALUE:,} characters). Nothing was searched.")
        for source in sources:
            for name, values in source.lists():
                if has_control_characters(name) or any(map(has_control_characters, values)):
                    shown = "".join(c for c in name if c.isprintable())[:60] or "a field"
                    abort(400, f"“{shown}” contains a control character (such as NUL) that "
                               "cannot be stored or searched for. Nothing was saved or "
                               "searched: remove it and try again.")


def _init_streamed_responses(app: Flask) -> None:
    """A streamed response (a CSV export, a file download) produces its body after the
    request has ended, and the request's teardown has already closed the session. A query
    made during the request and read by the stream re-opens that same session, which is no
    longer the one the teardown knows: without this, each export kept a pooled connection
    checked out until the pool was exhausted and every request waited 30 s. Close the
    request's session again once the server has sent (or abandoned) the body."""

    import types

    def closing(body, session):
        try:
            yield from body
        finally:
            session.close()

    @app.after_request
    def _close_session_after_stream(response):
        if response.is_streamed:
            session = db.session()
            if isinstance(response.response, types.GeneratorType):
                # As soon as the body is read to its end (or abandoned), whoever reads it.
                response.response = closing(response.response, session)
            response.call_on_close(session.close)
        return response


def _init_daily_aging(app: Flask) -> None:
    """Overdue figures change with the calendar: re-age stale rows on the first admin
    request of the day (before the request's own statements are counted)."""
    from flask import request
    from flask_login import current_user

    from crm import ledger

    @app.before_request
    def _age_ledger():
        if request.path.startswith("/admin/") and current_user.is_authenticated:
            ledger.refresh_daily(db.session)


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
        if "request_started" in g and app.config["CRM_TIMING_HEADERS"]:
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
