"""Per-user webhooks and their delivery log.

A webhook belongs to one user (``owner_id``) and receives the events of the
repositories that user owns, from its creation on. Its secret is stored
only as ``secret_box`` (encrypted by ``services.registry.events.secretbox``);
nothing here ever returns it in clear.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.registry.metadata.sql import Queryable, executor
from shared.database import MetadataDB

__all__ = [
    "Delivery",
    "Webhook",
    "WebhookLimitReached",
    "create_webhook",
    "delete_webhook",
    "get_webhook",
    "last_delivery",
    "list_deliveries",
    "list_webhooks",
    "webhooks_for_owner",
]

_COLUMNS = "id, owner_id, namespace, url, format, secret_box, created_at"


class WebhookLimitReached(Exception):
    """The user already has the maximum number of webhooks."""


@dataclass(frozen=True, slots=True)
class Webhook:
    id: str
    owner_id: str
    namespace: str
    url: str
    format: str
    created_at: float
    secret_box: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One attempt in a webhook's delivery log."""

    event_id: str
    event_type: str
    attempt: int
    outcome: str
    status_code: int | None
    error: str | None
    latency_ms: float | None
    created_at: float


def _webhook(row: Any) -> Webhook:
    return Webhook(
        id=str(row["id"]),
        owner_id=str(row["owner_id"]),
        namespace=str(row["namespace"]),
        url=str(row["url"]),
        format=str(row["format"]),
        created_at=float(row["created_at"]),
        secret_box=str(row["secret_box"]),
    )


def _delivery(row: Any) -> Delivery:
    return Delivery(
        event_id=str(row["event_id"]),
        event_type=str(row["event_type"]),
        attempt=int(row["attempt"]),
        outcome=str(row["outcome"]),
        status_code=None if row["status_code"] is None else int(row["status_code"]),
        error=row["error"],
        latency_ms=None if row["latency_ms"] is None else float(row["latency_ms"]),
        created_at=float(row["created_at"]),
    )


async def create_webhook(db: MetadataDB, webhook: Webhook, limit: int) -> None:
    """Store `webhook`; `WebhookLimitReached` when its owner already has `limit` of them."""
    async with db.write() as conn:
        count = await conn.fetch_val(
            "SELECT COUNT(*) FROM webhooks WHERE owner_id = :owner", {"owner": webhook.owner_id}
        )
        if int(count or 0) >= limit:
            raise WebhookLimitReached(f"at most {limit} webhooks per user")
        await conn.execute(
            f"INSERT INTO webhooks ({_COLUMNS}) VALUES (:id, :owner_id, :namespace, :url,"  # noqa: S608
            " :format, :secret_box, :created_at)",
            {
                "id": webhook.id,
                "owner_id": webhook.owner_id,
                "namespace": webhook.namespace,
                "url": webhook.url,
                "format": webhook.format,
                "secret_box": webhook.secret_box,
                "created_at": webhook.created_at,
            },
        )


async def list_webhooks(db: Queryable, owner_id: str) -> list[Webhook]:
    rows = await executor(db).fetch_all(
        f"SELECT {_COLUMNS} FROM webhooks WHERE owner_id = :owner"  # noqa: S608
        " ORDER BY created_at, id",
        {"owner": owner_id},
    )
    return [_webhook(r) for r in rows]


async def webhooks_for_owner(db: Queryable, owner_id: str, created_by: float) -> list[Webhook]:
    """The owner's webhooks that existed at `created_by` (an event's time)."""
    rows = await executor(db).fetch_all(
        f"SELECT {_COLUMNS} FROM webhooks WHERE owner_id = :owner"  # noqa: S608
        " AND created_at <= :at ORDER BY id",
        {"owner": owner_id, "at": created_by},
    )
    return [_webhook(r) for r in rows]


async def get_webhook(db: Queryable, owner_id: str, webhook_id: str) -> Webhook | None:
    """The webhook when it exists and belongs to `owner_id`."""
    row = await executor(db).fetch_one(
        f"SELECT {_COLUMNS} FROM webhooks WHERE id = :id AND owner_id = :owner",  # noqa: S608
        {"id": webhook_id, "owner": owner_id},
    )
    return None if row is None else _webhook(row)


async def delete_webhook(db: MetadataDB, owner_id: str, webhook_id: str) -> bool:
    """Remove the owner's webhook and its log; False when it is not theirs or absent."""
    async with db.write() as conn:
        found = await conn.fetch_val(
            "SELECT 1 FROM webhooks WHERE id = :id AND owner_id = :owner",
            {"id": webhook_id, "owner": owner_id},
        )
        if not found:
            return False
        await conn.execute("DELETE FROM webhooks WHERE id = :id", {"id": webhook_id})
        await conn.execute(
            "DELETE FROM webhook_deliveries WHERE webhook_id = :id", {"id": webhook_id}
        )
    return True


async def list_deliveries(db: Queryable, webhook_id: str, limit: int) -> list[Delivery]:
    """The newest attempts first."""
    rows = await executor(db).fetch_all(
        "SELECT event_id, event_type, attempt, outcome, status_code, error, latency_ms,"
        " created_at FROM webhook_deliveries WHERE webhook_id = :id ORDER BY seq DESC"
        " LIMIT :limit",
        {"id": webhook_id, "limit": limit},
    )
    return [_delivery(r) for r in rows]


async def last_delivery(db: Queryable, webhook_id: str) -> Delivery | None:
    found = await list_deliveries(db, webhook_id, 1)
    return found[0] if found else None
