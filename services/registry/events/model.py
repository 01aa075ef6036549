"""What an event is: its types, who caused it (`Actor`), where it came from (`Origin`).

An event row holds the repository, its owner, the type and a JSON ``data``
object; `StoredEvent` is that row as the dispatcher reads it back. ``data``
is exactly what the CloudEvents payload carries as ``data``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "EVENT_TYPES",
    "FORMATS",
    "MANIFEST_DELETED",
    "MANIFEST_PUSHED",
    "REPOSITORY_CREATED",
    "REPOSITORY_EMPTIED",
    "TAG_DELETED",
    "TEST_EVENT",
    "Actor",
    "Origin",
    "StoredEvent",
]

MANIFEST_PUSHED = "manifest.pushed"
MANIFEST_DELETED = "manifest.deleted"
TAG_DELETED = "tag.deleted"
REPOSITORY_CREATED = "repository.created"
REPOSITORY_EMPTIED = "repository.emptied"
EVENT_TYPES = (
    MANIFEST_PUSHED,
    MANIFEST_DELETED,
    TAG_DELETED,
    REPOSITORY_CREATED,
    REPOSITORY_EMPTIED,
)
# Sent by ``POST /api/webhooks/{id}/test`` only; never stored in the outbox.
TEST_EVENT = "webhook.test"

# Body formats a webhook can ask for.
FORMATS = ("cloudevents", "distribution")


@dataclass(frozen=True, slots=True)
class Actor:
    """Who caused an event: a user, a user's service account, or the registry itself."""

    kind: str  # "user", "service_account" or "system"
    user_id: str | None = None
    username: str | None = None
    service_account_id: str | None = None
    service_account_name: str | None = None
    name: str | None = None  # for "system": which part of the registry (e.g. "gc")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.kind}
        if self.kind == "system":
            out["name"] = self.name
            return out
        out["id"] = self.user_id
        out["name"] = self.username
        if self.kind == "service_account":
            out["serviceAccount"] = {
                "id": self.service_account_id,
                "name": self.service_account_name,
            }
        return out

    @property
    def display_name(self) -> str | None:
        """The name distribution's ``actor.name`` carries: the username, or the system part."""
        return self.name if self.kind == "system" else self.username


@dataclass(frozen=True, slots=True)
class Origin:
    """The actor and the request behind the events of one unit of work.

    `base_url` (scheme and host the client used) builds the links
    distribution's envelope carries; None outside a request (the GC).
    """

    actor: Actor
    request_id: str | None = None
    client_addr: str | None = None
    host: str | None = None
    method: str | None = None
    user_agent: str | None = None
    base_url: str | None = None

    def request_json(self) -> dict[str, Any] | None:
        if self.request_id is None and self.method is None:
            return None
        return {
            "id": self.request_id,
            "addr": self.client_addr,
            "host": self.host,
            "method": self.method,
            "userAgent": self.user_agent,
        }


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One outbox row as the dispatcher sees it."""

    seq: int
    id: str
    type: str
    namespace: str
    repository: str
    owner_id: str
    created_at: float
    attempts: int
    data: dict[str, Any] = field(default_factory=dict)
