"""Talking to the registry for ``ec storage registry``: credentials and the OCI API.

With a login session the registry is called directly (it accepts session
tokens on the dashboard API and on ``/v2/``). With a service-account token the
CLI first exchanges it, at the token endpoint the registry's challenge names,
for a registry token scoped to what the command needs — as docker would.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from cli.errors import CliError, ExitCode
from cli.http import Bearer, Service
from cli.state import State
from shared.names import DigestError, is_valid_name, is_valid_tag, parse_digest

__all__ = [
    "MANIFEST_TYPES",
    "Manifest",
    "Reference",
    "check_name",
    "fetch_blob_json",
    "fetch_manifest",
    "parse_reference",
    "registry_bearer",
]

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
INDEX_TYPES = MANIFEST_TYPES[0], MANIFEST_TYPES[2]
MAX_DOCUMENT = 4 * 1024 * 1024  # the registry's own manifest limit
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


def registry_bearer(state: State, registry: Service, scope: str) -> str | Bearer:
    if not state.is_sa_token:
        return state.bearer()
    token = state.need_token()
    probe = registry.request("GET", "/v2/", ok=(200, 401))
    challenge = dict(_CHALLENGE_PARAM.findall(probe.headers.get("www-authenticate", "")))
    realm = challenge.get("realm")
    if not realm or not realm.startswith(("http://", "https://")):
        raise CliError("the registry did not say where to get a token (no Bearer challenge)")
    body = Service("token endpoint", realm, state.timeout).json(
        "GET",
        "",
        basic=("ec", token),
        params={"service": challenge.get("service", "registry"), "scope": scope},
        unauthorized="the service-account token was refused: revoked, expired or mistyped",
    )
    if not isinstance(body, dict) or not isinstance(body.get("token"), str):
        raise CliError("the token endpoint answered without a token")
    return str(body["token"])


@dataclass(frozen=True, slots=True)
class Manifest:
    digest: str
    media_type: str
    size: int
    body: dict[str, Any]

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES or "manifests" in self.body


def check_name(name: str) -> str:
    if not is_valid_name(name) or "/" not in name:
        raise CliError(f"{name!r} is not a repository name such as alice/app", ExitCode.USAGE)
    return name


@dataclass(frozen=True, slots=True)
class Reference:
    """``name:tag`` or ``name@digest``."""

    name: str
    tag: str | None = None
    digest: str | None = None

    @property
    def target(self) -> str:
        return self.digest or self.tag or ""

    def __str__(self) -> str:
        return f"{self.name}@{self.digest}" if self.digest else f"{self.name}:{self.tag}"


def parse_reference(text: str, second: str | None, *, default_tag: str | None) -> Reference:
    """``REPO:TAG``, ``REPO@DIGEST``, or ``REPO`` followed by TAG or DIGEST as `second`."""
    name, target = text, second
    if "@" in text:
        name, _, target = text.partition("@")
        if second is not None:
            raise CliError("give the digest once: REPOSITORY@DIGEST", ExitCode.USAGE)
    elif second is None:
        head, sep, tail = text.rpartition(":")
        if sep and "/" not in tail:
            name, target = head, tail
    check_name(name)
    if target is None:
        if default_tag is None:
            raise CliError(
                "name the tag or digest: alice/app:v1, alice/app@sha256:…, or alice/app v1",
                ExitCode.USAGE,
            )
        target = default_tag
    if ":" in target:
        try:
            return Reference(name, digest=str(parse_digest(target)))
        except DigestError as exc:
            raise CliError(str(exc), ExitCode.USAGE) from exc
    if not is_valid_tag(target):
        raise CliError(f"{target!r} is not a valid tag", ExitCode.USAGE)
    return Reference(name, tag=target)


def _document(raw: bytes, what: str) -> dict[str, Any]:
    if len(raw) > MAX_DOCUMENT:
        raise CliError(f"{what} is larger than {MAX_DOCUMENT} bytes")
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise CliError(f"{what} is not JSON") from exc
    if not isinstance(body, dict):
        raise CliError(f"{what} is not a JSON object")
    return body


def fetch_manifest(registry: Service, bearer: str | Bearer, name: str, reference: str) -> Manifest:
    response = registry.request(
        "GET",
        f"/v2/{name}/manifests/{reference}",
        bearer=bearer,
        headers={"Accept": ", ".join(MANIFEST_TYPES)},
    )
    body = _document(response.content, f"the manifest {name}:{reference}")
    media_type = response.headers.get("content-type", "").split(";")[0].strip()
    return Manifest(
        digest=response.headers.get("docker-content-digest", reference),
        media_type=str(body.get("mediaType") or media_type),
        size=len(response.content),
        body=body,
    )


def fetch_blob_json(registry: Service, bearer: str | Bearer, name: str, digest: str) -> Any:
    response = registry.request(
        "GET", f"/v2/{name}/blobs/{digest}", bearer=bearer, follow_redirects=True
    )
    return _document(response.content, f"the blob {digest}")
