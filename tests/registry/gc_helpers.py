"""Helpers for the garbage collection tests: a GC-tuned stack, raw DB reads, disk views.

The stack's periodic sweep is off unless a test asks for it; sweeps run
through the real ``ecloud-registry gc`` command with the stack's settings.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import BIN, Stack
from tests.registry.manifest_helpers import Repo

TABLES = {
    "blobs": "digest",
    "repository_blobs": "repo_id, digest",
    "manifests": "repo_id, digest",
    "manifest_blobs": "repo_id, manifest_digest, blob_digest",
    "manifest_children": "repo_id, parent_digest, child_digest",
    "tags": "repo_id, name",
    "uploads": "id",
    "manifest_review_queue": "repo_id, digest",
    "blob_review_queue": "digest",
    "gc_lease": "name",
}


def gc_stack(make_stack: Callable[..., Stack], db_url: str | None, **settings: str | int) -> Stack:
    env = {"ECLOUD_GC_INTERVAL": "0", "ECLOUD_GC_GRACE": "0"}
    env.update({f"ECLOUD_GC_{k.upper()}": str(v) for k, v in settings.items()})
    if db_url:
        env["ECLOUD_REGISTRY_DATABASE_URL"] = db_url
    return make_stack(env)


def run_gc(
    stack: Stack, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``ecloud-registry gc`` against `stack`, as an operator would run it."""
    return subprocess.run(
        [str(BIN / "ecloud-registry"), "gc", *args],
        env={**stack.env, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def gc_ok(stack: Stack, *args: str) -> str:
    result = run_gc(stack, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def query(stack: Stack, sql: str) -> list[tuple[Any, ...]]:
    """Rows of `sql` from the stack's registry database (SQLite file or PostgreSQL)."""
    url = stack.env.get("ECLOUD_REGISTRY_DATABASE_URL")
    if not url:
        path = stack.root / "data" / "registry.db"
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            return [tuple(r) for r in conn.execute(sql).fetchall()]
    import asyncpg

    async def run() -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(url)
        try:
            return [tuple(r) for r in await conn.fetch(sql)]
        finally:
            await conn.close()

    return asyncio.run(run())


def execute(stack: Stack, sql: str) -> None:
    """Run one statement on the stack's registry database (to age rows, take a lease)."""
    url = stack.env.get("ECLOUD_REGISTRY_DATABASE_URL")
    if not url:
        with sqlite3.connect(stack.root / "data" / "registry.db", timeout=30) as conn:
            conn.execute(sql)
        return
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def db_snapshot(stack: Stack) -> dict[str, list[tuple[Any, ...]]]:
    return {t: query(stack, f"SELECT * FROM {t} ORDER BY {k}") for t, k in TABLES.items()}  # noqa: S608


def storage_root(stack: Stack) -> Path:
    return stack.root / "data" / "storage"


def blob_file(stack: Stack, digest: str) -> Path:
    algorithm, hexpart = digest.split(":")
    return storage_root(stack) / "blobs" / algorithm / hexpart[:2] / hexpart / "data"


def disk_snapshot(stack: Stack) -> dict[str, tuple[int, float]]:
    root = storage_root(stack)
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime)
        for p in sorted(root.rglob("*"))
    }


def stored_digests(stack: Stack) -> set[str]:
    blobs = storage_root(stack) / "blobs"
    return {f"{p.parent.parent.parent.name}:{p.parent.name}" for p in blobs.rglob("data")}


def assert_consistent(stack: Stack, complete: bool = True) -> None:
    """Every row needing bytes has them; after a full sweep (`complete`), every file its row."""
    on_disk = stored_digests(stack)
    rows = {r[0] for r in query(stack, "SELECT digest FROM blobs")}
    linked = {r[0] for r in query(stack, "SELECT digest FROM repository_blobs")}
    referenced = {r[0] for r in query(stack, "SELECT blob_digest FROM manifest_blobs")}
    assert linked <= rows and referenced <= rows
    assert linked | referenced <= on_disk, sorted((linked | referenced) - on_disk)
    if complete:
        assert rows == on_disk, (sorted(rows - on_disk), sorted(on_disk - rows))
    dangling_tags = query(
        stack,
        "SELECT t.name FROM tags t LEFT JOIN manifests m"
        " ON m.repo_id = t.repo_id AND m.digest = t.manifest_digest WHERE m.digest IS NULL",
    )
    assert dangling_tags == []
    upload_ids = {r[0] for r in query(stack, "SELECT id FROM uploads")}
    upload_dirs = storage_root(stack) / "uploads"
    leftovers = {p.name for p in upload_dirs.iterdir()} if upload_dirs.exists() else set()
    assert leftovers <= upload_ids


def push_image(repo: Repo, tag: str | None, layers: list[bytes]) -> tuple[str, bytes]:
    """Push config + `layers` and the manifest (by tag, or by digest); (digest, manifest)."""
    manifest = repo.image(layers)
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    r = repo.put_manifest(tag or digest, manifest)
    assert r.status_code == 201, r.text
    return digest, manifest


def pull_and_verify(repo: Repo, reference: str) -> str:
    """GET the manifest and every blob it names; every digest must verify. Its digest."""
    r = repo.get_manifest(reference)
    assert r.status_code == 200, (reference, r.text)
    digest = "sha256:" + hashlib.sha256(r.content).hexdigest()
    assert r.headers["docker-content-digest"] == digest
    doc = json.loads(r.content)
    for descriptor in [doc["config"], *doc["layers"]]:
        blob = repo.request("GET", f"blobs/{descriptor['digest']}")
        assert blob.status_code == 200, (descriptor, blob.text)
        assert "sha256:" + hashlib.sha256(blob.content).hexdigest() == descriptor["digest"]
        assert len(blob.content) == descriptor["size"]
    return digest


def blobs_of(manifest: bytes) -> list[str]:
    doc = json.loads(manifest)
    return [doc["config"]["digest"], *[d["digest"] for d in doc["layers"]]]


def metrics(stack: Stack) -> str:
    return httpx.get(stack.registry_url + "/metrics", timeout=10).text


def age(path: Path, seconds: float) -> None:
    """Make `path` look `seconds` old."""
    past = path.stat().st_mtime - seconds
    os.utime(path, (past, past))
