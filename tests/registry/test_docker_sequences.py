"""Docker's own request sequences, replayed over HTTP against a real registry.

The real engine is driven in ``tests/docker``; these tests pin, request by
request, what ``docker push`` and ``docker pull`` send (as the distribution
client does): the 401 challenge and token exchange, HEAD before upload, POST
with ``mount``/``from``, one streaming PATCH, PUT ``?digest=``, the schema 2
manifest PUT; and for pull the HEAD/GET of the manifest by tag with docker's
Accept list, then the config and layers by digest.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urljoin

import httpx

from tests.conftest import Stack
from tests.registry.manifest_helpers import DOCKER_MANIFEST, canonical

DOCKER_ACCEPT = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        "application/json",
    ]
)
LAYER_TYPE = "application/vnd.docker.image.rootfs.diff.tar.gzip"
CONFIG_TYPE = "application/vnd.docker.container.image.v1+json"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def parse_challenge(header: str) -> dict[str, str]:
    scheme, _, params = header.partition(" ")
    assert scheme == "Bearer"
    result = {}
    for part in params.split(","):
        key, _, value = part.partition("=")
        result[key.strip()] = value.strip().strip('"')
    return result


@dataclass
class DockerClient:
    """What the docker engine does, step by step, for one repository."""

    stack: Stack
    user: str
    password: str

    def login(self, repository: str, actions: str, *extra_scopes: str) -> dict[str, str]:
        """GET /v2/ → 401 challenge → token from the realm with the repository scope(s)."""
        r = httpx.get(self.stack.registry_url + "/v2/")
        assert r.status_code == 401
        challenge = parse_challenge(r.headers["www-authenticate"])
        assert challenge["realm"] == self.stack.auth_url + "/v2/token"
        r = httpx.get(
            challenge["realm"],
            params=[
                ("service", challenge["service"]),
                ("scope", f"repository:{repository}:{actions}"),
                *(("scope", scope) for scope in extra_scopes),
            ],
            auth=(self.user, self.password),
        )
        assert r.status_code == 200, r.text
        headers = {"Authorization": f"Bearer {r.json()['token']}"}
        assert httpx.get(self.stack.registry_url + "/v2/", headers=headers).status_code == 200
        return headers

    def push_blob(
        self, repository: str, data: bytes, headers: dict[str, str], mount_from: str | None
    ) -> bool:
        """Push one blob the way docker does; True when it was mounted instead of sent."""
        base = self.stack.registry_url
        digest = sha256(data)
        r = httpx.head(f"{base}/v2/{repository}/blobs/{digest}", headers=headers)
        if r.status_code == 200:
            return False
        assert r.status_code == 404
        params = {"mount": digest, "from": mount_from} if mount_from else {}
        r = httpx.post(f"{base}/v2/{repository}/blobs/uploads/", params=params, headers=headers)
        if r.status_code == 201:
            assert r.headers["docker-content-digest"] == digest
            return True
        assert r.status_code == 202, r.text
        location = urljoin(base, r.headers["location"])

        def stream() -> Iterator[bytes]:
            for start in range(0, len(data), 1000):
                yield data[start : start + 1000]

        r = httpx.patch(
            location,
            content=stream(),
            headers={**headers, "Content-Type": "application/octet-stream"},
        )
        assert r.status_code == 202, r.text
        assert r.headers["range"] == f"0-{len(data) - 1}"
        location = urljoin(base, r.headers["location"])
        r = httpx.put(location, params={"digest": digest}, headers=headers)
        assert r.status_code == 201, r.text
        assert r.headers["docker-content-digest"] == digest
        return False

    def push(
        self, repository: str, tag: str, layers: list[bytes], config: bytes, mount_from: str | None
    ) -> tuple[str, list[bool]]:
        # For a mount, docker asks for pull on the source alongside push on the target.
        extra = [f"repository:{mount_from}:pull"] if mount_from else []
        headers = self.login(repository, "pull,push", *extra)
        mounted = [self.push_blob(repository, layer, headers, mount_from) for layer in layers]
        self.push_blob(repository, config, headers, None)
        manifest = canonical(
            {
                "schemaVersion": 2,
                "mediaType": DOCKER_MANIFEST,
                "config": {"mediaType": CONFIG_TYPE, "size": len(config), "digest": sha256(config)},
                "layers": [
                    {"mediaType": LAYER_TYPE, "size": len(x), "digest": sha256(x)} for x in layers
                ],
            }
        )
        r = httpx.put(
            f"{self.stack.registry_url}/v2/{repository}/manifests/{tag}",
            content=manifest,
            headers={**headers, "Content-Type": DOCKER_MANIFEST},
        )
        assert r.status_code == 201, r.text
        assert r.headers["docker-content-digest"] == sha256(manifest)
        return sha256(manifest), mounted

    def pull(self, repository: str, tag: str) -> tuple[dict[str, object], dict[str, bytes]]:
        base = self.stack.registry_url
        headers = self.login(repository, "pull")
        accept = {**headers, "Accept": DOCKER_ACCEPT}
        r = httpx.head(f"{base}/v2/{repository}/manifests/{tag}", headers=accept)
        assert r.status_code == 200
        digest = r.headers["docker-content-digest"]
        assert r.headers["content-type"] == DOCKER_MANIFEST
        r = httpx.get(f"{base}/v2/{repository}/manifests/{digest}", headers=accept)
        assert r.status_code == 200 and sha256(r.content) == digest
        assert int(r.headers["content-length"]) == len(r.content)
        manifest = json.loads(r.content)
        blobs = {}
        for desc in [manifest["config"], *manifest["layers"]]:
            r = httpx.get(f"{base}/v2/{repository}/blobs/{desc['digest']}", headers=headers)
            assert r.status_code == 200
            assert sha256(r.content) == desc["digest"] and len(r.content) == desc["size"]
            blobs[desc["digest"]] = r.content
        return manifest, blobs


def image_content() -> tuple[list[bytes], bytes]:
    layers = [gzip.compress(secrets.token_bytes(n)) for n in (3000, 70_000)]
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [sha256(x) for x in layers]},
        }
    ).encode()
    return layers, config


def test_docker_push_then_pull(rstack: Stack) -> None:
    user, password = rstack.create_user()
    docker = DockerClient(rstack, user, password)
    layers, config = image_content()
    digest, mounted = docker.push(f"{user}/app", "1.0", layers, config, mount_from=None)
    assert mounted == [False, False]
    manifest, blobs = docker.pull(f"{user}/app", "1.0")
    assert manifest["mediaType"] == DOCKER_MANIFEST
    assert blobs[sha256(config)] == config
    assert [blobs[sha256(x)] for x in layers] == layers
    # A second push of the same image finds every blob with HEAD and uploads nothing.
    again, mounted = docker.push(f"{user}/app", "latest", layers, config, mount_from=None)
    assert again == digest


def test_docker_push_mounts_layers_from_another_repository(rstack: Stack) -> None:
    user, password = rstack.create_user()
    docker = DockerClient(rstack, user, password)
    layers, config = image_content()
    docker.push(f"{user}/base", "1", layers, config, mount_from=None)
    _, mounted = docker.push(f"{user}/derived", "1", layers, config, mount_from=f"{user}/base")
    assert mounted == [True, True]
    _, blobs = docker.pull(f"{user}/derived", "1")
    assert [blobs[sha256(x)] for x in layers] == layers


def test_docker_cannot_mount_from_another_users_repository(rstack: Stack) -> None:
    victim, victim_password = rstack.create_user()
    DockerClient(rstack, victim, victim_password).push(
        f"{victim}/private", "1", *image_content(), mount_from=None
    )
    user, password = rstack.create_user()
    docker = DockerClient(rstack, user, password)
    layers, config = image_content()
    _, mounted = docker.push(f"{user}/mine", "1", layers, config, mount_from=f"{victim}/private")
    # Falls back to a normal upload: nothing of the victim's is linked.
    assert mounted == [False, False]
