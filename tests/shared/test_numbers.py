"""`saturating_int`: ASCII digits only, bounded work, saturating at the ceiling."""

from __future__ import annotations

import pytest

from shared.numbers import saturating_int


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("007", 7),
        ("1000", 1000),
        ("1001", 1000),
        ("9" * 5000, 1000),
        ("0" * 5000 + "12", 12),
    ],
)
def test_values(text: str, expected: int) -> None:
    assert saturating_int(text, 1000) == expected


@pytest.mark.parametrize(
    "text", ["", "-1", "+1", " 1", "1 ", "1_000", "1e3", "²", "٣", "１", "\x00"]
)
def test_not_a_decimal(text: str) -> None:
    """What int() would accept or choke on (signs, Unicode digits, underscores) is refused."""
    assert saturating_int(text, 1000) is None
