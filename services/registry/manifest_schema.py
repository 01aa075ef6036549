"""Parsing and validation of pushed manifests, before anything touches the database.

Accepted media types: OCI image manifest and index, Docker schema 2 manifest
and manifest list; artifacts are OCI manifests (or indexes) with an
``artifactType`` or a non-image config. Docker schema 1 is refused.

`parse_manifest` checks what can be checked from the bytes alone: a JSON
object read by `shared.strictjson` (UTF-8, unique keys, bounded nesting and
digit counts, no NUL or lone surrogate in any string: nothing a database
cannot store, nothing that costs unbounded work), ``schemaVersion`` 2, a
media type that agrees with the request's ``Content-Type`` and with the
document's shape (an image
manifest holds ``config``/``layers`` and no ``manifests``; an index the
reverse, so one set of bytes cannot be read as both kinds), and well-formed
descriptors. Whether the referenced blobs and child manifests exist in the
repository is the metadata layer's question.

Errors are `ManifestError` carrying the spec's error code; the route turns
them into the JSON error response.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared import strictjson
from shared.names import Digest, DigestError, parse_digest

__all__ = [
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "IMAGE_MANIFEST_TYPES",
    "INDEX_TYPES",
    "MAX_BLOB_SIZE",
    "MAX_MANIFEST_BYTES",
    "MAX_MANIFEST_DEPTH",
    "OCI_EMPTY",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "SCHEMA1_TYPES",
    "SUPPORTED_TYPES",
    "Descriptor",
    "ManifestError",
    "ParsedManifest",
    "normalize_media_type",
    "parse_manifest",
]

MAX_MANIFEST_BYTES = 4 * 1024 * 1024
# An image index of manifests with annotations is 4 levels deep; extension
# fields get room, a parser bomb does not.
MAX_MANIFEST_DEPTH = 32
# Sizes are 64-bit signed integers in the metadata.
MAX_BLOB_SIZE = 2**63 - 1

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"

IMAGE_MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
SUPPORTED_TYPES = IMAGE_MANIFEST_TYPES | INDEX_TYPES
SCHEMA1_TYPES = frozenset(
    {
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    }
)
# Foreign (non-distributable) layers live at their `urls`, not in the
# registry: a Windows base layer is never pushed, so it cannot be required.
_FOREIGN_LAYER_MARKERS = ("foreign", "nondistributable")


class ManifestError(Exception):
    """A manifest the registry refuses, with the spec's error code."""

    def __init__(
        self, code: str, message: str, detail: Any = None, *, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail
        self.status = status


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    artifact_type: str | None = None
    annotations: Mapping[str, str] | None = None
    urls: tuple[str, ...] = ()

    @property
    def is_foreign(self) -> bool:
        return bool(self.urls) and any(m in self.media_type for m in _FOREIGN_LAYER_MARKERS)


@dataclass(frozen=True, slots=True)
class ParsedManifest:
    """A validated manifest: its exact bytes, identity and references."""

    media_type: str
    digest: str
    payload: bytes
    config: Descriptor | None = None
    layers: tuple[Descriptor, ...] = ()
    manifests: tuple[Descriptor, ...] = ()
    subject: Descriptor | None = None
    artifact_type: str | None = None
    annotations: Mapping[str, str] | None = field(default=None)

    @property
    def size(self) -> int:
        return len(self.payload)

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @property
    def blobs(self) -> tuple[Descriptor, ...]:
        """The blobs the repository must hold: config and every pushed layer."""
        refs = ([self.config] if self.config is not None else []) + list(self.layers)
        return tuple(d for d in refs if not d.is_foreign)

    @property
    def effective_artifact_type(self) -> str | None:
        """What the referrers API reports: ``artifactType``, else the config's type."""
        if self.artifact_type:
            return self.artifact_type
        return self.config.media_type if self.config is not None else None


def normalize_media_type(value: str | None) -> str | None:
    """``Type/Sub; charset=x`` → ``type/sub``; None for an empty header."""
    if value is None:
        return None
    base = value.split(";", 1)[0].strip().lower()
    return base or None


def _invalid(message: str, detail: Any = None) -> ManifestError:
    return ManifestError("MANIFEST_INVALID", message, detail)


def _load(payload: bytes) -> dict[str, Any]:
    try:
        document = strictjson.loads(payload, max_depth=MAX_MANIFEST_DEPTH, unique_keys=True)
    except strictjson.JSONRejected as exc:
        raise _invalid(f"manifest refused: {exc}") from None
    if not isinstance(document, dict):
        raise _invalid("manifest must be a JSON object")
    return document


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _string_map(value: object, where: str) -> Mapping[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise _invalid(f"{where}: annotations must be an object of strings")
    return dict(value)


def _optional_str(value: object, where: str, key: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise _invalid(f"{where}: {key} must be a non-empty string")
    return value


def _descriptor(value: object, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise _invalid(f"{where} must be a descriptor object")
    media_type = value.get("mediaType")
    if not isinstance(media_type, str) or not media_type:
        raise _invalid(f"{where}: mediaType must be a non-empty string")
    raw_digest = value.get("digest")
    if not isinstance(raw_digest, str):
        raise _invalid(f"{where}: digest must be a string")
    try:
        digest = str(parse_digest(raw_digest))
    except DigestError as exc:
        raise _invalid(f"{where}: {exc}", {"digest": raw_digest[:200]}) from exc
    size = value.get("size")
    if not _is_int(size) or not 0 <= size <= MAX_BLOB_SIZE:  # type: ignore[operator]
        raise _invalid(
            f"{where}: size must be an integer from 0 to {MAX_BLOB_SIZE}", {"digest": digest}
        )
    urls = value.get("urls")
    if urls is not None and (
        not isinstance(urls, list) or not all(isinstance(u, str) for u in urls)
    ):
        raise _invalid(f"{where}: urls must be a list of strings")
    return Descriptor(
        media_type=media_type,
        digest=digest,
        size=int(size),  # type: ignore[arg-type]
        artifact_type=_optional_str(value.get("artifactType"), where, "artifactType"),
        annotations=_string_map(value.get("annotations"), where),
        urls=tuple(urls or ()),
    )


def _descriptor_list(value: object, key: str) -> tuple[Descriptor, ...]:
    if not isinstance(value, list):
        raise _invalid(f"{key} must be a list of descriptors")
    return tuple(_descriptor(item, f"{key}[{i}]") for i, item in enumerate(value))


def _media_type(document: dict[str, Any], content_type: str | None) -> str:
    declared = document.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise _invalid("mediaType must be a string")
    if content_type in SCHEMA1_TYPES or declared in SCHEMA1_TYPES:
        raise _invalid(
            "Docker schema 1 manifests are not supported; push a Docker schema 2 or OCI manifest"
        )
    media_type = content_type or declared
    if media_type is None:
        raise _invalid("the manifest's media type is unknown: send it as Content-Type")
    if media_type not in SUPPORTED_TYPES:
        raise _invalid(
            f"unsupported manifest media type {media_type[:100]!r}; supported: "
            + ", ".join(sorted(SUPPORTED_TYPES)),
            {"mediaType": media_type[:200]},
        )
    if declared is not None and declared != media_type:
        raise _invalid(
            f"the manifest's mediaType {declared[:100]!r} differs from its"
            f" Content-Type {media_type!r}",
            {"mediaType": declared[:200], "contentType": media_type},
        )
    return media_type


def parse_manifest(
    payload: bytes, content_type: str | None, algorithm: str = "sha256"
) -> ParsedManifest:
    """Validate `payload` pushed with `content_type`; the digest uses `algorithm`."""
    if len(payload) > MAX_MANIFEST_BYTES:
        raise ManifestError(
            "MANIFEST_TOO_LARGE",
            f"manifest exceeds the limit of {MAX_MANIFEST_BYTES} bytes",
            {"limit": MAX_MANIFEST_BYTES},
        )
    document = _load(payload)
    version = document.get("schemaVersion")
    if version == 1 and _is_int(version):
        raise _invalid("Docker schema 1 manifests are not supported")
    if not _is_int(version) or version != 2:
        raise _invalid("schemaVersion must be 2")
    media_type = _media_type(document, normalize_media_type(content_type))
    is_oci = media_type in (OCI_MANIFEST, OCI_INDEX)
    digest = str(Digest.of_bytes(payload, algorithm))
    common: dict[str, Any] = {
        "media_type": media_type,
        "digest": digest,
        "payload": payload,
        "annotations": _string_map(document.get("annotations"), "manifest"),
    }
    if is_oci:
        subject = document.get("subject")
        common["subject"] = None if subject is None else _descriptor(subject, "subject")
        common["artifact_type"] = _optional_str(
            document.get("artifactType"), "manifest", "artifactType"
        )
    if media_type in IMAGE_MANIFEST_TYPES:
        if "manifests" in document:
            raise _invalid(f"an image manifest ({media_type}) cannot hold 'manifests'")
        for key in ("config", "layers"):
            if key not in document:
                raise _invalid(f"an image manifest needs {key!r}")
        return ParsedManifest(
            config=_descriptor(document["config"], "config"),
            layers=_descriptor_list(document["layers"], "layers"),
            **common,
        )
    for key in ("config", "layers"):
        if key in document:
            raise _invalid(f"an index ({media_type}) cannot hold {key!r}")
    if "manifests" not in document:
        raise _invalid("an index needs a 'manifests' list")
    return ParsedManifest(manifests=_descriptor_list(document["manifests"], "manifests"), **common)
