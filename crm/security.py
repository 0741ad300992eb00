"""Password hashing (Argon2id) and the keyed hash used for blocked addresses."""

import hashlib
import hmac

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()  # argon2-cffi defaults: Argon2id, RFC 9106 low-memory profile
# Verifying against this keeps the time of "no such account" equal to "wrong password".
_DUMMY_HASH = _hasher.hash("not a real password")

MIN_PASSWORD_LENGTH = 10


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"Passwords need at least {MIN_PASSWORD_LENGTH} characters.")
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def token_digest(token: str) -> str:
    """What is stored of a random token (a session's, an e-mailed link's): its SHA-256. The
    token itself has 256 bits of randomness, so no key or stretching is needed."""
    return hashlib.sha256(token.encode()).hexdigest()


def keyed_hash(secret_key: str, value: str) -> str:
    return hmac.new(secret_key.encode(), value.encode(), hashlib.sha256).hexdigest()


# The key of the blocklist's address hashes: the app's SECRET_KEY, handed over by
# create_app so that actions (which never import Flask) can hash an address to match it.
_blocklist_key: str | None = None


def set_blocklist_key(secret_key: str) -> None:
    global _blocklist_key
    _blocklist_key = secret_key


def email_block_hash(normalized_email: str) -> str:
    """The keyed hash a blocked address is stored as (never the address itself)."""
    if _blocklist_key is None:
        raise RuntimeError("create_app() has not set the blocklist key")
    return keyed_hash(_blocklist_key, normalized_email)
