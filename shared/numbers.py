"""Decimal numbers from untrusted text (headers, query parameters), with bounded work.

Python's ``int()`` accepts Unicode digits (``"٣"``), signs, underscores and
whitespace, and refuses more than 4,300 digits with a ValueError that a handler
does not expect. `saturating_int` accepts ASCII digits only and never converts
more digits than its ceiling has, so a 5,000-digit number costs nothing and
reads as "at least the ceiling", which is all a caller comparing it with a
size or a limit needs to know.
"""

from __future__ import annotations

__all__ = ["saturating_int"]


def saturating_int(text: str, ceiling: int) -> int | None:
    """``min(int(text), ceiling)`` for a non-empty run of ASCII digits; None otherwise."""
    if not text or not text.isascii() or not text.isdigit():
        return None
    digits = text.lstrip("0") or "0"
    if len(digits) > len(str(ceiling)):
        return ceiling
    return min(int(digits), ceiling)
