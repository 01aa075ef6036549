"""Where an event goes: NATS, the operator's webhooks, the owner's webhooks; and the bodies.

The targets of an event are worked out each time it is dispatched: NATS
when configured; every operator webhook (``ECLOUD_WEBHOOKS``); and every
webhook of the repository's owner that existed when the event happened, so
a user's webhook only ever sees that user's events. A webhook in the
``distribution`` format is not a target of events distribution has no
action for.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from services.registry.events.formats import (
    CLOUDEVENTS_CONTENT_TYPE,
    CLOUDEVENTS_SOURCE,
    CLOUDEVENTS_TYPE_PREFIX,
    DISTRIBUTION_CONTENT_TYPE,
    SourceRecord,
    cloudevent,
    distribution_envelope,
    encode,
    rfc3339,
)
from services.registry.events.http_sender import Endpoint, SendResult, WebhookSender
from services.registry.events.model import TEST_EVENT, StoredEvent
from services.registry.events.secretbox import SecretBox, SecretBoxError
from services.registry.metadata.webhooks import Webhook, webhooks_for_owner
from services.registry.settings import EventSettings
from shared.database import MetadataDB

__all__ = [
    "NATS_TARGET",
    "Target",
    "render",
    "send_test",
    "targets_for",
    "user_endpoint",
]

NATS_TARGET = "nats"
_DISTRIBUTION_TYPES = ("manifest.pushed", "manifest.deleted", "tag.deleted")


@dataclass(frozen=True, slots=True)
class Target:
    """One destination of one event. `problem` set: it cannot be attempted now."""

    key: str
    kind: str  # "nats" or "webhook"
    endpoint: Endpoint | None = None
    problem: str | None = None


def _wants(fmt: str, event_type: str) -> bool:
    return fmt != "distribution" or event_type in _DISTRIBUTION_TYPES


def user_endpoint(hook: Webhook, box: SecretBox) -> Endpoint:
    """The endpoint of a user's webhook; raises `SecretBoxError` when its secret will not open."""
    return Endpoint(hook.id, hook.url, hook.format, box.open(hook.secret_box, hook.id))


async def targets_for(
    db: MetadataDB, settings: EventSettings, box: SecretBox, event: StoredEvent
) -> list[Target]:
    targets: list[Target] = []
    if settings.nats_url:
        targets.append(Target(NATS_TARGET, "nats"))
    for op in settings.webhooks:
        if _wants(op.format, event.type):
            endpoint = Endpoint(op.target, op.url, op.format, op.secret, restricted=False)
            targets.append(Target(op.target, "webhook", endpoint))
    for hook in await webhooks_for_owner(db, event.owner_id, event.created_at):
        if not _wants(hook.format, event.type):
            continue
        try:
            targets.append(Target(hook.id, "webhook", user_endpoint(hook, box)))
        except SecretBoxError as exc:
            targets.append(Target(hook.id, "webhook", problem=str(exc)))
    return targets


def render(event: StoredEvent, fmt: str, source: SourceRecord) -> tuple[bytes, str] | None:
    """(body, content type) of `event` in `fmt`; None when the format has no such event."""
    if fmt == "distribution":
        envelope = distribution_envelope(event, source)
        return None if envelope is None else (encode(envelope), DISTRIBUTION_CONTENT_TYPE)
    return encode(cloudevent(event)), CLOUDEVENTS_CONTENT_TYPE


async def send_test(
    sender: WebhookSender, endpoint: Endpoint, namespace: str
) -> tuple[str, SendResult]:
    """Send a test delivery to `endpoint` now; (its event id, the outcome).

    CloudEvents endpoints get an ``ecloud.registry.webhook.test`` event;
    distribution endpoints an envelope with no events, which its consumers
    accept and ignore. Both are signed like any delivery.
    """
    event_id = str(uuid.uuid4())
    if endpoint.format == "distribution":
        body, content_type = encode({"events": []}), DISTRIBUTION_CONTENT_TYPE
    else:
        document = {
            "specversion": "1.0",
            "id": event_id,
            "source": CLOUDEVENTS_SOURCE,
            "type": CLOUDEVENTS_TYPE_PREFIX + TEST_EVENT,
            "subject": namespace,
            "time": rfc3339(time.time()),
            "datacontenttype": "application/json",
            "data": {"webhook": endpoint.key, "namespace": namespace},
        }
        body, content_type = encode(document), CLOUDEVENTS_CONTENT_TYPE
    result = await sender.send(endpoint, body, content_type, event_id, TEST_EVENT)
    return event_id, result
