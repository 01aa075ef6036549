"""Byte ranges of blob transfers: a blob GET's ``Range`` and an upload chunk's ``Content-Range``.

``Range: bytes=<first>-<last>`` (RFC 9110) selects one inclusive span of a
blob, ``bytes=-<n>`` its last n bytes. Several ranges, or a header that cannot
be parsed, select the whole blob, as RFC 9110 allows; a span that starts at or
past the end is not satisfiable (416).

``Content-Range: <start>-<end>`` (the OCI spec's form; ``bytes `` prefix and a
``/<total>`` suffix tolerated) places a PATCH chunk; both ends are inclusive.

Numbers are read as ASCII digits with a bounded digit count: anything at or
beyond `BEYOND_ANY_SIZE` is past the end of every blob, which is exactly the
answer an arbitrary-precision reading would give, without the work.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.numbers import saturating_int

__all__ = [
    "BEYOND_ANY_SIZE",
    "ChunkRange",
    "MalformedRange",
    "RangeNotSatisfiable",
    "parse_byte_range",
    "parse_content_range",
]

# Blob sizes are 64-bit signed integers in the metadata: every offset of
# every blob is below this.
BEYOND_ANY_SIZE = 2**63

_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)")
_CONTENT_RANGE = re.compile(r"(?:bytes[ =])?([0-9]+)-([0-9]+)(?:/(?:[0-9]+|\*))?")


class RangeNotSatisfiable(Exception):
    """A range that selects no byte (416)."""


class MalformedRange(ValueError):
    """A ``Content-Range`` that does not follow ``<start>-<end>`` (400)."""


@dataclass(frozen=True, slots=True)
class ChunkRange:
    """An inclusive span of an upload: bytes `start` to `end`."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def _number(text: str) -> int:
    value = saturating_int(text, BEYOND_ANY_SIZE)
    assert value is not None  # the patterns only capture ASCII digits
    return value


def _decimal_order(text: str) -> tuple[int, str]:
    """A key that orders ASCII decimals by value without converting them."""
    digits = text.lstrip("0") or "0"
    return len(digits), digits


def parse_byte_range(header: str, size: int) -> tuple[int, int] | None:
    """The inclusive (first, last) byte of one ``bytes=`` range; None for the whole blob.

    Raises `RangeNotSatisfiable` when the range selects nothing of `size` bytes.
    """
    match = _RANGE.fullmatch(header.strip().replace(" ", ""))
    if match is None:
        return None
    first, last = match.group(1), match.group(2)
    if not first and not last:
        return None
    if not first:  # suffix: the last N bytes
        count = _number(last)
        if count == 0 or size == 0:
            raise RangeNotSatisfiable
        return max(size - count, 0), size - 1
    if last and _decimal_order(last) < _decimal_order(first):
        return None  # not a valid range: ignored
    start = _number(first)
    if start >= size:
        raise RangeNotSatisfiable
    return start, size - 1 if not last else min(_number(last), size - 1)


def parse_content_range(header: str) -> ChunkRange:
    """The span a chunk claims to cover.

    Raises `MalformedRange` for anything but ``<start>-<end>``, and
    `RangeNotSatisfiable` when it ends before it starts or reaches beyond any
    possible blob.
    """
    match = _CONTENT_RANGE.fullmatch(header.strip())
    if match is None:
        raise MalformedRange("Content-Range must be '<start>-<end>'")
    start, end = _number(match.group(1)), _number(match.group(2))
    if end >= BEYOND_ANY_SIZE:
        raise RangeNotSatisfiable("Content-Range reaches beyond any blob size")
    if end < start:
        raise RangeNotSatisfiable("Content-Range ends before it starts")
    return ChunkRange(start, end)
