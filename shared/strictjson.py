"""JSON from untrusted bytes, with bounded work and only values every layer can hold.

`loads` accepts a strict subset of JSON in the spirit of I-JSON (RFC 7493):

- UTF-8 only; other bytes are refused, not replaced;
- nesting at most `max_depth` deep, checked by a linear scan *before* parsing,
  so the parser never recurses deeper than that;
- integers of at most `MAX_INT_DIGITS` digits (Python refuses to convert more
  than 4,300 with an error no handler expects, and no count or size needs
  more than 19), finite numbers of bounded length, no ``NaN``/``Infinity``;
- strings (keys included) without NUL or lone surrogates: PostgreSQL cannot
  store NUL in text and no database driver can encode a lone surrogate;
- optionally, no duplicate keys (two parsers picking different values for one
  key would read one document two ways).

Everything it refuses raises `JSONRejected`, a ValueError whose message is
safe to show the client.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = ["DEFAULT_MAX_DEPTH", "MAX_INT_DIGITS", "JSONRejected", "loads"]

DEFAULT_MAX_DEPTH = 32
MAX_INT_DIGITS = 19
_MAX_FLOAT_CHARS = 40

# The scans below run before parsing, on the text with escaped quotes and
# strings removed (its "skeleton"); every one is a C-speed pass, linear
# whatever the input (an unterminated string is consumed once).
_STRING = re.compile(r'"[^"]*"')
# Brackets only, all made square (json.loads itself refuses mismatched pairs).
_SQUARE = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_LONG_NUMBER = re.compile(rf"[0-9]{{{MAX_INT_DIGITS + 1},}}")
# Only a document with one of these can hold a NUL or a lone surrogate once
# decoded; only then are its strings walked one by one.
_SUSPECT = re.compile(r"\\u0000|\\u[dD][89a-fA-F]|[\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


class JSONRejected(ValueError):
    """A document outside the accepted subset; the message is safe to show."""


def _check_skeleton(text: str, max_depth: int) -> None:
    # Backslash pairs first (left to right, as a JSON reader pairs them); a
    # backslash left over escapes the next character, and only an escaped
    # quote matters for where strings end.
    unescaped = text.replace("\\\\", "").replace('\\"', "")
    skeleton = _STRING.sub("", unescaped)
    if _LONG_NUMBER.search(skeleton):
        raise JSONRejected(f"JSON number with more than {MAX_INT_DIGITS} digits")
    brackets = skeleton.encode("utf-8", "surrogatepass").translate(_SQUARE, _NOT_BRACKET)
    # Each pass removes the innermost pairs (replace never rescans what it
    # produced), so a document nested within the bound is empty after
    # `max_depth` passes.
    for _ in range(max_depth):
        if not brackets:
            return
        reduced = brackets.replace(b"[]", b"")
        if len(reduced) == len(brackets):
            raise JSONRejected("not valid JSON: unbalanced brackets")
        brackets = reduced
    if brackets:
        raise JSONRejected(f"JSON nested deeper than {max_depth} levels (or unbalanced)")


def _parse_float(text: str) -> float:
    value = float(text) if len(text) <= _MAX_FLOAT_CHARS else math.inf
    if not math.isfinite(value):
        raise JSONRejected("JSON number too long or out of range")
    return value


def _reject_constant(name: str) -> Any:
    raise JSONRejected(f"JSON holds {name}, which JSON does not allow")


def _check_text(value: str) -> None:
    if "\x00" in value:
        raise JSONRejected("JSON string holds a NUL character")
    if _SURROGATE.search(value):
        raise JSONRejected("JSON string holds a lone surrogate")


def _check_strings(document: Any) -> None:
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            _check_text(node)
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise JSONRejected(f"duplicate key {key[:100]!r}")
        result[key] = value
    return result


def loads(
    payload: bytes | str, *, max_depth: int = DEFAULT_MAX_DEPTH, unique_keys: bool = False
) -> Any:
    """The document in `payload`; `JSONRejected` for anything outside the subset."""
    if isinstance(payload, bytes):
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            raise JSONRejected("JSON is not UTF-8 text") from None
    else:
        text = payload
    _check_skeleton(text, max_depth)
    try:
        document = json.loads(
            text,
            object_pairs_hook=_unique_pairs if unique_keys else None,
            parse_float=_parse_float,
            parse_constant=_reject_constant,
        )
    except JSONRejected:
        raise
    except json.JSONDecodeError as exc:
        raise JSONRejected(f"not valid JSON: {exc}"[:300]) from None
    except (ValueError, RecursionError) as exc:  # belt and braces: never a 500
        raise JSONRejected(f"not valid JSON: {exc}"[:300]) from None
    if _SUSPECT.search(text):
        _check_strings(document)
    return document
