"""`shared.strictjson`: bounded depth and digits, UTF-8, no NUL or lone surrogate, linear work."""

from __future__ import annotations

import json

import pytest

from shared.strictjson import MAX_INT_DIGITS, JSONRejected, loads


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": [1, 2.5, true, null, "x"]}', {"a": [1, 2.5, True, None, "x"]}),
        ('"\\ud83d\\ude00"', "\U0001f600"),  # a surrogate pair is one character
        ('"\\\\u0000"', "\\u0000"),  # an escaped backslash, then text
        ('["\\\\", "[[["]', ["\\", "[[["]),  # brackets inside strings do not nest
        ('["\\"[[["]', ['"[[[']),
        ("[" * 32 + "]" * 32, json.loads("[" * 32 + "]" * 32)),
        ("-" + "9" * MAX_INT_DIGITS, -int("9" * MAX_INT_DIGITS)),
        ('{"a": 1, "a": 2}', {"a": 2}),  # duplicates allowed unless asked otherwise
    ],
)
def test_accepts(text: str, expected: object) -> None:
    assert loads(text) == expected
    assert loads(text.encode()) == expected


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("[" * 33 + "]" * 33, "deeper than 32"),
        ("[" * 100000, "unbalanced"),
        ('{"a":' * 20 + "1" + "}" * 20 + "}", "unbalanced"),
        ("9" * (MAX_INT_DIGITS + 1), "digits"),
        ('{"size": ' + "9" * 5000 + "}", "digits"),
        ("1." + "0" * 30 + "1e5", "digits"),
        ("1e999", "out of range"),
        ("NaN", "NaN"),
        ("[-Infinity]", "Infinity"),
        ('"a\\u0000b"', "NUL"),
        ('{"k\\u0000": 1}', "NUL"),
        ('["\\ud800"]', "surrogate"),
        ('{"\\udc00x": 1}', "surrogate"),
        (b'"caf\xe9"', "UTF-8"),
        (b"\xff\xfe", "UTF-8"),
        ('{"a": 1', "not valid JSON"),
        ('"' + '\\"' * 1000, "not valid JSON"),
    ],
)
def test_refuses(payload: str | bytes, reason: str) -> None:
    with pytest.raises(JSONRejected, match=reason):
        loads(payload)


def test_unique_keys_on_request() -> None:
    with pytest.raises(JSONRejected, match="duplicate key 'a'"):
        loads('{"a": 1, "b": {"a": 2}, "a": 3}', unique_keys=True)
    assert loads('{"a": 1, "b": {"a": 2}}', unique_keys=True) == {"a": 1, "b": {"a": 2}}


def test_depth_is_configurable() -> None:
    assert loads("[[[]]]", max_depth=3) == [[[]]]
    with pytest.raises(JSONRejected, match="deeper than 2"):
        loads("[[[]]]", max_depth=2)
    # Mixed brackets count alike: one pass removes exactly one level.
    with pytest.raises(JSONRejected, match="deeper than 4"):
        loads('{"a":[{"b":[{}]}]}', max_depth=4)
    assert loads('{"a":[{"b":[{}]}]}', max_depth=5) == {"a": [{"b": [{}]}]}
