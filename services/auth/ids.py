"""Random identifiers and opaque secrets, and their storage hashes."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string

from starlette.requests import Request

__all__ = [
    "BASE62",
    "constant_time_equal",
    "is_public_id",
    "new_id",
    "path_id",
    "random_base62",
    "secret_hash",
]

BASE62 = string.digits + string.ascii_letters


def random_base62(length: int) -> str:
    return "".join(secrets.choice(BASE62) for _ in range(length))


def new_id(prefix: str) -> str:
    """An immutable public id such as ``usr_3k9f…`` (about 95 bits of randomness)."""
    return f"{prefix}_{random_base62(16)}"


# Every id this service hands out is ``<prefix>_<base62>``; anything outside this
# (NUL, non-ASCII, 5000 characters) names nothing and never reaches a query
# (PostgreSQL refuses NUL in text: that was a 500).
_PUBLIC_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")


def is_public_id(value: str) -> bool:
    return _PUBLIC_ID.fullmatch(value) is not None


def path_id(request: Request, name: str) -> str | None:
    """The id in the path parameter `name`, or None when it cannot name anything
    (the caller answers 404, exactly as for a missing id)."""
    value: str = request.path_params[name]
    return value if is_public_id(value) else None


def secret_hash(secret: str) -> str:
    """Storage hash of a high-entropy secret (refresh or service-account token).

    These secrets carry ≥ 190 bits of randomness, so a plain SHA-256 is enough
    to make a stolen table useless while keeping lookups indexable; passwords,
    which are guessable, go through Argon2id instead.
    """
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))
