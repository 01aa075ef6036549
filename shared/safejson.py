"""Parsing untrusted JSON without surprises: one strict `loads` for request bodies.

Python's `json.loads` accepts things a request body must not carry, and fails on
others with errors that are not `JSONDecodeError` (so a handler that catches only
that answers 500):

- nesting deep enough to raise `RecursionError`;
- integers of thousands of digits (`ValueError` from the int-to-str limit, or a
  slow conversion below it), and `NaN`/`Infinity`, which are not JSON;
- ``\\ud800`` escapes that decode to lone surrogates, which no database or
  encoder takes later;
- NUL characters, which PostgreSQL refuses in text.

`loads` refuses all of them with `JSONError` (a `ValueError`) carrying a message
fit for a 400 answer. Depth is checked by a scan of the text before the parser
recurses, so no input reaches the recursion limit.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["MAX_DEPTH", "MAX_NUMBER_CHARS", "JSONError", "check_text", "loads"]

MAX_DEPTH = 32
MAX_NUMBER_CHARS = 40


class JSONError(ValueError):
    """A body that is not JSON we accept; the message says why."""


def _nesting_depth(text: str) -> int:
    """The deepest ``[``/``{`` nesting outside strings (malformed text is left to the parser)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _number(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        if len(text) > MAX_NUMBER_CHARS:
            raise JSONError(
                f"a number in the JSON body has more than {MAX_NUMBER_CHARS} characters"
            )
        value = kind(text)
        if not math.isfinite(value):
            raise JSONError("a number in the JSON body is out of range")
        return value

    return parse


def _no_constant(name: str) -> Any:
    raise JSONError(f"{name} is not JSON")


def check_text(value: str, where: str = "a string") -> None:
    """Refuse NUL and lone surrogates in `value` (raises `JSONError`)."""
    if "\x00" in value:
        raise JSONError(f"{where} in the JSON body contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise JSONError(f"{where} in the JSON body contains a lone surrogate") from exc


def _check_strings(value: Any) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            check_text(item)
        elif isinstance(item, dict):
            for key, child in item.items():
                check_text(key, "a key")
                stack.append(child)
        elif isinstance(item, list):
            stack.extend(item)


def loads(data: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse `data` (UTF-8 when bytes) as strict JSON; `JSONError` on anything refused."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONError("the body is not valid UTF-8") from exc
    else:
        text = data
    if _nesting_depth(text) > max_depth:
        raise JSONError(f"the JSON body is nested more than {max_depth} levels deep")
    try:
        value = json.loads(
            text,
            parse_int=_number(int),
            parse_float=_number(float),
            parse_constant=_no_constant,
        )
    except JSONError:
        raise
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise JSONError(f"the body is not valid JSON: {exc}") from exc
    _check_strings(value)
    return value
