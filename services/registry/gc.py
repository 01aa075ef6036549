"""Online garbage collection: a sweep that never loses a referenced byte.

What a sweep removes, in this order (each phase may free work for the next):

1. manifests queued in ``manifest_review_queue`` whose review_after has
   passed (or, when an operator overrides the grace with ``gc --grace N``,
   that were queued more than N seconds ago) and that no tag, no index of
   the same repository, and (for a referrer) no existing subject
   references. Removing one queues what it referenced: its blobs, an
   index's children, its referrers.
2. repository blob links that no manifest of the repository references,
   created before the grace cutoff, and whose digest has no pending
   ``blob_review_queue`` mark (a manifest or link deleted less than a grace
   ago). This is also how blobs uploaded but never referenced (abandoned
   pushes) go.
3. stored blobs that no repository links and no manifest references, last
   linked before the grace cutoff: the file, then the row.
4. uploads idle for longer than the upload max age: the row, then the files;
   an upload some request is writing right now (its lock is held, in any
   process) is left alone, however old its last commit.
5. orphans in storage: blob files with no blob row and upload folders with
   no upload row, older than the grace (left by a crash between a storage
   step and its database commit).

Why nothing referenced is ever lost
-----------------------------------
* Every deletion is its own small write transaction that first locks the
  row it deletes (PostgreSQL ``FOR UPDATE``; SQLite's ``BEGIN IMMEDIATE``
  excludes every other writer) and then re-checks, with fresh reads, every
  reason to keep it. Candidates come from plain reads and may be stale; the
  re-check is what decides.
* Fresh content is never removed: links need ``created_at`` and blobs
  ``last_linked_at`` (moved by every link) older than the grace, and orphan
  files an mtime older than the grace. A blob uploaded seconds ago for a
  manifest about to be pushed stays.
* A manifest PUT racing the sweep: the PUT share-locks the links it found
  and upserts (thus locks) its manifest row in its own transaction. If the
  PUT locks first, the sweep waits and its re-check then sees the new
  manifest's references; if the sweep locks first, the PUT's lock waits,
  finds the row gone and answers MANIFEST_BLOB_UNKNOWN (a foreign key
  refusal maps to the same code). Never a manifest pointing at nothing.
* Deleting a file vs an upload publishing the same digest: both hold the
  digest's lock (``metadata.blobs.lock_digest``: the SQLite write lock, a
  per-digest advisory lock on PostgreSQL) for the whole check-and-act. The
  sweep re-checks the blob row and deletes the file and then the row before
  committing; the upload upserts the row, moves its file in if absent and
  links it before committing. So an upload either commits first (the sweep
  then sees the link and keeps the blob) or runs after the sweep committed
  (the file is absent, so the upload moves its own bytes in).
* A cross-repository mount share-locks the source link and blob in the
  transaction that creates the new link: the blob cannot go in between; if
  the link is already gone the mount answers with a regular upload (202).
  A client that skipped an upload after HEAD fails cleanly at manifest PUT.
* One sweep at a time: a lease row (``metadata.gc_lease``) taken before
  and renewed during the sweep; a sweep that loses it stops.
* A sweep killed at any point leaves a consistent state: each step commits
  on its own; a file deleted before a crash rolled its row deletion back
  leaves an unlinked row with no bytes, which nothing can link to (a mount
  needs a link, an upload moves its bytes in when the file is absent) and
  the next sweep removes; a missing file is always tolerated; an orphan
  file or upload folder is caught by phase 5.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from services.registry.context import RegistryMetrics
from services.registry.events.recorder import EventRecorder, recorded_write
from services.registry.metadata import gc_sweep as sweep_sql
from services.registry.metadata.blobs import lock_digest
from services.registry.metadata.gc_lease import acquire_lease, release_lease
from services.registry.metadata.gc_queue import ReviewDelays
from services.registry.metadata.uploads import lock_name
from services.registry.settings import RegistrySettings
from services.registry.storage.base import PathNotFound, StorageDriver
from services.registry.storage.paths import BLOBS, UPLOADS, blob_path, upload_dir
from shared.database import MetadataDB
from shared.locks import LockBusy
from shared.names import DigestError, parse_digest

__all__ = [
    "KINDS",
    "BeforeDelete",
    "Collector",
    "Deletion",
    "GCPolicy",
    "LeaseBusy",
    "LeaseLost",
    "SweepReport",
    "run_periodically",
]

logger = logging.getLogger("ecloud.registry.gc")

KINDS = ("manifest", "link", "blob", "upload", "orphan")
# An index deleted in a sweep frees its children for the same sweep only
# when the grace is 0; this bounds those rounds.
_MAX_MANIFEST_ROUNDS = 20


class LeaseBusy(Exception):
    """Another sweep holds the lease."""


class LeaseLost(Exception):
    """The lease expired or was taken over while this sweep ran; it stopped."""


@dataclass(frozen=True, slots=True)
class GCPolicy:
    """What a sweep may remove.

    `grace`: links, blobs and files younger than this stay. `queue_grace`:
    when set (an operator's ``gc --grace``), a queued manifest or blob mark
    is due once it was queued this long ago, whatever wait it was queued
    with (a deleted tag's grace, an untagged manifest's TTL); None honours
    each entry's own review time.
    """

    grace: float
    upload_max_age: float
    lease_seconds: float
    delays: ReviewDelays
    # Test hook of the ``gc`` command only (never set by ``serve``): the sweep
    # process dies (os._exit) in its Nth deleting transaction, after any
    # storage delete and before the commit.
    crash_after: int = 0
    queue_grace: float | None = None

    @classmethod
    def from_settings(cls, settings: RegistrySettings, grace: float | None = None) -> GCPolicy:
        """The service's policy; `grace` overrides every age protection (``gc --grace``)."""
        return cls(
            grace=float(settings.gc_grace if grace is None else grace),
            upload_max_age=float(settings.gc_upload_max_age),
            lease_seconds=float(settings.gc_lease_seconds),
            delays=settings.review_delays,
            queue_grace=None if grace is None else float(grace),
        )

    def queued_before(self, now: float) -> float:
        """Queue entries queued before this are due regardless of their review time."""
        return sweep_sql.NEVER if self.queue_grace is None else now - self.queue_grace


@dataclass(frozen=True, slots=True)
class Deletion:
    kind: str
    label: str
    size: int


@dataclass(slots=True)
class SweepReport:
    dry_run: bool
    deletions: list[Deletion] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, kind: str | None = None) -> int:
        return sum(1 for d in self.deletions if kind is None or d.kind == kind)

    def bytes(self, kind: str | None = None) -> int:
        return sum(d.size for d in self.deletions if kind is None or d.kind == kind)


# Called with (kind, candidate) after a candidate was read and before the
# transaction that re-checks and deletes it: tests use it to change the
# database at exactly that moment. Only tests pass one.
BeforeDelete = Callable[[str, sweep_sql.Candidate], Awaitable[None]]


class Collector:
    """Runs sweeps over one database and one storage driver."""

    def __init__(
        self,
        db: MetadataDB,
        driver: StorageDriver,
        policy: GCPolicy,
        metrics: RegistryMetrics | None = None,
        on_delete: Callable[[Deletion, bool], None] | None = None,
        events: Callable[[], EventRecorder] | None = None,
        before_delete: BeforeDelete | None = None,
    ) -> None:
        self.db = db
        # A recorder per deleting transaction: manifest.deleted, repository.emptied.
        self.events = events
        self.driver = driver
        self.policy = policy
        self.metrics = metrics
        self.on_delete = on_delete
        self.before_delete = before_delete
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._renewed = 0.0
        self._deleted = 0
        self._report = SweepReport(dry_run=False)

    async def sweep(self, dry_run: bool = False) -> SweepReport:
        """One full sweep; a dry run only reports (and takes no lease: it writes nothing)."""
        self._report = report = SweepReport(dry_run=dry_run)
        begun = time.monotonic()
        if not dry_run:
            if not await acquire_lease(self.db, self.holder, self.policy.lease_seconds):
                self._outcome("skipped")
                raise LeaseBusy("another garbage collection sweep is running")
            self._renewed = time.monotonic()
        outcome = "failure"
        try:
            await self._manifests()
            await self._links()
            await self._blobs()
            await self._uploads()
            await self._orphans()
            if not dry_run:
                now = time.time()
                async with self.db.write() as conn:
                    await sweep_sql.forget_due_blob_reviews(
                        conn, now, self.policy.queued_before(now)
                    )
            outcome = "success"
        except LeaseLost:
            outcome = "lease_lost"
            raise
        finally:
            report.seconds = time.monotonic() - begun
            if not dry_run:
                with contextlib.suppress(Exception):
                    await release_lease(self.db, self.holder)
                self._outcome(outcome, report.seconds)
        return report

    # -- bookkeeping ----------------------------------------------------------

    def _outcome(self, outcome: str, seconds: float | None = None) -> None:
        if self.metrics is None:
            return
        self.metrics.gc_sweeps.inc(outcome=outcome)
        if seconds is not None:
            self.metrics.gc_sweep_seconds.observe(seconds)
        if outcome == "success":
            self.metrics.gc_last_success.set(time.time())

    def _record(self, kind: str, label: str, size: int) -> None:
        deletion = Deletion(kind, label, size)
        self._report.deletions.append(deletion)
        if self.on_delete is not None:
            self.on_delete(deletion, self._report.dry_run)
        if self.metrics is not None and not self._report.dry_run:
            self.metrics.gc_objects.inc(kind=kind)
            self.metrics.gc_bytes.inc(size, kind=kind)

    def _before_commit(self) -> None:
        """Called inside each deleting transaction, after any storage delete."""
        self._deleted += 1
        if self.policy.crash_after and self._deleted >= self.policy.crash_after:
            # Test hook: die as a killed process would, mid-transaction.
            os._exit(137)

    async def _keep_lease(self) -> None:
        if self._report.dry_run:
            return
        if time.monotonic() - self._renewed < self.policy.lease_seconds / 3:
            return
        if not await acquire_lease(self.db, self.holder, self.policy.lease_seconds):
            raise LeaseLost("the garbage collection lease was lost; the sweep stopped")
        self._renewed = time.monotonic()

    async def _before_delete(self, kind: str, candidate: sweep_sql.Candidate) -> None:
        if self.before_delete is not None:
            await self.before_delete(kind, candidate)

    async def _delete_path(self, path: str) -> None:
        with contextlib.suppress(PathNotFound):
            await self.driver.delete(path)

    # -- phases ---------------------------------------------------------------

    async def _manifests(self) -> None:
        for _ in range(_MAX_MANIFEST_ROUNDS):
            now = time.time()
            deleted = 0
            cursor = ("", "")
            queued_before = self.policy.queued_before(now)
            while batch := await sweep_sql.manifest_candidates(self.db, now, cursor, queued_before):
                for candidate in batch:
                    cursor = (candidate.key[0], candidate.key[1])
                    await self._keep_lease()
                    if await self._manifest(candidate, now):
                        deleted += 1
            if deleted == 0 or self._report.dry_run:
                return

    async def _manifest(self, candidate: sweep_sql.Candidate, now: float) -> bool:
        repo_id, digest = candidate.key
        if self._report.dry_run:
            exists = await self.db.fetch_val(
                "SELECT 1 FROM manifests WHERE repo_id = :repo AND digest = :digest",
                {"repo": repo_id, "digest": digest},
            )
            if not exists or await sweep_sql.manifest_is_referenced(self.db, repo_id, digest):
                return False
        else:
            await self._before_delete("manifest", candidate)
            recorder = self.events() if self.events is not None else None
            async with recorded_write(self.db, recorder) as conn:
                if not await sweep_sql.collect_manifest(
                    conn,
                    repo_id,
                    digest,
                    now,
                    self.policy.delays,
                    self.policy.queued_before(now),
                    recorder,
                ):
                    return False
                self._before_commit()
        self._record("manifest", candidate.label, candidate.size)
        return True

    async def _links(self) -> None:
        now = time.time()
        cutoff = now - self.policy.grace
        queued_before = self.policy.queued_before(now)
        cursor = ("", "")
        while batch := await sweep_sql.link_candidates(self.db, cutoff, now, cursor, queued_before):
            for candidate in batch:
                cursor = (candidate.key[0], candidate.key[1])
                await self._keep_lease()
                if not self._report.dry_run:
                    await self._before_delete("link", candidate)
                    async with self.db.write() as conn:
                        if not await sweep_sql.collect_link(
                            conn, cursor[0], cursor[1], cutoff, now, queued_before
                        ):
                            continue
                        self._before_commit()
                # A link frees no bytes by itself; its blob may go next phase.
                self._record("link", candidate.label, 0)

    async def _blobs(self) -> None:
        now = time.time()
        cutoff = now - self.policy.grace
        queued_before = self.policy.queued_before(now)
        cursor = ""
        while batch := await sweep_sql.blob_candidates(self.db, cutoff, now, cursor, queued_before):
            for candidate in batch:
                cursor = candidate.key[0]
                await self._keep_lease()
                try:
                    path = blob_path(parse_digest(cursor))
                except DigestError:
                    logger.warning("blob row with an invalid digest %r left alone", cursor[:200])
                    continue
                if not self._report.dry_run:
                    await self._before_delete("blob", candidate)
                    async with self.db.write() as conn:
                        await lock_digest(conn, cursor)
                        if not await sweep_sql.collect_blob_row(
                            conn, cursor, cutoff, now, queued_before
                        ):
                            continue
                        # File first, row second, both before the commit: a
                        # crash in between leaves a row without bytes that
                        # nothing links, never a link without bytes.
                        await self._delete_path(path.rsplit("/", 1)[0])
                        self._before_commit()
                        await sweep_sql.delete_blob_row(conn, cursor)
                self._record("blob", candidate.label, candidate.size)

    async def _uploads(self) -> None:
        cutoff = time.time() - self.policy.upload_max_age
        cursor = ""
        while batch := await sweep_sql.upload_candidates(self.db, cutoff, cursor):
            for candidate in batch:
                cursor = candidate.key[0]
                await self._keep_lease()
                if not self._report.dry_run:
                    try:
                        async with self.db.locks.hold(lock_name(cursor)):
                            async with self.db.write() as conn:
                                if not await sweep_sql.collect_upload(conn, cursor, cutoff):
                                    continue
                                self._before_commit()
                    except LockBusy:
                        continue  # being written right now: not abandoned
                    # Row first: an upload without its row is unreachable,
                    # and its folder, should this delete not happen, is an
                    # orphan for the next sweep.
                    await self._delete_path(upload_dir(cursor))
                self._record("upload", candidate.label, candidate.size)

    async def _list(self, path: str) -> list[str]:
        try:
            return await self.driver.list(path)
        except PathNotFound:
            return []

    async def _age(self, path: str, now: float) -> tuple[float, int] | None:
        """(age in seconds, size) of `path`; None when it vanished."""
        try:
            info = await self.driver.stat(path)
        except PathNotFound:
            return None
        return now - info.modified, info.size

    async def _orphans(self) -> None:
        for algorithm_dir in await self._list(BLOBS):
            for fan_dir in await self._list(algorithm_dir):
                entries = await self._list(fan_dir)
                digests = {}
                for entry in entries:
                    name = f"{algorithm_dir.rsplit('/', 1)[1]}:{entry.rsplit('/', 1)[1]}"
                    with contextlib.suppress(DigestError):
                        digests[str(parse_digest(name))] = entry
                known = await sweep_sql.existing_blob_digests(self.db, sorted(digests))
                for digest, entry in sorted(digests.items()):
                    if digest not in known:
                        await self._keep_lease()
                        await self._orphan_blob(digest, entry)
        await self._orphan_uploads()

    async def _orphan_blob(self, digest: str, folder: str) -> None:
        now = time.time()
        age = await self._age(folder + "/data", now) or await self._age(folder, now)
        if age is None or age[0] < self.policy.grace:
            return
        if not self._report.dry_run:
            async with self.db.write() as conn:
                await lock_digest(conn, digest)
                if await conn.fetch_val(
                    "SELECT 1 FROM blobs WHERE digest = :digest", {"digest": digest}
                ):
                    return  # published meanwhile
                await self._delete_path(folder)
                self._before_commit()
        self._record("orphan", folder, age[1])

    async def _orphan_uploads(self) -> None:
        folders = {entry.rsplit("/", 1)[1]: entry for entry in await self._list(UPLOADS)}
        known = await sweep_sql.existing_upload_ids(self.db, sorted(folders))
        for upload_id, folder in sorted(folders.items()):
            if upload_id in known:
                continue
            now = time.time()
            age = await self._age(folder + "/data", now) or await self._age(folder, now)
            if age is None or age[0] < self.policy.grace:
                continue
            await self._keep_lease()
            # An upload row is committed before its folder is created, so a
            # folder without a row belongs to an upload that is gone.
            if not self._report.dry_run:
                await self._delete_path(folder)
            self._record("orphan", folder, age[1])


async def run_periodically(collector: Collector, interval: float) -> None:
    """Sweep every `interval` seconds, the first after one interval, until cancelled."""
    while True:
        await asyncio.sleep(interval)
        try:
            report = await collector.sweep()
        except LeaseBusy:
            logger.info("garbage collection skipped: another sweep holds the lease")
            continue
        except Exception:
            logger.exception("garbage collection sweep failed")
            continue
        logger.info(
            "garbage collection: %d objects, %d bytes in %.1f s",
            report.count(),
            report.bytes(),
            report.seconds,
        )
