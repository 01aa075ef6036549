"""Garbage collection seen by skopeo: what a tag deletion frees, and what still pulls.

A multi-platform index and its amd64 image (also tagged on its own) are
pushed with skopeo; deleting the index's tag and sweeping removes the index
and the arm64 image from disk, while the amd64 image still copies back with
skopeo and every digest verifies.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from tests.conftest import Stack
from tests.e2e.conftest import Clients, Layout, client_env
from tests.registry.gc_helpers import blob_file, gc_ok, gc_stack


def _blobs(layout: Layout, tag: str) -> list[str]:
    digest = layout.descriptor(tag)["digest"]
    assert isinstance(digest, str)
    manifest = json.loads(layout.blob(digest))
    return [manifest["config"]["digest"], *[d["digest"] for d in manifest["layers"]]]


def test_skopeo_pull_after_gc(
    make_stack: Callable[..., Stack], layout: Layout, tmp_path: Path
) -> None:
    stack = gc_stack(make_stack, None)
    clients = Clients(stack, tmp_path / "c", client_env(tmp_path / "c", stack.registry_host))
    user, _ = stack.create_user()
    creds = ["--dest-tls-verify=false", "--dest-creds", clients.creds(user)]
    dest = f"docker://{clients.host}/{user}/app"
    clients.skopeo("copy", "--all", *creds, layout.ref("multi"), f"{dest}:multi")
    clients.skopeo("copy", *creds, layout.ref("amd64"), f"{dest}:single")
    arm_only = set(_blobs(layout, "arm64")) - set(_blobs(layout, "amd64"))
    assert arm_only and all(blob_file(stack, d).exists() for d in arm_only)

    clients.skopeo("delete", "--tls-verify=false", "--creds", clients.creds(user), f"{dest}:multi")
    out = gc_ok(stack)
    assert "deleted manifest" in out
    for digest in arm_only:
        assert not blob_file(stack, digest).exists(), digest
    for digest in _blobs(layout, "amd64"):
        assert blob_file(stack, digest).exists(), digest

    pulled = tmp_path / "pulled"
    clients.skopeo(
        "copy", "--src-tls-verify=false", "--src-creds", clients.creds(user),
        f"{dest}:single", f"oci:{pulled}:single",
    )  # fmt: skip
    index = json.loads((pulled / "index.json").read_text())
    digest = index["manifests"][0]["digest"]
    assert digest == layout.descriptor("amd64")["digest"]
    for blob in (pulled / "blobs" / "sha256").iterdir():
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
    arm = f"{dest}@{layout.descriptor('arm64')['digest']}"
    gone = clients.skopeo(
        "inspect", "--raw", "--tls-verify=false", "--creds", clients.creds(user), arm, check=False
    )
    assert gone.returncode != 0
