"""Settings from environment variables, with safe defaults for development."""

import logging
import os
import secrets
from datetime import timedelta
from pathlib import Path

MAIL_BACKENDS = ("outbox", "smtp")


class ConfigError(RuntimeError):
    pass


def _secret_key(instance_path: Path, production: bool) -> str:
    key = os.environ.get("SECRET_KEY")
    if key:
        return key
    if production:
        raise ConfigError("SECRET_KEY must be set in production (CRM_ENV=production).")
    key_file = instance_path / "secret_key"
    if not key_file.exists():
        _create_secret_file(key_file)
    return key_file.read_text().strip()


def _create_secret_file(key_file: Path) -> None:
    """Write a new key that only its owner can read, from the first byte; if two processes
    start at once, both end up with the key written first (a hard link never overwrites)."""
    draft = key_file.with_name(f".{key_file.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_hex(32))
    try:
        os.link(draft, key_file)
    except FileExistsError:
        pass  # another process was first: use its key
    except OSError:  # a file system without hard links
        if not key_file.exists():
            os.replace(draft, key_file)
    finally:
        if draft.exists():
            draft.unlink()


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def _mail_settings(instance: Path, production: bool) -> dict:
    """Where e-mail goes (never silently dropped). Without ``MAIL_SERVER`` every
    message is written to the outbox folder (shown in the admin under Settings > Outbox); in
    production that is allowed, so that a new install can start, but logged as a warning at
    every start, since nobody receives those messages until someone reads the folder."""
    server = os.environ.get("MAIL_SERVER", "").strip() or None
    backend = os.environ.get("MAIL_BACKEND", "").strip().lower() or (
        "smtp" if server else "outbox")
    if backend not in MAIL_BACKENDS:
        raise ConfigError(f"MAIL_BACKEND must be one of {', '.join(MAIL_BACKENDS)}, "
                          f"not {backend!r}.")
    if backend == "smtp" and not server:
        raise ConfigError("MAIL_BACKEND=smtp needs MAIL_SERVER (the SMTP host name).")
    sender = os.environ.get("MAIL_FROM", "").strip()
    if backend == "smtp" and production and not sender:
        raise ConfigError("MAIL_FROM must be set in production when sending through SMTP "
                          "(the address statements come from).")
    if backend == "outbox" and production:
        logging.getLogger("crm.mail").warning(
            "No MAIL_SERVER in production: e-mail is written to the outbox folder %s and "
            "nobody receives it. Set MAIL_SERVER (and MAIL_FROM) to send it.",
            os.environ.get("MAIL_OUTBOX_DIR") or instance / "outbox")
    try:
        port = int(os.environ.get("MAIL_PORT") or 587)
        timeout = float(os.environ.get("MAIL_TIMEOUT") or 30)
    except ValueError as exc:
        raise ConfigError(f"MAIL_PORT and MAIL_TIMEOUT must be numbers ({exc}).") from None
    return {
        "MAIL_BACKEND": backend,
        "MAIL_OUTBOX_DIR": os.environ.get("MAIL_OUTBOX_DIR") or str(instance / "outbox"),
        "MAIL_SERVER": server,
        "MAIL_PORT": port,
        "MAIL_USERNAME": os.environ.get("MAIL_USERNAME") or None,
        "MAIL_PASSWORD": os.environ.get("MAIL_PASSWORD") or None,
        # STARTTLS on the submission port unless told otherwise (a local relay on port 25).
        "MAIL_USE_TLS": _flag("MAIL_USE_TLS", True),
        "MAIL_TIMEOUT": timeout,
        "MAIL_FROM": sender or "CRM <noreply@localhost>",
    }


def shared_limits_problem(workers: int, environ=None) -> tuple[str, bool] | None:
    """(what is wrong, whether start-up must stop) when several web workers would each keep
    their own sign-in counters (no ``REDIS_URL``); None when the limits are shared."""
    environ = os.environ if environ is None else environ
    if workers <= 1 or (environ.get("REDIS_URL") or "").strip():
        return None
    production = environ.get("CRM_ENV", "development") == "production"
    return (
        f"{workers} workers and no REDIS_URL: each worker would count failed sign-ins on "
        f"its own, letting through {workers} times the limit. Set REDIS_URL "
        "(redis://host:6379/0) so that the workers share one count, or run one worker.",
        production,
    )


def _public_url(production: bool) -> str:
    """Where customers open the links e-mailed to them (portal invitations, sign-in links).
    Never taken from a request's Host header, which whoever sends the request chooses: a
    reset link pointing at their own site would hand them the token."""
    url = os.environ.get("CRM_PUBLIC_URL", "").strip().rstrip("/")
    if url:
        if not url.startswith(("https://", "http://")):
            raise ConfigError(f"CRM_PUBLIC_URL must start with https:// (got {url!r}).")
        return url
    if production:
        raise ConfigError("CRM_PUBLIC_URL must be set in production: the address customers "
                          "open the portal at, e.g. https://crm.example.com.")
    return "http://127.0.0.1:5000"


def _presentation() -> dict:
    """Currency, locale and time zone, checked now: a typo would otherwise fail every page."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from babel import Locale, UnknownLocaleError
    from babel.numbers import list_currencies

    settings = {
        "CRM_CURRENCY": os.environ.get("CRM_CURRENCY", "GBP").strip().upper(),
        "CRM_LOCALE": os.environ.get("CRM_LOCALE", "en_GB").strip(),
        "CRM_TIMEZONE": os.environ.get("CRM_TIMEZONE", "Europe/London").strip(),
    }
    try:
        Locale.parse(settings["CRM_LOCALE"])
    except (ValueError, UnknownLocaleError):
        raise ConfigError(f"CRM_LOCALE {settings['CRM_LOCALE']!r} is not a locale Babel "
                          "knows (e.g. en_GB, en_IE, de_DE).") from None
    if settings["CRM_CURRENCY"] not in list_currencies():
        raise ConfigError(f"CRM_CURRENCY {settings['CRM_CURRENCY']!r} is not an ISO 4217 "
                          "currency code (e.g. GBP, EUR, USD).")
    try:
        ZoneInfo(settings["CRM_TIMEZONE"])
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"CRM_TIMEZONE {settings['CRM_TIMEZONE']!r} is not a time zone "
                          "name (e.g. Europe/London).") from None
    return settings


def load_config(instance_path: str) -> dict:
    instance = Path(instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    production = os.environ.get("CRM_ENV", "development") == "production"
    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{instance / 'crm.sqlite'}"
    redis_url = os.environ.get("REDIS_URL")
    return {
        "CRM_ENV": "production" if production else "development",
        "SECRET_KEY": _secret_key(instance, production),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": production,
        # As long as a server-side staff session lasts (crm.actions.staff_sessions.MAX_AGE).
        "REMEMBER_COOKIE_DURATION": timedelta(days=30),
        "WTF_CSRF_TIME_LIMIT": None,
        "MAX_CONTENT_LENGTH": int(os.environ.get("CRM_MAX_UPLOAD_BYTES", 10 * 1024 * 1024)),
        "RATELIMIT_STORAGE_URI": redis_url or "memory://",
        "RATELIMIT_HEADERS_ENABLED": True,
        # Redis down: count in this process's memory meanwhile, rather than fail sign-in.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_SWALLOW_ERRORS": True,
        # How many reverse proxies in front set X-Forwarded-For (the per-address limit
        # must count the client, not the proxy).
        "CRM_TRUSTED_PROXIES": int(os.environ.get("CRM_TRUSTED_PROXIES", "0")),
        "CRM_LOGIN_LIMIT_PER_ACCOUNT": os.environ.get("CRM_LOGIN_LIMIT_PER_ACCOUNT", "100/hour"),
        "CRM_LOGIN_LIMIT_PER_ADDRESS": os.environ.get("CRM_LOGIN_LIMIT_PER_ADDRESS", "30/minute"),
        # Inquiries taken from one address through the public form (/inquiry).
        "CRM_INQUIRY_LIMIT_PER_ADDRESS": os.environ.get("CRM_INQUIRY_LIMIT_PER_ADDRESS",
                                                        "5/hour"),
        "CRM_DEFAULT_REGION": os.environ.get("CRM_DEFAULT_REGION", "GB"),
        # The currency, how amounts and dates read (a Babel locale), the zone times show in.
        **_presentation(),
        # The business's name as customers know it: e-mail subjects and signatures.
        "CRM_BUSINESS_NAME": os.environ.get("CRM_BUSINESS_NAME", "").strip() or "Our business",
        "CRM_COUNT_CAP": int(os.environ.get("CRM_COUNT_CAP", 10_000)),
        "CRM_PUBLIC_URL": _public_url(production),
        "FLASK_ADMIN_SWATCH": "cerulean",
        # Background jobs (crm.jobs): the queue is Redis when REDIS_URL is set, else a SQLite
        # file in instance/; files jobs make live in CRM_JOBS_DIR for CRM_JOB_FILES_DAYS.
        "REDIS_URL": redis_url,
        "CRM_JOBS_DIR": os.environ.get("CRM_JOBS_DIR") or str(instance / "jobs"),
        "CRM_JOB_FILES_DAYS": int(os.environ.get("CRM_JOB_FILES_DAYS", 7)),
        # Selections bigger than this run as a job instead of inside the request.
        "CRM_JOB_THRESHOLD": int(os.environ.get("CRM_JOB_THRESHOLD", 1_000)),
        # Exports of more rows than this (CSV, XLSX) are made by a job, not in the request.
        "CRM_EXPORT_THRESHOLD": int(os.environ.get("CRM_EXPORT_THRESHOLD", 10_000)),
        # The largest import file (Customers → Import), in bytes and in rows.
        "CRM_IMPORT_MAX_BYTES": int(os.environ.get("CRM_IMPORT_MAX_BYTES", 50 * 1024 * 1024)),
        "CRM_IMPORT_MAX_ROWS": int(os.environ.get("CRM_IMPORT_MAX_ROWS", 200_000)),
        # A running job whose consumer has not reported for this long is queued again.
        "CRM_JOB_STALE_SECONDS": float(os.environ.get("CRM_JOB_STALE_SECONDS", 120)),
        "CRM_JOB_RETRY_DELAY": float(os.environ.get("CRM_JOB_RETRY_DELAY", 2)),
        # The SQLite queue's file (default instance/jobs.huey) and the queue's name (two
        # installations sharing one Redis need different names).
        "CRM_QUEUE_FILE": os.environ.get("CRM_QUEUE_FILE") or str(instance / "jobs.huey"),
        "CRM_QUEUE_NAME": os.environ.get("CRM_QUEUE_NAME") or "crm",
        # At most this many items per chunk (0: each kind's own size); for tests and tuning.
        "CRM_JOB_CHUNK_SIZE": int(os.environ.get("CRM_JOB_CHUNK_SIZE") or 0),
        # Run each job as soon as it is queued, inside the process that queued it (no worker).
        "CRM_JOBS_IMMEDIATE": os.environ.get("CRM_JOBS_IMMEDIATE", "0") == "1",
        # Server-Timing / X-SQL-Statements on responses: on in development, opt-in in production.
        "CRM_TIMING_HEADERS": os.environ.get("CRM_TIMING_HEADERS", "0" if production else "1")
        == "1",
        **_mail_settings(instance, production),
    }
