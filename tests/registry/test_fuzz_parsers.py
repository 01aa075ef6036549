"""Property-based fuzzing (Hypothesis) of the registry's own parsers: ``Range``,
``Content-Range``, manifests, references, ``n``/``last`` and the challenge.

Given anything, each returns a value that satisfies its contract or raises
its documented error carrying a spec error code: never anything else (which
would be a 500). Fixed seed and example counts (`tests.fuzz`).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from starlette.datastructures import QueryParams

from services.registry.auth import challenge
from services.registry.byteranges import (
    BEYOND_ANY_SIZE,
    MalformedRange,
    RangeNotSatisfiable,
    parse_byte_range,
    parse_content_range,
)
from services.registry.errors import CODES, RegistryError
from services.registry.manifest_schema import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    MAX_BLOB_SIZE,
    OCI_INDEX,
    OCI_MANIFEST,
    ManifestError,
    parse_manifest,
)
from services.registry.pagination import MAX_PAGE, parse_page
from services.registry.routes.manifests import parse_reference
from services.registry.settings import RegistrySettings
from shared.names import is_valid_name, is_valid_tag
from tests.fuzz import fuzz
from tests.registry.challenges import parse_challenge

ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=200)
DIGITS = st.text("0123456789", min_size=1, max_size=30) | st.text("9", min_size=4000, max_size=5000)
HEADERISH = st.text(st.sampled_from(list("bytes=-, */0123456789²\t")), max_size=40)


def _range_model(first: str, last: str, size: int) -> tuple[int, int] | str | None:
    """RFC 9110 with unbounded integers: the answer parse_byte_range must match."""
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)  # the model converts every digit, however many
    try:
        return _unbounded_range(first, last, size)
    finally:
        sys.set_int_max_str_digits(limit)


def _unbounded_range(first: str, last: str, size: int) -> tuple[int, int] | str | None:
    if not first and not last:
        return None
    if not first:
        count = int(last)
        return "416" if count == 0 or size == 0 else (max(size - count, 0), size - 1)
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        return "416"
    return start, size - 1 if not last else min(int(last), size - 1)


@fuzz(300)
@given(
    st.one_of(st.just(""), DIGITS),
    st.one_of(st.just(""), DIGITS),
    st.integers(0, BEYOND_ANY_SIZE - 1),
)
def test_byte_range_matches_the_unbounded_model(first: str, last: str, size: int) -> None:
    expected = _range_model(first, last, size)
    try:
        got: tuple[int, int] | str | None = parse_byte_range(f"bytes={first}-{last}", size)
    except RangeNotSatisfiable:
        got = "416"
    assert got == expected


@fuzz(300)
@given(st.one_of(ANY_TEXT, HEADERISH), st.integers(0, 2**40))
def test_byte_range_on_anything(header: str, size: int) -> None:
    try:
        selected = parse_byte_range(header, size)
    except RangeNotSatisfiable:
        return
    if selected is not None:
        first, last = selected
        assert 0 <= first <= last < size


@fuzz(300)
@given(st.one_of(ANY_TEXT, HEADERISH, st.builds("{}-{}".format, DIGITS, DIGITS)))
def test_content_range_on_anything(header: str) -> None:
    try:
        chunk = parse_content_range(header)
    except (MalformedRange, RangeNotSatisfiable):
        return
    assert 0 <= chunk.start <= chunk.end < BEYOND_ANY_SIZE and chunk.length >= 1


@fuzz(300)
@given(st.one_of(ANY_TEXT, st.from_regex(r"[A-Za-z0-9_.:-]{0,140}", fullmatch=True)))
def test_references(value: str) -> None:
    try:
        reference = parse_reference(value)
    except RegistryError as exc:
        assert exc.code in ("TAG_INVALID", "DIGEST_INVALID")
        return
    assert (reference.tag is None) != (reference.digest is None)
    assert reference.tag is None or is_valid_tag(reference.tag)
    assert reference.digest is None or reference.digest == value


@fuzz(300)
@given(
    st.one_of(st.none(), ANY_TEXT, DIGITS, st.sampled_from(["-1", "0", "1e3", "²", "٣"])),
    st.one_of(st.none(), ANY_TEXT, st.from_regex(r"[a-z0-9/._-]{1,40}", fullmatch=True)),
    st.sampled_from([(is_valid_tag, "TAG_INVALID"), (is_valid_name, "NAME_INVALID")]),
)
def test_page_parameters(n: str | None, last: str | None, rule: tuple[Any, str]) -> None:
    items = [(k, v) for k, v in (("n", n), ("last", last)) if v is not None]
    try:
        page = parse_page(QueryParams(items), *rule)
    except RegistryError as exc:
        assert exc.code in ("PAGINATION_NUMBER_INVALID", rule[1]) and exc.status == 400
        return
    assert 0 <= page.n <= MAX_PAGE
    assert page.last is None or rule[0](page.last)


@fuzz(200)
@given(ANY_TEXT, st.sampled_from([None, "insufficient_scope", "invalid_token"]))
def test_challenge_is_always_one_well_formed_header(scope: str, error: str | None) -> None:
    settings = RegistrySettings.from_env(
        {"ECLOUD_DATA_DIR": str(Path("/nonexistent")), "ECLOUD_AUTH_URL": "https://a.example"}
    )
    value = challenge(settings, scope, error)
    params = parse_challenge(value)
    assert params["realm"] == "https://a.example/v2/token"
    assert set(params) <= {"realm", "service", "scope", "error"}
    if scope and all(" " <= c <= "~" for c in scope):
        assert params["scope"] == scope
    value.encode("latin-1")  # a header Starlette can send


# --- manifests ---------------------------------------------------------------------------

HEX = st.text("0123456789abcdef", min_size=64, max_size=64)
DIGEST = st.one_of(HEX.map(lambda h: "sha256:" + h), ANY_TEXT)
JSON_LEAF = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | ANY_TEXT
)
JSON_ANY = st.recursive(
    JSON_LEAF,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=20,
)
MEDIA = st.sampled_from([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST])


def _maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A plausible value most of the time, anything JSON now and then."""
    return st.one_of(value, value, value, JSON_ANY)


DESCRIPTOR = st.fixed_dictionaries(
    {
        "mediaType": _maybe(
            st.sampled_from(["application/vnd.oci.image.layer.v1.tar", OCI_MANIFEST])
        ),
        "digest": _maybe(DIGEST),
        "size": _maybe(st.integers(-1, 2**64)),
    },
    optional={
        "urls": _maybe(st.lists(ANY_TEXT, max_size=2)),
        "annotations": _maybe(st.dictionaries(ANY_TEXT, ANY_TEXT, max_size=2)),
        "artifactType": _maybe(ANY_TEXT),
    },
)
MANIFEST = st.fixed_dictionaries(
    {"schemaVersion": _maybe(st.just(2))},
    optional={
        "mediaType": _maybe(MEDIA),
        "config": _maybe(DESCRIPTOR),
        "layers": _maybe(st.lists(DESCRIPTOR, max_size=3)),
        "manifests": _maybe(st.lists(DESCRIPTOR, max_size=3)),
        "subject": _maybe(DESCRIPTOR),
        "artifactType": _maybe(ANY_TEXT),
        "annotations": _maybe(st.dictionaries(ANY_TEXT, ANY_TEXT, max_size=2)),
    },
)
CONTENT_TYPE = st.one_of(st.none(), MEDIA, ANY_TEXT, MEDIA.map(lambda m: m.upper() + "; x=1"))


def _check(payload: bytes, content_type: str | None) -> None:
    try:
        manifest = parse_manifest(payload, content_type)
    except ManifestError as exc:
        assert exc.code in CODES and CODES[exc.code].status < 500
        return
    assert manifest.digest == "sha256:" + hashlib.sha256(payload).hexdigest()
    for descriptor in (*manifest.blobs, *manifest.manifests):
        assert 0 <= descriptor.size <= MAX_BLOB_SIZE
        assert "\x00" not in descriptor.media_type
    assert "\x00" not in (manifest.effective_artifact_type or "")


@fuzz(400)
@given(MANIFEST, CONTENT_TYPE)
def test_manifest_documents(document: dict[str, Any], content_type: str | None) -> None:
    _check(json.dumps(document).encode("utf-8", "surrogatepass"), content_type)


@fuzz(200)
@given(
    st.one_of(
        st.binary(max_size=400),
        st.text(st.sampled_from(list('{}[]":,0123456789.eE-+ \\u"abtrufnl')), max_size=200).map(
            str.encode
        ),
    ),
    CONTENT_TYPE,
)
def test_manifest_bytes(payload: bytes, content_type: str | None) -> None:
    _check(payload, content_type)
