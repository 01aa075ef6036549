"""Property-based fuzzing (Hypothesis) of the shared parsers: names, tags, digests, scopes,
JSON, decimals and token peeking.

Each parser, given any text at all (NUL, control characters, lone surrogates,
non-ASCII, huge lengths), either returns a value that satisfies its grammar
or raises its own documented error: never anything else. Examples are drawn
from a fixed seed (`tests.fuzz`) so CI is repeatable.
"""

from __future__ import annotations

import json
import string
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from shared.names import (
    MAX_NAME_LENGTH,
    SUPPORTED_DIGEST_ALGORITHMS,
    DigestError,
    is_valid_name,
    is_valid_tag,
    is_valid_username,
    namespace_of,
    parse_digest,
)
from shared.numbers import saturating_int
from shared.scopes import (
    REPOSITORY_ACTIONS,
    ScopeError,
    parse_sa_scope,
    parse_scope,
    parse_scopes,
)
from shared.strictjson import DEFAULT_MAX_DEPTH, MAX_INT_DIGITS, JSONRejected, loads
from shared.tokens import TokenError, TokenVerifier, is_session_token, unverified_kid
from tests.fuzz import fuzz

# Any code point, surrogates and control characters included.
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=300)
# Text close to the grammars, so the interesting boundaries are reached often.
NEAR = st.text(
    st.sampled_from(list(string.ascii_letters + string.digits + '._-/:=,*@+ \x00é\ud800"\\')),
    max_size=80,
)
COMPONENT = st.from_regex(r"[a-z0-9]{1,8}(?:(?:\.|_|__|-{1,2})[a-z0-9]{1,8}){0,2}", fullmatch=True)
NAME = st.lists(COMPONENT, min_size=1, max_size=4).map("/".join)
HEX = st.text("0123456789abcdef", min_size=64, max_size=64)


def _plain_ascii(value: str) -> bool:
    return value.isascii() and all(" " < c < "\x7f" for c in value)


@fuzz(300)
@given(st.one_of(ANY_TEXT, NEAR, NAME))
def test_names_tags_usernames(value: str) -> None:
    if is_valid_name(value):
        assert _plain_ascii(value) and 0 < len(value) <= MAX_NAME_LENGTH
        namespace = namespace_of(value)
        assert namespace == (value.split("/", 1)[0] if "/" in value else None)
    else:
        assert namespace_of(value) is None
    if is_valid_tag(value):
        assert _plain_ascii(value) and 0 < len(value) <= 128 and "/" not in value
    if is_valid_username(value):
        assert _plain_ascii(value) and is_valid_name(value) and "/" not in value


@fuzz(100)
@given(NAME)
def test_generated_names_are_valid_within_the_length(name: str) -> None:
    assert is_valid_name(name) == (len(name) <= MAX_NAME_LENGTH)


@fuzz(300)
@given(
    st.one_of(
        ANY_TEXT,
        NEAR,
        st.builds(lambda a, e: f"{a}:{e}", st.sampled_from(["sha256", "sha512", "md5", ""]), NEAR),
        HEX.map(lambda h: "sha256:" + h),
    )
)
def test_digests(value: str) -> None:
    try:
        digest = parse_digest(value)
    except DigestError:
        return
    assert str(digest) == value
    assert len(digest.encoded) == SUPPORTED_DIGEST_ALGORITHMS[digest.algorithm]
    assert set(digest.encoded) <= set("0123456789abcdef")


SCOPE_LIKE = st.builds(
    lambda t, n, a: f"{t}:{n}:{a}",
    st.sampled_from(["repository", "registry", "repository(plugin)", "repo", ""]),
    st.one_of(NAME, NEAR, st.just("catalog")),
    st.lists(st.sampled_from([*REPOSITORY_ACTIONS, "*", "x", ""]), max_size=4).map(",".join),
)


@fuzz(300)
@given(st.one_of(ANY_TEXT, NEAR, SCOPE_LIKE))
def test_oci_scopes(value: str) -> None:
    try:
        scope = parse_scope(value)
    except ScopeError:
        pass
    else:
        assert scope.actions
        assert parse_scope(str(scope)) == scope  # what it formats, it reads back
        if scope.type == "repository":
            assert is_valid_name(scope.name) and scope.actions <= set(REPOSITORY_ACTIONS)
    scopes, rejected = parse_scopes([value, value])
    assert all(s.actions for s in scopes) and len(rejected) % 2 == 0


SA_LIKE = st.builds(
    lambda u, r, a: f"storage.{u}.registry{r}={a}",
    st.one_of(st.just("me"), st.just("usr_abc"), NEAR),
    st.one_of(st.just(""), NAME.map(lambda n: "." + n), NEAR),
    st.lists(st.sampled_from(["read", "create", "update", "delete", "pull", "push", "x"])).map(
        ",".join
    ),
)


@fuzz(300)
@given(st.one_of(ANY_TEXT, NEAR, SA_LIKE), st.sampled_from([None, "usr_me"]))
def test_service_account_scopes(value: str, me: str | None) -> None:
    try:
        scope = parse_sa_scope(value, me=me)
    except ScopeError:
        return
    assert scope.actions and scope.actions <= set(REPOSITORY_ACTIONS)
    assert scope.repository is None or is_valid_name(scope.repository)
    assert scope.user_id != "me"


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=()), max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=40,
)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


def _acceptable(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" not in value and not any("\ud800" <= c <= "\udfff" for c in value)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return True
    if isinstance(value, int):
        return len(str(abs(value))) <= MAX_INT_DIGITS
    if isinstance(value, dict):
        return all(_acceptable(k) and _acceptable(v) for k, v in value.items())
    return all(_acceptable(v) for v in value)


@fuzz(300)
@given(JSON_VALUES)
def test_strict_json_reads_what_it_should(document: Any) -> None:
    text = json.dumps(document)
    expected_ok = _acceptable(document) and _depth(document) <= DEFAULT_MAX_DEPTH
    try:
        result = loads(text)
    except JSONRejected:
        assert not expected_ok, text[:300]
        return
    assert expected_ok, text[:300]
    assert result == json.loads(text)


@fuzz(300)
@given(
    st.one_of(st.binary(max_size=300), ANY_TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")))
)
def test_strict_json_on_any_bytes(payload: bytes) -> None:
    try:
        result = loads(payload)
    except JSONRejected:
        return
    assert _acceptable(result) and _depth(result) <= DEFAULT_MAX_DEPTH
    json.dumps(result)  # whatever it accepts can be written back


@fuzz(200)
@given(st.one_of(ANY_TEXT, st.text("0123456789", max_size=6000)), st.integers(0, 2**64))
def test_saturating_int(text: str, ceiling: int) -> None:
    value = saturating_int(text, ceiling)
    if text and text.isascii() and text.isdigit():
        assert value is not None and 0 <= value <= ceiling
        if len(text) < 4000:
            assert value == min(int(text), ceiling)
    else:
        assert value is None


@fuzz(200)
@given(
    st.one_of(
        ANY_TEXT,
        st.lists(
            st.text(string.ascii_letters + string.digits + "-_=", max_size=40), max_size=4
        ).map(".".join),
    )
)
def test_token_peeking_and_verification(token: str) -> None:
    """Unverified peeks never fail; verification fails only with TokenError."""
    assert is_session_token(token) in (True, False)
    kid = unverified_kid(token)
    assert kid is None or isinstance(kid, str)
    verifier = TokenVerifier(lambda kid: None, issuer="ecloud-auth")
    for verify in (verifier.verify_registry_token, verifier.verify_session_token):
        try:
            verify(token, "registry")
        except TokenError:
            pass
        else:
            raise AssertionError("a token verified without any key")
