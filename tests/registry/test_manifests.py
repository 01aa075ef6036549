"""Manifests over HTTP: push, pull, HEAD, delete, validation errors (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import json
import secrets

import httpx

from tests.conftest import Stack
from tests.registry.manifest_helpers import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    Repo,
    canonical,
    descriptor,
    digest_of,
    empty_index,
    error_code,
)


def test_push_by_tag_then_pull_by_tag_and_digest(rstack: Stack) -> None:
    repo = Repo.create(rstack)
    body = repo.image()
    r = repo.put_manifest("v1", body)
    assert r.status_code == 201, r.text
    digest = digest_of(body)
    assert r.headers["docker-content-digest"] == digest
    assert r.headers["location"] == f"/v2/{repo.name}/manifests/{digest}"
    assert "oci-subject" not in r.headers
    for reference in ("v1", digest):
        got = repo.get_manifest(reference)
        assert got.status_code == 200
        assert got.content == body
        assert got.headers["content-type"] == OCI_MANIFEST
        assert got.headers["docker-content-digest"] == digest
        assert got.headers["content-length"] == str(len(body))
        head = repo.get_manifest(reference, "HEAD")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == str(len(body))
        assert head.headers["docker-content-digest"] == digest
        assert head.headers["content-type"] == OCI_MANIFEST


def test_exact_bytes_are_served_even_when_not_canonical(rstack: Stack) -> None:
    repo = Repo.create(rstack)
    doc = json.loads(repo.image())
    body = json.dumps(doc, indent=3).encode() + b"\n"
    r = repo.put_manifest("pretty", body)
    assert r.status_code == 201, r.text
    assert r.headers["docker-content-digest"] == digest_of(body)
    assert repo.get_manifest("pretty").content == body


def test_docker_schema2_manifest_and_manifest_list(rstack: Stack) -> None:
    repo = Repo.create(rstack)
    amd = repo.image(media_type=DOCKER_MANIFEST)
    arm = repo.image(media_type=DOCKER_MANIFEST)
    for body in (amd, arm):
        r = repo.put_manifest(digest_of(body), body, DOCKER_MANIFEST)
        assert r.status_code == 201, r.text
    children = [
        descriptor(DOCKER_MANIFEST, amd, platform={"architecture": "amd64", "os": "linux"}),
        descriptor(DOCKER_MANIFEST, arm, platform={"architecture": "arm64", "os": "linux"}),
    ]
    lst = canonical({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": children})
    r = repo.put_manifest("multi", lst, DOCKER_LIST)
    assert r.status_code == 201, r.text
    got = repo.get_manifest("multi")
    assert got.headers["content-type"] == DOCKER_LIST and got.content == lst
    got = repo.get_manifest(digest_of(amd))
    assert got.headers["content-type"] == DOCKER_MANIFEST and got.content == amd


def test_oci_index_needs_its_children_in_the_repository(rstack: Stack) -> None:
    repo = Repo.create(rstack)
    child = repo.image()
    index = canonical(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [descriptor(OCI_MANIFEST, child)]}
    )
    r = repo.put_manifest("idx", index, OCI_INDEX)
    assert r.status_code == 400 and error_code(r) == "MANIFEST_BLOB_UNKNOWN"
    assert r.json()["errors"][0]["detail"]["digest"] == digest_of(child)
    assert repo.put_manifest(digest_of(child), child).status_code == 201
    r = repo.put_manifest("idx", index, OCI_INDEX)
    assert r.status_code == 201, r.text
    # A child stored in another repository does not count.
    other = Repo.create(rstack, repo.user, "other")
    r = other.put_manifest("idx", index, OCI_INDEX)
    assert r.status_code == 400 and error_code(r) == "MANIFEST_BLOB_UNKNOWN"


def test_missing_blobs_are_manifest_blob_unknown(rstack: Stack) -> None:
    repo = Repo.create(rstack)
    config = b'{"os":"linux"}'
    layer = secrets.token_bytes(32)
    repo.push_blob(config)
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor("application/vnd.oci.image.config.v1+json", config),
        "layers": [descriptor("application/vnd.oci.image.layer.v1.tar", layer)],
    }
    r = repo.put_manifest("v1", canonical(doc))
    assert r.status_code == 400, r.text
    assert error_code(r) == "MANIFEST_BLOB_UNKNOWN"
    assert r.json()["errors"][0]["detail"]["digest"] == digest_of(layer)
    # Nothing was stored, not even the tag.
    assert repo.get_manifest("v1").status_code == 404
    # A blob linked only in another repository is not visible here either.
    other = Repo.create(rstack, repo.user, "elsewhere")
    other.push_blob(layer)
    r = repo.put_manifest("v1", canonical(doc))
    assert error_code(r) == "MANIFEST_BLOB_UNKNOWN"
    repo.push_blob(layer)
    assert repo.put_manifest("v1", canonical(doc)).status_code == 201


def test_descriptor_size_must_match_the_blob(rstack: Stack) -> None:
    repo = Repo.create(rstack)
    doc = json.loads(repo.image())
    doc["layers"][0]["size"] += 1
    r = repo.put_manifest("v1", canonical(doc))
    assert r.status_code == 400 and error_code(r) == "MANIFEST_INVALID"


def test_validation_errors(rstack: Stack) -> None:
    repo = Repo.create(rstack)
    good = repo.image()
    cases = [
        (b"{not json", OCI_MANIFEST, "MANIFEST_INVALID"),
        (b"[]", OCI_MANIFEST, "MANIFEST_INVALID"),
        (good, "application/json", "MANIFEST_INVALID"),
        (good, DOCKER_MANIFEST, "MANIFEST_INVALID"),
        (good, "application/vnd.docker.distribution.manifest.v1+prettyjws", "MANIFEST_INVALID"),
        (canonical(json.loads(good) | {"schemaVersion": 1}), OCI_MANIFEST, "MANIFEST_INVALID"),
        (
            canonical(json.loads(good) | {"layers": [{"mediaType": "x", "digest": "sha256:1"}]}),
            OCI_MANIFEST,
            "MANIFEST_INVALID",
        ),
    ]
    for body, media_type, code in cases:
        r = repo.put_manifest("bad", body, media_type)
        assert r.status_code == 400, (media_type, r.text)
        assert error_code(r) == code, r.text
    assert repo.get_manifest("bad").status_code == 404


def test_oversized_manifest_is_413(rstack: Stack) -> None:
    repo = Repo.create(rstack)
    body = empty_index(annotations={"pad": "x" * (4 * 1024 * 1024)})
    r = repo.put_manifest("big", body, OCI_INDEX)
    assert r.status_code == 413 and error_code(r) == "MANIFEST_TOO_LARGE"

    # Without a Content-Length (chunked), the bound still holds.
    def chunks() -> object:
        for _ in range(5):
            yield b" " * (1024 * 1024)

    r = httpx.put(
        repo.url("manifests/big"),
        content=chunks(),  # type: ignore[arg-type]
        headers={**repo.headers, "Content-Type": OCI_INDEX},
        timeout=30,
    )
    assert r.status_code == 413 and error_code(r) == "MANIFEST_TOO_LARGE"
    # Just under the limit is accepted.
    pad = 4 * 1024 * 1024 - len(empty_index(annotations={"pad": ""}))
    body = empty_index(annotations={"pad": "x" * pad})
    assert len(body) == 4 * 1024 * 1024
    assert repo.put_manifest("edge", body, OCI_INDEX).status_code == 201


def test_tag_and_digest_grammar(rstack: Stack) -> None:
    repo = Repo.create(rstack)
    body = empty_index()
    for tag in ("-lead", ".dot", "a" * 129, "sp%20ace", "bad!"):
        r = repo.put_manifest(tag, body, OCI_INDEX)
        assert r.status_code == 400 and error_code(r) == "TAG_INVALID", (tag, r.text)
    r = repo.put_manifest("sha256:abc", body, OCI_INDEX)
    assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID"
    assert repo.put_manifest("a" * 128, body, OCI_INDEX).status_code == 201
    assert repo.put_manifest("_under.score-1", body, OCI_INDEX).status_code == 201


def test_put_by_digest_must_match_the_body(rstack: Stack) -> None:
    repo = Repo.create(rstack)
    body = empty_index()
    wrong = digest_of(body + b" ")
    r = repo.put_manifest(wrong, body, OCI_INDEX)
    assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID"
    r = repo.put_manifest(digest_of(body), body, OCI_INDEX)
    assert r.status_code == 201
    # Pushed by digest only: no tag appears.
    assert repo.request("GET", "tags/list").json()["tags"] == []
    sha512 = "sha512:" + hashlib.sha512(body).hexdigest()
    r = repo.put_manifest(sha512, body, OCI_INDEX)
    assert r.status_code == 201 and r.headers["docker-content-digest"] == sha512
    assert repo.get_manifest(sha512).content == body


def test_retagging_moves_the_tag(rstack: Stack) -> None:
    repo = Repo.create(rstack)
    first, second = empty_index(annotations={"n": "1"}), empty_index(annotations={"n": "2"})
    assert repo.put_manifest("latest", first, OCI_INDEX).status_code == 201
    assert repo.put_manifest("latest", second, OCI_INDEX).status_code == 201
    assert repo.get_manifest("latest").content == second
    assert repo.get_manifest(digest_of(first)).content == first
    # Pushing the same manifest twice is idempotent.
    assert repo.put_manifest("latest", second, OCI_INDEX).status_code == 201


def test_delete_by_tag_removes_only_the_tag(rstack: Stack) -> None:
    repo = Repo.create(rstack)
    body = repo.image()
    repo.put_manifest("a", body)
    repo.put_manifest("b", body)
    r = repo.request("DELETE", "manifests/a")
    assert r.status_code == 202
    assert repo.get_manifest("a").status_code == 404
    assert repo.get_manifest("b").status_code == 200
    assert repo.get_manifest(digest_of(body)).status_code == 200
    r = repo.request("DELETE", "manifests/a")
    assert r.status_code == 404 and error_code(r) == "MANIFEST_UNKNOWN"


def test_delete_by_digest_removes_manifest_and_its_tags(rstack: Stack) -> None:
    repo = Repo.create(rstack)
    body, keep = repo.image(), empty_index()
    repo.put_manifest("a", body)
    repo.put_manifest("b", body)
    repo.put_manifest("c", keep, OCI_INDEX)
    r = repo.request("DELETE", f"manifests/{digest_of(body)}")
    assert r.status_code == 202
    for reference in ("a", "b", digest_of(body)):
        r = repo.get_manifest(reference)
        assert r.status_code == 404 and error_code(r) == "MANIFEST_UNKNOWN"
    assert repo.request("GET", "tags/list").json()["tags"] == ["c"]
    r = repo.request("DELETE", f"manifests/{digest_of(body)}")
    assert r.status_code == 404 and error_code(r) == "MANIFEST_UNKNOWN"
    # The blobs stay linked until the garbage collector decides; re-push works.
    assert repo.put_manifest("a", body).status_code == 201


def test_unknown_manifest_and_repository(rstack: Stack) -> None:
    repo = Repo.create(rstack)
    repo.put_manifest("v1", empty_index(), OCI_INDEX)
    r = repo.get_manifest("nope")
    assert r.status_code == 404 and error_code(r) == "MANIFEST_UNKNOWN"
    r = repo.get_manifest(digest_of(b"nothing"), "HEAD")
    assert r.status_code == 404 and r.content == b""
    missing = Repo.create(rstack, repo.user, "never-pushed")
    r = missing.get_manifest("v1")
    assert r.status_code == 404 and error_code(r) == "NAME_UNKNOWN"
    r = missing.request("DELETE", "manifests/v1")
    assert r.status_code == 404


def test_permissions(rstack: Stack) -> None:
    repo = Repo.create(rstack)
    body = empty_index()
    assert repo.put_manifest("v1", body, OCI_INDEX).status_code == 201
    pull_only = rstack.token(repo.user, f"repository:{repo.name}:pull")
    headers = {"Authorization": f"Bearer {pull_only}"}
    assert httpx.get(repo.url("manifests/v1"), headers=headers).status_code == 200
    r = httpx.put(
        repo.url("manifests/v2"),
        content=body,
        headers={**headers, "Content-Type": OCI_INDEX},
    )
    assert r.status_code == 401
    assert 'scope="repository:' + repo.name + ':pull,push"' in r.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
    r = httpx.delete(repo.url("manifests/v1"), headers=headers)
    assert r.status_code == 401 and "delete" in r.headers["www-authenticate"]
    r = httpx.get(repo.url("manifests/v1"))
    assert r.status_code == 401 and error_code(r) == "UNAUTHORIZED"
    assert repo.get_manifest("v1").status_code == 200


def test_another_users_repository_behaves_like_a_missing_one(rstack: Stack) -> None:
    owner = Repo.create(rstack)
    assert owner.put_manifest("v1", empty_index(), OCI_INDEX).status_code == 201
    intruder, _ = rstack.create_user()
    # The auth service grants nothing on someone else's namespace.
    token = rstack.token(intruder, f"repository:{owner.name}:pull,push,delete")
    stranger = Repo(rstack, intruder, owner.name, token)
    ghost = Repo(rstack, intruder, f"{owner.user}/does-not-exist", token)
    for target in (stranger, ghost):
        responses = [
            target.get_manifest("v1"),
            target.put_manifest("v2", empty_index(), OCI_INDEX),
            target.request("DELETE", "manifests/v1"),
        ]
        assert [r.status_code for r in responses] == [401, 401, 401]
        assert all(error_code(r) == "UNAUTHORIZED" for r in responses)
    assert owner.get_manifest("v1").status_code == 200
    assert owner.request("GET", "tags/list").json()["tags"] == ["v1"]


def _rows(stack: Stack, sql: str, *args: str) -> list[tuple[str, ...]]:
    """Rows from the registry's database, SQLite file or PostgreSQL alike."""
    url = stack.env.get("ECLOUD_REGISTRY_DATABASE_URL")
    if url is None:
        import sqlite3

        with sqlite3.connect(stack.root / "data" / "registry.db") as conn:
            qmarks = sql.replace("$1", "?").replace("$2", "?")
            return [tuple(r) for r in conn.execute(qmarks, args).fetchall()]
    import asyncio

    import asyncpg

    async def run() -> list[tuple[str, ...]]:
        conn = await asyncpg.connect(url)
        try:
            return [tuple(r) for r in await conn.fetch(sql, *args)]
        finally:
            await conn.close()

    return asyncio.run(run())


def test_references_are_recorded_for_the_garbage_collector(rstack: Stack) -> None:
    repo = Repo.create(rstack)
    image = repo.image(layers=[b"layer-one", b"layer-two"])
    repo.put_manifest(digest_of(image), image)
    doc = json.loads(image)
    index = canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [descriptor(OCI_MANIFEST, image)],
            "subject": descriptor(OCI_MANIFEST, b"some subject"),
        }
    )
    repo.put_manifest("idx", index, OCI_INDEX)
    (repo_id,) = _rows(rstack, "SELECT id FROM repositories WHERE name = $1", repo.name)[0]
    blobs = _rows(
        rstack,
        "SELECT blob_digest FROM manifest_blobs WHERE repo_id = $1 AND manifest_digest = $2",
        repo_id,
        digest_of(image),
    )
    wanted = {doc["config"]["digest"], digest_of(b"layer-one"), digest_of(b"layer-two")}
    assert {b for (b,) in blobs} == wanted
    children = _rows(
        rstack,
        "SELECT child_digest FROM manifest_children WHERE repo_id = $1 AND parent_digest = $2",
        repo_id,
        digest_of(index),
    )
    assert children == [(digest_of(image),)]
    subject = _rows(
        rstack,
        "SELECT subject_digest FROM manifests WHERE repo_id = $1 AND digest = $2",
        repo_id,
        digest_of(index),
    )
    assert subject == [(digest_of(b"some subject"),)]
    # Deleting the index removes its reference rows; the child's stay.
    assert repo.request("DELETE", f"manifests/{digest_of(index)}").status_code == 202
    assert _rows(rstack, "SELECT 1 FROM manifest_children WHERE repo_id = $1", repo_id) == []
    assert len(_rows(rstack, "SELECT 1 FROM manifest_blobs WHERE repo_id = $1", repo_id)) == 3


def test_deleting_a_manifest_queues_its_blobs_for_review(rstack: Stack) -> None:
    repo = Repo.create(rstack)
    layer = secrets.token_bytes(40)
    image = repo.image(layers=[layer])
    repo.put_manifest("v1", image)
    config = json.loads(image)["config"]["digest"]
    assert repo.request("DELETE", f"manifests/{digest_of(image)}").status_code == 202
    queued = _rows(
        rstack,
        "SELECT digest, reason FROM blob_review_queue WHERE digest IN ($1, $2)",
        config,
        digest_of(layer),
    )
    assert sorted(queued) == sorted(
        [(config, "manifest deleted"), (digest_of(layer), "manifest deleted")]
    )
    # The blobs stay linked: the same manifest can be pushed again at once.
    assert repo.put_manifest("v1", image).status_code == 201


def test_concurrent_pushes_to_one_tag_never_fail(rstack: Stack) -> None:
    from concurrent.futures import ThreadPoolExecutor

    repo = Repo.create(rstack)
    bodies = [empty_index(annotations={"n": str(i)}) for i in range(12)]

    def push(i: int) -> int:
        # Half race on one tag with different manifests, half push one manifest under many tags.
        if i % 2:
            return repo.put_manifest("race", bodies[i], OCI_INDEX).status_code
        return repo.put_manifest(f"t{i}", bodies[0], OCI_INDEX).status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(push, range(12)))
    assert statuses == [201] * 12
    winner = repo.get_manifest("race").content
    assert winner in [bodies[i] for i in range(1, 12, 2)]
    tags = repo.request("GET", "tags/list").json()["tags"]
    assert tags == sorted(["race", *(f"t{i}" for i in range(0, 12, 2))])
