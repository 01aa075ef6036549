"""The event outbox: written inside content transactions, claimed and settled by dispatchers.

`insert_event` runs inside the caller's write transaction (the same one that
changes the content), so an event exists exactly when its change committed.

Dispatchers claim due events with a lease: `claim_due` picks pending events
whose next attempt is due and whose lease is free or expired, and stamps its
holder and an expiry on them in one write transaction (PostgreSQL skips rows
another claimer has locked; SQLite's write lock serializes claimers). An
event is worked on by one dispatcher at a time across processes and
replicas; a dispatcher that dies simply lets its lease expire. `settle`
records what each target got and either finishes the event or schedules its
next attempt, only while the settling dispatcher still holds the lease.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import column, select, table, text

from services.registry.events.model import StoredEvent
from services.registry.metadata.sql import Queryable, executor
from shared.database import DBConnection, MetadataDB

__all__ = [
    "DELIVERED",
    "FAILED",
    "PENDING",
    "DeliveryLogEntry",
    "TargetResult",
    "claim_due",
    "done_targets",
    "get_event",
    "has_due",
    "insert_event",
    "log_delivery",
    "pending_count",
    "prune_finished",
    "repository_identity",
    "settle",
]

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"

_COLUMNS = "seq, id, type, namespace, repository, owner_id, data, created_at, attempts"
_DUE = "status = :pending AND next_attempt_at <= :now AND lease_expires_at <= :now"
# Enough of the events table for the statements whose row locks Core renders
# per dialect (``FOR UPDATE [SKIP LOCKED]`` on PostgreSQL, nothing on SQLite).
_EVENTS = table("events", column("id"), column("seq"), column("lease_holder"))


@dataclass(frozen=True, slots=True)
class TargetResult:
    """The outcome of one delivery attempt to one target.

    `status` is DELIVERED, FAILED (given up: never retried) or PENDING
    (failed this time; retried with the event).
    """

    target: str
    status: str
    error: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryLogEntry:
    """One attempt to call a webhook, for its delivery log."""

    webhook_id: str
    event_id: str
    event_type: str
    attempt: int
    outcome: str  # "delivered", "failed" or "refused"
    status_code: int | None
    error: str | None
    latency_ms: float | None


def _stored(row: Any) -> StoredEvent:
    return StoredEvent(
        seq=int(row["seq"]),
        id=str(row["id"]),
        type=str(row["type"]),
        namespace=str(row["namespace"]),
        repository=str(row["repository"]),
        owner_id=str(row["owner_id"]),
        created_at=float(row["created_at"]),
        attempts=int(row["attempts"]),
        data=json.loads(row["data"]),
    )


async def repository_identity(conn: DBConnection, repo_id: str) -> tuple[str, str]:
    """(name, owner_id) of the repository, read inside the caller's transaction."""
    row = await conn.fetch_one(
        "SELECT name, owner_id FROM repositories WHERE id = :id", {"id": repo_id}
    )
    if row is None:  # pragma: no cover - every caller holds a row of this repository
        raise RuntimeError(f"event about unknown repository {repo_id!r}")
    return str(row["name"]), str(row["owner_id"])


async def insert_event(
    conn: DBConnection,
    *,
    event_id: str,
    event_type: str,
    repository: str,
    owner_id: str,
    data: dict[str, Any],
    now: float,
) -> None:
    """Write one pending event. Call inside the write transaction that makes the change."""
    await conn.execute(
        "INSERT INTO events (id, type, namespace, repository, owner_id, data, created_at,"
        " status, attempts, next_attempt_at, lease_expires_at) VALUES (:id, :type, :namespace,"
        " :repository, :owner_id, :data, :now, :pending, 0, :now, 0)",
        {
            "id": event_id,
            "type": event_type,
            "namespace": repository.split("/", 1)[0],
            "repository": repository,
            "owner_id": owner_id,
            "data": json.dumps(data, separators=(",", ":"), sort_keys=True),
            "now": now,
            "pending": PENDING,
        },
    )


async def get_event(db: Queryable, event_id: str) -> tuple[StoredEvent, str] | None:
    """An event and its status, by id."""
    row = await executor(db).fetch_one(
        f"SELECT {_COLUMNS}, status FROM events WHERE id = :id",  # noqa: S608
        {"id": event_id},
    )
    return None if row is None else (_stored(row), str(row["status"]))


async def has_due(db: Queryable, now: float) -> bool:
    """Whether any event waits for a dispatcher (a cheap read, no lock)."""
    found = await executor(db).fetch_val(
        f"SELECT 1 FROM events WHERE {_DUE} LIMIT 1",  # noqa: S608
        {"pending": PENDING, "now": now},
    )
    return bool(found)


async def claim_due(
    db: MetadataDB, holder: str, now: float, lease_seconds: float, limit: int
) -> list[StoredEvent]:
    """Lease up to `limit` due events to `holder`, oldest first, and count the attempt."""
    async with db.write() as conn:
        rows = await conn.fetch_all(
            select(_EVENTS.c.id)
            .where(text(_DUE))
            .order_by(_EVENTS.c.seq)
            .limit(limit)
            .with_for_update(skip_locked=True),
            {"pending": PENDING, "now": now},
        )
        if not rows:
            return []
        ids = [str(r["id"]) for r in rows]
        await conn.execute(
            "UPDATE events SET lease_holder = :holder, lease_expires_at = :expires,"
            " attempts = attempts + 1 WHERE id IN :ids",
            {"holder": holder, "expires": now + lease_seconds, "ids": ids},
        )
        claimed = await conn.fetch_all(
            f"SELECT {_COLUMNS} FROM events WHERE id IN :ids ORDER BY seq",  # noqa: S608
            {"ids": ids},
        )
    return [_stored(r) for r in claimed]


async def done_targets(db: Queryable, event_id: str) -> dict[str, str]:
    """Targets of the event that need nothing more: target → DELIVERED or FAILED."""
    rows = await executor(db).fetch_all(
        "SELECT target, status FROM event_targets WHERE event_id = :id AND status <> :pending",
        {"id": event_id, "pending": PENDING},
    )
    return {str(r["target"]): str(r["status"]) for r in rows}


async def settle(
    db: MetadataDB,
    event: StoredEvent,
    holder: str,
    results: Sequence[TargetResult],
    log: Sequence[DeliveryLogEntry],
    *,
    status: str,
    next_attempt_at: float,
    now: float,
    log_keep: int = 100,
) -> bool:
    """Record this attempt's results and the event's new state; False when the lease was lost.

    Target results and the delivery log are kept even then: what was
    delivered stays delivered, whoever finishes the event.
    """
    async with db.write() as conn:
        for result in results:
            await conn.execute(
                "INSERT INTO event_targets (event_id, target, status, attempts, last_error,"
                " updated_at) VALUES (:event, :target, :status, 1, :error, :now)"
                " ON CONFLICT (event_id, target) DO UPDATE SET"
                # Delivered is final: a slower dispatcher cannot take it back.
                " status = CASE WHEN event_targets.status = :delivered"
                " THEN event_targets.status ELSE excluded.status END,"
                " attempts = event_targets.attempts + 1,"
                " last_error = excluded.last_error, updated_at = excluded.updated_at",
                {
                    "event": event.id,
                    "target": result.target,
                    "status": result.status,
                    "error": result.error,
                    "now": now,
                    "delivered": DELIVERED,
                },
            )
        for entry in log:
            await _log_delivery(conn, entry, now, log_keep)
        current = await conn.fetch_val(
            select(_EVENTS.c.lease_holder).where(_EVENTS.c.id == event.id).with_for_update()
        )
        if current != holder:
            return False
        if status == PENDING:
            await conn.execute(
                "UPDATE events SET next_attempt_at = :next, lease_holder = NULL,"
                " lease_expires_at = 0 WHERE id = :id",
                {"id": event.id, "next": next_attempt_at},
            )
        else:
            await conn.execute(
                "UPDATE events SET status = :status, finished_at = :now, lease_holder = NULL,"
                " lease_expires_at = 0 WHERE id = :id",
                {"id": event.id, "status": status, "now": now},
            )
    return True


async def _log_delivery(conn: DBConnection, entry: DeliveryLogEntry, now: float, keep: int) -> None:
    await conn.execute(
        "INSERT INTO webhook_deliveries (webhook_id, event_id, event_type, attempt, outcome,"
        " status_code, error, latency_ms, created_at) VALUES (:webhook, :event, :type,"
        " :attempt, :outcome, :status, :error, :latency, :now)",
        {
            "webhook": entry.webhook_id,
            "event": entry.event_id,
            "type": entry.event_type,
            "attempt": entry.attempt,
            "outcome": entry.outcome,
            "status": entry.status_code,
            "error": entry.error,
            "latency": entry.latency_ms,
            "now": now,
        },
    )
    # Bounded: only the newest `keep` attempts of each webhook are kept.
    await conn.execute(
        "DELETE FROM webhook_deliveries WHERE webhook_id = :webhook AND seq <"
        " (SELECT seq FROM webhook_deliveries WHERE webhook_id = :webhook"
        " ORDER BY seq DESC LIMIT 1 OFFSET :offset)",
        {"webhook": entry.webhook_id, "offset": keep - 1},
    )


async def log_delivery(db: MetadataDB, entry: DeliveryLogEntry, now: float) -> None:
    """Add one attempt to a webhook's log outside any dispatch (the test endpoint)."""
    async with db.write() as conn:
        await _log_delivery(conn, entry, now, 100)


async def pending_count(db: Queryable) -> int:
    value = await executor(db).fetch_val(
        "SELECT COUNT(*) FROM events WHERE status = :pending", {"pending": PENDING}
    )
    return int(value or 0)


async def prune_finished(db: MetadataDB, cutoff: float, limit: int = 500) -> int:
    """Forget up to `limit` events finished before `cutoff`, with their target rows."""
    async with db.write() as conn:
        rows = await conn.fetch_all(
            "SELECT id FROM events WHERE status <> :pending AND finished_at < :cutoff"
            " ORDER BY finished_at LIMIT :limit",
            {"pending": PENDING, "cutoff": cutoff, "limit": limit},
        )
        if not rows:
            return 0
        ids = {"ids": [str(r["id"]) for r in rows]}
        await conn.execute("DELETE FROM event_targets WHERE event_id IN :ids", ids)
        await conn.execute("DELETE FROM events WHERE id IN :ids", ids)
    return len(rows)
