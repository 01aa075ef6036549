"""OCI grammars: repository names, tags and digests.

The patterns are those of the OCI Distribution Spec v1.1 ("Pulling manifests")
and the image-spec descriptor digest grammar. Every service validates names
through this module and nowhere else.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

__all__ = [
    "MAX_NAME_LENGTH",
    "SUPPORTED_DIGEST_ALGORITHMS",
    "Digest",
    "DigestError",
    "is_valid_name",
    "is_valid_tag",
    "is_valid_username",
    "namespace_of",
    "parse_digest",
]

MAX_NAME_LENGTH = 255

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_NAME_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_USERNAME_RE = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*")
_TAG_RE = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
_DIGEST_RE = re.compile(r"([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)")

# Algorithm -> (hex length of the encoded part, hashlib constructor name).
SUPPORTED_DIGEST_ALGORITHMS: dict[str, int] = {"sha256": 64, "sha512": 128}


class DigestError(ValueError):
    """A digest string that breaks the grammar or names an unsupported algorithm."""


def is_valid_name(name: str) -> bool:
    """True when `name` is a valid OCI repository name of at most 255 characters."""
    return len(name) <= MAX_NAME_LENGTH and _NAME_RE.fullmatch(name) is not None


def is_valid_username(username: str) -> bool:
    """A username is a namespace: one lowercase OCI name component, 2 to 64 characters."""
    return 2 <= len(username) <= 64 and _USERNAME_RE.fullmatch(username) is not None


def is_valid_tag(tag: str) -> bool:
    return _TAG_RE.fullmatch(tag) is not None


def namespace_of(name: str) -> str | None:
    """The namespace (first component) of a repository name `<namespace>/<path>`.

    A single-component name has no namespace: nobody owns it, so nobody may
    create it.
    """
    if not is_valid_name(name) or "/" not in name:
        return None
    return name.split("/", 1)[0]


@dataclass(frozen=True, slots=True)
class Digest:
    algorithm: str
    encoded: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.encoded}"

    def hasher(self) -> hashlib._Hash:
        return hashlib.new(self.algorithm)

    @classmethod
    def of_bytes(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())


def parse_digest(value: str) -> Digest:
    """Parse and validate `algorithm:encoded`; only sha256 and sha512 are accepted."""
    match = _DIGEST_RE.fullmatch(value)
    if match is None:
        raise DigestError(f"invalid digest {value[:200]!r}")
    algorithm, encoded = match.group(1), match.group(2)
    length = SUPPORTED_DIGEST_ALGORITHMS.get(algorithm)
    if length is None:
        raise DigestError(f"unsupported digest algorithm {algorithm[:50]!r}")
    if len(encoded) != length or re.fullmatch(r"[a-f0-9]+", encoded) is None:
        raise DigestError(f"invalid {algorithm} digest: expected {length} lowercase hex characters")
    return Digest(algorithm, encoded)
