"""Make the upgrade fixtures: databases written by an older release, dumped as SQL.

Run from a checkout of the release whose databases the current code must
upgrade (its own venv, its own `tests.conftest`), e.g. for the last release
on ``databases``::

    git worktree add /tmp/old <commit> && cd /tmp/old && python3 -m venv .venv
    .venv/bin/pip install -e . && .venv/bin/python <this checkout>/tests/upgrade/make_fixtures.py \\
        --out <this checkout>/tests/upgrade/fixtures

It starts that release's auth service and registry (on SQLite, then on the
PostgreSQL on 127.0.0.1:5432), makes a user, a service account with a token,
a session, pushes an image with two tags, an untagged manifest, deletes a
tag, and dumps both databases (``iterdump`` / ``pg_dump --inserts``). Blob
contents are fixed bytes (``CONTENTS`` below), so the test rewrites them
into storage instead of shipping the files. What the test needs to know
(password, token, digests) goes to ``expected.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import secrets
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path.cwd()))

import tests.conftest
from tests.conftest import PG_DSN, build_stack

tests.conftest.wait_healthy.__defaults__ = (120,)  # a loaded machine starts slowly

PASSWORD = "old-release-pass-1"
CONTENTS = {
    "config": b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}',
    "layer1": b"layer one, pushed by the old release\n",
    "layer2": b"layer two, pushed by the old release\n",
}


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def manifest(layers: list[str]) -> bytes:
    doc = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha256(CONTENTS["config"]),
            "size": len(CONTENTS["config"]),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": sha256(CONTENTS[name]),
                "size": len(CONTENTS[name]),
            }
            for name in layers
        ],
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def populate(extra_env: dict[str, str], root: Path) -> dict[str, object]:
    stack = build_stack(root, extra_env)
    try:
        stack.cli(
            "ecloud-auth",
            "users",
            "create",
            "olduser",
            "--password-stdin",
            "--admin",
            stdin=PASSWORD + "\n",
        )
        stack.passwords["olduser"] = PASSWORD
        session = stack.session("olduser")
        auth = {"Authorization": f"Bearer {session}"}
        sa = httpx.post(
            stack.auth_url + "/api/service-accounts",
            headers=auth,
            timeout=10,
            json={"name": "ci", "scopes": ["storage.me.registry=read,create"]},
        )
        sa.raise_for_status()
        tok = httpx.post(
            f"{stack.auth_url}/api/service-accounts/{sa.json()['id']}/tokens",
            headers=auth,
            json={"name": "ci-token", "expires_in": "never"},
            timeout=10,
        )
        tok.raise_for_status()
        sa_token = tok.json()["token"]
        repo = "olduser/app"
        token = stack.token("olduser", f"repository:{repo}:pull,push,delete")
        with httpx.Client(
            base_url=stack.registry_url, timeout=10, headers={"Authorization": f"Bearer {token}"}
        ) as c:
            for data in CONTENTS.values():
                r = c.post(
                    f"/v2/{repo}/blobs/uploads/", params={"digest": sha256(data)}, content=data
                )
                assert r.status_code == 201, r.text
            pushed = {}
            for tag, layers in (
                ("v1", ["layer1"]),
                ("v2", ["layer1", "layer2"]),
                ("old", ["layer2"]),
                (None, ["layer2", "layer1"]),
            ):
                body = manifest(layers)
                ref = tag or sha256(body)
                r = c.put(
                    f"/v2/{repo}/manifests/{ref}",
                    content=body,
                    headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
                )
                assert r.status_code == 201, r.text
                pushed[tag or "untagged"] = sha256(body)
            r = c.delete(f"/v2/{repo}/manifests/{pushed['old']}")
            assert r.status_code == 202, r.text
        user_id = httpx.get(stack.auth_url + "/api/session", headers=auth, timeout=10).json()
        return {"sa_token": sa_token, "manifests": pushed, "session": user_id}
    finally:
        stack.stop()


def pg_dump(url: str, out: Path) -> None:
    text = subprocess.run(
        ["pg_dump", "--inserts", "--no-owner", "--no-privileges", "--no-comments", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    # Lines psql understands and a plain script runner does not.
    lines = [ln for ln in text.splitlines() if not ln.startswith("\\")]
    out.write_text("\n".join(lines) + "\n")


async def pg(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_DSN + "/postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    out: Path = parser.parse_args().out
    expected: dict[str, object] = {
        "password": PASSWORD,
        "contents": {k: v.decode() for k, v in CONTENTS.items()},
    }
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        root = Path(tmp) / "sqlite"
        expected["sqlite"] = populate({}, root)
        for name in ("auth", "registry"):
            with sqlite3.connect(root / "data" / f"{name}.db") as conn:
                dump = "\n".join(conn.iterdump())
            (out / f"{name}-sqlite.sql").write_text(dump + "\n")
        names = {n: f"ecloud_fixture_{n}_{secrets.token_hex(4)}" for n in ("auth", "registry")}
        for name in names.values():
            asyncio.run(pg(f'CREATE DATABASE "{name}"'))
        try:
            env = {
                "ECLOUD_AUTH_DATABASE_URL": f"{PG_DSN}/{names['auth']}",
                "ECLOUD_REGISTRY_DATABASE_URL": f"{PG_DSN}/{names['registry']}",
            }
            expected["postgresql"] = populate(env, Path(tmp) / "pg")
            for key, name in names.items():
                pg_dump(f"{PG_DSN}/{name}", out / f"{key}-postgresql.sql")
        finally:
            for name in names.values():
                asyncio.run(pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    (out / "expected.json").write_text(json.dumps(expected, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
