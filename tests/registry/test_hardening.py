"""Issue 11 on the registry, SQLite then PostgreSQL: every answer below was a 500, a forged
challenge parameter, or an answer OCI clients do not expect.

- Names are validated before any challenge is built, and challenge parameters
  are escaped: a quote in a path never adds a second ``realm``.
- Every parser is bounded: 5000-digit numbers, NUL, non-ASCII, deep nesting
  get a 4xx with the spec's code, never a 500 (the registry's log is checked
  for tracebacks at the end).
- A reference that is neither a tag nor a digest is an unknown manifest on
  GET/HEAD (404 after the token check); PUT keeps 400 TAG_INVALID.
- A mount's challenge names target and same-namespace source; a token
  covering only the target falls back to an upload (202), never a second 401.
- A token without a subject is not a login: ``/v2/`` and the catalog answer 401.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.conftest import Stack
from tests.registry.challenges import parse_challenge
from tests.registry.manifest_helpers import OCI_MANIFEST, Repo, error_code

BIG = "9" * 5000


@dataclass
class Fixture:
    """One repository of one user holding a tagged image and a started upload."""

    repo: Repo
    config: dict[str, Any]
    layer: dict[str, Any]
    upload: str
    manifest: bytes
    session: str
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def user(self) -> str:
        return self.repo.user


@pytest.fixture(scope="module")
def fx(rstack: Stack) -> Fixture:
    repo = Repo.create(rstack)
    manifest = repo.image([b"layer bytes for hardening"])
    assert repo.put_manifest("v1", manifest).status_code == 201
    doc = json.loads(manifest)
    r = repo.request("POST", "blobs/uploads/")
    assert r.status_code == 202
    return Fixture(
        repo=repo,
        config=doc["config"],
        layer=doc["layers"][0],
        upload=r.headers["docker-upload-uuid"],
        manifest=manifest,
        session=rstack.session(repo.user),
    )


@pytest.fixture(autouse=True)
def no_traceback(rstack: Stack) -> Iterator[None]:
    """Whatever a test sends, the registry never fails inside (no traceback logged)."""
    log = rstack.root / "registry.log"
    offset = log.stat().st_size
    yield
    with log.open("rb") as handle:
        handle.seek(offset)
        written = handle.read().decode(errors="replace")
    assert "Traceback" not in written, written[written.find("Traceback") :][:3000]


def _manifest(fx: Fixture, **replace: str) -> bytes:
    """The fixture's manifest text with literal substitutions (to plant raw JSON)."""
    text = fx.manifest.decode()
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return text.encode()


# --- item 7: names before challenges, escaped parameters ---------------------------------

FORGED = [
    'a"b,realm="https://evil.example/token',
    "a\\b",
    "a%0d%0aX-Injected: 1",
    "a%01b",
    "caf%C3%A9",
    "a%00b",
]


@pytest.mark.parametrize("suffix", FORGED)
@pytest.mark.parametrize(
    ("method", "template"),
    [
        ("GET", "/api/repos/{name}"),
        ("GET", "/api/repos/{name}/tags"),
        ("DELETE", "/api/repos/{name}/tags/v1"),
        ("GET", "/v2/{name}/tags/list"),
        ("GET", "/v2/{name}/manifests/v1"),
        ("POST", "/v2/{name}/blobs/uploads/"),
    ],
)
@pytest.mark.parametrize("authenticated", [False, True])
def test_a_name_that_cannot_exist_never_reaches_a_challenge(
    rstack: Stack, fx: Fixture, suffix: str, method: str, template: str, authenticated: bool
) -> None:
    name = f"{fx.user}/{suffix}"
    headers = {"Authorization": f"Bearer {fx.session}"} if authenticated else {}
    r = httpx.request(
        method, rstack.registry_url + template.format(name=name), headers=headers, timeout=30
    )
    # A line break does not even match a route (Starlette's path converter
    # stops at it): 404. Everything else is refused by the name grammar.
    expected = (404, "UNSUPPORTED" if template.startswith("/api/") else "NAME_UNKNOWN")
    if "%0d%0a" not in suffix:
        expected = (400, "NAME_INVALID")
    assert (r.status_code, error_code(r)) == expected, r.text
    assert "www-authenticate" not in r.headers
    assert "x-injected" not in r.headers


def test_challenges_parse_as_one_realm_one_service_one_scope(rstack: Stack, fx: Fixture) -> None:
    for path, scope in [
        (f"/api/repos/{fx.repo.name}", f"repository:{fx.repo.name}:pull"),
        (f"/api/repos/{fx.repo.name}/tags", f"repository:{fx.repo.name}:pull"),
        ("/api/repos", "registry:catalog:*"),
        (f"/v2/{fx.repo.name}/tags/list", f"repository:{fx.repo.name}:pull"),
        ("/v2/_catalog", "registry:catalog:*"),
    ]:
        r = httpx.get(rstack.registry_url + path, timeout=30)
        assert r.status_code == 401
        params = parse_challenge(r.headers["www-authenticate"])
        assert params == {
            "realm": f"{rstack.auth_url}/v2/token",
            "service": "registry",
            "scope": scope,
        }, path


# --- item 8: bounded parsers, 4xx with the spec's code ------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    method: str
    path: str  # {repo}, {user}, {digest}, {upload} are filled in
    status: int
    code: str | None
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None  # a manifest template name, see _body


CASES = [
    Case("last NUL", "GET", "/v2/{repo}/tags/list?last=%00", 400, "TAG_INVALID"),
    Case("last non-ASCII", "GET", "/v2/{repo}/tags/list?last=%C3%A9", 400, "TAG_INVALID"),
    Case("last bad UTF-8", "GET", "/v2/{repo}/tags/list?last=%FF", 400, "TAG_INVALID"),
    Case("catalog last NUL", "GET", "/v2/_catalog?last=%00", 400, "NAME_INVALID"),
    Case("catalog last huge", "GET", "/v2/_catalog?last=" + "a" * 5000, 400, "NAME_INVALID"),
    Case("n 5000 digits", "GET", "/v2/{repo}/tags/list?n=" + BIG, 400, "PAGINATION_NUMBER_INVALID"),
    Case("n superscript", "GET", "/v2/{repo}/tags/list?n=%C2%B2", 400, "PAGINATION_NUMBER_INVALID"),
    Case("n Arabic digit", "GET", "/v2/_catalog?n=%D9%A3", 400, "PAGINATION_NUMBER_INVALID"),
    Case("n NUL", "GET", "/v2/_catalog?n=%00", 400, "PAGINATION_NUMBER_INVALID"),
    Case(
        "Range start 5000 digits",
        "GET",
        "/v2/{repo}/blobs/{digest}",
        416,
        "RANGE_INVALID",
        {"Range": f"bytes={BIG}-"},
    ),
    Case(
        "Range both 5000 digits",
        "GET",
        "/v2/{repo}/blobs/{digest}",
        416,
        "RANGE_INVALID",
        {"Range": f"bytes={BIG}-{BIG}"},
    ),
    # Beyond the end is clamped (RFC 9110): the whole blob, as a range.
    Case(
        "Range end 5000 digits",
        "GET",
        "/v2/{repo}/blobs/{digest}",
        206,
        None,
        {"Range": f"bytes=0-{BIG}"},
    ),
    Case(
        "Range suffix 5000 digits",
        "GET",
        "/v2/{repo}/blobs/{digest}",
        206,
        None,
        {"Range": f"bytes=-{BIG}"},
    ),
    Case(
        "Content-Range end 5000 digits",
        "PATCH",
        "/v2/{repo}/blobs/uploads/{upload}",
        416,
        "RANGE_INVALID",
        {"Content-Range": f"0-{BIG}"},
    ),
    Case(
        "Content-Range both 5000 digits",
        "PATCH",
        "/v2/{repo}/blobs/uploads/{upload}",
        416,
        "RANGE_INVALID",
        {"Content-Range": f"{BIG}-{BIG}"},
    ),
    Case(
        "Content-Range start 5000 digits on PUT",
        "PUT",
        "/v2/{repo}/blobs/uploads/{upload}?digest={digest}",
        416,
        "RANGE_INVALID",
        {"Content-Range": f"{BIG}-{BIG}"},
    ),
    Case(
        "manifest 5000-digit size",
        "PUT",
        "/v2/{repo}/manifests/m",
        400,
        "MANIFEST_INVALID",
        body="big size",
    ),
    Case(
        "manifest size over 2^63",
        "PUT",
        "/v2/{repo}/manifests/m",
        400,
        "MANIFEST_INVALID",
        body="int64 overflow",
    ),
    Case(
        "manifest nested 100000 deep",
        "PUT",
        "/v2/{repo}/manifests/m",
        400,
        "MANIFEST_INVALID",
        body="deep",
    ),
    Case(
        "manifest float overflow",
        "PUT",
        "/v2/{repo}/manifests/m",
        400,
        "MANIFEST_INVALID",
        body="float",
    ),
    Case(
        "manifest NUL in artifactType",
        "PUT",
        "/v2/{repo}/manifests/m",
        400,
        "MANIFEST_INVALID",
        body="nul",
    ),
    Case(
        "manifest lone surrogate",
        "PUT",
        "/v2/{repo}/manifests/m",
        400,
        "MANIFEST_INVALID",
        body="surrogate",
    ),
    Case(
        "manifest bad UTF-8",
        "PUT",
        "/v2/{repo}/manifests/m",
        400,
        "MANIFEST_INVALID",
        body="latin-1",
    ),
    Case(
        "referrers artifactType NUL",
        "GET",
        "/v2/{repo}/referrers/{digest}?artifactType=a%00b",
        200,
        None,
    ),
    Case("name NUL", "GET", "/v2/{user}/a%00b/tags/list", 400, "NAME_INVALID"),
    Case("name non-ASCII", "GET", "/v2/{user}/caf%C3%A9/manifests/v1", 400, "NAME_INVALID"),
    Case("name bad UTF-8", "GET", "/v2/{user}/%FF/blobs/{digest}", 400, "NAME_INVALID"),
    Case("dashboard name NUL", "GET", "/api/repos/{user}/a%00b/tags", 400, "NAME_INVALID"),
    Case("reference NUL", "GET", "/v2/{repo}/manifests/a%00b", 404, "MANIFEST_UNKNOWN"),
    Case("reference non-ASCII", "HEAD", "/v2/{repo}/manifests/caf%C3%A9", 404, None),
    Case(
        "reference NUL on PUT",
        "PUT",
        "/v2/{repo}/manifests/a%00b",
        400,
        "TAG_INVALID",
        body="plain",
    ),
    Case("reference NUL on DELETE", "DELETE", "/v2/{repo}/manifests/a%00b", 400, "TAG_INVALID"),
    Case("dashboard tag NUL", "DELETE", "/api/repos/{repo}/tags/a%00b", 400, "TAG_INVALID"),
    Case("digest NUL", "GET", "/v2/{repo}/blobs/sha256:%00", 400, "DIGEST_INVALID"),
    Case("digest non-ASCII", "GET", "/v2/{repo}/referrers/sha256:%C3%A9", 400, "DIGEST_INVALID"),
    Case("digest 5000 chars", "HEAD", "/v2/{repo}/blobs/sha256:" + "a" * 5000, 400, None),
    Case(
        "upload digest NUL", "POST", "/v2/{repo}/blobs/uploads/?digest=%00", 400, "DIGEST_INVALID"
    ),
    Case(
        "mount NUL",
        "POST",
        "/v2/{repo}/blobs/uploads/?mount=%00&from={repo}",
        400,
        "DIGEST_INVALID",
    ),
    Case("upload id NUL", "GET", "/v2/{repo}/blobs/uploads/a%00b", 404, "BLOB_UPLOAD_UNKNOWN"),
    Case(
        "upload id non-ASCII",
        "DELETE",
        "/v2/{repo}/blobs/uploads/caf%C3%A9",
        404,
        "BLOB_UPLOAD_UNKNOWN",
    ),
]


def _body(fx: Fixture, kind: str | None) -> bytes | None:
    size = f'"size":{fx.layer["size"]}'
    media = '"mediaType":"application/vnd.oci.image.manifest.v1+json"'
    if kind is None:
        return None
    if kind == "plain":
        return fx.manifest
    if kind == "big size":
        return _manifest(fx, **{size: f'"size":{BIG}'})
    if kind == "int64 overflow":
        return _manifest(fx, **{size: '"size":9223372036854775808'})
    if kind == "deep":
        return f'{{"schemaVersion":2,{media},"x":{"[" * 100000}{"]" * 100000}}}'.encode()
    if kind == "float":
        return _manifest(fx, **{media: media + ',"x":1e999'})
    if kind == "nul":
        return _manifest(fx, **{media: media + ',"artifactType":"a/b\\u0000"'})
    if kind == "surrogate":
        return _manifest(fx, **{media: media + ',"annotations":{"k":"\\ud800"}'})
    assert kind == "latin-1"
    return (
        _manifest(fx, **{media: media + ',"annotations":{"k":"caf\xe9"}'})
        .decode()
        .encode("latin-1")
    )


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input_gets_a_4xx_with_the_spec_code(
    rstack: Stack, fx: Fixture, case: Case
) -> None:
    path = case.path.format(
        repo=fx.repo.name, user=fx.user, digest=fx.layer["digest"], upload=fx.upload
    )
    headers = {**fx.repo.headers, **case.headers}
    if case.body is not None:
        headers["Content-Type"] = OCI_MANIFEST
    r = httpx.request(
        case.method,
        rstack.registry_url + path,
        headers=headers,
        content=_body(fx, case.body),
        timeout=60,
    )
    assert r.status_code == case.status, r.text[:500]
    if case.code is not None:
        assert error_code(r) == case.code, r.text[:500]
    if case.status == 206:
        assert r.content == b"layer bytes for hardening"
    if case.id.startswith("referrers"):
        assert r.json()["manifests"] == []


# --- the three answers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "reference", [".INVALID_MANIFEST_NAME", "bad!tag", "sha256:abc", "a" * 129]
)
def test_a_reference_that_cannot_exist_is_an_unknown_manifest(
    rstack: Stack, fx: Fixture, reference: str
) -> None:
    url = fx.repo.url(f"manifests/{reference}")
    # The token is checked first: no answer about the reference without one.
    r = httpx.get(url, timeout=30)
    assert r.status_code == 401 and error_code(r) == "UNAUTHORIZED"
    assert parse_challenge(r.headers["www-authenticate"])["scope"] == (
        f"repository:{fx.repo.name}:pull"
    )
    other, _ = rstack.create_user()
    token = rstack.token(other, f"repository:{fx.repo.name}:pull")
    r = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert r.status_code == 401
    r = httpx.get(url, headers=fx.repo.headers, timeout=30)
    assert r.status_code == 404 and error_code(r) == "MANIFEST_UNKNOWN"
    r = httpx.head(url, headers=fx.repo.headers, timeout=30)
    assert r.status_code == 404 and r.content == b""
    # PUT still says what is wrong with the reference.
    r = fx.repo.put_manifest(reference, fx.manifest)
    assert r.status_code == 400
    assert error_code(r) == ("DIGEST_INVALID" if ":" in reference else "TAG_INVALID")


def _mount(
    rstack: Stack, target: str, source: str, digest: str, token: str | None
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(
        f"{rstack.registry_url}/v2/{target}/blobs/uploads/",
        params={"mount": digest, "from": source},
        headers=headers,
        timeout=30,
    )


def test_mount_challenge_names_target_and_source(rstack: Stack, fx: Fixture) -> None:
    target = f"{fx.user}/mount-target"
    digest = fx.layer["digest"]
    both = f"repository:{target}:pull,push repository:{fx.repo.name}:pull"
    # No token: the challenge names both; a client copying it verbatim gets a
    # token allowing the mount, and the mount succeeds (201, not a full upload).
    r = _mount(rstack, target, fx.repo.name, digest, None)
    assert r.status_code == 401
    challenge = parse_challenge(r.headers["www-authenticate"])
    assert challenge["scope"] == both and "error" not in challenge
    token = httpx.get(
        challenge["realm"],
        params={"service": challenge["service"], "scope": challenge["scope"]},
        auth=(fx.user, rstack.passwords[fx.user]),
        timeout=30,
    ).json()["token"]
    r = _mount(rstack, target, fx.repo.name, digest, token)
    assert r.status_code == 201, r.text
    assert r.headers["docker-content-digest"] == digest
    # A token that does not cover the target: both again, insufficient_scope.
    pull_only = rstack.token(fx.user, f"repository:{target}:pull")
    r = _mount(rstack, f"{target}2", fx.repo.name, digest, pull_only)
    challenge = parse_challenge(r.headers["www-authenticate"])
    assert r.status_code == 401 and challenge["error"] == "insufficient_scope"
    assert challenge["scope"] == (f"repository:{target}2:pull,push repository:{fx.repo.name}:pull")
    # A token covering the target but not the source: an upload, never a second 401.
    target_only = rstack.token(fx.user, f"repository:{target}3:pull,push")
    r = _mount(rstack, f"{target}3", fx.repo.name, digest, target_only)
    assert r.status_code == 202, r.text
    assert r.headers["location"].startswith(f"/v2/{target}3/blobs/uploads/")


@pytest.mark.parametrize(
    "source",
    ["someone-else/app", "noslash", 'x"y', "{user}/mount-target", "{user}/UPPER"],
)
def test_mount_challenge_reveals_nothing_beyond_the_namespace(
    rstack: Stack, fx: Fixture, source: str
) -> None:
    """A source in another namespace (or not a name, or the target itself) is not echoed."""
    target = f"{fx.user}/mount-target"
    r = _mount(rstack, target, source.format(user=fx.user), fx.layer["digest"], None)
    assert r.status_code == 401
    assert parse_challenge(r.headers["www-authenticate"])["scope"] == (
        f"repository:{target}:pull,push"
    )


def test_token_without_subject_is_not_a_login(rstack: Stack, fx: Fixture) -> None:
    r = httpx.get(rstack.auth_url + "/v2/token", params={"service": "registry"}, timeout=30)
    assert r.status_code == 200
    anonymous = {"Authorization": f"Bearer {r.json()['token']}"}
    for path, scope in [
        ("/v2/", None),
        ("/v2/_catalog", "registry:catalog:*"),
        ("/api/repos", "registry:catalog:*"),
    ]:
        r = httpx.get(rstack.registry_url + path, headers=anonymous, timeout=30)
        assert r.status_code == 401, path
        assert error_code(r) == "UNAUTHORIZED"
        expected = {"realm": f"{rstack.auth_url}/v2/token", "service": "registry"}
        if scope:
            expected["scope"] = scope
        assert parse_challenge(r.headers["www-authenticate"]) == expected, path
    # A logged-in user still passes.
    user_token = {"Authorization": f"Bearer {rstack.token(fx.user)}"}
    assert httpx.get(rstack.registry_url + "/v2/", headers=user_token, timeout=30).json() == {}
    r = httpx.get(rstack.registry_url + "/v2/_catalog", headers=fx.repo.headers, timeout=30)
    assert r.status_code == 200
