"""Garbage collection through the real service and ``ecloud-registry gc`` (SQLite and PostgreSQL).

Every check looks at what a client sees over /v2/ and at the storage folder
on disk, never at the collector's own report alone.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable

import httpx

from services.registry.metadata.migrations import MIGRATIONS
from tests.conftest import Stack
from tests.registry.gc_helpers import (
    age,
    assert_consistent,
    blob_file,
    blobs_of,
    db_snapshot,
    disk_snapshot,
    execute,
    gc_ok,
    gc_stack,
    metrics,
    pull_and_verify,
    push_image,
    query,
    run_gc,
    storage_root,
)
from tests.registry.manifest_helpers import (
    OCI_INDEX,
    OCI_MANIFEST,
    Repo,
    canonical,
    descriptor,
    digest_of,
    error_code,
)


def _two_images(stack: Stack) -> tuple[Repo, list[bytes], tuple[str, bytes], tuple[str, bytes]]:
    repo = Repo.create(stack)
    shared = [secrets.token_bytes(2048), secrets.token_bytes(1024)]
    first = push_image(repo, "one", [*shared, secrets.token_bytes(4096)])
    second = push_image(repo, "two", [*shared, secrets.token_bytes(3000)])
    return repo, shared, first, second


def test_deleting_a_tag_collects_only_what_nothing_else_uses(
    make_stack: Callable[..., Stack], registry_db: str | None
) -> None:
    stack = gc_stack(make_stack, registry_db)
    repo, _, (one, one_body), (two, two_body) = _two_images(stack)
    only_one = set(blobs_of(one_body)) - set(blobs_of(two_body))
    assert len(only_one) == 2  # its config and its own layer
    assert repo.request("DELETE", "manifests/one").status_code == 202

    out = gc_ok(stack)
    assert f"deleted manifest {repo.name}@{one}" in out
    freed = sum(blob_file(stack, d).stat().st_size for d in blobs_of(two_body))  # still there
    assert freed > 0
    for digest in only_one:
        assert not blob_file(stack, digest).exists(), digest
        assert f"deleted blob {digest}" in out
    for digest in blobs_of(two_body):
        assert blob_file(stack, digest).exists(), digest
    assert repo.get_manifest(one).status_code == 404
    assert pull_and_verify(repo, "two") == two
    assert "4096 bytes" in out  # the unique layer's size is reported
    assert_consistent(stack)
    # A second sweep finds nothing left to do.
    assert "deleted 0 objects" in gc_ok(stack)


def test_dashboard_tag_delete_schedules_the_manifest_for_collection(
    make_stack: Callable[..., Stack], registry_db: str | None
) -> None:
    stack = gc_stack(make_stack, registry_db)
    repo, _, (one, one_body), (two, two_body) = _two_images(stack)
    only_one = set(blobs_of(one_body)) - set(blobs_of(two_body))
    session = stack.session(repo.user)
    r = httpx.delete(
        f"{stack.registry_url}/api/repos/{repo.name}/tags/one",
        headers={"Authorization": f"Bearer {session}"},
        timeout=30,
    )
    assert r.status_code == 204
    # Only the tag went; the manifest waits for the sweep, reachable by digest.
    assert repo.get_manifest(one).status_code == 200
    out = gc_ok(stack)
    assert f"deleted manifest {repo.name}@{one}" in out
    for digest in only_one:
        assert not blob_file(stack, digest).exists(), digest
    assert repo.get_manifest(one).status_code == 404
    assert pull_and_verify(repo, "two") == two
    assert_consistent(stack)


def test_dry_run_changes_nothing(make_stack: Callable[..., Stack], registry_db: str | None) -> None:
    stack = gc_stack(make_stack, registry_db)
    repo, _, (one, one_body), _ = _two_images(stack)
    assert repo.request("DELETE", "manifests/one").status_code == 202
    before_db, before_disk = db_snapshot(stack), disk_snapshot(stack)

    out = gc_ok(stack, "--dry-run")
    assert f"would delete manifest {repo.name}@{one}" in out
    assert out.splitlines()[-1].startswith("would delete ")
    assert db_snapshot(stack) == before_db
    assert disk_snapshot(stack) == before_disk
    assert repo.get_manifest(one).status_code == 200

    gc_ok(stack)
    assert repo.get_manifest(one).status_code == 404
    assert not blob_file(stack, blobs_of(one_body)[0]).exists()


def test_seed_delete_semantics(make_stack: Callable[..., Stack], registry_db: str | None) -> None:
    stack = gc_stack(make_stack, registry_db)
    repo = Repo.create(stack)
    digest, body = push_image(repo, "v1", [secrets.token_bytes(512)])
    assert repo.put_manifest("v2", body).status_code == 201
    # By tag: only the tag; another tag keeps the manifest through a sweep.
    assert repo.request("DELETE", "manifests/v1").status_code == 202
    gc_ok(stack)
    assert repo.get_manifest("v1").status_code == 404
    assert repo.get_manifest(digest).status_code == 200
    pull_and_verify(repo, "v2")
    # By digest: the manifest and every tag on it, at once.
    assert repo.put_manifest("v3", body).status_code == 201
    assert repo.request("DELETE", f"manifests/{digest}").status_code == 202
    assert repo.get_manifest(digest).status_code == 404
    assert repo.request("GET", "tags/list").json()["tags"] in (None, [])
    # DELETE blob: 202, gone from the repository at once, bytes swept next cycle.
    lonely = secrets.token_bytes(777)
    lonely_digest = repo.push_blob(lonely)["digest"]
    r = repo.request("DELETE", f"blobs/{lonely_digest}")
    assert r.status_code == 202
    assert repo.request("HEAD", f"blobs/{lonely_digest}").status_code == 404
    assert blob_file(stack, lonely_digest).exists()
    out = gc_ok(stack)
    assert f"deleted blob {lonely_digest} (777 bytes)" in out
    assert not blob_file(stack, lonely_digest).exists()
    for layer in blobs_of(body):
        assert not blob_file(stack, layer).exists()
    assert_consistent(stack)


def test_grace_keeps_fresh_uploads_and_untagged_ttl_keeps_pushes_by_digest(
    make_stack: Callable[..., Stack], registry_db: str | None
) -> None:
    stack = gc_stack(make_stack, registry_db, grace=300, untagged_ttl=3600)
    repo = Repo.create(stack)
    layer = secrets.token_bytes(1500)
    body = repo.image([layer])  # blobs uploaded, manifest not yet pushed
    out = gc_ok(stack)
    assert "deleted 0 objects" in out, out
    for digest in blobs_of(body):
        assert blob_file(stack, digest).exists()
    # The client now pushes its manifest: every blob is still there.
    assert repo.put_manifest(digest_of(body), body).status_code == 201
    # An abandoned push goes once the grace is over (aged past it here).
    abandoned = repo.push_blob(secrets.token_bytes(900))["digest"]
    execute(stack, "UPDATE repository_blobs SET created_at = created_at - 600")
    execute(stack, "UPDATE blobs SET last_linked_at = last_linked_at - 600")
    out = gc_ok(stack)
    assert f"deleted blob {abandoned}" in out
    assert repo.request("HEAD", f"blobs/{abandoned}").status_code == 404
    pull_and_verify(repo, digest_of(body))  # untagged, but within the untagged TTL
    assert_consistent(stack)
    # An operator's --grace overrides every wait, the untagged TTL included.
    out = gc_ok(stack, "--grace", "0")
    assert f"deleted manifest {repo.name}@{digest_of(body)}" in out
    assert repo.get_manifest(digest_of(body)).status_code == 404
    for digest in blobs_of(body):
        assert not blob_file(stack, digest).exists()
    assert_consistent(stack)


def test_index_children_and_referrers(
    make_stack: Callable[..., Stack], registry_db: str | None
) -> None:
    stack = gc_stack(make_stack, registry_db, untagged_ttl=3600)
    repo = Repo.create(stack)
    children = [push_image(repo, None, [secrets.token_bytes(300)]) for _ in range(2)]
    index = canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [descriptor(OCI_MANIFEST, body) for _, body in children],
        }
    )
    assert repo.put_manifest("multi", index, OCI_INDEX).status_code == 201
    # A referrer of the first child, pushed by digest.
    subject_digest, subject_body = children[0]
    empty = b"{}"
    repo.push_blob(empty)
    referrer = canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.sig",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", **_d(empty)},
            "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", **_d(empty)}],
            "subject": descriptor(OCI_MANIFEST, subject_body),
        }
    )
    assert repo.put_manifest(digest_of(referrer), referrer).status_code == 201
    gc_ok(stack)
    for digest, _ in children:
        assert repo.get_manifest(digest).status_code == 200  # children of a tagged index

    assert repo.request("DELETE", "manifests/multi").status_code == 202
    out = gc_ok(stack)
    # The index goes, then (grace 0) its children in the same sweep; the
    # referrer lost its subject and stays reachable for the untagged TTL.
    assert repo.get_manifest(digest_of(index)).status_code == 404
    for digest, body in children:
        assert repo.get_manifest(digest).status_code == 404, out
        assert not blob_file(stack, blobs_of(body)[1]).exists()
    assert repo.get_manifest(subject_digest).status_code == 404
    assert repo.get_manifest(digest_of(referrer)).status_code == 200
    assert blob_file(stack, digest_of(empty)).exists()
    assert_consistent(stack)


def _d(data: bytes) -> dict[str, object]:
    return {"digest": digest_of(data), "size": len(data)}


def test_abandoned_uploads_and_orphan_files(
    make_stack: Callable[..., Stack], registry_db: str | None
) -> None:
    stack = gc_stack(make_stack, registry_db, upload_max_age=3600, grace=600)
    repo = Repo.create(stack)
    idle = repo.request("POST", "blobs/uploads/")
    location = idle.headers["location"]
    assert repo.request("PATCH", location.split(f"/v2/{repo.name}/", 1)[1], content=b"x" * 100)
    idle_id = location.rsplit("/", 1)[1]
    # Crash leftovers: a blob file whose row never committed, an upload folder without row.
    orphan = storage_root(stack) / "blobs/sha256/ab" / ("ab" + "0" * 62) / "data"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"leftover")
    fresh_orphan = storage_root(stack) / "blobs/sha256/cd" / ("cd" + "0" * 62) / "data"
    fresh_orphan.parent.mkdir(parents=True)
    fresh_orphan.write_bytes(b"just published, row being committed")
    stray = storage_root(stack) / "uploads" / "0c5f8a7e-1b2c-4d5e-8f90-123456789abc" / "data"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"old")
    age(orphan, 1200)
    age(stray, 1200)

    out = gc_ok(stack)
    assert not orphan.exists() and not stray.parent.exists(), out
    assert fresh_orphan.exists()  # younger than the grace
    assert (storage_root(stack) / "uploads" / idle_id).exists()  # idle < max age
    # Make the upload look abandoned: its row's last activity long ago.
    execute(stack, f"UPDATE uploads SET updated_at = updated_at - 7200 WHERE id = '{idle_id}'")  # noqa: S608
    out = gc_ok(stack)
    assert f"deleted upload {repo.name} upload {idle_id} (100 bytes)" in out
    assert not (storage_root(stack) / "uploads" / idle_id).exists()
    r = repo.request("GET", f"blobs/uploads/{idle_id}")
    assert r.status_code == 404 and error_code(r) == "BLOB_UPLOAD_UNKNOWN"


def test_periodic_sweep_in_the_service_and_its_metrics(
    make_stack: Callable[..., Stack], registry_db: str | None
) -> None:
    # A sweep every second; the grace keeps the fresh link from the sweeper until
    # the DELETE below (with no grace a sweep could take it first: a 404).
    stack = gc_stack(make_stack, registry_db, interval=1, grace=5)
    repo = Repo.create(stack)
    lonely = repo.push_blob(secrets.token_bytes(4321))["digest"]
    assert repo.request("DELETE", f"blobs/{lonely}").status_code == 202
    deadline = time.monotonic() + 40
    while blob_file(stack, lonely).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not blob_file(stack, lonely).exists()
    text = metrics(stack)
    assert 'ecloud_registry_gc_collected_objects_total{kind="blob"}' in text
    bytes_line = next(
        line
        for line in text.splitlines()
        if line.startswith('ecloud_registry_gc_collected_bytes_total{kind="blob"}')
    )
    assert float(bytes_line.split()[-1]) >= 4321
    assert 'ecloud_registry_gc_sweeps_total{outcome="success"}' in text
    assert "ecloud_registry_gc_sweep_seconds_count" in text
    last = next(
        line
        for line in text.splitlines()
        if line.startswith("ecloud_registry_gc_last_success_timestamp_seconds")
    )
    assert abs(float(last.split()[-1]) - time.time()) < 60
    # Shutdown cancels the sweeper cleanly: the lifespan completes, no traceback.
    stack.registry.stop()
    log = stack.registry.log.read_text()
    assert "Application shutdown complete" in log
    assert "Traceback" not in log


def test_migration_queues_existing_manifests_and_lease_is_exclusive(
    make_stack: Callable[..., Stack], registry_db: str | None
) -> None:
    stack = gc_stack(make_stack, registry_db, lease_seconds=30)
    rows = query(stack, "SELECT MAX(version) FROM schema_migrations")
    assert rows[0][0] == MIGRATIONS[-1].version
    execute(
        stack,
        "INSERT INTO gc_lease (name, holder, expires_at) VALUES ('gc', 'other-replica', "  # noqa: S608
        f"{time.time() + 30})",
    )
    busy = run_gc(stack)
    assert busy.returncode == 2 and "another garbage collection sweep" in busy.stderr
    # A dry run takes no lease and still reports.
    assert run_gc(stack, "--dry-run").returncode == 0
    execute(stack, f"UPDATE gc_lease SET expires_at = {time.time() - 1}")  # noqa: S608
    gc_ok(stack)
    assert query(stack, "SELECT * FROM gc_lease") == []  # released after the sweep


def test_manifest_put_after_its_blobs_were_swept_fails_cleanly(
    make_stack: Callable[..., Stack], registry_db: str | None
) -> None:
    stack = gc_stack(make_stack, registry_db)
    repo = Repo.create(stack)
    body = repo.image([secrets.token_bytes(256)])
    gc_ok(stack)  # grace 0: the unreferenced uploads go
    r = repo.put_manifest("late", body)
    assert r.status_code == 400 and error_code(r) == "MANIFEST_BLOB_UNKNOWN"
    # Mount from a repository whose link is gone falls back to an upload (202).
    other = Repo.create(stack, repo.user, "other")
    layer = json.loads(body)["layers"][0]["digest"]
    r = httpx.post(
        other.url("blobs/uploads/"),
        params={"mount": layer, "from": repo.name},
        headers={
            "Authorization": "Bearer "
            + stack.token(
                repo.user, f"repository:{other.name}:pull,push", f"repository:{repo.name}:pull"
            )
        },
        timeout=30,
    )
    assert r.status_code == 202, r.text
