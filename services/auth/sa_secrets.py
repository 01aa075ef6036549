"""The format of service-account tokens: ``ecloud_`` + random part + checksum.

``ecloud_<43 base62 chars: 256 random bits><6 base62 chars: CRC32 of the random part>``

The prefix lets secret scanners and our own endpoints recognise the token; the
checksum rejects typos and truncated copies without a database lookup (as
GitHub's tokens do). Only a hash of the whole token is stored.
"""

from __future__ import annotations

import zlib

from services.auth.accounts import SA_TOKEN_PREFIX
from services.auth.ids import BASE62, random_base62

__all__ = ["CHECKSUM_LENGTH", "RANDOM_LENGTH", "SA_TOKEN_PREFIX", "is_well_formed", "new_secret"]

# 43 base62 characters carry 43 * log2(62) ≈ 256 bits: at least 32 random bytes.
RANDOM_LENGTH = 43
# 62**6 > 2**32, so six characters hold any CRC32 value.
CHECKSUM_LENGTH = 6
TOKEN_LENGTH = len(SA_TOKEN_PREFIX) + RANDOM_LENGTH + CHECKSUM_LENGTH
_ALPHABET = frozenset(BASE62)


def _checksum(random_part: str) -> str:
    value = zlib.crc32(random_part.encode("ascii"))
    chars = []
    for _ in range(CHECKSUM_LENGTH):
        value, digit = divmod(value, 62)
        chars.append(BASE62[digit])
    return "".join(reversed(chars))


def new_secret() -> str:
    random_part = random_base62(RANDOM_LENGTH)
    return SA_TOKEN_PREFIX + random_part + _checksum(random_part)


def is_well_formed(secret: str) -> bool:
    """True when `secret` has the prefix, the length, the alphabet and a matching checksum."""
    if len(secret) != TOKEN_LENGTH or not secret.startswith(SA_TOKEN_PREFIX):
        return False
    body = secret[len(SA_TOKEN_PREFIX) :]
    if not set(body) <= _ALPHABET:
        return False
    return _checksum(body[:RANDOM_LENGTH]) == body[RANDOM_LENGTH:]
