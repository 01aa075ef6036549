"""A cross-repository mount checks the source's recorded owner (SQLite and PostgreSQL).

The reused-username case, for real: carol pushes ``carol/base``; an admin
deletes carol; a new user takes the name carol. The auth service grants the
new carol pull on ``carol/base`` (her namespace by name), but the registry
recorded the old carol's id as its owner. A mount from it must fall back to
a plain upload (202), exactly as for a digest that exists nowhere, and the
new carol must not reach the old repository's blobs in any other way.
"""

from __future__ import annotations

import secrets

import httpx

from tests.conftest import Stack
from tests.registry.conftest import error_code, sha256


def _delete_user(stack: Stack, username: str) -> None:
    admin, _ = stack.create_user(admin=True)
    session = {"Authorization": f"Bearer {stack.session(admin)}"}
    users = httpx.get(stack.auth_url + "/admin/users", headers=session, timeout=10).json()
    user_id = next(u["id"] for u in users["users"] if u["username"] == username)
    r = httpx.delete(f"{stack.auth_url}/admin/users/{user_id}", headers=session, timeout=10)
    assert r.status_code == 204, r.text


def _mount(stack: Stack, token: str, target: str, digest: str, source: str) -> httpx.Response:
    return httpx.post(
        f"{stack.registry_url}/v2/{target}/blobs/uploads/",
        params={"mount": digest, "from": source},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def _shape(r: httpx.Response) -> tuple[int, set[str], bool]:
    """What a mount answer reveals: status, header names, whether Location is an upload."""
    names = {k.lower() for k in r.headers} - {"date", "x-request-id", "content-length"}
    return r.status_code, names, "/blobs/uploads/" in r.headers.get("location", "")


def test_mount_from_a_repository_of_a_previous_owner_of_the_name(rstack: Stack) -> None:
    name = f"carol{secrets.token_hex(3)}"
    rstack.create_user(name)
    source, target = f"{name}/base", f"{name}/derived"
    data = secrets.token_bytes(2048)
    digest = sha256(data)
    token = rstack.token(name, f"repository:{source}:pull,push")
    r = httpx.post(
        f"{rstack.registry_url}/v2/{source}/blobs/uploads/",
        params={"digest": digest},
        content=data,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    # The same user mounts it: the check passes for the recorded owner.
    own = rstack.token(name, f"repository:{target}x:pull,push", f"repository:{source}:pull")
    r = _mount(rstack, own, f"{target}x", digest, source)
    assert r.status_code == 201, r.text

    _delete_user(rstack, name)
    rstack.create_user(name)  # a new user, a new id, the same name
    newcomer = rstack.token(name, f"repository:{target}:pull,push", f"repository:{source}:pull")
    mounted = _mount(rstack, newcomer, target, digest, source)
    assert mounted.status_code == 202, mounted.text
    assert "docker-content-digest" not in {k.lower() for k in mounted.headers}
    assert digest not in mounted.headers.get("location", "")
    # Indistinguishable from a mount of content that exists nowhere.
    nowhere = _mount(rstack, newcomer, target, sha256(secrets.token_bytes(16)), source)
    assert _shape(mounted) == _shape(nowhere)
    # The upload it started is a plain one: the blob is not in the target.
    headers = {"Authorization": f"Bearer {newcomer}"}
    blob = httpx.get(f"{rstack.registry_url}/v2/{target}/blobs/{digest}", headers=headers)
    assert blob.status_code == 404 and error_code(blob) == "BLOB_UNKNOWN"
    # Nor can the newcomer read the old repository directly.
    old = httpx.get(f"{rstack.registry_url}/v2/{source}/blobs/{digest}", headers=headers)
    assert old.status_code == 401 and error_code(old) == "UNAUTHORIZED"
