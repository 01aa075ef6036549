"""``ec storage registry inspect`` and ``rm`` by digest against a real registry."""

from __future__ import annotations

import json
import secrets

import pytest

from tests.cli.conftest import Ec, run_on_terminal
from tests.conftest import Stack
from tests.registry.manifest_helpers import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    Repo,
    canonical,
    descriptor,
    digest_of,
)


@pytest.fixture
def repo(ec: Ec, cli_stack: Stack) -> Repo:
    user, _ = cli_stack.create_user()
    ec.login(cli_stack, user)
    return Repo.create(cli_stack, user)


def _image(repo: Repo, arch: str, layers: int) -> tuple[bytes, int]:
    """Push an image for `arch`; return its manifest and the bytes of its blobs."""
    config = json.dumps({"architecture": arch, "os": "linux", "n": secrets.token_hex(4)}).encode()
    repo.push_blob(config)
    blobs = [secrets.token_bytes(100 + i) for i in range(layers)]
    for blob in blobs:
        repo.push_blob(blob)
    manifest = canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config),
            "layers": [descriptor(OCI_LAYER, b) for b in blobs],
        }
    )
    return manifest, len(config) + sum(len(b) for b in blobs)


def test_inspect_an_image_with_a_referrer(ec: Ec, repo: Repo) -> None:
    manifest, blob_bytes = _image(repo, "amd64", layers=2)
    assert repo.put_manifest("v1", manifest).status_code == 201
    digest = digest_of(manifest)
    sbom = canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.sbom",
            "config": {
                "mediaType": "application/vnd.oci.empty.v1+json",
                "digest": digest_of(b"{}"),
                "size": 2,
            },
            "layers": [],
            "subject": {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(manifest)},
        }
    )
    repo.push_blob(b"{}")
    assert repo.put_manifest(digest_of(sbom), sbom).status_code == 201

    info = ec.ok("--json", "storage", "registry", "inspect", f"{repo.name}:v1").json()
    assert info["digest"] == digest
    assert info["media_type"] == OCI_MANIFEST
    assert info["size"] == len(manifest) + blob_bytes
    assert info["platforms"] == [{"platform": "linux/amd64", "digest": digest}]
    assert [layer["size"] for layer in info["layers"]] == [100, 101]
    assert info["manifest"] == json.loads(manifest)
    [referrer] = info["referrers"]
    assert referrer["digest"] == digest_of(sbom)
    assert referrer["artifact_type"] == "application/vnd.example.sbom"

    assert ec.ok("storage", "registry", "inspect", f"{repo.name}:v1", "-q").stdout == digest + "\n"
    plain = ec.ok("storage", "registry", "inspect", f"{repo.name}@{digest}").stdout.splitlines()
    assert f"digest\t{digest}" in plain
    assert f"size\t{info['size']}" in plain
    assert [line.split("\t")[0] for line in plain].count("layer") == 2
    assert f"referrer\t{digest_of(sbom)}\tapplication/vnd.example.sbom\t{len(sbom)}" in plain
    # An artifact: no platform, its subject named.
    artifact = ec.ok("--json", "storage", "registry", "inspect", f"{repo.name}@{digest_of(sbom)}")
    assert artifact.json()["subject"] == digest
    assert artifact.json()["platforms"] == []

    table = run_on_terminal(ec, "storage", "registry", "inspect", f"{repo.name}:v1")
    assert table.code == 0, table.stdout
    assert "linux/amd64" in table.stdout and "LAYER" in table.stdout
    assert "application/vnd.example.sbom" in table.stdout


def test_inspect_a_multi_platform_index(ec: Ec, repo: Repo) -> None:
    children = {arch: _image(repo, arch, layers=i + 1) for i, arch in enumerate(("amd64", "arm64"))}
    for manifest, _ in children.values():
        assert repo.put_manifest(digest_of(manifest), manifest).status_code == 201
    index = canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                descriptor(OCI_MANIFEST, manifest, platform={"os": "linux", "architecture": arch})
                for arch, (manifest, _) in children.items()
            ],
        }
    )
    assert repo.put_manifest("multi", index, OCI_INDEX).status_code == 201

    info = ec.ok("--json", "storage", "registry", "inspect", f"{repo.name}:multi").json()
    assert info["digest"] == digest_of(index) and info["media_type"] == OCI_INDEX
    platforms = {p["platform"]: p for p in info["platforms"]}
    assert sorted(platforms) == ["linux/amd64", "linux/arm64"]
    for arch, (manifest, blob_bytes) in children.items():
        entry = platforms[f"linux/{arch}"]
        assert entry["digest"] == digest_of(manifest)
        assert entry["total_size"] == len(manifest) + blob_bytes
    assert len(platforms["linux/arm64"]["layers"]) == 2
    assert info["size"] == len(index) + sum(len(m) + b for m, b in children.values())
    plain = ec.ok("storage", "registry", "inspect", f"{repo.name}:multi").stdout
    rows = [line.split("\t") for line in plain.splitlines()]
    assert [row[1] for row in rows if row[0] == "platform"] == ["linux/amd64", "linux/arm64"]


def test_rm_by_digest_removes_every_tag_of_the_manifest(ec: Ec, repo: Repo) -> None:
    manifest, _ = _image(repo, "amd64", layers=1)
    for tag in ("v1", "latest"):
        assert repo.put_manifest(tag, manifest).status_code == 201
    other, _ = _image(repo, "amd64", layers=1)
    assert repo.put_manifest("v2", other).status_code == 201
    digest = digest_of(manifest)

    assert ec.run("storage", "registry", "rm", f"{repo.name}@{digest}").code == 2  # no --yes
    out = ec.ok("storage", "registry", "rm", f"{repo.name}@{digest}", "--yes").stdout
    assert out == f"Deleted {repo.name}@{digest}.\n"
    tags = ec.ok("storage", "registry", "tags", repo.name, "-q").stdout.split()
    assert tags == ["v2"]
    assert repo.get_manifest(digest).status_code == 404
    assert ec.run("storage", "registry", "inspect", f"{repo.name}@{digest}").code == 5
    assert ec.run("storage", "registry", "rm", repo.name, digest, "--yes").code == 5
    # Bad digests are usage errors, checked before any request.
    assert ec.run("storage", "registry", "rm", f"{repo.name}@sha256:abc", "--yes").code == 2
