"""Databases written by the last release on ``databases`` upgrade in place.

The fixtures (``fixtures/*.sql``, made by ``make_fixtures.py`` with that
release's own servers) hold a user, a service account and its token, a
session, an image with two tags, an untagged manifest and a deleted tag, on
SQLite and on PostgreSQL. Each test loads them, opens them with the current
metadata layer (migrate, schema version), then starts the current services
on them and reads and writes real rows through the HTTP APIs.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from services.auth.migrations import MIGRATION_LOCK as AUTH_LOCK
from services.auth.migrations import MIGRATIONS as AUTH_MIGRATIONS
from services.registry.metadata.migrations import MIGRATION_LOCK as REGISTRY_LOCK
from services.registry.metadata.migrations import MIGRATIONS as REGISTRY_MIGRATIONS
from services.registry.storage.paths import blob_path
from shared.database import MetadataDB, Migration, sqlite_url
from shared.names import parse_digest
from tests.conftest import Stack, build_stack, fresh_pg_database

FIXTURES = Path(__file__).parent / "fixtures"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())
REPO = "olduser/app"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def load_pg(url: str, script: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            await conn.execute(script)  # simple protocol: the whole dump at once
        finally:
            await conn.close()

    asyncio.run(run())


@pytest.fixture
def second_pg_database() -> Iterator[str]:
    """Another fresh database beside `pg_database` (the two services never share one)."""
    with fresh_pg_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def old_release(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, str]]:
    """The dialect and the database URLs of both services, loaded from the fixtures."""
    dialect: str = request.param
    data = tmp_path / "data"
    data.mkdir()
    urls: dict[str, str] = {}
    if dialect == "sqlite":
        for service in ("auth", "registry"):
            path = data / f"{service}.db"
            with sqlite3.connect(path) as conn:
                conn.executescript((FIXTURES / f"{service}-sqlite.sql").read_text())
            conn.close()
            urls[service] = sqlite_url(path)
    else:
        urls["registry"] = request.getfixturevalue("pg_database")
        urls["auth"] = request.getfixturevalue("second_pg_database")
        for service in ("auth", "registry"):
            load_pg(urls[service], (FIXTURES / f"{service}-postgresql.sql").read_text())
    # Blob bytes are fixed by the fixture maker: put them back in storage.
    for text in EXPECTED["contents"].values():
        target = data / "storage" / blob_path(parse_digest(sha256(text.encode())))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(text.encode())
    return dialect, urls


def open_and_migrate(url: str, migrations: list[Migration], lock: str) -> tuple[list[int], int]:
    async def run() -> tuple[list[int], int]:
        db = MetadataDB(url)
        await db.connect()
        try:
            applied = await db.migrate(migrations, lock)
            return applied, await db.schema_version()
        finally:
            await db.disconnect()

    return asyncio.run(run())


def start(tmp_path: Path, urls: dict[str, str], dialect: str) -> Stack:
    env = {}
    if dialect == "postgresql":
        env = {
            "ECLOUD_AUTH_DATABASE_URL": urls["auth"],
            "ECLOUD_REGISTRY_DATABASE_URL": urls["registry"],
        }
    stack = build_stack(tmp_path, env)
    stack.passwords["olduser"] = EXPECTED["password"]
    return stack


def test_old_databases_upgrade_and_serve(
    old_release: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    dialect, urls = old_release
    expected = EXPECTED[dialect]
    manifests = expected["manifests"]

    # The metadata layer opens them; the schema is current (nothing new to apply
    # today: any migration added later applies here on top of the old rows).
    for url, migrations, lock, old_version in (
        (urls["auth"], AUTH_MIGRATIONS, AUTH_LOCK, 2),
        (urls["registry"], REGISTRY_MIGRATIONS, REGISTRY_LOCK, 4),
    ):
        applied, version = open_and_migrate(url, migrations, lock)
        assert applied == [m.version for m in migrations if m.version > old_version]
        assert version == migrations[-1].version

    stack = start(tmp_path, urls, dialect)
    try:
        # Auth: the old password hash, the old service-account token, a new login.
        token = stack.token("olduser", f"repository:{REPO}:pull,push,delete")
        claims = jwt.decode(token, options={"verify_signature": False})
        assert claims["sub"] == expected["session"]["user_id"]
        sa = httpx.get(
            stack.auth_url + "/v2/token",
            params={"service": "registry", "scope": f"repository:{REPO}:pull,push,delete"},
            auth=("olduser", expected["sa_token"]),
            timeout=30,
        )
        assert sa.status_code == 200, sa.text
        access = jwt.decode(sa.json()["token"], options={"verify_signature": False})["access"]
        assert sorted(access[0]["actions"]) == ["pull", "push"]
        session = {"Authorization": f"Bearer {stack.session('olduser')}"}
        accounts = httpx.get(stack.auth_url + "/api/service-accounts", headers=session, timeout=30)
        assert [a["name"] for a in accounts.json()["service_accounts"]] == ["ci"]
        created = httpx.post(
            stack.auth_url + "/api/service-accounts",
            headers=session,
            json={"name": "after-upgrade", "scopes": ["storage.me.registry=read"]},
            timeout=30,
        )
        assert created.status_code == 201, created.text

        # Registry: the old rows read as before.
        with httpx.Client(
            base_url=stack.registry_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as c:
            assert c.get(f"/v2/{REPO}/tags/list").json()["tags"] == ["v1", "v2"]
            for ref, digest in (
                ("v1", manifests["v1"]),
                ("v2", manifests["v2"]),
                (manifests["untagged"], manifests["untagged"]),
            ):
                r = c.get(f"/v2/{REPO}/manifests/{ref}", headers={"Accept": OCI_MANIFEST})
                assert r.status_code == 200, r.text
                assert r.headers["Docker-Content-Digest"] == digest == sha256(r.content)
            assert c.get(f"/v2/{REPO}/manifests/{manifests['old']}").status_code == 404
            for text in EXPECTED["contents"].values():
                r = c.get(f"/v2/{REPO}/blobs/{sha256(text.encode())}")
                assert r.status_code == 200 and r.content == text.encode()

            # ... and take new writes: a new blob, a new tag, a tag moved.
            layer = b"layer three, pushed after the upgrade\n"
            r = c.post(
                f"/v2/{REPO}/blobs/uploads/", params={"digest": sha256(layer)}, content=layer
            )
            assert r.status_code == 201, r.text
            v2 = json.loads(
                c.get(f"/v2/{REPO}/manifests/v2", headers={"Accept": OCI_MANIFEST}).content
            )
            v2["layers"].append(
                {
                    "mediaType": v2["layers"][0]["mediaType"],
                    "digest": sha256(layer),
                    "size": len(layer),
                }
            )
            body = json.dumps(v2).encode()
            headers = {"Content-Type": OCI_MANIFEST}
            assert (
                c.put(f"/v2/{REPO}/manifests/v3", content=body, headers=headers).status_code == 201
            )
            assert (
                c.put(f"/v2/{REPO}/manifests/v1", content=body, headers=headers).status_code == 201
            )
            assert c.get(f"/v2/{REPO}/tags/list").json()["tags"] == ["v1", "v2", "v3"]
            r = c.get(f"/v2/{REPO}/manifests/v1", headers={"Accept": OCI_MANIFEST})
            assert r.headers["Docker-Content-Digest"] == sha256(body)

        dashboard = httpx.get(stack.registry_url + "/api/repos", headers=session, timeout=30)
        assert dashboard.status_code == 200, dashboard.text
        [summary] = dashboard.json()["repositories"]
        assert summary["name"] == REPO and summary["tag_count"] == 3

        # The collector runs over old and new rows alike and keeps every referenced byte.
        out = stack.cli("ecloud-registry", "gc", "--grace", "0")
        assert "deleted" in out
        with httpx.Client(
            base_url=stack.registry_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as c:
            for ref in ("v1", "v2", "v3"):
                r = c.get(f"/v2/{REPO}/manifests/{ref}", headers={"Accept": OCI_MANIFEST})
                assert r.status_code == 200
                for layer_ref in json.loads(r.content)["layers"]:
                    assert c.head(f"/v2/{REPO}/blobs/{layer_ref['digest']}").status_code == 200
    finally:
        stack.stop()
