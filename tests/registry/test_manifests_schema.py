"""Unit tests of manifest parsing and validation (no server needed)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from services.registry.manifest_schema import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    MAX_MANIFEST_BYTES,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    ManifestError,
    normalize_media_type,
    parse_manifest,
)


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


CONFIG = digest_of(b"config")
LAYER = digest_of(b"layer")
CHILD = digest_of(b"child")


def image(media_type: str | None = OCI_MANIFEST, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": CONFIG,
            "size": 6,
        },
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": LAYER, "size": 5}
        ],
    }
    if media_type is not None:
        doc["mediaType"] = media_type
    doc.update(extra)
    return doc


def index(media_type: str = OCI_INDEX, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": CHILD,
                "size": 5,
                "platform": {"os": "linux", "architecture": "amd64"},
            }
        ],
    }
    doc.update(extra)
    return doc


def raw(doc: object) -> bytes:
    return json.dumps(doc).encode()


def rejects(payload: bytes, content_type: str | None, code: str = "MANIFEST_INVALID") -> str:
    with pytest.raises(ManifestError) as info:
        parse_manifest(payload, content_type)
    assert info.value.code == code, info.value.message
    return info.value.message


def test_oci_image_manifest_parses_with_its_references() -> None:
    payload = raw(image())
    m = parse_manifest(payload, OCI_MANIFEST)
    assert m.media_type == OCI_MANIFEST
    assert m.digest == digest_of(payload)
    assert m.payload == payload and m.size == len(payload)
    assert [d.digest for d in m.blobs] == [CONFIG, LAYER]
    assert m.manifests == () and m.subject is None
    assert m.effective_artifact_type == "application/vnd.oci.image.config.v1+json"


def test_docker_manifest_and_list_parse() -> None:
    m = parse_manifest(raw(image(DOCKER_MANIFEST)), DOCKER_MANIFEST)
    assert m.media_type == DOCKER_MANIFEST and not m.is_index
    lst = parse_manifest(raw(index(DOCKER_MANIFEST_LIST)), DOCKER_MANIFEST_LIST)
    assert lst.is_index and [d.digest for d in lst.manifests] == [CHILD] and lst.blobs == ()


def test_artifact_with_subject_and_empty_config() -> None:
    doc = image(
        artifactType="application/vnd.example.sig",
        subject={"mediaType": OCI_MANIFEST, "digest": CHILD, "size": 5},
        annotations={"k": "v"},
    )
    doc["config"] = {"mediaType": OCI_EMPTY, "digest": digest_of(b"{}"), "size": 2}
    m = parse_manifest(raw(doc), OCI_MANIFEST)
    assert m.subject is not None and m.subject.digest == CHILD
    assert m.effective_artifact_type == "application/vnd.example.sig"
    assert m.annotations == {"k": "v"}


def test_index_with_subject_and_artifact_type() -> None:
    doc = index(
        artifactType="application/x",
        subject={"mediaType": OCI_MANIFEST, "digest": CHILD, "size": 5},
    )
    m = parse_manifest(raw(doc), OCI_INDEX)
    assert m.subject is not None and m.effective_artifact_type == "application/x"


def test_content_type_parameters_are_ignored() -> None:
    assert normalize_media_type("Application/VND.oci.image.manifest.v1+json; charset=utf-8") == (
        OCI_MANIFEST
    )
    parse_manifest(raw(image()), OCI_MANIFEST + "; charset=utf-8")


def test_media_type_falls_back_to_the_document_without_content_type() -> None:
    assert parse_manifest(raw(image()), None).media_type == OCI_MANIFEST
    assert "Content-Type" in rejects(raw(image(None)), None)


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"not json",
        b"[1, 2]",
        b'"text"',
        b"\xff\xfe",
        b'{"schemaVersion": 2,',
        b'{"schemaVersion": NaN}',
    ],
)
def test_malformed_json_is_manifest_invalid(payload: bytes) -> None:
    rejects(payload, OCI_MANIFEST)


def test_duplicate_keys_are_refused() -> None:
    payload = b'{"schemaVersion": 2, "schemaVersion": 2, "config": {}, "layers": []}'
    assert "duplicate" in rejects(payload, OCI_MANIFEST)


@pytest.mark.parametrize("version", [1, 3, "2", True, None])
def test_schema_version_must_be_two(version: object) -> None:
    rejects(raw(image(schemaVersion=version)), OCI_MANIFEST)


def test_schema1_is_refused() -> None:
    message = rejects(raw(image(None)), "application/vnd.docker.distribution.manifest.v1+prettyjws")
    assert "schema 1" in message


def test_media_type_must_match_content_type() -> None:
    message = rejects(raw(image(DOCKER_MANIFEST)), OCI_MANIFEST)
    assert "differs" in message


def test_unknown_content_type_is_refused() -> None:
    assert "unsupported" in rejects(raw(image(None)), "application/json")


def test_shape_must_match_media_type() -> None:
    # An index sent as an image manifest, and the reverse.
    rejects(raw(index(OCI_INDEX) | {"mediaType": OCI_MANIFEST}), OCI_MANIFEST)
    rejects(raw(image(OCI_INDEX)), OCI_INDEX)
    both = image(manifests=[])
    rejects(raw(both), OCI_MANIFEST)
    rejects(raw({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}), OCI_MANIFEST)
    rejects(raw({"schemaVersion": 2, "mediaType": OCI_INDEX}), OCI_INDEX)


@pytest.mark.parametrize(
    "descriptor",
    [
        "not an object",
        {"digest": LAYER, "size": 5},
        {"mediaType": "x", "size": 5},
        {"mediaType": "x", "digest": "sha256:abc", "size": 5},
        {"mediaType": "x", "digest": "md5:" + "0" * 32, "size": 5},
        {"mediaType": "x", "digest": LAYER.upper(), "size": 5},
        {"mediaType": "x", "digest": LAYER, "size": -1},
        {"mediaType": "x", "digest": LAYER, "size": "5"},
        {"mediaType": "x", "digest": LAYER, "size": 1.5},
        {"mediaType": "x", "digest": LAYER},
        {"mediaType": "x", "digest": LAYER, "size": 5, "annotations": {"a": 1}},
        {"mediaType": "x", "digest": LAYER, "size": 5, "urls": "http://x"},
    ],
)
def test_bad_descriptors_are_refused(descriptor: object) -> None:
    rejects(raw(image(layers=[descriptor])), OCI_MANIFEST)
    rejects(raw(image(config=descriptor)), OCI_MANIFEST)


def test_bad_subject_and_annotations_are_refused() -> None:
    rejects(
        raw(image(subject={"mediaType": OCI_MANIFEST, "digest": "nope", "size": 1})), OCI_MANIFEST
    )
    rejects(raw(image(annotations=["a"])), OCI_MANIFEST)
    rejects(raw(image(artifactType=5)), OCI_MANIFEST)


def test_size_limit() -> None:
    doc = image(annotations={"pad": "x" * MAX_MANIFEST_BYTES})
    rejects(raw(doc), OCI_MANIFEST, "MANIFEST_TOO_LARGE")


def test_foreign_layers_are_not_required_blobs() -> None:
    foreign = {
        "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "digest": digest_of(b"win"),
        "size": 3,
        "urls": ["https://example.com/l"],
    }
    m = parse_manifest(raw(image(DOCKER_MANIFEST, layers=[foreign])), DOCKER_MANIFEST)
    assert [d.digest for d in m.blobs] == [CONFIG]


def test_digest_algorithm_follows_the_reference() -> None:
    payload = raw(image())
    m = parse_manifest(payload, OCI_MANIFEST, "sha512")
    assert m.digest == "sha512:" + hashlib.sha512(payload).hexdigest()
