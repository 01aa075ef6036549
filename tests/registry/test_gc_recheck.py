"""GC re-checks inside each deleting transaction, pinned deterministically (SQLite and PG).

A sweep reads its candidates first and deletes each in a transaction of
its own that re-checks, with fresh reads, every reason to keep it. Each
test here runs the real `Collector` (what ``ecloud-registry gc`` runs) on
the stack's database and storage, with a ``before_delete`` hook that
changes the registry through its HTTP API at exactly the moment between
the candidate read and that transaction: a blob pushed again, a manifest
pushed over a link, a manifest tagged again. The candidate must survive,
and the registry must still serve it. The service's own sweeper is off.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable

import pytest

from services.registry.gc import Collector, GCPolicy, SweepReport
from services.registry.metadata.gc_sweep import Candidate
from services.registry.settings import RegistrySettings
from services.registry.storage import open_storage
from shared.database import MetadataDB
from tests.conftest import Stack
from tests.registry.gc_helpers import (
    assert_consistent,
    blob_file,
    execute,
    gc_stack,
    pull_and_verify,
    query,
)
from tests.registry.manifest_helpers import Repo, digest_of

Hook = Callable[[str, Candidate], None]


def sweep(stack: Stack, hook: Hook) -> tuple[SweepReport, list[tuple[str, Candidate]]]:
    """One sweep of the real collector over `stack`, calling `hook` (in a thread: it
    makes blocking HTTP calls to the registry) before each deleting transaction."""
    settings = RegistrySettings.from_env(stack.env)
    seen: list[tuple[str, Candidate]] = []

    async def before_delete(kind: str, candidate: Candidate) -> None:
        seen.append((kind, candidate))
        await asyncio.to_thread(hook, kind, candidate)

    async def run() -> SweepReport:
        db = MetadataDB(settings.database_url)
        await db.connect()
        try:
            collector = Collector(
                db,
                open_storage(settings.storage_url, settings.s3),
                GCPolicy.from_settings(settings, grace=0),
                before_delete=before_delete,
            )
            return await collector.sweep()
        finally:
            await db.disconnect()

    return asyncio.run(run()), seen


def deleted(report: SweepReport, kind: str) -> list[str]:
    return [d.label for d in report.deletions if d.kind == kind]


@pytest.mark.parametrize("aged", [False, True], ids=["relinked", "relinked-and-aged"])
def test_a_blob_pushed_again_before_its_deletion_survives(
    make_stack: Callable[..., Stack], registry_db: str | None, aged: bool
) -> None:
    """Blob phase. `aged`: the re-link's fresh last_linked_at is set back, so the
    link alone must keep the blob (not its age)."""
    stack = gc_stack(make_stack, registry_db)
    repo = Repo.create(stack)
    data = secrets.token_bytes(3000)
    digest = repo.push_blob(data)["digest"]
    assert repo.request("DELETE", f"blobs/{digest}").status_code == 202
    other = repo.push_blob(secrets.token_bytes(100))["digest"]
    assert repo.request("DELETE", f"blobs/{other}").status_code == 202

    def hook(kind: str, candidate: Candidate) -> None:
        if kind == "blob" and candidate.key == (digest,):
            repo.push_blob(data)
            if aged:
                execute(stack, f"UPDATE blobs SET last_linked_at = 0 WHERE digest = '{digest}'")  # noqa: S608

    report, seen = sweep(stack, hook)
    assert ("blob", digest) in [(kind, c.key[0]) for kind, c in seen], "never a candidate"
    assert digest not in deleted(report, "blob")
    assert other in deleted(report, "blob"), "the sweep collected nothing: proves nothing"
    blob = repo.request("GET", f"blobs/{digest}")
    assert blob.status_code == 200 and blob.content == data
    assert blob_file(stack, digest).exists()
    assert_consistent(stack)


def test_a_link_referenced_by_a_manifest_pushed_before_its_deletion_survives(
    make_stack: Callable[..., Stack], registry_db: str | None
) -> None:
    """Link phase: the blobs were pushed, then (between the sweep's read of the
    link and its deletion) the manifest that uses them."""
    stack = gc_stack(make_stack, registry_db)
    repo = Repo.create(stack)
    manifest = repo.image([secrets.token_bytes(2000)])
    stray = repo.push_blob(secrets.token_bytes(50))["digest"]
    pushed: list[str] = []

    def hook(kind: str, candidate: Candidate) -> None:
        if kind == "link" and not pushed:
            r = repo.put_manifest("v1", manifest)
            assert r.status_code == 201, r.text
            pushed.append(r.headers["docker-content-digest"])

    report, _ = sweep(stack, hook)
    assert pushed, "no link was ever a candidate"
    assert pull_and_verify(repo, "v1") == digest_of(manifest)
    links = deleted(report, "link")
    assert links == [f"{repo.name}@{stray}"], links
    assert_consistent(stack)


def test_a_manifest_tagged_again_before_its_deletion_survives(
    make_stack: Callable[..., Stack], registry_db: str | None
) -> None:
    """Manifest phase: its only tag deleted, then a new tag between the read and the
    deletion; the queue entry is kept due so the tag alone must keep it."""
    stack = gc_stack(make_stack, registry_db)
    repo = Repo.create(stack)
    manifest = repo.image([secrets.token_bytes(1500)])
    digest = digest_of(manifest)
    assert repo.put_manifest("v1", manifest).status_code == 201
    assert repo.request("DELETE", "manifests/v1").status_code == 202
    repo_id = query(stack, f"SELECT id FROM repositories WHERE name = '{repo.name}'")[0][0]  # noqa: S608

    def hook(kind: str, candidate: Candidate) -> None:
        if kind == "manifest" and candidate.key == (repo_id, digest):
            assert repo.put_manifest("v2", manifest).status_code == 201
            execute(
                stack,
                "UPDATE manifest_review_queue SET review_after = 0"  # noqa: S608
                f" WHERE repo_id = '{repo_id}' AND digest = '{digest}'",
            )
            due = query(
                stack,
                "SELECT 1 FROM manifest_review_queue"  # noqa: S608
                f" WHERE repo_id = '{repo_id}' AND digest = '{digest}'",
            )
            if not due:
                execute(
                    stack,
                    "INSERT INTO manifest_review_queue"  # noqa: S608
                    " (repo_id, digest, review_after, reason, created_at)"
                    f" VALUES ('{repo_id}', '{digest}', 0, 'test', 0)",
                )

    report, seen = sweep(stack, hook)
    assert ("manifest", (repo_id, digest)) in [(k, c.key) for k, c in seen], "never a candidate"
    assert deleted(report, "manifest") == []
    assert pull_and_verify(repo, "v2") == digest
    assert_consistent(stack)
