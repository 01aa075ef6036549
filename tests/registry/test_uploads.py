"""Blob uploads over HTTP: monolithic, chunked, mount, cancel, and every bad path."""

from __future__ import annotations

import hashlib
import http.client
import os
import uuid

import httpx

from tests.conftest import Stack
from tests.registry.conftest import Account, error_code, registry_sql, sha256


def _start(client: httpx.Client, name: str) -> httpx.Response:
    r = client.post(f"/v2/{name}/blobs/uploads/")
    assert r.status_code == 202, r.text
    return r


def test_start_returns_location_range_and_uuid(repo: tuple[str, httpx.Client]) -> None:
    name, c = repo
    r = _start(c, name)
    upload_id = r.headers["docker-upload-uuid"]
    assert r.headers["location"] == f"/v2/{name}/blobs/uploads/{upload_id}"
    assert r.headers["range"] == "0-0"
    uuid.UUID(upload_id)
    status = c.get(r.headers["location"])
    assert status.status_code == 204
    assert status.headers["range"] == "0-0"
    assert status.headers["docker-upload-uuid"] == upload_id


def test_monolithic_post(repo: tuple[str, httpx.Client]) -> None:
    name, c = repo
    data = os.urandom(3000)
    digest = sha256(data)
    r = c.post(f"/v2/{name}/blobs/uploads/", params={"digest": digest}, content=data)
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"/v2/{name}/blobs/{digest}"
    assert r.headers["docker-content-digest"] == digest
    assert c.get(f"/v2/{name}/blobs/{digest}").content == data


def test_post_without_trailing_slash(repo: tuple[str, httpx.Client]) -> None:
    name, c = repo
    r = c.post(f"/v2/{name}/blobs/uploads")
    assert r.status_code == 202
    assert r.headers["docker-upload-uuid"]


def test_chunked_upload_with_content_range(repo: tuple[str, httpx.Client]) -> None:
    name, c = repo
    data = os.urandom(25_000)
    location = _start(c, name).headers["location"]
    r = c.patch(location, content=data[:10_000], headers={"Content-Range": "0-9999"})
    assert r.status_code == 202, r.text
    assert r.headers["range"] == "0-9999"
    assert r.headers["location"] == location
    r = c.patch(
        r.headers["location"], content=data[10_000:20_000], headers={"Content-Range": "10000-19999"}
    )
    assert r.status_code == 202
    assert r.headers["range"] == "0-19999"
    status = c.get(location)
    assert status.status_code == 204 and status.headers["range"] == "0-19999"
    r = c.put(location, params={"digest": sha256(data)}, content=data[20_000:])
    assert r.status_code == 201, r.text
    assert r.headers["docker-content-digest"] == sha256(data)
    assert c.get(f"/v2/{name}/blobs/{sha256(data)}").content == data
    # The upload is finished: its id is gone.
    assert error_code(c.get(location)) == "BLOB_UPLOAD_UNKNOWN"


def test_patch_without_content_range_streams_whole_body(repo: tuple[str, httpx.Client]) -> None:
    name, c = repo
    data = os.urandom(3 * 1024 * 1024 + 17)

    def body():  # chunked transfer: no Content-Length either
        for i in range(0, len(data), 65536):
            yield data[i : i + 65536]

    location = _start(c, name).headers["location"]
    r = c.patch(location, content=body())
    assert r.status_code == 202, r.text
    assert r.headers["range"] == f"0-{len(data) - 1}"
    r = c.put(location, params={"digest": sha256(data)})
    assert r.status_code == 201
    got = c.get(f"/v2/{name}/blobs/{sha256(data)}")
    assert hashlib.sha256(got.content).hexdigest() == sha256(data).split(":")[1]


def test_sha512_digest(repo: tuple[str, httpx.Client]) -> None:
    name, c = repo
    data = os.urandom(5000)
    digest = "sha512:" + hashlib.sha512(data).hexdigest()
    location = _start(c, name).headers["location"]
    assert c.patch(location, content=data[:100]).status_code == 202
    r = c.put(location, params={"digest": digest}, content=data[100:])
    assert r.status_code == 201, r.text
    assert r.headers["docker-content-digest"] == digest
    assert c.get(f"/v2/{name}/blobs/{digest}").content == data


def test_empty_blob(repo: tuple[str, httpx.Client]) -> None:
    name, c = repo
    location = _start(c, name).headers["location"]
    r = c.put(location, params={"digest": sha256(b"")})
    assert r.status_code == 201, r.text
    head = c.head(f"/v2/{name}/blobs/{sha256(b'')}")
    assert head.status_code == 200 and head.headers["content-length"] == "0"


def test_out_of_order_and_overlapping_chunks_are_416(repo: tuple[str, httpx.Client]) -> None:
    name, c = repo
    location = _start(c, name).headers["location"]
    assert c.patch(location, content=b"a" * 10, headers={"Content-Range": "0-9"}).status_code == 202
    gap = c.patch(location, content=b"b" * 5, headers={"Content-Range": "15-19"})
    assert gap.status_code == 416
    assert error_code(gap) == "RANGE_INVALID"
    assert gap.headers["range"] == "0-9"
    assert gap.headers["location"] == location
    overlap = c.patch(location, content=b"c" * 5, headers={"Content-Range": "5-9"})
    assert overlap.status_code == 416 and overlap.headers["range"] == "0-9"
    # Nothing of the refused chunks was kept.
    r = c.put(location, params={"digest": sha256(b"a" * 10 + b"d")}, content=b"d")
    assert r.status_code == 201, r.text


def test_put_with_out_of_order_final_chunk_is_416(repo: tuple[str, httpx.Client]) -> None:
    name, c = repo
    location = _start(c, name).headers["location"]
    c.patch(location, content=b"0123")
    r = c.put(
        location,
        params={"digest": sha256(b"0123xy")},
        content=b"xy",
        headers={"Content-Range": "6-7"},
    )
    assert r.status_code == 416
    assert r.headers["range"] == "0-3"


def test_content_length_must_match_content_range(repo: tuple[str, httpx.Client]) -> None:
    name, c = repo
    location = _start(c, name).headers["location"]
    r = c.patch(location, content=b"abc", headers={"Content-Range": "0-9"})
    assert r.status_code == 400 and error_code(r) == "SIZE_INVALID"
    assert c.get(location).headers["range"] == "0-0"


def test_malformed_content_range(repo: tuple[str, httpx.Client]) -> None:
    name, c = repo
    location = _start(c, name).headers["location"]
    r = c.patch(location, content=b"abc", headers={"Content-Range": "zero-two"})
    assert r.status_code == 400 and error_code(r) == "BLOB_UPLOAD_INVALID"
    r = c.patch(location, content=b"abc", headers={"Content-Range": "5-2"})
    assert r.status_code == 416


def test_wrong_digest_at_put_stores_nothing(repo: tuple[str, httpx.Client], rstack: Stack) -> None:
    name, c = repo
    data = os.urandom(2000)
    wrong = sha256(b"something else " + data)
    location = _start(c, name).headers["location"]
    c.patch(location, content=data)
    r = c.put(location, params={"digest": wrong})
    assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID"
    for digest in (wrong, sha256(data)):
        assert c.head(f"/v2/{name}/blobs/{digest}").status_code == 404
        hexpart = digest.split(":")[1]
        assert not (rstack.root / "data/storage/blobs/sha256" / hexpart[:2] / hexpart).exists()
    # The failed upload is discarded, data and all.
    assert error_code(c.get(location)) == "BLOB_UPLOAD_UNKNOWN"
    assert not (rstack.root / "data/storage/uploads" / location.rsplit("/", 1)[1]).exists()


def test_wrong_digest_on_monolithic_post(repo: tuple[str, httpx.Client]) -> None:
    name, c = repo
    r = c.post(f"/v2/{name}/blobs/uploads/", params={"digest": sha256(b"x")}, content=b"y")
    assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID"
    assert c.head(f"/v2/{name}/blobs/{sha256(b'y')}").status_code == 404


def test_malformed_digests(repo: tuple[str, httpx.Client]) -> None:
    name, c = repo
    bad = [
        "sha256:xyz",
        "sha256:" + "A" * 64,
        "md5:" + "0" * 32,
        "sha256:" + "0" * 63,
        "sha512:" + "0" * 64,
        "nonsense",
    ]
    for value in bad:
        r = c.post(f"/v2/{name}/blobs/uploads/", params={"digest": value}, content=b"x")
        assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID", value
        location = _start(c, name).headers["location"]
        r = c.put(location, params={"digest": value}, content=b"x")
        assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID", value
    location = _start(c, name).headers["location"]
    r = c.put(location, content=b"x")
    assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID"


def test_unknown_upload_ids(repo: tuple[str, httpx.Client]) -> None:
    name, c = repo
    for upload_id in (str(uuid.uuid4()), "not-an-id", "...", "x" * 300):
        url = f"/v2/{name}/blobs/uploads/{upload_id}"
        for method in ("GET", "PATCH", "PUT", "DELETE"):
            params = {"digest": sha256(b"x")} if method == "PUT" else None
            r = c.request(method, url, params=params, content=b"x" if method != "GET" else None)
            assert r.status_code == 404, (method, upload_id, r.text)
            assert error_code(r) == "BLOB_UPLOAD_UNKNOWN"


def test_upload_id_of_another_repository(alice: Account) -> None:
    first, second = alice.repo(), alice.repo()
    with alice.client(first) as c1, alice.client(second) as c2:
        upload_id = _start(c1, first).headers["docker-upload-uuid"]
        _start(c2, second)
        url = f"/v2/{second}/blobs/uploads/{upload_id}"
        assert error_code(c2.get(url)) == "BLOB_UPLOAD_UNKNOWN"
        assert c2.patch(url, content=b"x").status_code == 404
        assert c2.put(url, params={"digest": sha256(b"")}).status_code == 404
        assert c2.delete(url).status_code == 404
        # Still alive in its own repository.
        assert c1.get(f"/v2/{first}/blobs/uploads/{upload_id}").status_code == 204


def test_cancel(repo: tuple[str, httpx.Client], rstack: Stack) -> None:
    name, c = repo
    location = _start(c, name).headers["location"]
    c.patch(location, content=b"partial")
    upload_id = location.rsplit("/", 1)[1]
    assert (rstack.root / "data/storage/uploads" / upload_id / "data").exists()
    assert c.delete(location).status_code == 204
    assert error_code(c.get(location)) == "BLOB_UPLOAD_UNKNOWN"
    assert not (rstack.root / "data/storage/uploads" / upload_id).exists()
    assert c.delete(location).status_code == 404


def test_cross_repository_mount(alice: Account) -> None:
    source, target = alice.repo(), alice.repo()
    digest = alice.push_blob(source, b"shared layer")
    token = alice.stack.token(
        alice.username, f"repository:{target}:pull,push", f"repository:{source}:pull"
    )
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=alice.stack.registry_url, headers=headers) as c:
        r = c.post(f"/v2/{target}/blobs/uploads/", params={"mount": digest, "from": source})
        assert r.status_code == 201, r.text
        assert r.headers["location"] == f"/v2/{target}/blobs/{digest}"
        assert r.headers["docker-content-digest"] == digest
        assert c.get(f"/v2/{target}/blobs/{digest}").content == b"shared layer"


def test_mount_falls_back_to_upload(alice: Account, bob: Account) -> None:
    source, target = alice.repo(), alice.repo()
    digest = alice.push_blob(source, b"layer for mount fallback")
    with alice.client(target) as c:  # no pull on `from`
        r = c.post(f"/v2/{target}/blobs/uploads/", params={"mount": digest, "from": source})
        assert r.status_code == 202
        assert r.headers["location"].startswith(f"/v2/{target}/blobs/uploads/")
        # Unknown digest in `from`, and a missing `from`.
        for params in ({"mount": sha256(b"nope"), "from": source}, {"mount": digest}):
            assert c.post(f"/v2/{target}/blobs/uploads/", params=params).status_code == 202
        assert c.head(f"/v2/{target}/blobs/{digest}").status_code == 404
    # Bob cannot mount alice's blob into his repository, whatever he asks for.
    bob_repo = bob.repo()
    token = bob.stack.token(
        bob.username, f"repository:{bob_repo}:pull,push", f"repository:{source}:pull"
    )
    with httpx.Client(
        base_url=bob.stack.registry_url, headers={"Authorization": f"Bearer {token}"}
    ) as c:
        r = c.post(f"/v2/{bob_repo}/blobs/uploads/", params={"mount": digest, "from": source})
        assert r.status_code == 202
        assert c.head(f"/v2/{bob_repo}/blobs/{digest}").status_code == 404


def test_concurrent_first_pushes_create_one_repository(alice: Account) -> None:
    import concurrent.futures

    name = alice.repo()
    token = alice.token(name)

    def push(i: int) -> int:
        r = httpx.post(
            f"{alice.stack.registry_url}/v2/{name}/blobs/uploads/",
            params={"digest": sha256(str(i).encode())},
            content=str(i).encode(),
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        return r.status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert set(pool.map(push, range(8))) == {201}
    with alice.client(name) as c:
        for i in range(8):
            assert c.head(f"/v2/{name}/blobs/{sha256(str(i).encode())}").status_code == 200


# --- authorization ---------------------------------------------------------


def _challenge(r: httpx.Response) -> str:
    assert r.status_code == 401, r.text
    assert error_code(r) == "UNAUTHORIZED"
    return r.headers["www-authenticate"]


def test_missing_token_gets_challenge_with_scope(alice: Account) -> None:
    name = alice.repo()
    r = httpx.post(f"{alice.stack.registry_url}/v2/{name}/blobs/uploads/")
    header = _challenge(r)
    assert f'scope="repository:{name}:pull,push"' in header
    assert f'realm="{alice.stack.auth_url}/v2/token"' in header
    assert "error=" not in header


def test_pull_only_token_cannot_push(alice: Account) -> None:
    name = alice.repo()
    with alice.client(name, "pull") as c:
        header = _challenge(c.post(f"/v2/{name}/blobs/uploads/"))
    assert f'scope="repository:{name}:pull,push"' in header
    assert 'error="insufficient_scope"' in header


def test_token_for_another_repository_cannot_push(alice: Account) -> None:
    name, other = alice.repo(), alice.repo()
    with alice.client(other) as c:
        header = _challenge(c.post(f"/v2/{name}/blobs/uploads/"))
    assert 'error="insufficient_scope"' in header


def test_another_users_repository_looks_like_no_access(alice: Account, bob: Account) -> None:
    name = alice.repo()
    digest = alice.push_blob(name, b"alice's secret layer")
    with alice.client(name) as c:
        location = _start(c, name).headers["location"]
    missing = alice.repo()
    # Bob asks for scopes on alice's names: the auth service grants nothing.
    with bob.client(name) as c:
        existing = c.post(f"/v2/{name}/blobs/uploads/")
        absent = c.post(f"/v2/{missing}/blobs/uploads/")
        assert _challenge(existing).replace(name, "X") == _challenge(absent).replace(missing, "X")
        assert c.patch(location, content=b"x").status_code == 401
        assert c.head(f"/v2/{name}/blobs/{digest}").status_code == 401
    # With his session token (full access to his own namespace only) likewise.
    session = bob.stack.session(bob.username)
    with httpx.Client(
        base_url=bob.stack.registry_url, headers={"Authorization": f"Bearer {session}"}
    ) as c:
        assert c.post(f"/v2/{name}/blobs/uploads/").status_code == 401
        assert c.get(location).status_code == 401
        assert c.get(f"/v2/{name}/blobs/{digest}").status_code == 401


def test_session_token_pushes_into_own_namespace(alice: Account) -> None:
    session = alice.stack.session(alice.username)
    name = alice.repo()
    with httpx.Client(
        base_url=alice.stack.registry_url, headers={"Authorization": f"Bearer {session}"}
    ) as c:
        r = c.post(f"/v2/{name}/blobs/uploads/", params={"digest": sha256(b"s")}, content=b"s")
        assert r.status_code == 201
        # A name without a namespace belongs to nobody.
        assert c.post("/v2/lonely/blobs/uploads/").status_code == 401


def test_invalid_token_is_401_invalid_token(alice: Account) -> None:
    name = alice.repo()
    r = httpx.post(
        f"{alice.stack.registry_url}/v2/{name}/blobs/uploads/",
        headers={"Authorization": "Bearer not.a.token"},
    )
    assert 'error="invalid_token"' in _challenge(r)


def _raw(stack: Stack, method: str, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", stack.registry.port, timeout=10)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_invalid_names_are_400_before_auth(alice: Account) -> None:
    names = [
        f"{alice.username}/..",
        f"{alice.username}/../{alice.username}/x",
        f"{alice.username}/UPPER",
        f"{alice.username}/" + "a" * 250,
        f"{alice.username}//x",
        f"{alice.username}/x-",
    ]
    for name in names:
        for method, suffix in (
            ("POST", "blobs/uploads/"),
            ("GET", f"blobs/{sha256(b'')}"),
            ("PATCH", f"blobs/uploads/{uuid.uuid4()}"),
        ):
            status, body = _raw(alice.stack, method, f"/v2/{name}/{suffix}")
            assert status == 400, (name, method, body)
            assert b'"NAME_INVALID"' in body


def test_owner_recheck_refuses_a_token_for_someone_elses_repository(alice: Account) -> None:
    """A repository recorded with another owner (say, a reused username) refuses the token."""
    name = alice.repo()
    digest = alice.push_blob(name, b"owned by the first holder of the name")
    registry_sql(
        alice.stack, "UPDATE repositories SET owner_id = ? WHERE name = ?", "usr_gone", name
    )
    with alice.client(name, "pull,push,delete") as c:
        for method, path in (
            ("HEAD", f"/v2/{name}/blobs/{digest}"),
            ("GET", f"/v2/{name}/blobs/{digest}"),
            ("DELETE", f"/v2/{name}/blobs/{digest}"),
            ("POST", f"/v2/{name}/blobs/uploads/"),
        ):
            r = c.request(method, path)
            assert r.status_code == 401, (method, r.text)
            assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
