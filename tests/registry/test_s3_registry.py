"""The registry on S3 storage (moto in server mode): push, resume across a restart,
manifests, ranged pulls and mounts, with every byte checked; a backend that refuses
us or cannot be reached is a 503 UNAVAILABLE, never a 500 or a leaked secret."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.conftest import Stack
from tests.registry.manifest_helpers import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    canonical,
    descriptor,
    digest_of,
)
from tests.registry.storage.s3_emulator import Emulator, start_emulator

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    emulator = start_emulator(tmp_path_factory.mktemp("moto"))
    yield emulator
    emulator.stop()


def bucket_keys(emulator: Emulator, bucket: str) -> list[str]:
    listing = emulator.client().list_objects_v2(Bucket=bucket)
    return sorted(o["Key"] for o in listing.get("Contents", []))


def test_push_resume_pull_and_mount_on_s3(
    emulator: Emulator, make_stack: Callable[..., Stack]
) -> None:
    bucket = emulator.create_bucket()
    stack = make_stack(emulator.env(bucket, prefix="registry"))
    user, _ = stack.create_user()
    app, copy = f"{user}/app", f"{user}/copy"
    token = stack.token(user, f"repository:{app}:pull,push", f"repository:{copy}:pull,push")
    headers = {"Authorization": f"Bearer {token}"}
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    layer = os.urandom(9 * MiB + 321)  # composed from a server-side copied part and a tail
    first = 6 * MiB

    with httpx.Client(base_url=stack.registry_url, headers=headers, timeout=60) as c:
        # Monolithic upload.
        r = c.post(
            f"/v2/{app}/blobs/uploads/", params={"digest": digest_of(config)}, content=config
        )
        assert r.status_code == 201, r.text
        # Chunked upload, with the registry restarted between the two PATCHes.
        location = c.post(f"/v2/{app}/blobs/uploads/").headers["location"]
        r = c.patch(
            location,
            content=layer[:first],
            headers={"Content-Range": f"0-{first - 1}", "Content-Type": "application/octet-stream"},
        )
        assert r.status_code == 202 and r.headers["range"] == f"0-{first - 1}", r.text
        upload_id = location.rstrip("/").rsplit("/", 1)[1]
        assert any(
            f"registry/uploads/{upload_id}/data~seg/" in k for k in bucket_keys(emulator, bucket)
        )

    stack.registry.stop()
    stack.registry.start()

    with httpx.Client(base_url=stack.registry_url, headers=headers, timeout=60) as c:
        r = c.get(location)
        assert r.status_code == 204 and r.headers["range"] == f"0-{first - 1}"
        r = c.patch(
            location,
            content=layer[first:],
            headers={
                "Content-Range": f"{first}-{len(layer) - 1}",
                "Content-Type": "application/octet-stream",
            },
        )
        assert r.status_code == 202, r.text
        r = c.put(location, params={"digest": digest_of(layer)})
        assert r.status_code == 201, r.text

        manifest = canonical(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": descriptor(OCI_CONFIG, config),
                "layers": [descriptor(OCI_LAYER, layer)],
            }
        )
        r = c.put(
            f"/v2/{app}/manifests/v1", content=manifest, headers={"Content-Type": OCI_MANIFEST}
        )
        assert r.status_code == 201, r.text
        r = c.get(f"/v2/{app}/manifests/{digest_of(manifest)}", headers={"Accept": OCI_MANIFEST})
        assert r.status_code == 200 and r.content == manifest

        # Pull by digest: whole, and a range across the composed parts.
        r = c.get(f"/v2/{app}/blobs/{digest_of(layer)}")
        assert r.status_code == 200 and r.content == layer
        lo, hi = first - 1000, first + 999
        r = c.get(f"/v2/{app}/blobs/{digest_of(layer)}", headers={"Range": f"bytes={lo}-{hi}"})
        assert r.status_code == 206 and r.content == layer[lo : hi + 1]
        assert r.headers["content-range"] == f"bytes {lo}-{hi}/{len(layer)}"

        # Cross-repository mount: no bytes move, the copy reads the same blob.
        r = c.post(f"/v2/{copy}/blobs/uploads/", params={"mount": digest_of(layer), "from": app})
        assert r.status_code == 201, r.text
        r = c.get(f"/v2/{copy}/blobs/{digest_of(layer)}")
        assert r.status_code == 200 and r.content == layer

    keys = bucket_keys(emulator, bucket)
    layer_hex = digest_of(layer).split(":")[1]
    assert f"registry/blobs/sha256/{layer_hex[:2]}/{layer_hex}/data" in keys
    assert not [k for k in keys if k.startswith("registry/uploads/")]  # nothing left behind
    assert all(k.startswith("registry/") for k in keys)
    ready = httpx.get(stack.registry_url + "/readyz", timeout=30)
    assert ready.status_code == 200 and ready.json()["checks"]["storage"] is True


@pytest.mark.parametrize("failure", ["wrong secret", "missing bucket", "unreachable"])
def test_backend_failure_is_unavailable(
    emulator: Emulator, make_stack: Callable[..., Stack], failure: str
) -> None:
    env = emulator.env(emulator.create_bucket())
    secret = "not-the-secret-" + os.urandom(4).hex()
    if failure == "wrong secret":
        env["ECLOUD_S3_SECRET_ACCESS_KEY"] = secret
    elif failure == "missing bucket":
        env["ECLOUD_STORAGE_URL"] = "s3://no-such-bucket-anywhere/registry"
    else:
        env["ECLOUD_S3_ENDPOINT"] = "http://127.0.0.1:9"
    stack = make_stack(env)
    user, _ = stack.create_user()
    name = f"{user}/app"
    headers = {"Authorization": f"Bearer {stack.token(user, f'repository:{name}:pull,push')}"}
    data = b"layer bytes"
    with httpx.Client(base_url=stack.registry_url, headers=headers, timeout=60) as c:
        r = c.post(f"/v2/{name}/blobs/uploads/", params={"digest": digest_of(data)}, content=data)
        assert r.status_code == 503, r.text
        assert r.json()["errors"][0]["code"] == "UNAVAILABLE"
        location = c.post(f"/v2/{name}/blobs/uploads/").headers["location"]
        r = c.patch(location, content=data)
        assert r.status_code == 503 and r.json()["errors"][0]["code"] == "UNAVAILABLE"
        assert secret not in r.text and "Traceback" not in r.text
    ready = httpx.get(stack.registry_url + "/readyz", timeout=30)
    assert ready.status_code == 503 and ready.json()["checks"]["storage"] is False
    log = (stack.root / "registry.log").read_text()
    assert secret not in log
    assert emulator.secret_access_key not in log
    assert "Traceback" not in log


def test_garbage_collection_on_s3(emulator: Emulator, make_stack: Callable[..., Stack]) -> None:
    """The sweep works on prefixes as on folders: unique content goes, shared stays."""
    import secrets

    from tests.registry.gc_helpers import blobs_of, gc_ok, pull_and_verify, push_image
    from tests.registry.manifest_helpers import Repo

    bucket = emulator.create_bucket()
    env = emulator.env(bucket, prefix="registry")
    env.update({"ECLOUD_GC_INTERVAL": "0", "ECLOUD_GC_GRACE": "0"})
    stack = make_stack(env)
    repo = Repo.create(stack)
    shared = secrets.token_bytes(2048)
    one, one_body = push_image(repo, "one", [shared, secrets.token_bytes(4096)])
    two, two_body = push_image(repo, "two", [shared, secrets.token_bytes(3000)])
    only_one = set(blobs_of(one_body)) - set(blobs_of(two_body))
    assert repo.request("DELETE", "manifests/one").status_code == 202

    out = gc_ok(stack)
    assert f"deleted manifest {repo.name}@{one}" in out
    keys = bucket_keys(emulator, bucket)
    for digest in only_one:
        assert not [k for k in keys if digest.split(":")[1] in k], digest
    for digest in blobs_of(two_body):
        assert [k for k in keys if digest.split(":")[1] in k], digest
    assert pull_and_verify(repo, "two") == two
    assert "deleted 0 objects" in gc_ok(stack)


def test_registry_through_a_failing_s3_and_redirects(
    emulator: Emulator, make_stack: Callable[..., Stack]
) -> None:
    """Behind the fault-injecting proxy: a few 500s, SlowDowns and cut connections
    are retried away (push and pull succeed, every byte checked); faults that persist
    are a clean 503 UNAVAILABLE, or a cut download, never a 500 or wrong bytes. With
    ECLOUD_S3_REDIRECT the blob GET is a 307 to a presigned URL that expires."""
    from tests.registry.storage.fault_proxy import FaultProxy

    proxy = FaultProxy(emulator.endpoint).start()
    proxy.secret = (emulator.access_key_id, emulator.secret_access_key)
    try:
        env = emulator.env(emulator.create_bucket())
        env.update(
            {
                "ECLOUD_S3_ENDPOINT": proxy.endpoint,
                "ECLOUD_S3_RETRY_ATTEMPTS": "4",
                "ECLOUD_S3_RETRY_TIMEOUT": "20",
            }
        )
        stack = make_stack(env)
        user, _ = stack.create_user()
        name = f"{user}/app"
        token = stack.token(user, f"repository:{name}:pull,push")
        headers = {"Authorization": f"Bearer {token}"}
        config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
        layer = os.urandom(6 * MiB + 77)
        half = 3 * MiB
        with httpx.Client(base_url=stack.registry_url, headers=headers, timeout=120) as c:
            proxy.fail("500", 2, "PUT")
            proxy.fail("slowdown", 2, "HEAD")
            proxy.fail("cut", 1, "PUT")
            proxy.fail("slowdown", 1, "GET", "list-type")
            r = c.post(
                f"/v2/{name}/blobs/uploads/", params={"digest": digest_of(config)}, content=config
            )
            assert r.status_code == 201, r.text
            location = c.post(f"/v2/{name}/blobs/uploads/").headers["location"]
            for start, end in ((0, half), (half, len(layer))):
                r = c.patch(
                    location,
                    content=layer[start:end],
                    headers={"Content-Range": f"{start}-{end - 1}"},
                )
                assert r.status_code == 202, r.text
            proxy.fail("500", 1, "PUT", "blobs/sha256")
            r = c.put(location, params={"digest": digest_of(layer)})
            assert r.status_code == 201, r.text
            manifest = canonical(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": descriptor(OCI_CONFIG, config),
                    "layers": [descriptor(OCI_LAYER, layer)],
                }
            )
            r = c.put(
                f"/v2/{name}/manifests/v1", content=manifest, headers={"Content-Type": OCI_MANIFEST}
            )
            assert r.status_code == 201, r.text
            proxy.fail("cut", 2, "GET", "blobs/sha256")
            proxy.fail("500", 1, "GET", "blobs/sha256")
            r = c.get(f"/v2/{name}/blobs/{digest_of(layer)}")
            assert r.status_code == 200 and r.content == layer
            assert proxy.injected == {"500": 4, "slowdown": 3, "cut": 3}, proxy.injected

            # Faults that do not stop: 503 UNAVAILABLE, never a 500.
            proxy.clear()
            proxy.fail("500", 10**6)
            r = c.post(
                f"/v2/{name}/blobs/uploads/", params={"digest": digest_of(b"x")}, content=b"x"
            )
            assert r.status_code == 503 and r.json()["errors"][0]["code"] == "UNAVAILABLE"
            r = c.get(f"/v2/{name}/blobs/{digest_of(layer)}")
            assert r.status_code == 503 and r.json()["errors"][0]["code"] == "UNAVAILABLE"
            assert httpx.get(stack.registry_url + "/readyz", timeout=60).status_code == 503
            # A download cut again and again: the client sees a short body, never wrong bytes.
            proxy.clear()
            proxy.fail("cut", 10**6, "GET", "blobs/sha256")
            with pytest.raises(httpx.RemoteProtocolError):
                c.get(f"/v2/{name}/blobs/{digest_of(layer)}")
            proxy.clear()
            r = c.get(f"/v2/{name}/blobs/{digest_of(layer)}")
            assert r.status_code == 200 and r.content == layer

        # Redirects: the registry restarted with ECLOUD_S3_REDIRECT on.
        stack.registry.stop()
        stack.registry.env.update({"ECLOUD_S3_REDIRECT": "true", "ECLOUD_S3_REDIRECT_TTL": "2"})
        stack.registry.start()
        url = f"{stack.registry_url}/v2/{name}/blobs/{digest_of(layer)}"
        r = httpx.head(url, headers=headers)
        assert r.status_code == 200 and r.headers["content-length"] == str(len(layer))
        r = httpx.get(url, headers=headers)
        assert r.status_code == 307 and r.headers["docker-content-digest"] == digest_of(layer)
        presigned = r.headers["location"]
        assert presigned.startswith(proxy.endpoint) and "X-Amz-Signature=" in presigned
        r = httpx.get(url, headers=headers, follow_redirects=True, timeout=60)
        assert r.status_code == 200 and r.content == layer
        assert "authorization" not in r.request.headers  # the token never goes to S3
        r = httpx.get(url, headers={**headers, "Range": "bytes=10-19"}, follow_redirects=True)
        assert r.status_code == 206 and r.content == layer[10:20]
        time.sleep(3)
        r = httpx.get(presigned)
        assert r.status_code == 403 and b"Request has expired" in r.content
        log = (stack.root / "registry.log").read_text()
        assert emulator.secret_access_key not in log
    finally:
        proxy.stop()
