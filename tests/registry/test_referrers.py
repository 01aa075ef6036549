"""Subjects and the referrers API: ``OCI-Subject``, the index, the artifactType filter."""

from __future__ import annotations

import httpx

from tests.conftest import Stack
from tests.registry.manifest_helpers import (
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    Repo,
    canonical,
    descriptor,
    digest_of,
    error_code,
)

SIGNATURE = "application/vnd.example.signature.v1"
SBOM = "application/vnd.example.sbom.v1"
EMPTY = b"{}"


def artifact(repo: Repo, subject: bytes, artifact_type: str, note: str) -> bytes:
    """An artifact manifest (empty config, one layer) whose subject is `subject`."""
    repo.push_blob(EMPTY)
    layer = f"payload {note}".encode()
    repo.push_blob(layer)
    return canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": descriptor(OCI_EMPTY, EMPTY),
            "layers": [descriptor("application/octet-stream", layer)],
            "subject": descriptor(OCI_MANIFEST, subject),
            "annotations": {"org.example.note": note},
        }
    )


def referrers(repo: Repo, digest: str, **params: str) -> httpx.Response:
    return repo.request("GET", f"referrers/{digest}", params=params)


def test_referrers_list_artifacts_pointing_at_a_subject(rstack: Stack) -> None:
    repo = Repo.create(rstack)
    image = repo.image()
    assert repo.put_manifest("v1", image).status_code == 201
    subject = digest_of(image)
    sig = artifact(repo, image, SIGNATURE, "sig")
    r = repo.put_manifest(digest_of(sig), sig)
    assert r.status_code == 201 and r.headers["oci-subject"] == subject
    sbom = artifact(repo, image, SBOM, "sbom")
    assert repo.put_manifest(digest_of(sbom), sbom).headers["oci-subject"] == subject
    # A manifest whose type comes from its config (no artifactType).
    repo.push_blob(b'{"kind":"cfg"}')
    via_config = canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor("application/vnd.example.config.v1+json", b'{"kind":"cfg"}'),
            "layers": [],
            "subject": descriptor(OCI_MANIFEST, image),
        }
    )
    assert repo.put_manifest(digest_of(via_config), via_config).status_code == 201
    # An index can refer to a subject too.
    index = canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "artifactType": SBOM,
            "manifests": [descriptor(OCI_MANIFEST, sbom)],
            "subject": descriptor(OCI_MANIFEST, image),
        }
    )
    r = repo.put_manifest(digest_of(index), index, OCI_INDEX)
    assert r.status_code == 201 and r.headers["oci-subject"] == subject

    r = referrers(repo, subject)
    assert r.status_code == 200
    assert r.headers["content-type"] == OCI_INDEX
    assert "oci-filters-applied" not in r.headers
    body = r.json()
    assert body["schemaVersion"] == 2 and body["mediaType"] == OCI_INDEX
    entries = {m["digest"]: m for m in body["manifests"]}
    assert set(entries) == {digest_of(x) for x in (sig, sbom, via_config, index)}
    assert entries[digest_of(sig)] == {
        "mediaType": OCI_MANIFEST,
        "digest": digest_of(sig),
        "size": len(sig),
        "artifactType": SIGNATURE,
        "annotations": {"org.example.note": "sig"},
    }
    assert entries[digest_of(via_config)]["artifactType"] == (
        "application/vnd.example.config.v1+json"
    )
    assert "annotations" not in entries[digest_of(via_config)]
    assert entries[digest_of(index)]["mediaType"] == OCI_INDEX

    r = referrers(repo, subject, artifactType=SBOM)
    assert r.headers["oci-filters-applied"] == "artifactType"
    assert {m["digest"] for m in r.json()["manifests"]} == {digest_of(sbom), digest_of(index)}
    r = referrers(repo, subject, artifactType="application/none")
    assert r.json()["manifests"] == [] and r.headers["oci-filters-applied"] == "artifactType"


def test_subject_need_not_exist_and_deleted_referrers_disappear(rstack: Stack) -> None:
    repo = Repo.create(rstack)
    absent = b'{"never":"pushed"}'
    sig = artifact(repo, absent, SIGNATURE, "orphan")
    r = repo.put_manifest("sig", sig)
    assert r.status_code == 201 and r.headers["oci-subject"] == digest_of(absent)
    r = referrers(repo, digest_of(absent))
    assert [m["digest"] for m in r.json()["manifests"]] == [digest_of(sig)]
    assert repo.request("DELETE", f"manifests/{digest_of(sig)}").status_code == 202
    assert referrers(repo, digest_of(absent)).json()["manifests"] == []


def test_empty_index_when_nothing_refers(rstack: Stack) -> None:
    repo = Repo.create(rstack)
    r = referrers(repo, digest_of(b"nothing"))
    # Even before the repository exists: an empty index, not an error.
    assert r.status_code == 200 and r.headers["content-type"] == OCI_INDEX
    assert r.json() == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}


def test_referrers_are_per_repository(rstack: Stack) -> None:
    repo = Repo.create(rstack)
    image = repo.image()
    repo.put_manifest("v1", image)
    sig = artifact(repo, image, SIGNATURE, "here")
    repo.put_manifest(digest_of(sig), sig)
    other = Repo.create(rstack, repo.user, "other")
    assert referrers(other, digest_of(image)).json()["manifests"] == []
    theirs = artifact(other, image, SIGNATURE, "there")
    assert other.put_manifest(digest_of(theirs), theirs).status_code == 201
    assert [m["digest"] for m in referrers(other, digest_of(image)).json()["manifests"]] == [
        digest_of(theirs)
    ]
    assert [m["digest"] for m in referrers(repo, digest_of(image)).json()["manifests"]] == [
        digest_of(sig)
    ]


def test_invalid_digest_and_permissions(rstack: Stack) -> None:
    repo = Repo.create(rstack)
    for bad in ("sha256:abc", "notadigest", "md5:" + "0" * 32):
        r = referrers(repo, bad)
        assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID", bad
    r = httpx.get(repo.url(f"referrers/{digest_of(b'x')}"))
    assert r.status_code == 401
    other, _ = rstack.create_user()
    token = rstack.token(other, f"repository:{repo.name}:pull")
    r = httpx.get(
        repo.url(f"referrers/{digest_of(b'x')}"), headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 401


def test_artifact_type_filter_with_plus_raw_or_encoded(rstack: Stack) -> None:
    repo = Repo.create(rstack)
    image = repo.image()
    repo.put_manifest("v1", image)
    kind = "application/vnd.example.sig.v1+json"
    sig = artifact(repo, image, kind, "plus")
    repo.put_manifest(digest_of(sig), sig)
    base = f"referrers/{digest_of(image)}?artifactType="
    for query in (kind, kind.replace("+", "%2B"), kind.replace("/", "%2F").replace("+", "%2B")):
        r = repo.request("GET", base + query)
        assert [m["digest"] for m in r.json()["manifests"]] == [digest_of(sig)], query
        assert r.headers["oci-filters-applied"] == "artifactType"
