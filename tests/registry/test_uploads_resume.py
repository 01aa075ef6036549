"""An upload survives a killed registry: no partial blob appears, and the upload resumes."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator

import httpx

from tests.conftest import Stack
from tests.registry.conftest import sha256


def test_killed_mid_patch_then_resumed(
    registry_db: str | None, make_stack: Callable[..., Stack]
) -> None:
    stack = make_stack({"ECLOUD_REGISTRY_DATABASE_URL": registry_db} if registry_db else None)
    user, _ = stack.create_user()
    name = f"{user}/resume"
    headers = {"Authorization": f"Bearer {stack.token(user, f'repository:{name}:pull,push')}"}
    data = os.urandom(6 * 1024 * 1024)
    first = 2 * 1024 * 1024 + 123
    digest = sha256(data)
    hexpart = digest.split(":")[1]
    storage = stack.root / "data/storage"

    with httpx.Client(base_url=stack.registry_url, headers=headers, timeout=30) as c:
        location = c.post(f"/v2/{name}/blobs/uploads/").headers["location"]
        upload_id = location.rsplit("/", 1)[1]
        r = c.patch(location, content=data[:first])
        assert r.status_code == 202 and r.headers["range"] == f"0-{first - 1}"

    # A second PATCH sends part of its body, then the registry dies under it.
    sent_enough = threading.Event()
    release = threading.Event()

    def slow_body() -> Iterator[bytes]:
        yield data[first : first + 3 * 1024 * 1024]
        sent_enough.set()
        release.wait(20)
        yield data[first + 3 * 1024 * 1024 :]

    def doomed_patch() -> None:
        try:
            httpx.patch(
                stack.registry_url + location, content=slow_body(), headers=headers, timeout=30
            )
        except httpx.HTTPError:
            pass

    thread = threading.Thread(target=doomed_patch)
    thread.start()
    assert sent_enough.wait(20)
    partial = storage / "uploads" / upload_id / "data"
    deadline = time.monotonic() + 10
    while partial.stat().st_size <= first and time.monotonic() < deadline:
        time.sleep(0.02)
    assert partial.stat().st_size > first  # the server was writing the second chunk
    stack.registry.kill()
    release.set()
    thread.join(30)

    # Nothing is visible as a blob: not in storage, not over HTTP.
    assert not list((storage / "blobs").rglob(hexpart))
    stack.registry.start()
    with httpx.Client(base_url=stack.registry_url, headers=headers, timeout=30) as c:
        assert c.head(f"/v2/{name}/blobs/{digest}").status_code == 404
        status = c.get(location)
        assert status.status_code == 204
        # Only the acknowledged bytes count; the torn tail is dropped.
        assert status.headers["range"] == f"0-{first - 1}"
        r = c.patch(
            location,
            content=data[first:-100],
            headers={"Content-Range": f"{first}-{len(data) - 101}"},
        )
        assert r.status_code == 202, r.text
        r = c.put(location, params={"digest": digest}, content=data[-100:])
        assert r.status_code == 201, r.text
        assert c.get(f"/v2/{name}/blobs/{digest}").content == data
    assert not (storage / "uploads" / upload_id).exists()


def test_restart_between_patches(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    user, _ = stack.create_user()
    name = f"{user}/restart"
    headers = {"Authorization": f"Bearer {stack.token(user, f'repository:{name}:pull,push')}"}
    data = os.urandom(200_000)
    with httpx.Client(base_url=stack.registry_url, headers=headers, timeout=30) as c:
        location = c.post(f"/v2/{name}/blobs/uploads/").headers["location"]
        assert c.patch(location, content=data[:70_000]).status_code == 202
    stack.registry.stop()
    stack.registry.start()
    with httpx.Client(base_url=stack.registry_url, headers=headers, timeout=30) as c:
        assert c.get(location).headers["range"] == "0-69999"
        r = c.put(location, params={"digest": sha256(data)}, content=data[70_000:])
        assert r.status_code == 201, r.text
        assert c.get(f"/v2/{name}/blobs/{sha256(data)}").content == data
