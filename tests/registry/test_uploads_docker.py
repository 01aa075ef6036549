"""Docker's own blob push, replayed request by request (no Docker daemon runs here).

Order as ``docker push`` sends it: HEAD the layer (404), POST with
``?mount=&from=`` naming a repository it once saw the layer in (falls back to
a new upload when that cannot be mounted), one streaming PATCH with no
``Content-Range``, then PUT ``?digest=`` with an empty body. The token comes
from the challenge, the way Docker's client reads it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import httpx

from tests.registry.conftest import Account, sha256

_PARAM = re.compile(r'(\w+)="([^"]*)"')


def _token_from_challenge(
    account: Account, response: httpx.Response, scopes: list[str] | None = None
) -> str:
    """A token from the challenge's realm; for the challenge's scope unless `scopes`."""
    assert response.status_code == 401
    scheme, _, params = response.headers["www-authenticate"].partition(" ")
    assert scheme == "Bearer"
    challenge = dict(_PARAM.findall(params))
    query = [("service", challenge["service"])]
    query += [("scope", s) for s in scopes or [challenge["scope"]]]
    r = httpx.get(
        challenge["realm"],
        params=query,
        auth=(account.username, account.password),
        timeout=10,
    )
    r.raise_for_status()
    return str(r.json()["token"])


def test_docker_push_blob_sequence(alice: Account) -> None:
    name = alice.repo("app")
    mount_from = alice.repo("base")  # never held this layer
    layer = os.urandom(2 * 1024 * 1024 + 5)
    digest = sha256(layer)
    base = alice.stack.registry_url
    ua = {"User-Agent": "docker/24.0.7 go/go1.20.10 git-commit/311b9ff os/linux arch/amd64"}

    with httpx.Client(base_url=base, headers=ua, timeout=30) as c:
        r = c.head(f"/v2/{name}/blobs/{digest}")
        assert f'scope="repository:{name}:pull"' in r.headers["www-authenticate"]
        # Pushing, docker asks for pull,push here and pull on the mount source.
        token = _token_from_challenge(
            alice, r, [f"repository:{name}:pull,push", f"repository:{mount_from}:pull"]
        )
        c.headers["Authorization"] = f"Bearer {token}"

        r = c.head(f"/v2/{name}/blobs/{digest}")
        assert r.status_code == 404

        r = c.post(f"/v2/{name}/blobs/uploads/", params={"mount": digest, "from": mount_from})
        assert r.status_code == 202, r.text
        location = r.headers["location"]
        assert r.headers["docker-upload-uuid"] in location

        def stream() -> Iterator[bytes]:
            for i in range(0, len(layer), 32 * 1024):
                yield layer[i : i + 32 * 1024]

        r = c.patch(
            location, content=stream(), headers={"Content-Type": "application/octet-stream"}
        )
        assert r.status_code == 202, r.text
        assert r.headers["range"] == f"0-{len(layer) - 1}"
        location = r.headers["location"]

        r = c.put(location, params={"digest": digest}, headers={"Content-Length": "0"})
        assert r.status_code == 201, r.text
        assert r.headers["docker-content-digest"] == digest
        assert r.headers["location"] == f"/v2/{name}/blobs/{digest}"

        r = c.head(f"/v2/{name}/blobs/{digest}")
        assert r.status_code == 200
        assert r.headers["content-length"] == str(len(layer))

        # Pushing the same layer into another repository: the mount now succeeds.
        other = alice.repo("other")
        c.headers["Authorization"] = "Bearer " + alice.stack.token(
            alice.username, f"repository:{other}:pull,push", f"repository:{name}:pull"
        )
        assert c.head(f"/v2/{other}/blobs/{digest}").status_code == 404
        r = c.post(f"/v2/{other}/blobs/uploads/", params={"mount": digest, "from": name})
        assert r.status_code == 201
        assert c.get(f"/v2/{other}/blobs/{digest}").content == layer


def test_challenge_for_push_names_pull_and_push(alice: Account) -> None:
    name = alice.repo()
    r = httpx.post(f"{alice.stack.registry_url}/v2/{name}/blobs/uploads/")
    token = _token_from_challenge(alice, r)
    r = httpx.post(
        f"{alice.stack.registry_url}/v2/{name}/blobs/uploads/",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 202
