"""Random identifiers and opaque secrets, and their storage hashes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string

__all__ = ["BASE62", "constant_time_equal", "new_id", "random_base62", "secret_hash"]

BASE62 = string.digits + string.ascii_letters


def random_base62(length: int) -> str:
    return "".join(secrets.choice(BASE62) for _ in range(length))


def new_id(prefix: str) -> str:
    """An immutable public id such as ``usr_3k9f…`` (about 95 bits of randomness)."""
    return f"{prefix}_{random_base62(16)}"


def secret_hash(secret: str) -> str:
    """Storage hash of a high-entropy secret (refresh or service-account token).

    These secrets carry ≥ 190 bits of randomness, so a plain SHA-256 is enough
    to make a stolen table useless while keeping lookups indexable; passwords,
    which are guessable, go through Argon2id instead.
    """
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))
