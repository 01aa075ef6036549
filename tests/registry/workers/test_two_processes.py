"""Two registry processes on one database and storage behave as one process.

Each request is sent to the process the test chooses: an upload continued
through the other process, two writes racing on one upload, a tag moved
through one and read through the other, and uploads finishing while a
garbage collection sweep runs in a third process.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import BIN, pg_admin
from tests.registry.conftest import error_code, sha256
from tests.registry.workers.conftest import Pair

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def upload_id(location: str) -> str:
    return location.rsplit("/", 1)[1].split("?", 1)[0]


def test_one_upload_continued_alternately_through_both(pair: Pair) -> None:
    name = pair.repo()
    a, b = pair.clients(name)
    data = os.urandom(3 * 1024 * 1024 + 17)
    cuts = [0, 1024 * 1024, 1024 * 1024 + 5, 2 * 1024 * 1024, len(data)]
    with a, b:
        location = a.post(f"/v2/{name}/blobs/uploads/").headers["location"]
        for i, (start, end) in enumerate(itertools.pairwise(cuts)):
            client = (a, b)[i % 2]
            r = client.patch(
                location,
                content=data[start:end],
                headers={"Content-Range": f"{start}-{end - 1}"},
            )
            assert r.status_code == 202, r.text
            assert r.headers["range"] == f"0-{end - 1}"
            # The other process sees the committed length at once.
            status = (b, a)[i % 2].get(location)
            assert status.status_code == 204 and status.headers["range"] == f"0-{end - 1}"
        r = b.put(location, params={"digest": sha256(data)})
        assert r.status_code == 201, r.text
        for client in (a, b):
            got = client.get(f"/v2/{name}/blobs/{sha256(data)}")
            assert got.status_code == 200 and got.content == data


def test_concurrent_patches_to_one_upload_one_fails_cleanly(pair: Pair) -> None:
    name = pair.repo()
    a, b = pair.clients(name)
    first = os.urandom(2 * 1024 * 1024)
    second = os.urandom(len(first))
    storage = pair.stack.root / "data/storage"
    with a, b:
        location = a.post(f"/v2/{name}/blobs/uploads/").headers["location"]
        partial = storage / "uploads" / upload_id(location) / "data"
        release = threading.Event()
        answers: dict[str, httpx.Response] = {}

        def slow() -> Iterator[bytes]:
            yield first[: 1024 * 1024 + 1]  # more than one write buffer: it reaches storage
            release.wait(120)
            yield first[1024 * 1024 + 1 :]

        def patch_a() -> None:
            answers["a"] = a.patch(
                location, content=slow(), headers={"Content-Range": f"0-{len(first) - 1}"}
            )

        thread = threading.Thread(target=patch_a)
        thread.start()
        try:
            deadline = time.monotonic() + 120
            while not (partial.exists() and partial.stat().st_size > 0):
                assert time.monotonic() < deadline, "the first PATCH never wrote"
                time.sleep(0.05)
            # Process A is writing this upload: B must refuse, not interleave.
            r = b.patch(location, content=second, headers={"Content-Range": f"0-{len(second) - 1}"})
            assert r.status_code == 400 and error_code(r) == "BLOB_UPLOAD_INVALID", r.text
        finally:
            release.set()
            thread.join(120)
        assert answers["a"].status_code == 202, answers["a"].text
        # A late copy of the losing request now is out of order: the spec's 416.
        r = b.patch(location, content=second, headers={"Content-Range": f"0-{len(second) - 1}"})
        assert r.status_code == 416 and error_code(r) == "RANGE_INVALID"
        assert r.headers["range"] == f"0-{len(first) - 1}"
        r = b.put(location, params={"digest": sha256(first)})
        assert r.status_code == 201, r.text
        assert a.get(f"/v2/{name}/blobs/{sha256(first)}").content == first


def _manifest(pair: Pair, client: httpx.Client, name: str, marker: bytes) -> bytes:
    config = b'{"marker":"' + marker + b'"}'
    r = client.post(f"/v2/{name}/blobs/uploads/", params={"digest": sha256(config)}, content=config)
    assert r.status_code == 201, r.text
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": sha256(config),
                "size": len(config),
            },
            "layers": [],
        }
    ).encode()


def test_tag_moved_through_one_is_read_through_the_other(pair: Pair) -> None:
    name = pair.repo()
    a, b = pair.clients(name)
    headers = {"Content-Type": OCI_MANIFEST}
    with a, b:
        for i in range(4):
            writer, reader = (a, b) if i % 2 == 0 else (b, a)
            body = _manifest(pair, writer, name, str(i).encode())
            assert (
                writer.put(
                    f"/v2/{name}/manifests/latest", content=body, headers=headers
                ).status_code
                == 201
            )
            got = reader.get(f"/v2/{name}/manifests/latest", headers={"Accept": OCI_MANIFEST})
            assert got.status_code == 200 and got.content == body
            assert reader.head(f"/v2/{name}/manifests/latest").headers[
                "docker-content-digest"
            ] == sha256(body)
        # Deleted through one: gone through the other right after.
        assert b.delete(f"/v2/{name}/manifests/{sha256(body)}").status_code == 202
        assert a.get(f"/v2/{name}/manifests/latest").status_code == 404
        assert a.get(f"/v2/{name}/tags/list").json()["tags"] == []


def _gc(pair: Pair, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(BIN / "ecloud-registry"), "gc", "--grace", "0"],
        env={**pair.stack.env, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_upload_being_written_survives_a_sweep_in_another_process(pair: Pair) -> None:
    name = pair.repo()
    a, b = pair.clients(name)
    data = os.urandom(2 * 1024 * 1024)
    storage = pair.stack.root / "data/storage"
    with a, b:
        location = a.post(f"/v2/{name}/blobs/uploads/").headers["location"]
        partial = storage / "uploads" / upload_id(location) / "data"
        release = threading.Event()
        answers: dict[str, httpx.Response] = {}

        def slow() -> Iterator[bytes]:
            yield data[: 1024 * 1024 + 1]
            release.wait(300)
            yield data[1024 * 1024 + 1 :]

        thread = threading.Thread(
            target=lambda: answers.update(a=a.patch(location, content=slow()))
        )
        thread.start()
        try:
            deadline = time.monotonic() + 120
            while not (partial.exists() and partial.stat().st_size > 0):
                assert time.monotonic() < deadline, "the PATCH never wrote"
                time.sleep(0.05)
            # Every upload is "abandoned" for this sweep, but this one is being written.
            sweep = _gc(pair, ECLOUD_GC_UPLOAD_MAX_AGE="0")
            out, _ = sweep.communicate(timeout=300)
            assert sweep.returncode in (0, 2), out  # 2: another sweep held the lease
            assert upload_id(location) not in out
        finally:
            release.set()
            thread.join(120)
        assert answers["a"].status_code == 202, answers["a"].text
        r = b.put(location, params={"digest": sha256(data)})
        assert r.status_code == 201, r.text
        assert a.get(f"/v2/{name}/blobs/{sha256(data)}").content == data


def _consistent(client: httpx.Client, name: str, data: bytes) -> bool:
    """A link never points at missing or partial bytes; True when the blob is linked."""
    head = client.head(f"/v2/{name}/blobs/{sha256(data)}")
    assert head.status_code in (200, 404)
    if head.status_code == 404:
        return False
    got = client.get(f"/v2/{name}/blobs/{sha256(data)}")
    assert got.status_code == 200 and got.content == data
    return True


def test_uploads_finishing_while_another_process_sweeps_keep_their_bytes(pair: Pair) -> None:
    """Content unlinked elsewhere (so the sweep removes its file) is uploaded again meanwhile.

    The sweep runs with no grace, so it may also remove the new links (no
    manifest references them): the invariant is that a link never points at
    missing bytes, whatever the interleaving, in either process.
    """
    old, new = pair.repo(), pair.repo()
    a_old, b_old = pair.clients(old)
    a_new, b_new = pair.clients(new)
    blobs = [os.urandom(64 * 1024) + bytes([i]) for i in range(6)]
    with a_old, b_old, a_new, b_new:
        for data in blobs:
            r = a_old.post(
                f"/v2/{old}/blobs/uploads/", params={"digest": sha256(data)}, content=data
            )
            assert r.status_code == 201
            assert b_old.delete(f"/v2/{old}/blobs/{sha256(data)}").status_code == 202
        # Half the uploads are started (not finished) before the sweep begins.
        locations = [
            (a_new, b_new)[i % 2].post(f"/v2/{new}/blobs/uploads/").headers["location"]
            for i in range(len(blobs))
        ]
        sweep = _gc(pair)
        for i, (data, location) in enumerate(zip(blobs, locations, strict=True)):
            client = (b_new, a_new)[i % 2]
            r = client.put(location, params={"digest": sha256(data)}, content=data)
            assert r.status_code == 201, r.text
        out, _ = sweep.communicate(timeout=300)
        assert sweep.returncode in (0, 2), out
        for data in blobs:
            linked = [_consistent(client, new, data) for client in (a_new, b_new)]
            assert linked[0] == linked[1]  # both processes see one state
        # Linked again after the race: the bytes are there, and stay for a manifest.
        for i, data in enumerate(blobs):
            client = (a_new, b_new)[i % 2]
            r = client.post(
                f"/v2/{new}/blobs/uploads/", params={"digest": sha256(data)}, content=data
            )
            assert r.status_code == 201, r.text
            assert _consistent((b_new, a_new)[i % 2], new, data)


# PostgreSQL only: a SQLite file has no server to restart.
@pytest.mark.parametrize("pair", ["postgresql"], indirect=True)
def test_processes_survive_their_database_connections_being_dropped(pair: Pair) -> None:
    """What a PostgreSQL restart does to the pools (and the upload lock connections)."""
    url = pair.stack.env["ECLOUD_REGISTRY_DATABASE_URL"]
    name = pair.repo()
    a, b = pair.clients(name)
    data = os.urandom(10_000)
    with a, b:
        location = a.post(f"/v2/{name}/blobs/uploads/").headers["location"]
        assert a.patch(location, content=data[:5000]).status_code == 202
        database = url.rsplit("/", 1)[1]
        drop = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'"
        pg_admin(drop.format(database) + " AND pid <> pg_backend_pid()")
        for client in (b, a):
            status = client.get(location)
            assert status.status_code == 204 and status.headers["range"] == "0-4999"
        assert b.patch(location, content=data[5000:]).status_code == 202
        assert a.put(location, params={"digest": sha256(data)}).status_code == 201
        assert b.get(f"/v2/{name}/blobs/{sha256(data)}").content == data
