"""Dashboard API (``/api/repos``…) against a real auth service and registry, SQLite then PostgreSQL.

Content is pushed through the real ``/v2/`` endpoints (uploads, manifest PUT);
sizes are recomputed here from the bytes the test pushed.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.conftest import Stack
from tests.registry.manifest_helpers import (
    OCI_INDEX,
    OCI_MANIFEST,
    Repo,
    canonical,
    descriptor,
    digest_of,
    error_code,
)

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def api(
    stack: Stack, method: str, path: str, token: str | None = None, **kwargs: Any
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.request(method, stack.registry_url + path, headers=headers, timeout=30, **kwargs)


def parse_time(value: str) -> float:
    assert RFC3339.match(value), value
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def push_image(repo: Repo, tag: str, layers: list[bytes]) -> tuple[str, int]:
    """Push an image manifest under `tag`; return its digest and manifest+config+layers size."""
    body = repo.image(layers)
    r = repo.put_manifest(tag, body)
    assert r.status_code == 201, r.text
    doc = json.loads(body)
    size = len(body) + doc["config"]["size"] + sum(layer["size"] for layer in doc["layers"])
    return digest_of(body), size


@pytest.fixture
def owner(rstack: Stack) -> tuple[str, str]:
    """A user and a session token of theirs."""
    username, _ = rstack.create_user()
    return username, rstack.session(username)


def test_shapes_and_sizes(rstack: Stack, owner: tuple[str, str]) -> None:
    user, session = owner
    repo = Repo.create(rstack, user, "app")
    before = time.time()
    shared = secrets.token_bytes(300)
    d1, size1 = push_image(repo, "v1", [shared, secrets.token_bytes(200)])
    d2, size2 = push_image(repo, "v2", [shared])

    r = api(rstack, "GET", "/api/repos", session)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert list(body) == ["repositories"]
    [entry] = body["repositories"]
    # Fields that mean nothing to a user (a constant visibility, the caller's
    # own id) are left out.
    assert set(entry) == {"name", "tag_count", "total_size", "last_pushed"}
    assert entry["name"] == f"{user}/app"
    assert entry["tag_count"] == 2 and type(entry["tag_count"]) is int
    # The shared layer is held once.
    assert entry["total_size"] == size1 + size2 - len(shared)
    assert type(entry["total_size"]) is int
    assert before - 1 <= parse_time(entry["last_pushed"]) <= time.time() + 1

    r = api(rstack, "GET", f"/api/repos/{user}/app", session)
    assert r.status_code == 200, r.text
    assert r.json() == entry

    r = api(rstack, "GET", f"/api/repos/{user}/app/tags", session)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"name", "tags"}
    assert body["name"] == f"{user}/app"
    assert [t["name"] for t in body["tags"]] == ["v1", "v2"]
    for tag, digest, size in zip(body["tags"], (d1, d2), (size1, size2), strict=True):
        # The seed's fields, plus what the web dashboard shows.
        assert set(tag) == {
            "name",
            "digest",
            "size",
            "pushed_at",
            "media_type",
            "platforms",
            "referrers",
        }
        assert (tag["media_type"], tag["platforms"], tag["referrers"]) == (OCI_MANIFEST, [], [])
        assert tag["digest"] == digest
        assert tag["size"] == size and type(tag["size"]) is int
        assert before - 1 <= parse_time(tag["pushed_at"]) <= time.time() + 1


def test_index_sizes_count_children_and_shared_blobs_once(
    rstack: Stack, owner: tuple[str, str]
) -> None:
    user, session = owner
    repo = Repo.create(rstack, user, "multi")
    shared = secrets.token_bytes(500)
    amd = repo.image([shared, secrets.token_bytes(100)])
    arm = repo.image([shared, secrets.token_bytes(150)])
    for body in (amd, arm):
        assert repo.put_manifest(digest_of(body), body).status_code == 201
    index = canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                descriptor(OCI_MANIFEST, amd, platform={"architecture": "amd64", "os": "linux"}),
                descriptor(OCI_MANIFEST, arm, platform={"architecture": "arm64", "os": "linux"}),
            ],
        }
    )
    assert repo.put_manifest("latest", index, OCI_INDEX).status_code == 201

    def blob_bytes(manifest: bytes) -> dict[str, int]:
        doc = json.loads(manifest)
        return {d["digest"]: d["size"] for d in [doc["config"], *doc["layers"]]}

    blobs = {**blob_bytes(amd), **blob_bytes(arm)}
    expected = len(index) + len(amd) + len(arm) + sum(blobs.values())

    [tag] = api(rstack, "GET", f"/api/repos/{user}/multi/tags", session).json()["tags"]
    assert tag == {**tag, "name": "latest", "digest": digest_of(index), "size": expected}
    summary = api(rstack, "GET", f"/api/repos/{user}/multi", session).json()
    assert summary["total_size"] == expected
    assert summary["tag_count"] == 1


def test_referrers_count_in_total_not_in_tag(rstack: Stack, owner: tuple[str, str]) -> None:
    user, session = owner
    repo = Repo.create(rstack, user, "signed")
    digest, size = push_image(repo, "v1", [secrets.token_bytes(100)])
    image = repo.get_manifest("v1").content
    signature = repo.image(
        [secrets.token_bytes(40)],
        subject={"mediaType": OCI_MANIFEST, "digest": digest, "size": len(image)},
    )
    assert repo.put_manifest(digest_of(signature), signature).status_code == 201
    doc = json.loads(signature)
    signature_size = len(signature) + doc["config"]["size"] + doc["layers"][0]["size"]

    [tag] = api(rstack, "GET", f"/api/repos/{user}/signed/tags", session).json()["tags"]
    assert tag["size"] == size
    summary = api(rstack, "GET", f"/api/repos/{user}/signed", session).json()
    assert summary["total_size"] == size + signature_size


def test_tag_platforms_and_attached_artifacts(rstack: Stack, owner: tuple[str, str]) -> None:
    user, session = owner
    repo = Repo.create(rstack, user, "platforms")
    amd, arm, attestation = (repo.image([secrets.token_bytes(50)]) for _ in range(3))
    for body in (amd, arm, attestation):
        assert repo.put_manifest(digest_of(body), body).status_code == 201
    index = canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                descriptor(OCI_MANIFEST, amd, platform={"architecture": "amd64", "os": "linux"}),
                descriptor(
                    OCI_MANIFEST,
                    arm,
                    platform={"architecture": "arm64", "os": "linux", "variant": "v8"},
                ),
                # What BuildKit lists for its attestations: not a platform to pull.
                descriptor(
                    OCI_MANIFEST,
                    attestation,
                    platform={"architecture": "unknown", "os": "unknown"},
                    annotations={"vnd.docker.reference.type": "attestation-manifest"},
                ),
            ],
        }
    )
    assert repo.put_manifest("multi", index, OCI_INDEX).status_code == 201
    image_digest, _ = push_image(repo, "v1", [secrets.token_bytes(80)])
    image = repo.get_manifest("v1").content
    assert repo.put_manifest("v1-alias", image).status_code == 201

    title = '<img src=x onerror="alert(1)">'
    signature = repo.image(
        [b"signature"],
        artifactType="application/vnd.dev.cosign.artifact.sig.v1+json",
        subject={"mediaType": OCI_MANIFEST, "digest": image_digest, "size": len(image)},
        annotations={"org.opencontainers.image.title": title, "n": "1"},
    )
    sbom = repo.image(
        [b"sbom"],
        artifactType="application/spdx+json",
        subject={"mediaType": OCI_INDEX, "digest": digest_of(index), "size": len(index)},
    )
    # Attached to an untagged manifest: listed under no tag.
    stray = repo.image(
        [b"stray"],
        artifactType="application/example",
        subject={"mediaType": OCI_MANIFEST, "digest": digest_of(amd), "size": len(amd)},
    )
    for body in (signature, sbom, stray):
        assert repo.put_manifest(digest_of(body), body).status_code == 201

    r = api(rstack, "GET", f"/api/repos/{user}/platforms/tags", session)
    assert r.status_code == 200, r.text
    tags = {t["name"]: t for t in r.json()["tags"]}
    assert list(tags) == ["multi", "v1", "v1-alias"]

    multi = tags["multi"]
    assert multi["media_type"] == OCI_INDEX
    assert multi["platforms"] == [
        {"os": "linux", "architecture": "amd64", "digest": digest_of(amd)},
        {"os": "linux", "architecture": "arm64", "variant": "v8", "digest": digest_of(arm)},
    ]
    [attached] = multi["referrers"]
    assert attached["digest"] == digest_of(sbom)
    assert attached["artifact_type"] == "application/spdx+json"
    assert attached["annotations"] == {}

    for name in ("v1", "v1-alias"):
        tag = tags[name]
        assert (tag["media_type"], tag["platforms"]) == (OCI_MANIFEST, [])
        [attached] = tag["referrers"]
        assert set(attached) == {
            "digest",
            "media_type",
            "artifact_type",
            "size",
            "annotations",
            "created_at",
        }
        assert attached["digest"] == digest_of(signature)
        assert attached["media_type"] == OCI_MANIFEST
        assert attached["artifact_type"] == "application/vnd.dev.cosign.artifact.sig.v1+json"
        assert attached["size"] == len(signature)
        # Stored and returned as data: the dashboard renders it as text.
        assert attached["annotations"] == {"org.opencontainers.image.title": title, "n": "1"}
        parse_time(attached["created_at"])


def test_empty_repository(rstack: Stack, owner: tuple[str, str]) -> None:
    user, session = owner
    repo = Repo.create(rstack, user, "empty")
    repo.push_blob(b"a blob no manifest references")
    summary = api(rstack, "GET", f"/api/repos/{user}/empty", session).json()
    assert summary == {
        "name": f"{user}/empty",
        "tag_count": 0,
        "total_size": 0,
        "last_pushed": None,
    }
    assert api(rstack, "GET", f"/api/repos/{user}/empty/tags", session).json() == {
        "name": f"{user}/empty",
        "tags": [],
    }


def test_list_is_own_repositories_only_in_name_order(rstack: Stack) -> None:
    alice, _ = rstack.create_user()
    bob, _ = rstack.create_user()
    for path in ("zeta", "alpha/nested"):
        push_image(Repo.create(rstack, alice, path), "v1", [secrets.token_bytes(10)])
    push_image(Repo.create(rstack, bob, "app"), "v1", [secrets.token_bytes(10)])
    names = [
        r["name"]
        for r in api(rstack, "GET", "/api/repos", rstack.session(alice)).json()["repositories"]
    ]
    assert names == [f"{alice}/alpha/nested", f"{alice}/zeta"]
    [bobs] = api(rstack, "GET", "/api/repos", rstack.session(bob)).json()["repositories"]
    assert bobs["name"] == f"{bob}/app"
    # A nested name reaches its tags and details unambiguously.
    session = rstack.session(alice)
    r = api(rstack, "GET", f"/api/repos/{alice}/alpha/nested/tags", session)
    assert r.json()["name"] == f"{alice}/alpha/nested"
    assert [t["name"] for t in r.json()["tags"]] == ["v1"]


ENDPOINTS = [
    ("GET", "/api/repos"),
    ("GET", "/api/repos/{user}/app"),
    ("GET", "/api/repos/{user}/app/tags"),
    ("DELETE", "/api/repos/{user}/app/tags/v1"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_no_token_is_401(rstack: Stack, owner: tuple[str, str], method: str, path: str) -> None:
    user, _ = owner
    push_image(Repo.create(rstack, user, "app"), "v1", [b"layer"])
    for token in (None, "not-a-jwt"):
        r = api(rstack, method, path.format(user=user), token)
        assert r.status_code == 401, r.text
        assert error_code(r) == "UNAUTHORIZED"
        assert r.headers["www-authenticate"].startswith('Bearer realm="')
        assert set(r.json()["errors"][0]) == {"code", "message", "detail"}
    # Still there: nothing was deleted without a token.
    assert api(rstack, "GET", f"/api/repos/{user}/app/tags", owner[1]).json()["tags"]


def _comparable(r: httpx.Response) -> tuple[int, bytes, dict[str, str]]:
    # The date and the request id differ from one answer to the next by design.
    headers = {k: v for k, v in r.headers.items() if k not in ("date", "x-request-id")}
    return r.status_code, r.content, headers


@pytest.mark.parametrize(("method", "path"), ENDPOINTS[1:])
def test_other_users_repository_looks_missing(rstack: Stack, method: str, path: str) -> None:
    alice, _ = rstack.create_user()
    bob, _ = rstack.create_user()
    bob_session = rstack.session(bob)
    bob_token = rstack.token(bob, f"repository:{alice}/app:pull,push,delete")
    url = path.format(user=alice)
    missing = [api(rstack, method, url, t) for t in (bob_session, bob_token)]
    push_image(Repo.create(rstack, alice, "app"), "v1", [b"layer"])
    present = [api(rstack, method, url, t) for t in (bob_session, bob_token)]
    for before, after in zip(missing, present, strict=True):
        assert after.status_code == 404
        assert error_code(after) == "NAME_UNKNOWN"
        assert _comparable(before) == _comparable(after)
    # Alice's tag survived bob's DELETE.
    tags = api(rstack, "GET", f"/api/repos/{alice}/app/tags", rstack.session(alice)).json()
    assert [t["name"] for t in tags["tags"]] == ["v1"]


def test_delete_scopes(rstack: Stack, owner: tuple[str, str]) -> None:
    user, session = owner
    repo = Repo.create(rstack, user, "app")
    digest, _ = push_image(repo, "v1", [b"layer one"])
    repo.put_manifest("v1-alias", repo.get_manifest("v1").content)
    name = f"{user}/app"

    pull_only = rstack.token(user, f"repository:{name}:pull")
    r = api(rstack, "DELETE", f"/api/repos/{name}/tags/v1", pull_only)
    assert r.status_code == 403, r.text
    assert error_code(r) == "DENIED"
    assert api(rstack, "GET", f"/api/repos/{name}", pull_only).json()["tag_count"] == 2

    delete_only = rstack.token(user, f"repository:{name}:delete")
    r = api(rstack, "DELETE", f"/api/repos/{name}/tags/v1", delete_only)
    assert r.status_code == 204, r.text
    assert r.content == b""
    # Only that tag: the other tag and the manifest (by digest) remain.
    tags = api(rstack, "GET", f"/api/repos/{name}/tags", session).json()["tags"]
    assert [(t["name"], t["digest"]) for t in tags] == [("v1-alias", digest)]
    assert repo.get_manifest(digest).status_code == 200
    assert repo.get_manifest("v1").status_code == 404
    # A delete-only token cannot read.
    assert api(rstack, "GET", f"/api/repos/{name}/tags", delete_only).status_code == 403

    r = api(rstack, "DELETE", f"/api/repos/{name}/tags/v1", delete_only)
    assert r.status_code == 404
    assert error_code(r) == "MANIFEST_UNKNOWN"
    r = api(rstack, "DELETE", f"/api/repos/{name}/tags/bad!tag", session)
    assert r.status_code == 400
    assert error_code(r) == "TAG_INVALID"

    # The owner's session deletes the last tag; the repository stays, empty of tags.
    assert api(rstack, "DELETE", f"/api/repos/{name}/tags/v1-alias", session).status_code == 204
    summary = api(rstack, "GET", f"/api/repos/{name}", session).json()
    assert (summary["tag_count"], summary["total_size"]) == (0, 0)
    assert summary["last_pushed"] is not None


def _service_account_token(stack: Stack, user: str, session: str, scope: str) -> str:
    def call(path: str, body: dict[str, Any]) -> dict[str, Any]:
        r = httpx.post(
            stack.auth_url + path,
            json=body,
            headers={"Authorization": f"Bearer {session}"},
            timeout=10,
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    account = call(
        "/api/service-accounts", {"name": f"ci{secrets.token_hex(3)}", "scopes": [scope]}
    )
    return str(call(f"/api/service-accounts/{account['id']}/tokens", {"name": "t"})["token"])


def _exchange(stack: Stack, secret: str, *scopes: str) -> str:
    r = httpx.get(
        stack.auth_url + "/v2/token",
        params=[("service", "registry"), *(("scope", s) for s in scopes)],
        auth=("ci", secret),
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def test_service_account_tokens(rstack: Stack, owner: tuple[str, str]) -> None:
    user, session = owner
    app, other = Repo.create(rstack, user, "app"), Repo.create(rstack, user, "other")
    push_image(app, "v1", [b"app layer"])
    push_image(other, "v1", [b"other layer"])

    # Scoped to another repository: app looks missing, listing shows only "other".
    secret = _service_account_token(
        rstack, user, session, f"storage.me.registry.{user}/other=read,delete"
    )
    token = _exchange(
        rstack, secret, f"repository:{user}/app:pull,delete", f"repository:{user}/other:pull"
    )
    for method, path in ENDPOINTS[1:]:
        r = api(rstack, method, path.format(user=user), token)
        assert r.status_code == 404, (method, path, r.text)
        assert error_code(r) == "NAME_UNKNOWN"
    listed = api(rstack, "GET", "/api/repos", token).json()["repositories"]
    assert [r["name"] for r in listed] == [f"{user}/other"]
    assert api(rstack, "GET", f"/api/repos/{user}/other/tags", token).status_code == 200

    # Scoped to the whole namespace, read only: lists everything with the catalog, cannot delete.
    secret = _service_account_token(rstack, user, session, "storage.me.registry=read")
    catalog = _exchange(rstack, secret, "registry:catalog:*")
    listed = api(rstack, "GET", "/api/repos", catalog).json()["repositories"]
    assert [r["name"] for r in listed] == [f"{user}/app", f"{user}/other"]
    token = _exchange(rstack, secret, f"repository:{user}/app:pull,delete")
    assert api(rstack, "GET", f"/api/repos/{user}/app/tags", token).status_code == 200
    r = api(rstack, "DELETE", f"/api/repos/{user}/app/tags/v1", token)
    assert r.status_code == 403
    assert error_code(r) == "DENIED"


def test_registry_token_without_catalog_lists_what_it_covers(
    rstack: Stack, owner: tuple[str, str]
) -> None:
    user, _ = owner
    for path in ("one", "two"):
        push_image(Repo.create(rstack, user, path), "v1", [b"x" + path.encode()])
    token = rstack.token(user, f"repository:{user}/two:pull")
    listed = api(rstack, "GET", "/api/repos", token).json()["repositories"]
    assert [r["name"] for r in listed] == [f"{user}/two"]
    assert api(rstack, "GET", "/api/repos", rstack.token(user)).json() == {"repositories": []}


def test_bad_names(rstack: Stack, owner: tuple[str, str]) -> None:
    user, session = owner
    r = api(rstack, "GET", f"/api/repos/{user}/Bad_Name", session)
    assert r.status_code == 400
    assert error_code(r) == "NAME_INVALID"
    r = api(rstack, "GET", "/api/repos/", session)
    assert r.status_code == 400
    assert error_code(r) == "NAME_INVALID"
    r = api(rstack, "DELETE", f"/api/repos/{user}/app", session)
    assert r.status_code == 405
    assert error_code(r) == "METHOD_NOT_ALLOWED"


def test_reused_username_sees_nothing_of_the_old_owner(rstack: Stack) -> None:
    """The owner re-check: a new user with a deleted user's name is not the owner."""
    admin, _ = rstack.create_user(admin=True)
    admin_headers = {"Authorization": f"Bearer {rstack.session(admin)}"}
    user, _ = rstack.create_user()
    push_image(Repo.create(rstack, user, "app"), "v1", [b"old owner's layer"])
    users = httpx.get(rstack.auth_url + "/admin/users", headers=admin_headers, timeout=10).json()
    user_id = next(u["id"] for u in users["users"] if u["username"] == user)
    r = httpx.delete(f"{rstack.auth_url}/admin/users/{user_id}", headers=admin_headers, timeout=10)
    assert r.status_code == 204
    rstack.create_user(user)

    session = rstack.session(user)
    assert api(rstack, "GET", "/api/repos", session).json() == {"repositories": []}
    token = rstack.token(user, f"repository:{user}/app:pull,delete")
    for token_ in (session, token):
        for method, path in ENDPOINTS[1:]:
            r = api(rstack, method, path.format(user=user), token_)
            assert r.status_code == 404, (method, path, r.text)
            assert error_code(r) == "NAME_UNKNOWN"
