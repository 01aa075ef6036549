"""``Range`` and ``Content-Range`` parsing (services.registry.byteranges): exact, and bounded."""

from __future__ import annotations

import pytest

from services.registry.byteranges import (
    BEYOND_ANY_SIZE,
    ChunkRange,
    MalformedRange,
    RangeNotSatisfiable,
    parse_byte_range,
    parse_content_range,
)

BIG = "9" * 5000


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-0", (0, 0)),
        ("bytes=2-5", (2, 5)),
        ("bytes=2-", (2, 9)),
        ("bytes=-3", (7, 9)),
        ("bytes=-30", (0, 9)),
        ("bytes=5-100", (5, 9)),
        (f"bytes=0-{BIG}", (0, 9)),  # beyond the end is clamped
        (f"bytes=-{BIG}", (0, 9)),
        ("bytes=0009-0009", (9, 9)),
        ("bytes=5-2", None),  # invalid: ignored, whole blob
        (f"bytes={BIG}-{BIG[:-1]}", None),  # also invalid, however large
        ("bytes=0-1,3-4", None),  # several ranges: whole blob
        ("bytes=²-", None),
        ("items=0-1", None),
        ("bytes=-", None),
    ],
)
def test_byte_range(header: str, expected: tuple[int, int] | None) -> None:
    assert parse_byte_range(header, 10) == expected


@pytest.mark.parametrize("header", ["bytes=10-", f"bytes={BIG}-", f"bytes={BIG}-{BIG}", "bytes=-0"])
def test_unsatisfiable(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_byte_range(header, 10)


def test_empty_blob_has_no_satisfiable_range() -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_byte_range("bytes=-5", 0)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("0-9", ChunkRange(0, 9)),
        ("bytes 10-19/*", ChunkRange(10, 19)),
        ("bytes=10-19/100", ChunkRange(10, 19)),
        (f"0-{BEYOND_ANY_SIZE - 1}", ChunkRange(0, BEYOND_ANY_SIZE - 1)),
    ],
)
def test_content_range(header: str, expected: ChunkRange) -> None:
    assert parse_content_range(header) == expected


@pytest.mark.parametrize("header", ["", "0-", "-9", "a-b", "0-9-", "²-³", "0 - 9", "bytes */10"])
def test_malformed_content_range(header: str) -> None:
    with pytest.raises(MalformedRange):
        parse_content_range(header)


@pytest.mark.parametrize(
    "header", ["9-0", f"0-{BEYOND_ANY_SIZE}", f"0-{BIG}", f"{BIG}-{BIG}", f"{BIG}-0"]
)
def test_unsatisfiable_content_range(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_content_range(header)
