"""The dispatcher: claims due events from the outbox and delivers them, at least once.

One runs as a task in every registry process (unless ``ECLOUD_EVENTS_DISPATCH``
is off); ``ecloud-registry events deliver`` runs one pass by hand. Several may
run against one database: a lease on each event (``metadata.outbox``) lets
exactly one of them work on it at a time, so in the normal case each event
reaches each target once. Why never less than once:

* the event row commits with the change, and stays pending until every
  target has it or has been given up;
* a dispatcher records what each target got, and only then finishes the
  event or schedules a retry, in one transaction;
* a dispatcher that dies (SIGKILL, crash, lost machine) holds its leases
  until they expire; another then claims those events and delivers again
  what was not recorded as delivered. A delivery whose answer was lost with
  the process is repeated: receivers de-duplicate by event id.

Retries: after the n-th failed attempt of an event, its next attempt waits
``retry_base * 2**(n-1)`` seconds (at most ``retry_max``), scaled by a
random factor in [0.5, 1) so that replicas and endpoints do not retry in
lockstep. An event still undelivered when it is older than ``max_age`` is
marked failed for the targets that still lack it. A per-user webhook whose
address is refused is failed at once: retrying cannot change the policy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

from services.registry.context import RegistryMetrics
from services.registry.events.formats import SourceRecord
from services.registry.events.http_sender import WebhookSender
from services.registry.events.model import StoredEvent
from services.registry.events.nats_sink import NatsPublisher, NatsUnavailable
from services.registry.events.secretbox import SecretBox
from services.registry.events.targets import Target, render, targets_for
from services.registry.metadata import outbox
from services.registry.metadata.outbox import (
    DELIVERED,
    FAILED,
    PENDING,
    DeliveryLogEntry,
    TargetResult,
)
from services.registry.settings import EventSettings
from shared.database import MetadataDB

__all__ = ["Dispatcher", "retry_delay"]

logger = logging.getLogger("ecloud.registry.events")

_BATCH = 20
_MAX_BATCHES_PER_PASS = 50
_DEPTH_EVERY = 5.0
_PRUNE_EVERY = 60.0


def retry_delay(attempt: int, base: float, cap: float, rng: Callable[[], float]) -> float:
    """Seconds before the attempt after the `attempt`-th (1-based) failed one."""
    exponential = min(cap, base * 2.0 ** min(max(attempt - 1, 0), 30))
    return exponential * (0.5 + rng() / 2)


@dataclass(frozen=True, slots=True)
class _Outcome:
    result: TargetResult
    log: DeliveryLogEntry | None
    kind: str
    attempted: bool = True


class Dispatcher:
    def __init__(
        self,
        db: MetadataDB,
        settings: EventSettings,
        metrics: RegistryMetrics,
        box: SecretBox,
        sender: WebhookSender,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.db = db
        self.settings = settings
        self.metrics = metrics
        self.box = box
        self.sender = sender
        self.clock = clock
        self.rng = rng
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.source = SourceRecord(addr=socket.gethostname(), instance_id=str(uuid.uuid4()))
        self.nats: NatsPublisher | None = None
        if settings.nats_url:
            self.nats = NatsPublisher(
                settings.nats_url, settings.nats_stream, settings.nats_subject_prefix
            )
        self._wake = asyncio.Event()
        self._depth_at = 0.0
        self._pruned_at = 0.0

    def wake(self) -> None:
        self._wake.set()

    # -- the loop ---------------------------------------------------------------

    async def run_forever(self) -> None:
        """Deliver until cancelled; then hand back the leases of unfinished work."""
        try:
            while True:
                handled = 0
                try:
                    handled = await self.run_once()
                    await self._housekeeping()
                except Exception:
                    logger.exception("event dispatch failed; trying again shortly")
                if handled:
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.poll_seconds)
                self._wake.clear()
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._release_leases())

    async def run_once(self) -> int:
        """Claim and deliver what is due now; the number of events worked on."""
        handled = 0
        for _ in range(_MAX_BATCHES_PER_PASS):
            now = self.clock()
            if not await outbox.has_due(self.db, now):
                break
            batch = await outbox.claim_due(
                self.db, self.holder, now, self.settings.lease_seconds, _BATCH
            )
            if not batch:
                break
            await asyncio.gather(*(self._dispatch(event) for event in batch))
            handled += len(batch)
        return handled

    async def close(self) -> None:
        if self.nats is not None:
            await self.nats.close()

    async def _release_leases(self) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                "UPDATE events SET lease_holder = NULL, lease_expires_at = 0"
                " WHERE lease_holder = :holder AND status = :pending",
                {"holder": self.holder, "pending": PENDING},
            )

    async def _housekeeping(self) -> None:
        now = self.clock()
        if now - self._depth_at >= _DEPTH_EVERY:
            self._depth_at = now
            self.metrics.event_outbox_depth.set(await outbox.pending_count(self.db))
        if now - self._pruned_at >= _PRUNE_EVERY:
            self._pruned_at = now
            await outbox.prune_finished(self.db, now - self.settings.retention)

    # -- one event --------------------------------------------------------------

    async def _dispatch(self, event: StoredEvent) -> None:
        try:
            targets = await targets_for(self.db, self.settings, self.box, event)
            done = await outbox.done_targets(self.db, event.id)
            todo = [t for t in targets if t.key not in done]
            outcomes = await self._deliver_all(event, todo)
            await self._settle(event, outcomes, done)
        except Exception:
            # Nothing settled: the lease expires and the event is tried again.
            logger.exception("dispatching event %s failed", event.id)

    async def _deliver_all(self, event: StoredEvent, todo: list[Target]) -> list[_Outcome]:
        bodies: dict[str, tuple[bytes, str] | None] = {}
        tasks = {
            asyncio.ensure_future(self._deliver(event, target, bodies)): target for target in todo
        }
        if not tasks:
            return []
        # Settle well before the lease runs out, even if an endpoint hangs.
        budget = max(self.settings.lease_seconds * 0.75, self.settings.lease_seconds - 10)
        finished, unfinished = await asyncio.wait(tasks, timeout=budget)
        for task in unfinished:
            task.cancel()
        outcomes = [task.result() for task in finished]
        for task in unfinished:
            target = tasks[task]
            error = "delivery took longer than the dispatch lease"
            outcomes.append(_Outcome(TargetResult(target.key, PENDING, error), None, target.kind))
        return outcomes

    async def _deliver(
        self,
        event: StoredEvent,
        target: Target,
        bodies: dict[str, tuple[bytes, str] | None],
    ) -> _Outcome:
        if target.kind == "nats":
            assert self.nats is not None
            body, _ = self._body(event, "cloudevents", bodies) or (b"", "")
            try:
                await self.nats.publish(event, body)
            except NatsUnavailable as exc:
                logger.warning("event %s not published to NATS: %s", event.id, exc)
                return _Outcome(TargetResult(target.key, PENDING, str(exc)[:500]), None, "nats")
            return _Outcome(TargetResult(target.key, DELIVERED), None, "nats")
        if target.endpoint is None:
            error = target.problem or "no endpoint"
            log = DeliveryLogEntry(
                target.key, event.id, event.type, event.attempts, "failed", None, error, None
            )
            return _Outcome(TargetResult(target.key, PENDING, error), log, "webhook")
        rendered = self._body(event, target.endpoint.format, bodies)
        if rendered is None:  # the format has no such event
            return _Outcome(TargetResult(target.key, DELIVERED), None, "webhook", attempted=False)
        body, content_type = rendered
        sent = await self.sender.send(target.endpoint, body, content_type, event.id, event.type)
        if sent.delivered:
            status, outcome = DELIVERED, "delivered"
        elif sent.refused:
            status, outcome = FAILED, "refused"
        else:
            status, outcome = PENDING, "failed"
        log = DeliveryLogEntry(
            webhook_id=target.key,
            event_id=event.id,
            event_type=event.type,
            attempt=event.attempts,
            outcome=outcome,
            status_code=sent.status_code,
            error=sent.error,
            latency_ms=round(sent.latency * 1000, 1),
        )
        if not sent.delivered:
            logger.warning(
                "event %s to webhook %s: attempt %d %s",
                event.id,
                target.key,
                event.attempts,
                sent.error,
            )
        return _Outcome(TargetResult(target.key, status, sent.error), log, "webhook")

    def _body(
        self, event: StoredEvent, fmt: str, bodies: dict[str, tuple[bytes, str] | None]
    ) -> tuple[bytes, str] | None:
        if fmt not in bodies:
            bodies[fmt] = render(event, fmt, self.source)
        return bodies[fmt]

    async def _settle(
        self, event: StoredEvent, outcomes: list[_Outcome], done: dict[str, str]
    ) -> None:
        now = self.clock()
        expired = now - event.created_at >= self.settings.max_age
        if expired:
            outcomes = [
                replace(o, result=replace(o.result, status=FAILED))
                if o.result.status == PENDING
                else o
                for o in outcomes
            ]
        results = [o.result for o in outcomes]
        if any(r.status == PENDING for r in results):
            status = PENDING
            delay = retry_delay(
                event.attempts, self.settings.retry_base, self.settings.retry_max, self.rng
            )
            next_attempt = now + delay
        else:
            failed = any(r.status == FAILED for r in results) or FAILED in done.values()
            status, next_attempt = (FAILED if failed else DELIVERED), now
        kept = await outbox.settle(
            self.db,
            event,
            self.holder,
            results,
            [o.log for o in outcomes if o.log is not None],
            status=status,
            next_attempt_at=next_attempt,
            now=now,
        )
        if not kept:
            logger.warning("lost the lease of event %s while delivering it", event.id)
        self._count(event, outcomes, now)
        if status == FAILED:
            logger.error(
                "event %s (%s %s) could not be delivered to every target: %s",
                event.id,
                event.type,
                event.repository,
                "; ".join(f"{r.target}: {r.error}" for r in results if r.status == FAILED),
            )

    def _count(self, event: StoredEvent, outcomes: list[_Outcome], now: float) -> None:
        m = self.metrics
        for o in outcomes:
            if not o.attempted:
                continue
            status = o.result.status
            outcome = {DELIVERED: "delivered", FAILED: "failed"}.get(status, "retry")
            m.event_attempts.inc(target=o.kind, outcome=outcome)
            if status == DELIVERED:
                m.events_delivered.inc(target=o.kind)
                m.event_delivery_seconds.observe(max(now - event.created_at, 0.0), target=o.kind)
            elif status == FAILED:
                m.events_failed.inc(target=o.kind)
