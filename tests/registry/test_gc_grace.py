"""``ecloud-registry gc --grace N`` overrides the wait of everything queued, manifests included.

Deleting a tag queues its manifest for review after ``ECLOUD_GC_GRACE`` (an
hour here). An operator who wants the space back now runs ``gc --grace 0``:
the manifest, then its unique layers, go in that one sweep; shared content
stays and the other tag still pulls.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

import httpx

from tests.conftest import Stack
from tests.registry.gc_helpers import (
    assert_consistent,
    blob_file,
    blobs_of,
    gc_ok,
    gc_stack,
    pull_and_verify,
    push_image,
    query,
)
from tests.registry.manifest_helpers import Repo


def test_gc_grace_0_right_after_a_tag_delete_frees_its_unique_layers(
    make_stack: Callable[..., Stack], registry_db: str | None
) -> None:
    stack = gc_stack(make_stack, registry_db, grace=3600)
    repo = Repo.create(stack)
    shared = secrets.token_bytes(2000)
    unique = secrets.token_bytes(3000)
    old, old_manifest = push_image(repo, "v1", [shared, unique])
    kept, kept_manifest = push_image(repo, "v2", [shared])
    r = httpx.delete(
        f"{stack.registry_url}/api/repos/{repo.name}/tags/v1",
        headers={"Authorization": f"Bearer {stack.session(repo.user)}"},
        timeout=30,
    )
    assert r.status_code == 204, r.text

    # Without an override the deleted tag's manifest waits for its grace.
    assert "deleted 0 objects" in gc_ok(stack)
    assert repo.get_manifest(old).status_code == 200

    out = gc_ok(stack, "--grace", "0")
    assert f"deleted manifest {repo.name}@{old}" in out, out
    gone = set(blobs_of(old_manifest)) - set(blobs_of(kept_manifest))
    assert unique and len(gone) == 2  # the unique layer and v1's config
    for digest in gone:
        assert f"deleted blob {digest}" in out
        assert not blob_file(stack, digest).exists()
        assert repo.request("HEAD", f"blobs/{digest}").status_code == 404
    assert repo.get_manifest(old).status_code == 404
    assert pull_and_verify(repo, "v2") == kept
    assert blob_file(stack, blobs_of(kept_manifest)[1]).exists()  # the shared layer
    # Nothing is left queued for what is gone, and the rest is consistent.
    assert query(stack, "SELECT digest FROM manifest_review_queue") == []
    assert_consistent(stack)
