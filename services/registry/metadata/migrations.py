"""Schema versions of the registry database."""

from __future__ import annotations

from shared.database import Migration

__all__ = ["MIGRATIONS", "MIGRATION_LOCK"]

# Replicas starting together take this lock so each migration runs once.
MIGRATION_LOCK = "ecloud-registry-migrations"

# Version 3.
# manifests: the exact pushed bytes (≤ 4 MiB) per repository and digest,
# with what the referrers API lists (subject_digest, artifact_type,
# annotations). manifest_blobs / manifest_children: what each manifest
# references (config and layers; an index's child manifests), the
# edges the garbage collector walks. A subject is an edge too, kept on
# the manifest row because there is at most one. tags: one row per
# tag; ordered bytewise (COLLATE "C" on PostgreSQL) so `last` pages
# the same on both databases.
_V3_MANIFESTS = """
    CREATE TABLE manifests (
        repo_id TEXT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
        digest TEXT NOT NULL,
        media_type TEXT NOT NULL,
        artifact_type TEXT,
        size BIGINT NOT NULL,
        payload {binary} NOT NULL,
        subject_digest TEXT,
        annotations TEXT,
        created_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (repo_id, digest)
    );
    CREATE INDEX manifests_subject ON manifests (repo_id, subject_digest);
    CREATE INDEX manifests_digest ON manifests (digest);
    CREATE TABLE manifest_blobs (
        repo_id TEXT NOT NULL,
        manifest_digest TEXT NOT NULL,
        blob_digest TEXT NOT NULL REFERENCES blobs (digest),
        PRIMARY KEY (repo_id, manifest_digest, blob_digest),
        FOREIGN KEY (repo_id, manifest_digest)
            REFERENCES manifests (repo_id, digest) ON DELETE CASCADE
    );
    CREATE INDEX manifest_blobs_blob ON manifest_blobs (blob_digest, repo_id);
    CREATE TABLE manifest_children (
        repo_id TEXT NOT NULL,
        parent_digest TEXT NOT NULL,
        child_digest TEXT NOT NULL,
        PRIMARY KEY (repo_id, parent_digest, child_digest),
        FOREIGN KEY (repo_id, parent_digest)
            REFERENCES manifests (repo_id, digest) ON DELETE CASCADE
    );
    CREATE INDEX manifest_children_child ON manifest_children (repo_id, child_digest);
    CREATE TABLE tags (
        repo_id TEXT NOT NULL,
        name TEXT {bytewise} NOT NULL,
        manifest_digest TEXT NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (repo_id, name),
        FOREIGN KEY (repo_id, manifest_digest)
            REFERENCES manifests (repo_id, digest) ON DELETE CASCADE
    );
    CREATE INDEX tags_manifest ON tags (repo_id, manifest_digest)
"""

# Version 4: what the garbage collector needs beyond the reference edges.
# manifest_review_queue: manifests that may have become unreferenced (a tag
# deleted or moved away, an index or a subject deleted) or were pushed by
# digest alone; the sweep re-checks each one once review_after has passed.
# gc_lease: one row per lease name; whoever holds an unexpired row sweeps,
# so only one sweep runs at a time across replicas and the CLI. Manifests
# stored before this version are queued as if pushed untagged just now
# (default untagged TTL), so an upgrade never collects anything at once.
_V4_GC = """
    CREATE TABLE manifest_review_queue (
        repo_id TEXT NOT NULL,
        digest TEXT NOT NULL,
        review_after DOUBLE PRECISION NOT NULL,
        reason TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (repo_id, digest)
    );
    CREATE INDEX manifest_review_queue_due ON manifest_review_queue (review_after);
    CREATE TABLE gc_lease (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX repository_blobs_created ON repository_blobs (created_at);
    INSERT INTO manifest_review_queue (repo_id, digest, review_after, reason, created_at)
        SELECT repo_id, digest, {now} + 604800, 'present before GC', {now} FROM manifests
"""

# Version 5: events (see services/registry/events).
# events: the outbox, one row per content change, written in the change's
# own transaction. seq orders them; id is the public event id. status is
# pending until every target got it (delivered) or one gave up (failed);
# next_attempt_at schedules retries; lease_holder/lease_expires_at make one
# dispatcher at a time work on an event across processes and replicas.
# event_targets: per event and target (nats, op:<hash> for an operator
# webhook, a user webhook's id), what has been delivered, so a retry
# repeats only what failed. webhooks: per-user endpoints; the secret is
# stored encrypted (AES-GCM with a key outside the database).
# webhook_deliveries: the delivery log the API shows, trimmed per webhook.
_V5_EVENTS = """
    CREATE TABLE events (
        seq {serial},
        id TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL,
        namespace TEXT NOT NULL,
        repository TEXT NOT NULL,
        owner_id TEXT NOT NULL,
        data TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at DOUBLE PRECISION NOT NULL,
        lease_holder TEXT,
        lease_expires_at DOUBLE PRECISION NOT NULL DEFAULT 0,
        finished_at DOUBLE PRECISION
    );
    CREATE INDEX events_due ON events (status, next_attempt_at);
    CREATE INDEX events_finished ON events (finished_at);
    CREATE TABLE event_targets (
        event_id TEXT NOT NULL,
        target TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        updated_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (event_id, target)
    );
    CREATE TABLE webhooks (
        id TEXT PRIMARY KEY,
        owner_id TEXT NOT NULL,
        namespace TEXT NOT NULL,
        url TEXT NOT NULL,
        format TEXT NOT NULL,
        secret_box TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX webhooks_owner ON webhooks (owner_id, created_at);
    CREATE TABLE webhook_deliveries (
        seq {serial},
        webhook_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        event_type TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        status_code INTEGER,
        error TEXT,
        latency_ms DOUBLE PRECISION,
        created_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX webhook_deliveries_hook ON webhook_deliveries (webhook_id, seq)
"""

MIGRATIONS: list[Migration] = [
    Migration(
        1,
        "repositories",
        """
        CREATE TABLE repositories (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            owner_id TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL
        );
        CREATE INDEX repositories_owner ON repositories (owner_id, name)
        """,
    ),
    Migration(
        2,
        "blobs, repository blob links, uploads",
        # blobs: content stored once, whoever pushed it. last_linked_at moves on
        # every (re)link so a sweep can keep anything linked within its grace
        # period. repository_blobs: which repository may see which blob.
        # blob_review_queue: digests whose last link may be gone, for the GC to
        # re-check after review_after. uploads: in-progress uploads, so any
        # replica (or a restarted process) can continue one; updated_at lets
        # the GC find abandoned ones.
        """
        CREATE TABLE blobs (
            digest TEXT PRIMARY KEY,
            size BIGINT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            last_linked_at DOUBLE PRECISION NOT NULL
        );
        CREATE TABLE repository_blobs (
            repo_id TEXT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
            digest TEXT NOT NULL REFERENCES blobs (digest),
            created_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (repo_id, digest)
        );
        CREATE INDEX repository_blobs_digest ON repository_blobs (digest);
        CREATE TABLE blob_review_queue (
            digest TEXT PRIMARY KEY,
            review_after DOUBLE PRECISION NOT NULL,
            reason TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL
        );
        CREATE INDEX blob_review_queue_due ON blob_review_queue (review_after);
        CREATE TABLE uploads (
            id TEXT PRIMARY KEY,
            repo_id TEXT NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
            size BIGINT NOT NULL DEFAULT 0,
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL
        );
        CREATE INDEX uploads_updated ON uploads (updated_at)
        """,
    ),
    Migration(
        3,
        "manifests, tags, manifest references",
        _V3_MANIFESTS.format(binary="BLOB", bytewise=""),
        postgres_sql=_V3_MANIFESTS.format(binary="BYTEA", bytewise='COLLATE "C"'),
    ),
    Migration(
        4,
        "manifest review queue, GC lease",
        _V4_GC.format(now="((julianday('now') - 2440587.5) * 86400.0)"),
        postgres_sql=_V4_GC.format(now="EXTRACT(EPOCH FROM now())"),
    ),
    Migration(
        5,
        "event outbox, webhooks, delivery log",
        _V5_EVENTS.format(serial="INTEGER PRIMARY KEY AUTOINCREMENT"),
        postgres_sql=_V5_EVENTS.format(serial="BIGSERIAL PRIMARY KEY"),
    ),
]
