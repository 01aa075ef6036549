"""Issue 11, item 9, on both services: private data files, security headers everywhere.

- Every file under the data folder (SQLite databases and their ``-wal``/``-shm``,
  blobs, upload files, the signing key, the webhook key) is 0600 and every
  folder 0700; a folder left by an older version is tightened (`tighten`).
- Every answer of both services, successes and errors alike (401, 404, 405,
  400, HEAD), carries ``X-Content-Type-Options: nosniff``, a
  Content-Security-Policy (the dashboard's own under ``/ui/``), ``X-Frame-Options``
  and ``Referrer-Policy``; every answer of the auth service and of the
  registry's ``/api/`` is ``Cache-Control: no-store`` (the public keys excepted).

Runs on the session-wide `stack` (SQLite): nothing here starts a server.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx

from shared.private_files import tighten
from shared.security_headers import API_CSP
from tests.conftest import Stack
from tests.registry.manifest_helpers import Repo


def test_tighten_repairs_what_an_older_version_left(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    db = folder / "auth.db"
    db.write_bytes(b"x")
    db.chmod(0o644)
    private = folder / "kept.pem"
    private.write_bytes(b"k")
    private.chmod(0o400)
    tighten(folder, db, private, folder / "missing-wal")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE(private.stat().st_mode) == 0o400  # never loosened


def test_every_data_file_is_private(stack: Stack) -> None:
    repo = Repo.create(stack, path="private-files")
    repo.push_blob(b"a layer nobody else may read")
    # An upload in progress: its temporary file is on disk too.
    r = repo.request("POST", "blobs/uploads/")
    assert r.status_code == 202, r.text
    r = httpx.patch(
        stack.registry_url + r.headers["location"],
        headers=repo.headers,
        content=b"half an upload",
        timeout=30,
    )
    assert r.status_code == 202, r.text
    stack.session(repo.user)  # a write to auth.db (its WAL)
    data = stack.root / "data"
    seen: dict[str, int] = {}
    for folder, _dirs, files in os.walk(data):
        for name in [folder, *(os.path.join(folder, f) for f in files)]:
            seen[os.path.relpath(name, data)] = stat.S_IMODE(os.lstat(name).st_mode)
    names = set(seen)
    for expected in ("auth.db", "registry.db", "signing-key.pem", "storage"):
        assert expected in names, sorted(names)
    assert any(n.endswith("-wal") for n in names), sorted(names)
    assert any(n.startswith("storage/") and seen[n] for n in names), sorted(names)
    loose = {n: oct(m) for n, m in seen.items() if m & 0o077}
    assert not loose, f"readable by other local users: {loose}"
    for name, mode in seen.items():
        if os.path.isdir(data / name):
            assert mode == 0o700, (name, oct(mode))


SECURITY = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


def _check(r: httpx.Response, *, no_store: bool, csp: str = API_CSP) -> None:
    where = f"{r.request.method} {r.request.url} -> {r.status_code}"
    for name, value in SECURITY.items():
        assert r.headers.get(name) == value, (where, name, dict(r.headers))
    assert r.headers.get("content-security-policy") == csp, (where, dict(r.headers))
    if no_store:
        assert r.headers.get("cache-control") == "no-store", (where, dict(r.headers))


def test_security_headers_on_every_answer(stack: Stack) -> None:
    repo = Repo.create(stack, path="headers")
    blob = repo.push_blob(b"headers layer")
    session = stack.session(repo.user)
    user_auth = {"Authorization": f"Bearer {session}"}
    password = stack.passwords[repo.user]
    auth, reg = stack.auth_url, stack.registry_url
    with httpx.Client(timeout=30) as c:
        auth_answers = [
            (c.get(f"{auth}/v2/token", params={"service": "registry"}), 200),
            (c.get(f"{auth}/v2/token", auth=(repo.user, password)), 200),
            (c.get(f"{auth}/v2/token", auth=(repo.user, "wrong")), 401),
            (c.post(f"{auth}/v2/token", data={"grant_type": "nope"}), 400),
            (c.post(f"{auth}/api/login", json={"username": repo.user, "password": password}), 200),
            (c.post(f"{auth}/api/login", content=b"[[[["), 400),
            (c.get(f"{auth}/api/session", headers=user_auth), 200),
            (c.get(f"{auth}/api/session"), 401),
            (c.get(f"{auth}/api/service-accounts", headers=user_auth), 200),
            (c.get(f"{auth}/api/service-accounts/sa_missing", headers=user_auth), 404),
            (c.get(f"{auth}/api/refresh-tokens", headers=user_auth), 200),
            (c.get(f"{auth}/admin/users", headers=user_auth), 403),
            (c.get(f"{auth}/internal/sessions/revoked"), 200),
            (c.get(f"{auth}/no/such/path"), 404),
            (c.delete(f"{auth}/api/login"), 405),
            (c.get(f"{auth}/healthz"), 200),
            (c.get(f"{auth}/metrics"), 200),
        ]
        for r, status in auth_answers:
            assert r.status_code == status, (r.request.url, r.status_code, r.text[:300])
            _check(r, no_store=True)
        jwks = c.get(f"{auth}/.well-known/jwks.json")
        _check(jwks, no_store=False)
        assert jwks.headers["cache-control"] == "public, max-age=60"

        api_answers = [
            (c.get(f"{reg}/api/repos", headers=user_auth), 200),
            (c.get(f"{reg}/api/repos"), 401),
            (c.get(f"{reg}/api/repos/{repo.name}", headers=user_auth), 200),
            (c.get(f"{reg}/api/repos/{repo.user}/missing", headers=user_auth), 404),
            (c.get(f"{reg}/api/repos/{repo.name}/tags", headers=user_auth), 200),
            (c.get(f"{reg}/api/webhooks", headers=user_auth), 200),
            (c.put(f"{reg}/api/repos"), 405),
        ]
        for r, status in api_answers:
            assert r.status_code == status, (r.request.url, r.status_code, r.text[:300])
            _check(r, no_store=True)
        v2_answers = [
            (c.get(f"{reg}/v2/"), 401),
            (c.head(f"{reg}/v2/"), 401),
            (c.get(f"{reg}/v2/", headers=repo.headers), 200),
            (c.get(repo.url(f"blobs/{blob['digest']}"), headers=repo.headers), 200),
            (c.head(repo.url(f"blobs/{blob['digest']}"), headers=repo.headers), 200),
            (c.get(repo.url("manifests/missing"), headers=repo.headers), 404),
            (c.get(repo.url("manifests/latest")), 401),
            (c.get(f"{reg}/v2/{repo.user}/a%00b/tags/list"), 400),
            (c.put(f"{reg}/v2/"), 405),
            (c.get(f"{reg}/no/such/path"), 404),
            (c.get(f"{reg}/healthz"), 200),
            (c.get(f"{reg}/metrics"), 200),
        ]
        for r, status in v2_answers:
            assert r.status_code == status, (r.request.url, r.status_code, r.text[:300])
            _check(r, no_store=False)
        # A blob, whatever bytes someone pushed, is never sniffed or rendered.
        blob_answer = v2_answers[3][0]
        assert blob_answer.content == b"headers layer"
        assert blob_answer.headers["cache-control"].startswith("private")
        # The dashboard keeps its own policy (scripts and styles from this origin).
        page = c.get(f"{reg}/ui/")
        assert page.status_code == 200
        for name, value in SECURITY.items():
            assert page.headers[name] == value
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["content-security-policy"].count("default-src") == 1
