"""Per-process glue between requests and the outbox: recorders, counting, waking.

Routes ask `EventHub.for_request` for a recorder carrying the caller and
the request (`Origin`); the garbage collector asks `EventHub.for_system`.
When a recorder's transaction commits, the hub counts the events written
and wakes this process's dispatcher, so delivery starts at once; other
processes find the events when they next poll.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from starlette.requests import Request

from services.registry.auth import Caller
from services.registry.events.model import Actor, Origin
from services.registry.events.recorder import EventRecorder
from shared.metrics import Counter
from shared.requestid import current_request_id

__all__ = ["EventHub", "actor_of", "origin_of"]

_HOST = re.compile(r"[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?")
_MAX_USER_AGENT = 256


def actor_of(caller: Caller) -> Actor:
    if caller.service_account is not None:
        return Actor(
            kind="service_account",
            user_id=caller.subject,
            username=caller.username,
            service_account_id=caller.service_account,
            service_account_name=caller.service_account_name,
        )
    return Actor(kind="user", user_id=caller.subject, username=caller.username)


def origin_of(request: Request, actor: Actor) -> Origin:
    host = request.headers.get("host", "")
    if not _HOST.fullmatch(host):
        host = ""  # a Host header we would not put in a link
    return Origin(
        actor=actor,
        request_id=current_request_id(),
        client_addr=request.client.host if request.client else None,
        host=host or None,
        method=request.method,
        user_agent=request.headers.get("user-agent", "")[:_MAX_USER_AGENT] or None,
        base_url=f"{request.url.scheme}://{host}" if host else None,
    )


class EventHub:
    def __init__(self, written: Counter) -> None:
        self._written = written
        self._wakers: list[Callable[[], None]] = []

    def subscribe(self, wake: Callable[[], None]) -> None:
        """Call `wake` whenever events of this process committed."""
        self._wakers.append(wake)

    def _committed(self, types: Sequence[str]) -> None:
        for event_type in types:
            self._written.inc(type=event_type)
        for wake in self._wakers:
            wake()

    def for_request(self, request: Request, caller: Caller) -> EventRecorder:
        return EventRecorder(origin_of(request, actor_of(caller)), self._committed)

    def for_system(self, name: str) -> EventRecorder:
        return EventRecorder(Origin(actor=Actor(kind="system", name=name)), self._committed)
