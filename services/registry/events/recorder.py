"""Writing events into the outbox from inside the transactions that change content.

Metadata functions that change content take an optional `EventRecorder`
and call `EventRecorder.record` with their open connection, so the event row
commits or rolls back with the change. They open that transaction through
`recorded_write`, which tells the recorder when it committed; only then are
the events counted and the dispatcher of this process woken (other
processes find them by polling).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from services.registry.events.model import Origin
from services.registry.metadata.outbox import insert_event, repository_identity
from shared.database import DBConnection, MetadataDB

__all__ = ["EventRecorder", "recorded_write"]


class EventRecorder:
    """Records the events of one unit of work (a request, a GC deletion) for one `Origin`."""

    def __init__(
        self,
        origin: Origin,
        on_commit: Callable[[Sequence[str]], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.origin = origin
        self._on_commit = on_commit
        self._clock = clock
        self._uncommitted: list[str] = []

    async def record(self, conn: DBConnection, event_type: str, repo_id: str, **fields: Any) -> str:
        """Write one event about repository `repo_id` inside `conn`'s transaction; its id."""
        repository, owner_id = await repository_identity(conn, repo_id)
        event_id = str(uuid.uuid4())
        data: dict[str, Any] = {
            "repository": repository,
            "namespace": repository.split("/", 1)[0],
            **{k: v for k, v in fields.items() if v is not None},
            "actor": self.origin.actor.to_json(),
        }
        digest = fields.get("digest")
        if self.origin.base_url and isinstance(digest, str) and event_type.startswith("manifest"):
            data["url"] = f"{self.origin.base_url}/v2/{repository}/manifests/{digest}"
        request = self.origin.request_json()
        if request is not None:
            data["request"] = request
        await insert_event(
            conn,
            event_id=event_id,
            event_type=event_type,
            repository=repository,
            owner_id=owner_id,
            data=data,
            now=self._clock(),
        )
        self._uncommitted.append(event_type)
        return event_id

    def committed(self) -> None:
        """The transaction holding the recorded events committed."""
        types, self._uncommitted = self._uncommitted, []
        if types and self._on_commit is not None:
            self._on_commit(types)

    def rolled_back(self) -> None:
        self._uncommitted = []


@asynccontextmanager
async def recorded_write(
    db: MetadataDB, events: EventRecorder | None
) -> AsyncIterator[DBConnection]:
    """``db.write()`` that tells `events` whether its transaction committed."""
    try:
        async with db.write() as conn:
            yield conn
    except BaseException:
        if events is not None:
            events.rolled_back()
        raise
    if events is not None:
        events.committed()
