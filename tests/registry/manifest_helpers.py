"""Helpers for the manifest, tag, catalog and referrers HTTP tests.

The suites run on the `rstack` fixture (tests/registry/conftest.py): one
real auth + registry pair per test module and database, SQLite then
PostgreSQL. `Repo` is a thin HTTP client for one repository holding a token
with pull, push and delete.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

import httpx

from tests.conftest import Stack

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical(doc: object) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest_of(data), "size": len(data), **extra}


@dataclass
class Repo:
    """One repository of one user, driven over HTTP with a pull,push,delete token."""

    stack: Stack
    user: str
    name: str
    token: str

    @classmethod
    def create(cls, stack: Stack, user: str | None = None, path: str = "app") -> Repo:
        if user is None:
            user, _ = stack.create_user()
        name = f"{user}/{path}"
        token = stack.token(user, f"repository:{name}:pull,push,delete")
        return cls(stack, user, name, token)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def url(self, suffix: str) -> str:
        return f"{self.stack.registry_url}/v2/{self.name}/{suffix}"

    def request(self, method: str, suffix: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return httpx.request(method, self.url(suffix), headers=headers, timeout=30, **kwargs)

    def push_blob(self, data: bytes) -> dict[str, Any]:
        """Upload `data` (POST then PUT ?digest=) and return a descriptor-ish dict."""
        digest = digest_of(data)
        r = self.request("POST", "blobs/uploads/")
        assert r.status_code == 202, r.text
        location = r.headers["location"]
        if location.startswith("/"):
            location = self.stack.registry_url + location
        r = httpx.put(
            location,
            params={"digest": digest},
            content=data,
            headers={**self.headers, "Content-Type": "application/octet-stream"},
            timeout=30,
        )
        assert r.status_code == 201, r.text
        return {"digest": digest, "size": len(data)}

    def put_manifest(
        self, reference: str, body: bytes, media_type: str | None = OCI_MANIFEST
    ) -> httpx.Response:
        headers = {"Content-Type": media_type} if media_type else {}
        return self.request("PUT", f"manifests/{reference}", content=body, headers=headers)

    def get_manifest(self, reference: str, method: str = "GET") -> httpx.Response:
        return self.request(method, f"manifests/{reference}")

    def image(
        self,
        layers: list[bytes] | None = None,
        media_type: str = OCI_MANIFEST,
        **extra: Any,
    ) -> bytes:
        """Push a config and layers, return an image manifest referencing them."""
        config = json.dumps({"architecture": "amd64", "os": "linux", "n": secrets.token_hex(4)})
        config_bytes = config.encode()
        self.push_blob(config_bytes)
        layer_type = OCI_LAYER
        config_type = OCI_CONFIG
        if media_type == DOCKER_MANIFEST:
            layer_type = "application/vnd.docker.image.rootfs.diff.tar.gzip"
            config_type = "application/vnd.docker.container.image.v1+json"
        layer_descriptors = []
        for layer in layers if layers is not None else [secrets.token_bytes(64)]:
            self.push_blob(layer)
            layer_descriptors.append(descriptor(layer_type, layer))
        doc = {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": descriptor(config_type, config_bytes),
            "layers": layer_descriptors,
            **extra,
        }
        return canonical(doc)


def empty_index(**extra: Any) -> bytes:
    """An OCI index with no children: a valid manifest that needs no blobs."""
    return canonical({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [], **extra})


def error_code(response: httpx.Response) -> str:
    return str(response.json()["errors"][0]["code"])
