"""Blobs over HTTP: HEAD, GET with ranges, DELETE, per-repository visibility, dedup."""

from __future__ import annotations

import os
import time

import httpx
import pytest

from tests.conftest import Stack
from tests.registry.conftest import Account, error_code, registry_sql, sha256


@pytest.fixture
def blob(repo: tuple[str, httpx.Client], alice: Account) -> tuple[str, httpx.Client, bytes, str]:
    name, c = repo
    data = os.urandom(1000)
    return name, c, data, alice.push_blob(name, data)


def test_head(blob: tuple[str, httpx.Client, bytes, str]) -> None:
    name, c, data, digest = blob
    r = c.head(f"/v2/{name}/blobs/{digest}")
    assert r.status_code == 200
    assert r.headers["content-length"] == str(len(data))
    assert r.headers["docker-content-digest"] == digest
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.content == b""


def test_get(blob: tuple[str, httpx.Client, bytes, str]) -> None:
    name, c, data, digest = blob
    r = c.get(f"/v2/{name}/blobs/{digest}")
    assert r.status_code == 200
    assert r.content == data
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["docker-content-digest"] == digest
    assert r.headers["accept-ranges"] == "bytes"


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=10-19", 10, 19),
        ("bytes=990-", 990, 999),
        ("bytes=-5", 995, 999),
        ("bytes=-5000", 0, 999),
        ("bytes=500-5000", 500, 999),
    ],
)
def test_range(
    blob: tuple[str, httpx.Client, bytes, str], header: str, first: int, last: int
) -> None:
    name, c, data, digest = blob
    r = c.get(f"/v2/{name}/blobs/{digest}", headers={"Range": header})
    assert r.status_code == 206
    assert r.headers["content-range"] == f"bytes {first}-{last}/{len(data)}"
    assert r.headers["content-length"] == str(last - first + 1)
    assert r.content == data[first : last + 1]


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5000-6000", "bytes=-0"])
def test_unsatisfiable_range(blob: tuple[str, httpx.Client, bytes, str], header: str) -> None:
    name, c, data, digest = blob
    r = c.get(f"/v2/{name}/blobs/{digest}", headers={"Range": header})
    assert r.status_code == 416
    assert error_code(r) == "RANGE_INVALID"
    assert r.headers["content-range"] == f"bytes */{len(data)}"


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "items=0-5", "bytes=9-2", "garbage"])
def test_ignored_ranges_serve_whole_blob(
    blob: tuple[str, httpx.Client, bytes, str], header: str
) -> None:
    name, c, data, digest = blob
    r = c.get(f"/v2/{name}/blobs/{digest}", headers={"Range": header})
    assert r.status_code == 200 and r.content == data


def test_if_range_mismatch_serves_whole_blob(blob: tuple[str, httpx.Client, bytes, str]) -> None:
    name, c, data, digest = blob
    r = c.get(f"/v2/{name}/blobs/{digest}", headers={"Range": "bytes=0-1", "If-Range": '"other"'})
    assert r.status_code == 200 and r.content == data
    r = c.get(
        f"/v2/{name}/blobs/{digest}", headers={"Range": "bytes=0-1", "If-Range": f'"{digest}"'}
    )
    assert r.status_code == 206 and r.content == data[:2]


def test_unknown_blob(repo: tuple[str, httpx.Client]) -> None:
    name, c = repo
    digest = sha256(b"never pushed")
    for method in ("HEAD", "GET", "DELETE"):
        r = c.request(method, f"/v2/{name}/blobs/{digest}")
        assert r.status_code == 404
    assert error_code(c.get(f"/v2/{name}/blobs/{digest}")) == "BLOB_UNKNOWN"


def test_bad_digest_in_path(repo: tuple[str, httpx.Client]) -> None:
    name, c = repo
    alice_push = c.post(f"/v2/{name}/blobs/uploads/", params={"digest": sha256(b"a")}, content=b"a")
    assert alice_push.status_code == 201
    for value in ("sha256:abc", "md5:" + "0" * 32, "sha256:" + "G" * 64):
        r = c.get(f"/v2/{name}/blobs/{value}")
        assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID"


def test_blob_is_visible_only_where_linked(alice: Account, bob: Account, rstack: Stack) -> None:
    data = os.urandom(500)
    first, second = alice.repo(), alice.repo()
    digest = alice.push_blob(first, data)
    with alice.client(second) as c:
        # The second repository exists (it has another blob) but does not link this one.
        alice.push_blob(second, b"other")
        r = c.head(f"/v2/{second}/blobs/{digest}")
        assert r.status_code == 404
        assert error_code(c.get(f"/v2/{second}/blobs/{digest}")) == "BLOB_UNKNOWN"
    # Bob pushing the same bytes gets his own link; the content is stored once.
    bob_repo = bob.repo()
    assert bob.push_blob(bob_repo, data) == digest
    with bob.client(bob_repo) as c:
        assert c.get(f"/v2/{bob_repo}/blobs/{digest}").content == data
    hexpart = digest.split(":")[1]
    stored = list((rstack.root / "data/storage/blobs/sha256").rglob(f"{hexpart}/data"))
    assert len(stored) == 1


def test_delete_requires_delete_scope(
    blob: tuple[str, httpx.Client, bytes, str], alice: Account
) -> None:
    name, _, _, digest = blob
    with alice.client(name, "pull,push") as c:
        r = c.delete(f"/v2/{name}/blobs/{digest}")
        assert r.status_code == 401
        assert f'scope="repository:{name}:delete"' in r.headers["www-authenticate"]
        assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
        assert c.head(f"/v2/{name}/blobs/{digest}").status_code == 200


def test_delete_unlinks_from_one_repository_only(alice: Account) -> None:
    data = os.urandom(300)
    first, second = alice.repo(), alice.repo()
    digest = alice.push_blob(first, data)
    alice.push_blob(second, data)
    with alice.client(first, "pull,delete") as c:
        r = c.delete(f"/v2/{first}/blobs/{digest}")
        assert r.status_code == 202
        assert c.head(f"/v2/{first}/blobs/{digest}").status_code == 404
        assert c.delete(f"/v2/{first}/blobs/{digest}").status_code == 404
    with alice.client(second, "pull") as c:
        assert c.get(f"/v2/{second}/blobs/{digest}").content == data
    # The garbage collector is told to look at the digest later; nothing is removed now.
    queued = registry_sql(
        alice.stack, "SELECT review_after FROM blob_review_queue WHERE digest = ?", digest
    )
    assert len(queued) == 1 and float(queued[0][0]) > time.time()  # type: ignore[arg-type]
    # Pushing again relinks it.
    alice.push_blob(first, data)
    with alice.client(first, "pull") as c:
        assert c.head(f"/v2/{first}/blobs/{digest}").status_code == 200


def test_pull_needs_a_token(blob: tuple[str, httpx.Client, bytes, str], rstack: Stack) -> None:
    name, _, _, digest = blob
    r = httpx.get(f"{rstack.registry_url}/v2/{name}/blobs/{digest}")
    assert r.status_code == 401
    assert f'scope="repository:{name}:pull"' in r.headers["www-authenticate"]
    r = httpx.head(f"{rstack.registry_url}/v2/{name}/blobs/{digest}")
    assert r.status_code == 401 and "www-authenticate" in r.headers


def test_other_user_cannot_read_or_delete(
    blob: tuple[str, httpx.Client, bytes, str], bob: Account
) -> None:
    name, c, data, digest = blob
    with bob.client(name, "pull,push,delete") as other:
        for method in ("HEAD", "GET", "DELETE"):
            r = other.request(method, f"/v2/{name}/blobs/{digest}")
            assert r.status_code == 401
            assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
    assert c.get(f"/v2/{name}/blobs/{digest}").content == data
