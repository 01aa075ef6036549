"""Every decision of `gc_sweep.py`, in-process, on SQLite and on PostgreSQL.

Each test writes the rows it needs (repositories, blobs, links, manifests,
their edges, tags, review queue entries, uploads) with chosen timestamps
into a migrated registry database, calls one query of the sweep, and
checks exactly what it decided: which candidates, in what order, from which
cursor, how many per batch; whether a re-check deletes, and what it leaves.
No server starts, so the mutation run (``./scripts/mutation
services/registry/metadata/gc_sweep.py``) can afford it for every mutant.
The same rules through the real collector, with pushes racing the sweep,
are in ``test_gc_recheck.py``, ``test_gc.py`` and ``test_gc_grace.py``.

On PostgreSQL the re-checks lock rows (``FOR UPDATE``). The `pg_store`
tests hold locks from a second connection: on the neighbours of the row
being collected, to check that the re-check locks its own row only (a wider
lock waits there, and the transaction's ``lock_timeout`` turns the wait into
an error) and that the blob-review cleanup skips a locked entry; and on the
row itself, as a push does, to check that the re-check waits for the push
and then sees what it wrote.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError

from services.registry.events.model import MANIFEST_DELETED, REPOSITORY_EMPTIED, Actor, Origin
from services.registry.events.recorder import EventRecorder
from services.registry.metadata import gc_sweep as sweep
from services.registry.metadata.gc_queue import ReviewDelays
from services.registry.metadata.gc_sweep import Candidate
from services.registry.metadata.migrations import MIGRATION_LOCK, MIGRATIONS
from shared.database import DBConnection, MetadataDB, migrate_database, sqlite_url
from tests.conftest import fresh_pg_database, pg_admin

T = TypeVar("T")

NOW = 1_000_000.0
CUTOFF = NOW - 3600.0  # links and blobs last touched before this are old enough
QUEUED_BEFORE = NOW - 600.0  # an operator's `gc --grace 600`
OLD = CUTOFF - 100.0
LATER = NOW + 86_400.0  # a review time still ahead
RECENT = NOW - 10.0  # queued after QUEUED_BEFORE: not due by the override
BATCH = 500  # gc_sweep._BATCH, pinned from outside

# Deleted before each test, children first (PostgreSQL enforces the foreign keys).
TABLES = (
    "events",
    "tags",
    "manifest_children",
    "manifest_blobs",
    "manifest_review_queue",
    "blob_review_queue",
    "manifests",
    "repository_blobs",
    "uploads",
    "blobs",
    "repositories",
)


class Store:
    """A migrated registry database and a loop to drive it: rows in, decisions out."""

    def __init__(self, runner: asyncio.Runner, db: MetadataDB, url: str) -> None:
        self.runner = runner
        self.db = db
        self.url = url

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(coro)

    def sql(self, sql: str, **values: Any) -> None:
        self.run(self.db.execute(sql, values))

    def many(self, sql: str, rows: list[dict[str, Any]]) -> None:
        self.run(self.db.execute_many(sql, rows))

    def rows(self, sql: str, **values: Any) -> list[tuple[Any, ...]]:
        return [tuple(r.values()) for r in self.run(self.db.fetch_all(sql, values))]

    def keys(self, table: str, columns: str) -> list[tuple[Any, ...]]:
        return self.rows(f"SELECT {columns} FROM {table} ORDER BY {columns}")  # noqa: S608

    def write(self, body: Callable[[DBConnection], Awaitable[T]]) -> T:
        return self.run(in_write(self.db, body))

    # -- rows -------------------------------------------------------------------

    def insert(self, table: str, **row: Any) -> None:
        """One row of `table`, its columns named by the keywords."""
        columns = ", ".join(row)
        placeholders = ", ".join(f":{c}" for c in row)
        self.sql(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", **row)  # noqa: S608

    def repo(self, repo_id: str, name: str | None = None) -> None:
        self.insert(
            "repositories",
            id=repo_id,
            name=name or f"alice/{repo_id}",
            owner_id="owner-1",
            created_at=0,
        )

    def blob(self, digest: str, size: int = 10, last_linked_at: float = OLD) -> None:
        self.insert("blobs", digest=digest, size=size, created_at=0, last_linked_at=last_linked_at)

    def link(self, repo_id: str, digest: str, created_at: float = OLD) -> None:
        self.insert("repository_blobs", repo_id=repo_id, digest=digest, created_at=created_at)

    def manifest(
        self, repo_id: str, digest: str, size: int = 100, subject: str | None = None
    ) -> None:
        self.insert(
            "manifests",
            repo_id=repo_id,
            digest=digest,
            media_type="application/vnd.oci.image.manifest.v1+json",
            size=size,
            payload=b"{}",
            subject_digest=subject,
            created_at=0,
        )

    def manifest_blob(self, repo_id: str, manifest: str, blob: str) -> None:
        self.insert("manifest_blobs", repo_id=repo_id, manifest_digest=manifest, blob_digest=blob)

    def child(self, repo_id: str, parent: str, child: str) -> None:
        self.insert("manifest_children", repo_id=repo_id, parent_digest=parent, child_digest=child)

    def tag(self, repo_id: str, name: str, digest: str) -> None:
        self.insert("tags", repo_id=repo_id, name=name, manifest_digest=digest, updated_at=0)

    def queue_manifest(
        self, repo_id: str, digest: str, review_after: float = NOW, created_at: float = RECENT
    ) -> None:
        self.insert(
            "manifest_review_queue",
            repo_id=repo_id,
            digest=digest,
            review_after=review_after,
            reason="test",
            created_at=created_at,
        )

    def queue_blob(
        self, digest: str, review_after: float = LATER, created_at: float = RECENT
    ) -> None:
        self.insert(
            "blob_review_queue",
            digest=digest,
            review_after=review_after,
            reason="test",
            created_at=created_at,
        )

    def upload(self, upload_id: str, repo_id: str, updated_at: float, size: int = 0) -> None:
        self.insert(
            "uploads", id=upload_id, repo_id=repo_id, size=size, created_at=0, updated_at=updated_at
        )


async def in_write(db: MetadataDB, body: Callable[[DBConnection], Awaitable[T]]) -> T:
    """`body` on the connection of one write transaction (what the collector opens)."""
    async with db.write() as conn:
        return await body(conn)


def _migrated(url: str) -> str:
    asyncio.run(migrate_database(url, MIGRATIONS, MIGRATION_LOCK))
    return url


@pytest.fixture(scope="module")
def sqlite_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _migrated(sqlite_url(tmp_path_factory.mktemp("gc-sweep") / "registry.db"))


@pytest.fixture(scope="module")
def postgresql_db() -> Iterator[str]:
    with fresh_pg_database() as url:
        # A scratch database: commits need not wait for the disk (each test
        # empties eleven tables and writes its rows one statement at a time).
        pg_admin(f'ALTER DATABASE "{url.rsplit("/", 1)[1]}" SET synchronous_commit = off')
        yield _migrated(url)


def _open(url: str) -> Iterator[Store]:
    runner = asyncio.Runner()
    db = MetadataDB(url)
    try:
        runner.run(db.connect())
        store = Store(runner, db, url)
        for table in TABLES:
            store.sql(f"DELETE FROM {table}")  # noqa: S608
        yield store
    finally:
        runner.run(db.disconnect())
        runner.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    """An emptied registry database: the module's SQLite file, or its PostgreSQL database."""
    url: str = request.getfixturevalue(f"{request.param}_db")
    yield from _open(url)


@pytest.fixture
def pg_store(postgresql_db: str) -> Iterator[Store]:
    """The PostgreSQL store alone: for what only row locks show."""
    yield from _open(postgresql_db)


def keys_of(candidates: list[Candidate]) -> list[tuple[str, ...]]:
    return [c.key for c in candidates]


# -- Candidate -------------------------------------------------------------------


def test_a_candidate_is_a_frozen_value() -> None:
    one = Candidate(("r1", "sha256:a"), "alice/r1@sha256:a", 5)
    assert one == Candidate(("r1", "sha256:a"), "alice/r1@sha256:a", 5)
    assert hash(one) == hash(Candidate(("r1", "sha256:a"), "alice/r1@sha256:a", 5))
    with pytest.raises(dataclasses.FrozenInstanceError):
        one.size = 6  # type: ignore[misc]


# -- manifest candidates ---------------------------------------------------------


def test_manifest_candidates_are_the_entries_due_by_review_after(store: Store) -> None:
    store.repo("r1")
    store.queue_manifest("r1", "sha256:a", review_after=NOW - 1)
    store.queue_manifest("r1", "sha256:b", review_after=NOW)
    store.queue_manifest("r1", "sha256:c", review_after=NOW + 1)
    # Queued at the epoch: without an override (NEVER) still not due before review_after.
    store.queue_manifest("r1", "sha256:d", review_after=LATER, created_at=0.0)
    found = store.run(sweep.manifest_candidates(store.db, NOW, ("", "")))
    assert keys_of(found) == [("r1", "sha256:a"), ("r1", "sha256:b")]
    assert store.run(sweep.manifest_candidates(store.db, NOW, ("", ""), sweep.NEVER)) == found


def test_manifest_candidates_with_an_override_are_also_the_entries_queued_before_it(
    store: Store,
) -> None:
    store.repo("r1")
    store.queue_manifest("r1", "sha256:a", review_after=LATER, created_at=QUEUED_BEFORE - 1)
    store.queue_manifest("r1", "sha256:b", review_after=LATER, created_at=QUEUED_BEFORE)
    store.queue_manifest("r1", "sha256:c", review_after=LATER, created_at=QUEUED_BEFORE + 1)
    store.queue_manifest("r1", "sha256:d", review_after=NOW, created_at=QUEUED_BEFORE + 1)
    found = store.run(sweep.manifest_candidates(store.db, NOW, ("", ""), QUEUED_BEFORE))
    assert keys_of(found) == [("r1", "sha256:a"), ("r1", "sha256:b"), ("r1", "sha256:d")]


def test_manifest_candidates_page_by_repository_then_digest(store: Store) -> None:
    for repo_id in ("r1", "r2"):
        store.repo(repo_id)
    for key in [("r1", "sha256:d1"), ("r1", "sha256:d2"), ("r2", "sha256:d0"), ("r2", "sha256:d3")]:
        store.queue_manifest(*key)

    def after(cursor: tuple[str, str]) -> list[tuple[str, ...]]:
        return keys_of(store.run(sweep.manifest_candidates(store.db, NOW, cursor)))

    assert after(("", "")) == [
        ("r1", "sha256:d1"),
        ("r1", "sha256:d2"),
        ("r2", "sha256:d0"),
        ("r2", "sha256:d3"),
    ]
    assert after(("r1", "sha256:d1")) == [
        ("r1", "sha256:d2"),
        ("r2", "sha256:d0"),
        ("r2", "sha256:d3"),
    ]
    assert after(("r1", "sha256:d2")) == [("r2", "sha256:d0"), ("r2", "sha256:d3")]
    assert after(("r2", "sha256:d0")) == [("r2", "sha256:d3")]
    assert after(("r2", "sha256:d3")) == []


def test_a_manifest_candidate_names_its_repository_and_size(store: Store) -> None:
    store.repo("r1", "alice/app")
    store.manifest("r1", "sha256:a", size=1234)
    store.queue_manifest("r1", "sha256:a")
    store.queue_manifest("r1", "sha256:b")  # its manifest is gone already: size 0
    store.queue_manifest("r9", "sha256:c")  # so is its repository: labelled by id
    found = store.run(sweep.manifest_candidates(store.db, NOW, ("", "")))
    assert found == [
        Candidate(("r1", "sha256:a"), "alice/app@sha256:a", 1234),
        Candidate(("r1", "sha256:b"), "alice/app@sha256:b", 0),
        Candidate(("r9", "sha256:c"), "r9@sha256:c", 0),
    ]


def test_manifest_candidates_come_in_batches(store: Store) -> None:
    store.repo("r1")
    digests = [f"sha256:{i:04d}" for i in range(BATCH + 1)]
    store.many(
        "INSERT INTO manifest_review_queue (repo_id, digest, review_after, reason, created_at)"
        " VALUES ('r1', :digest, 0, 'test', 0)",
        [{"digest": d} for d in digests],
    )
    first = store.run(sweep.manifest_candidates(store.db, NOW, ("", "")))
    assert [c.key[1] for c in first] == digests[:BATCH]
    rest = store.run(sweep.manifest_candidates(store.db, NOW, ("r1", digests[BATCH - 1])))
    assert [c.key[1] for c in rest] == digests[BATCH:]


# -- manifest references ---------------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "referenced"),
    [
        ("none", False),
        ("tag", True),
        ("tag in another repository", False),
        ("index child", True),
        ("index child in another repository", False),
        ("existing subject", True),
        ("missing subject", False),
        ("subject only in another repository", False),
    ],
)
def test_manifest_is_referenced(store: Store, reference: str, referenced: bool) -> None:
    """By one reason at a time, each alone; a reference from another repository is none."""
    store.repo("r1")
    store.repo("r2")
    subject = "sha256:s" if "subject" in reference else None
    store.manifest("r1", "sha256:m", subject=subject)
    store.manifest("r2", "sha256:m")
    store.manifest("r1", "sha256:index")
    store.manifest("r2", "sha256:index")
    if reference == "tag":
        store.tag("r1", "v1", "sha256:m")
    if reference == "tag in another repository":
        store.tag("r2", "v1", "sha256:m")
    if reference == "index child":
        store.child("r1", "sha256:index", "sha256:m")
    if reference == "index child in another repository":
        store.child("r2", "sha256:index", "sha256:m")
    if reference == "existing subject":
        store.manifest("r1", "sha256:s")
    if reference == "subject only in another repository":
        store.manifest("r2", "sha256:s")
    assert store.run(sweep.manifest_is_referenced(store.db, "r1", "sha256:m")) is referenced


# -- collect_manifest ------------------------------------------------------------


def collect_manifest(
    store: Store,
    digest: str,
    queued_before: float = sweep.NEVER,
    events: EventRecorder | None = None,
    repo_id: str = "r1",
) -> bool:
    return store.write(
        lambda conn: sweep.collect_manifest(
            conn, repo_id, digest, NOW, ReviewDelays(), queued_before, events
        )
    )


def recorder() -> EventRecorder:
    return EventRecorder(Origin(actor=Actor(kind="system", name="gc")))


def recorded(store: Store) -> list[tuple[Any, ...]]:
    return store.rows("SELECT type, repository FROM events ORDER BY seq")


def test_collect_manifest_deletes_a_due_unreferenced_manifest_and_its_entry(store: Store) -> None:
    store.repo("r1")
    store.blob("sha256:layer")
    for digest, review_after in [("sha256:a", NOW - 1), ("sha256:b", NOW)]:
        store.manifest("r1", digest)
        store.manifest_blob("r1", digest, "sha256:layer")
        store.queue_manifest("r1", digest, review_after=review_after)
    store.manifest("r1", "sha256:keep")
    assert collect_manifest(store, "sha256:a") is True
    assert collect_manifest(store, "sha256:b") is True
    assert store.keys("manifests", "digest") == [("sha256:keep",)]
    assert store.keys("manifest_review_queue", "digest") == []
    assert store.keys("manifest_blobs", "manifest_digest") == []
    # Its blobs are queued for review (a "not before" mark for the blob phase).
    assert store.keys("blob_review_queue", "digest") == [("sha256:layer",)]
    assert recorded(store) == []


def test_collect_manifest_leaves_an_entry_not_due(store: Store) -> None:
    store.repo("r1")
    store.manifest("r1", "sha256:a")
    store.queue_manifest("r1", "sha256:a", review_after=NOW + 1, created_at=QUEUED_BEFORE + 1)
    store.queue_manifest("r1", "sha256:gone", review_after=NOW + 1, created_at=QUEUED_BEFORE + 1)
    store.queue_manifest("r1", "sha256:epoch", review_after=NOW + 1, created_at=0.0)
    assert collect_manifest(store, "sha256:a", QUEUED_BEFORE) is False
    assert collect_manifest(store, "sha256:gone", QUEUED_BEFORE) is False
    assert collect_manifest(store, "sha256:epoch") is False
    assert collect_manifest(store, "sha256:unqueued") is False
    assert store.keys("manifests", "digest") == [("sha256:a",)]
    assert store.keys("manifest_review_queue", "digest") == [
        ("sha256:a",),
        ("sha256:epoch",),
        ("sha256:gone",),
    ]


def test_collect_manifest_with_an_override_deletes_what_was_queued_before_it(
    store: Store,
) -> None:
    store.repo("r1")
    for digest, created_at in [("sha256:a", QUEUED_BEFORE - 1), ("sha256:b", QUEUED_BEFORE)]:
        store.manifest("r1", digest)
        store.queue_manifest("r1", digest, review_after=LATER, created_at=created_at)
    assert collect_manifest(store, "sha256:a", QUEUED_BEFORE) is True
    assert collect_manifest(store, "sha256:b", QUEUED_BEFORE) is True
    assert store.keys("manifests", "digest") == []
    assert store.keys("manifest_review_queue", "digest") == []


@pytest.mark.parametrize("reference", ["tag", "index child", "existing subject"])
def test_collect_manifest_keeps_a_referenced_manifest_and_drops_its_due_entry(
    store: Store, reference: str
) -> None:
    store.repo("r1")
    store.manifest("r1", "sha256:s")
    store.manifest("r1", "sha256:index")
    store.manifest(
        "r1", "sha256:m", subject="sha256:s" if reference == "existing subject" else None
    )
    if reference == "tag":
        store.tag("r1", "v1", "sha256:m")
    if reference == "index child":
        store.child("r1", "sha256:index", "sha256:m")
    store.queue_manifest("r1", "sha256:m")
    assert collect_manifest(store, "sha256:m", events=recorder()) is False
    assert ("sha256:m",) in store.keys("manifests", "digest")
    assert store.keys("manifest_review_queue", "digest") == []
    assert recorded(store) == []


def test_collect_manifest_drops_the_due_entry_of_a_manifest_already_gone(store: Store) -> None:
    store.repo("r1")
    store.queue_manifest("r1", "sha256:gone")
    store.queue_manifest("r1", "sha256:other")
    assert collect_manifest(store, "sha256:gone", events=recorder()) is False
    assert store.keys("manifest_review_queue", "digest") == [("sha256:other",)]
    assert recorded(store) == []


def test_collect_manifest_records_the_deletion_and_the_emptied_repository(store: Store) -> None:
    """``repository.emptied`` only with the repository's last manifest (another
    repository's manifests do not count)."""
    store.repo("r1", "alice/app")
    store.repo("r2", "alice/other")
    store.manifest("r2", "sha256:elsewhere")
    for digest in ("sha256:a", "sha256:b"):
        store.manifest("r1", digest)
        store.queue_manifest("r1", digest)
    assert collect_manifest(store, "sha256:a", events=recorder()) is True
    assert recorded(store) == [(MANIFEST_DELETED, "alice/app")]
    assert collect_manifest(store, "sha256:b", events=recorder()) is True
    assert recorded(store) == [
        (MANIFEST_DELETED, "alice/app"),
        (MANIFEST_DELETED, "alice/app"),
        (REPOSITORY_EMPTIED, "alice/app"),
    ]


def test_collect_manifest_without_a_recorder_records_nothing(store: Store) -> None:
    store.repo("r1")
    store.manifest("r1", "sha256:last")
    store.queue_manifest("r1", "sha256:last")
    assert collect_manifest(store, "sha256:last") is True
    assert store.keys("manifests", "digest") == []
    assert recorded(store) == []


# -- link candidates and collect_link ---------------------------------------------


def link_keys(store: Store, queued_before: float = sweep.NEVER) -> list[tuple[str, ...]]:
    found = store.run(sweep.link_candidates(store.db, CUTOFF, NOW, ("", ""), queued_before))
    return keys_of(found)


def collect_link(
    store: Store, repo_id: str, digest: str, queued_before: float = sweep.NEVER
) -> bool:
    return store.write(
        lambda conn: sweep.collect_link(conn, repo_id, digest, CUTOFF, NOW, queued_before)
    )


def test_links_older_than_the_cutoff_are_candidates(store: Store) -> None:
    store.repo("r1")
    for name, created_at in [("old", CUTOFF - 1), ("edge", CUTOFF), ("young", CUTOFF + 1)]:
        store.blob(f"sha256:{name}")
        store.link("r1", f"sha256:{name}", created_at)
    assert link_keys(store) == [("r1", "sha256:old")]
    assert collect_link(store, "r1", "sha256:edge") is False
    assert collect_link(store, "r1", "sha256:young") is False
    assert collect_link(store, "r1", "sha256:missing") is False
    assert collect_link(store, "r1", "sha256:old") is True
    assert store.keys("repository_blobs", "digest") == [("sha256:edge",), ("sha256:young",)]
    # The link goes, never the blob: that is the blob phase's decision.
    assert len(store.keys("blobs", "digest")) == 3


def test_a_link_is_needed_by_a_manifest_of_its_own_repository_only(store: Store) -> None:
    store.repo("r1")
    store.repo("r2")
    store.blob("sha256:used")
    store.blob("sha256:elsewhere")
    store.link("r1", "sha256:used")
    store.link("r1", "sha256:elsewhere")
    store.manifest("r1", "sha256:m")
    store.manifest_blob("r1", "sha256:m", "sha256:used")
    store.manifest("r2", "sha256:m")
    store.manifest_blob("r2", "sha256:m", "sha256:elsewhere")
    assert link_keys(store) == [("r1", "sha256:elsewhere")]
    assert collect_link(store, "r1", "sha256:used") is False
    assert collect_link(store, "r1", "sha256:elsewhere") is True
    assert store.keys("repository_blobs", "repo_id, digest") == [("r1", "sha256:used")]


def test_a_queued_blob_keeps_its_links_until_the_mark_is_due(store: Store) -> None:
    """Due by review_after (its edge included), or with an override by created_at."""
    store.repo("r1")
    marks = {
        "waiting": (NOW + 1, QUEUED_BEFORE + 1),
        "due": (NOW, RECENT),
        "overdue": (NOW - 1, RECENT),
        "queued-early": (LATER, QUEUED_BEFORE - 1),
        "queued-at-override": (LATER, QUEUED_BEFORE),
    }
    for name, (review_after, created_at) in marks.items():
        store.blob(f"sha256:{name}")
        store.link("r1", f"sha256:{name}")
        store.queue_blob(f"sha256:{name}", review_after, created_at)
    assert link_keys(store) == [("r1", "sha256:due"), ("r1", "sha256:overdue")]
    assert link_keys(store, QUEUED_BEFORE) == [
        ("r1", "sha256:due"),
        ("r1", "sha256:overdue"),
        ("r1", "sha256:queued-at-override"),
        ("r1", "sha256:queued-early"),
    ]
    assert collect_link(store, "r1", "sha256:waiting", QUEUED_BEFORE) is False
    assert collect_link(store, "r1", "sha256:queued-early") is False
    assert collect_link(store, "r1", "sha256:queued-early", QUEUED_BEFORE) is True
    assert collect_link(store, "r1", "sha256:queued-at-override", QUEUED_BEFORE) is True
    assert collect_link(store, "r1", "sha256:due") is True
    assert store.keys("repository_blobs", "digest") == [
        ("sha256:overdue",),
        ("sha256:waiting",),
    ]


def test_link_candidates_page_by_repository_then_digest(store: Store) -> None:
    store.repo("r1", "alice/one")
    store.repo("r2", "alice/two")
    for digest, size in [("sha256:d0", 1), ("sha256:d1", 2), ("sha256:d2", 3), ("sha256:d3", 4)]:
        store.blob(digest, size=size)
    for key in [("r1", "sha256:d1"), ("r1", "sha256:d2"), ("r2", "sha256:d0"), ("r2", "sha256:d3")]:
        store.link(*key)

    def after(cursor: tuple[str, str]) -> list[Candidate]:
        return store.run(sweep.link_candidates(store.db, CUTOFF, NOW, cursor))

    assert after(("", "")) == [
        Candidate(("r1", "sha256:d1"), "alice/one@sha256:d1", 2),
        Candidate(("r1", "sha256:d2"), "alice/one@sha256:d2", 3),
        Candidate(("r2", "sha256:d0"), "alice/two@sha256:d0", 1),
        Candidate(("r2", "sha256:d3"), "alice/two@sha256:d3", 4),
    ]
    assert keys_of(after(("r1", "sha256:d1"))) == [
        ("r1", "sha256:d2"),
        ("r2", "sha256:d0"),
        ("r2", "sha256:d3"),
    ]
    assert keys_of(after(("r1", "sha256:d2"))) == [("r2", "sha256:d0"), ("r2", "sha256:d3")]
    assert keys_of(after(("r2", "sha256:d0"))) == [("r2", "sha256:d3")]
    assert after(("r2", "sha256:d3")) == []


def test_link_candidates_come_in_batches(store: Store) -> None:
    store.repo("r1")
    digests = [f"sha256:{i:04d}" for i in range(BATCH + 1)]
    store.many(
        "INSERT INTO blobs (digest, size, created_at, last_linked_at) VALUES (:digest, 1, 0, 0)",
        [{"digest": d} for d in digests],
    )
    store.many(
        "INSERT INTO repository_blobs (repo_id, digest, created_at) VALUES ('r1', :digest, 0)",
        [{"digest": d} for d in digests],
    )
    first = store.run(sweep.link_candidates(store.db, CUTOFF, NOW, ("", "")))
    assert [c.key[1] for c in first] == digests[:BATCH]
    rest = store.run(sweep.link_candidates(store.db, CUTOFF, NOW, ("r1", digests[BATCH - 1])))
    assert [c.key[1] for c in rest] == digests[BATCH:]


# -- blob candidates and collect_blob_row -----------------------------------------


def blob_keys(store: Store, queued_before: float = sweep.NEVER) -> list[str]:
    found = store.run(sweep.blob_candidates(store.db, CUTOFF, NOW, "", queued_before))
    return [c.key[0] for c in found]


def collect_blob_row(store: Store, digest: str, queued_before: float = sweep.NEVER) -> bool:
    return store.write(
        lambda conn: sweep.collect_blob_row(conn, digest, CUTOFF, NOW, queued_before)
    )


def test_blobs_last_linked_before_the_cutoff_are_candidates(store: Store) -> None:
    for name, linked in [("old", CUTOFF - 1), ("edge", CUTOFF), ("young", CUTOFF + 1)]:
        store.blob(f"sha256:{name}", last_linked_at=linked)
    assert blob_keys(store) == ["sha256:old"]
    assert collect_blob_row(store, "sha256:old") is True
    assert collect_blob_row(store, "sha256:edge") is False
    assert collect_blob_row(store, "sha256:young") is False
    assert collect_blob_row(store, "sha256:missing") is False
    # The re-check decides; the row goes with `delete_blob_row`, after the file.
    assert len(store.keys("blobs", "digest")) == 3


def test_a_linked_or_referenced_blob_is_no_candidate(store: Store) -> None:
    store.repo("r1")
    store.repo("r2")
    for name in ("free", "linked", "referenced"):
        store.blob(f"sha256:{name}")
    store.link("r2", "sha256:linked")
    store.manifest("r2", "sha256:m")
    store.manifest_blob("r2", "sha256:m", "sha256:referenced")
    assert blob_keys(store) == ["sha256:free"]
    assert collect_blob_row(store, "sha256:linked") is False
    assert collect_blob_row(store, "sha256:referenced") is False
    assert collect_blob_row(store, "sha256:free") is True


def test_a_queued_blob_waits_until_its_mark_is_due(store: Store) -> None:
    marks = {
        "waiting": (NOW + 1, QUEUED_BEFORE + 1),
        "due": (NOW, RECENT),
        "overdue": (NOW - 1, RECENT),
        "queued-early": (LATER, QUEUED_BEFORE - 1),
        "queued-at-override": (LATER, QUEUED_BEFORE),
    }
    for name, (review_after, created_at) in marks.items():
        store.blob(f"sha256:{name}")
        store.queue_blob(f"sha256:{name}", review_after, created_at)
    assert blob_keys(store) == ["sha256:due", "sha256:overdue"]
    assert blob_keys(store, QUEUED_BEFORE) == [
        "sha256:due",
        "sha256:overdue",
        "sha256:queued-at-override",
        "sha256:queued-early",
    ]
    assert collect_blob_row(store, "sha256:waiting", QUEUED_BEFORE) is False
    assert collect_blob_row(store, "sha256:queued-early") is False
    assert collect_blob_row(store, "sha256:queued-early", QUEUED_BEFORE) is True
    assert collect_blob_row(store, "sha256:queued-at-override", QUEUED_BEFORE) is True
    assert collect_blob_row(store, "sha256:due") is True


def test_blob_candidates_page_by_digest_in_batches(store: Store) -> None:
    digests = [f"sha256:{i:04d}" for i in range(BATCH + 1)]
    store.many(
        "INSERT INTO blobs (digest, size, created_at, last_linked_at) VALUES (:digest, 7, 0, 0)",
        [{"digest": d} for d in digests],
    )
    first = store.run(sweep.blob_candidates(store.db, CUTOFF, NOW, ""))
    assert first[0] == Candidate((digests[0],), digests[0], 7)
    assert [c.key[0] for c in first] == digests[:BATCH]
    rest = store.run(sweep.blob_candidates(store.db, CUTOFF, NOW, digests[BATCH - 1]))
    assert [c.key[0] for c in rest] == digests[BATCH:]
    assert store.run(sweep.blob_candidates(store.db, CUTOFF, NOW, digests[BATCH])) == []


def test_delete_blob_row_removes_the_row_and_its_mark(store: Store) -> None:
    for name in ("gone", "kept"):
        store.blob(f"sha256:{name}")
        store.queue_blob(f"sha256:{name}")
    store.write(lambda conn: sweep.delete_blob_row(conn, "sha256:gone"))
    assert store.keys("blobs", "digest") == [("sha256:kept",)]
    assert store.keys("blob_review_queue", "digest") == [("sha256:kept",)]


def test_existing_blob_digests_are_the_known_ones_across_chunks(store: Store) -> None:
    store.blob("sha256:0000")
    store.blob("sha256:1000")
    asked = [f"sha256:{i:04d}" for i in range(1001)]
    assert store.run(sweep.existing_blob_digests(store.db, asked)) == {
        "sha256:0000",
        "sha256:1000",
    }
    assert store.run(sweep.existing_blob_digests(store.db, [])) == set()


# -- forget_due_blob_reviews -------------------------------------------------------


def forget(store: Store, queued_before: float = sweep.NEVER) -> list[str]:
    store.write(lambda conn: sweep.forget_due_blob_reviews(conn, NOW, queued_before))
    return [r[0] for r in store.keys("blob_review_queue", "digest")]


def test_forget_due_blob_reviews_drops_the_due_marks_only(store: Store) -> None:
    marks = {
        "waiting": (NOW + 1, QUEUED_BEFORE + 1),
        "due": (NOW, RECENT),
        "overdue": (NOW - 1, RECENT),
        "queued-early": (LATER, QUEUED_BEFORE - 1),
        "queued-at-override": (LATER, QUEUED_BEFORE),
        "queued-at-epoch": (LATER, 0.0),
    }
    for name, (review_after, created_at) in marks.items():
        store.queue_blob(f"sha256:{name}", review_after, created_at)
    assert forget(store) == [
        "sha256:queued-at-epoch",
        "sha256:queued-at-override",
        "sha256:queued-early",
        "sha256:waiting",
    ]
    assert forget(store, QUEUED_BEFORE) == ["sha256:waiting"]


# -- uploads -------------------------------------------------------------------------


def collect_upload(store: Store, upload_id: str) -> bool:
    return store.write(lambda conn: sweep.collect_upload(conn, upload_id, CUTOFF))


def test_uploads_idle_since_before_the_cutoff_are_candidates(store: Store) -> None:
    store.repo("r1", "alice/app")
    store.upload("u1", "r1", CUTOFF - 1, size=300)
    store.upload("u2", "r1", CUTOFF)
    store.upload("u3", "r1", CUTOFF + 1)
    store.upload("u4", "r1", CUTOFF - 2, size=5)
    found = store.run(sweep.upload_candidates(store.db, CUTOFF, ""))
    assert found == [
        Candidate(("u1",), "alice/app upload u1", 300),
        Candidate(("u4",), "alice/app upload u4", 5),
    ]
    assert keys_of(store.run(sweep.upload_candidates(store.db, CUTOFF, "u1"))) == [("u4",)]
    assert store.run(sweep.upload_candidates(store.db, CUTOFF, "u4")) == []


def test_upload_candidates_come_in_batches(store: Store) -> None:
    store.repo("r1")
    ids = [f"u{i:04d}" for i in range(BATCH + 1)]
    store.many(
        "INSERT INTO uploads (id, repo_id, size, created_at, updated_at)"
        " VALUES (:id, 'r1', 0, 0, 0)",
        [{"id": i} for i in ids],
    )
    first = store.run(sweep.upload_candidates(store.db, CUTOFF, ""))
    assert [c.key[0] for c in first] == ids[:BATCH]
    rest = store.run(sweep.upload_candidates(store.db, CUTOFF, ids[BATCH - 1]))
    assert [c.key[0] for c in rest] == ids[BATCH:]


def test_collect_upload_deletes_that_upload_only_if_still_idle(store: Store) -> None:
    """Its neighbours (idle ones on both sides) never stand in for it."""
    store.repo("r1")
    store.upload("u1", "r1", OLD)
    store.upload("u2-edge", "r1", CUTOFF)
    store.upload("u3-young", "r1", CUTOFF + 1)
    store.upload("u4", "r1", OLD)
    assert collect_upload(store, "u2-edge") is False
    assert collect_upload(store, "u3-young") is False
    assert collect_upload(store, "u2-missing") is False
    assert store.keys("uploads", "id") == [("u1",), ("u2-edge",), ("u3-young",), ("u4",)]
    assert collect_upload(store, "u4") is True
    assert store.keys("uploads", "id") == [("u1",), ("u2-edge",), ("u3-young",)]


def test_existing_upload_ids_are_the_known_ones_across_chunks(store: Store) -> None:
    store.repo("r1")
    store.upload("u0000", "r1", NOW)
    store.upload("u1000", "r1", NOW)
    asked = [f"u{i:04d}" for i in range(1001)]
    assert store.run(sweep.existing_upload_ids(store.db, asked)) == {"u0000", "u1000"}
    assert store.run(sweep.existing_upload_ids(store.db, [])) == set()


# -- row locks (PostgreSQL) ----------------------------------------------------------


@asynccontextmanager
async def held(url: str, sql: str) -> AsyncIterator[None]:
    """Another transaction holding the row locks `sql` (a ``FOR UPDATE`` select) takes."""
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            await conn.execute(sql)
            yield
    finally:
        await conn.close()


async def unblocked(store: Store, body: Callable[[DBConnection], Awaitable[T]]) -> T:
    """`body(conn)` in a write where waiting for a row lock is an error (after 1 s): the
    rows it must not lock are held elsewhere for as long as the test runs."""
    async with store.db.write() as conn:
        await conn.exec_driver("SET LOCAL lock_timeout = '1s'")
        try:
            return await body(conn)
        except DBAPIError as exc:
            pytest.fail(f"waited for a row lock held elsewhere: {exc}")


def test_collect_link_locks_its_own_link_only(pg_store: Store) -> None:
    store = pg_store
    for repo_id in ("r1", "r2", "r3"):
        store.repo(repo_id)
    for digest in ("sha256:d1", "sha256:d2", "sha256:d3", "sha256:young", "sha256:edge"):
        store.blob(digest)
    for key in [("r1", "sha256:d2"), ("r3", "sha256:d2"), ("r2", "sha256:d1"), ("r2", "sha256:d3")]:
        store.link(*key)
    store.link("r2", "sha256:d2")
    store.link("r2", "sha256:edge", CUTOFF)
    store.link("r2", "sha256:young", CUTOFF + 1)

    async def run() -> list[bool]:
        results = []
        async with held(
            store.url,
            "SELECT 1 FROM repository_blobs WHERE NOT (repo_id = 'r2' AND digest = 'sha256:d2')"
            " FOR UPDATE",
        ):
            for digest in ("sha256:edge", "sha256:young", "sha256:d2"):
                results.append(
                    await unblocked(
                        store,
                        lambda conn, d=digest: sweep.collect_link(conn, "r2", d, CUTOFF, NOW),
                    )
                )
        return results

    assert store.run(run()) == [False, False, True]


def test_collect_blob_row_locks_its_own_blob_only(pg_store: Store) -> None:
    store = pg_store
    for digest in ("sha256:d1", "sha256:d2", "sha256:d3"):
        store.blob(digest)

    async def run() -> bool:
        async with held(store.url, "SELECT 1 FROM blobs WHERE digest <> 'sha256:d2' FOR UPDATE"):
            return bool(
                await unblocked(
                    store, lambda conn: sweep.collect_blob_row(conn, "sha256:d2", CUTOFF, NOW)
                )
            )

    assert store.run(run()) is True


def test_forget_due_blob_reviews_skips_a_mark_being_requeued(pg_store: Store) -> None:
    """A due mark locked by another transaction (re-queued right now) is left for later."""
    store = pg_store
    store.queue_blob("sha256:busy", review_after=NOW - 1)
    store.queue_blob("sha256:due", review_after=NOW - 1)

    async def run() -> None:
        async with held(
            store.url, "SELECT 1 FROM blob_review_queue WHERE digest = 'sha256:busy' FOR UPDATE"
        ):
            await unblocked(store, lambda conn: sweep.forget_due_blob_reviews(conn, NOW))

    store.run(run())
    assert store.keys("blob_review_queue", "digest") == [("sha256:busy",)]


async def after_commit_of(
    store: Store, statements: list[str], body: Callable[[DBConnection], Awaitable[T]]
) -> T:
    """`body(conn)` in a write that starts while another transaction, which ran
    `statements`, is still open; that one commits once `body` waits for its row
    lock (or has returned without waiting). `body`'s answer."""
    other = await asyncpg.connect(store.url)
    try:
        transaction = other.transaction()
        await transaction.start()
        for sql in statements:
            await other.execute(sql)
        task = asyncio.create_task(in_write(store.db, body))
        while not task.done() and not await other.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE NOT l.granted AND a.datname = current_database())"
        ):
            await asyncio.sleep(0.01)
        await transaction.commit()
        return await task
    finally:
        await other.close()


def test_collect_link_waits_for_a_manifest_push_and_sees_its_references(
    pg_store: Store,
) -> None:
    """Lock first, check after: a manifest PUT share-locks the links it uses, then
    writes its references; the re-check runs once that commits, and sees them."""
    store = pg_store
    store.repo("r1")
    store.blob("sha256:layer")
    store.link("r1", "sha256:layer")
    pushed = store.run(
        after_commit_of(
            store,
            [
                "SELECT 1 FROM repository_blobs WHERE repo_id = 'r1' AND digest = 'sha256:layer'"
                " FOR SHARE",
                "INSERT INTO manifests (repo_id, digest, media_type, size, payload, created_at)"
                " VALUES ('r1', 'sha256:m', 'x', 1, '', 0)",
                "INSERT INTO manifest_blobs (repo_id, manifest_digest, blob_digest)"
                " VALUES ('r1', 'sha256:m', 'sha256:layer')",
            ],
            lambda conn: sweep.collect_link(conn, "r1", "sha256:layer", CUTOFF, NOW),
        )
    )
    assert pushed is False
    assert store.keys("repository_blobs", "digest") == [("sha256:layer",)]


def test_collect_manifest_waits_for_a_tag_push_and_sees_the_tag(pg_store: Store) -> None:
    """The manifest row is locked before the queue and the references are read: a
    push (manifest upsert, then its tag) that holds it is waited for."""
    store = pg_store
    store.repo("r1")
    store.manifest("r1", "sha256:m")
    store.queue_manifest("r1", "sha256:m")
    collected = store.run(
        after_commit_of(
            store,
            [
                "UPDATE manifests SET created_at = 1 WHERE repo_id = 'r1' AND digest = 'sha256:m'",
                "INSERT INTO tags (repo_id, name, manifest_digest, updated_at)"
                " VALUES ('r1', 'v1', 'sha256:m', 0)",
            ],
            lambda conn: sweep.collect_manifest(conn, "r1", "sha256:m", NOW, ReviewDelays()),
        )
    )
    assert collected is False
    assert store.keys("manifests", "digest") == [("sha256:m",)]


def test_collect_blob_row_waits_for_a_relink_and_sees_the_link(pg_store: Store) -> None:
    """A blob pushed again (its row updated, a link added) while the sweep re-checks it."""
    store = pg_store
    store.repo("r1")
    store.blob("sha256:b")
    unneeded = store.run(
        after_commit_of(
            store,
            [
                "UPDATE blobs SET size = size WHERE digest = 'sha256:b'",
                "INSERT INTO repository_blobs (repo_id, digest, created_at)"
                " VALUES ('r1', 'sha256:b', 0)",
            ],
            lambda conn: sweep.collect_blob_row(conn, "sha256:b", CUTOFF, NOW),
        )
    )
    assert unneeded is False
