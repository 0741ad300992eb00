"""Settings from environment variables, with safe defaults for development."""

import os
import secrets
from pathlib import Path


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
        key_file.write_text(secrets.token_hex(32))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


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
        "WTF_CSRF_TIME_LIMIT": None,
        "MAX_CONTENT_LENGTH": int(os.environ.get("CRM_MAX_UPLOAD_BYTES", 10 * 1024 * 1024)),
        "RATELIMIT_STORAGE_URI": redis_url or "memory://",
        "RATELIMIT_HEADERS_ENABLED": True,
        "CRM_LOGIN_LIMIT_PER_ACCOUNT": os.environ.get("CRM_LOGIN_LIMIT_PER_ACCOUNT", "100/hour"),
        "CRM_LOGIN_LIMIT_PER_ADDRESS": os.environ.get("CRM_LOGIN_LIMIT_PER_ADDRESS", "30/minute"),
        "CRM_DEFAULT_REGION": os.environ.get("CRM_DEFAULT_REGION", "GB"),
        "CRM_CURRENCY": os.environ.get("CRM_CURRENCY", "GBP"),
        "CRM_COUNT_CAP": int(os.environ.get("CRM_COUNT_CAP", 10_000)),
        "FLASK_ADMIN_SWATCH": "cerulean",
        # Server-Timing / X-SQL-Statements on responses: on in development, opt-in in production.
        "CRM_TIMING_HEADERS": os.environ.get("CRM_TIMING_HEADERS", "0" if production else "1")
        == "1",
    }
