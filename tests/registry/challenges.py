"""Reading a ``WWW-Authenticate: Bearer`` challenge strictly, the way a client would.

Every parameter must be ``key="quoted-string"``, separated by commas, each key
at most once; anything else (a second ``realm``, a stray quote) fails the test.
"""

from __future__ import annotations

import re

__all__ = ["parse_challenge"]

_PARAM = re.compile(r'([A-Za-z_]+)="((?:[^"\\]|\\.)*)"(?:,|$)')
_ESCAPED = re.compile(r"\\(.)")


def parse_challenge(value: str) -> dict[str, str]:
    assert value.startswith("Bearer "), value
    rest = value[len("Bearer ") :]
    params: dict[str, str] = {}
    position = 0
    while position < len(rest):
        match = _PARAM.match(rest, position)
        assert match is not None, f"unparsable challenge at {position}: {value!r}"
        key = match.group(1)
        assert key not in params, f"{key} twice in {value!r}"
        params[key] = _ESCAPED.sub(r"\1", match.group(2))
        position = match.end()
    assert all(" " <= c <= "~" for c in value), f"non-printable byte in {value!r}"
    return params
