"""Event payloads: CloudEvents 1.0 structured JSON and distribution's notification envelope.

CloudEvents (webhooks with format ``cloudevents`` and every NATS message)::

    {"specversion": "1.0", "id": <event id>, "source": "/ecloud/registry",
     "type": "ecloud.registry.<event type>", "subject": <repository>,
     "time": <RFC 3339>, "datacontenttype": "application/json", "data": {...}}

Distribution (webhooks with format ``distribution``): the envelope
``{"events": [...]}`` of distribution's ``notifications`` package, one event
per envelope, with the fields its consumers read (``action`` push/delete,
``target.repository``/``digest``/``tag``/``mediaType``/``size``/``length``/
``url``, ``request``, ``actor.name``, ``source``). Like distribution, a tag
deletion names the tag and no digest, a manifest deletion the digest and no
tag. Events distribution has no action for (repository created or emptied)
are not sent in that format.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.registry.events.model import (
    MANIFEST_DELETED,
    MANIFEST_PUSHED,
    TAG_DELETED,
    StoredEvent,
)

__all__ = [
    "CLOUDEVENTS_CONTENT_TYPE",
    "CLOUDEVENTS_SOURCE",
    "CLOUDEVENTS_TYPE_PREFIX",
    "DISTRIBUTION_CONTENT_TYPE",
    "SourceRecord",
    "cloudevent",
    "distribution_envelope",
    "encode",
    "rfc3339",
]

CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
DISTRIBUTION_CONTENT_TYPE = "application/vnd.docker.distribution.events.v1+json"
CLOUDEVENTS_SOURCE = "/ecloud/registry"
CLOUDEVENTS_TYPE_PREFIX = "ecloud.registry."

_ACTIONS = {MANIFEST_PUSHED: "push", MANIFEST_DELETED: "delete", TAG_DELETED: "delete"}


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """Which registry process sent the event (distribution's ``source``)."""

    addr: str
    instance_id: str


def rfc3339(timestamp: float, digits: int = 3) -> str:
    moment = datetime.fromtimestamp(timestamp, UTC)
    spec = "milliseconds" if digits == 3 else "microseconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")


def encode(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def cloudevent(event: StoredEvent) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event.id,
        "source": CLOUDEVENTS_SOURCE,
        "type": CLOUDEVENTS_TYPE_PREFIX + event.type,
        "subject": event.repository,
        "time": rfc3339(event.created_at),
        "datacontenttype": "application/json",
        "data": event.data,
    }


def distribution_envelope(event: StoredEvent, source: SourceRecord) -> dict[str, Any] | None:
    """The envelope for `event`, or None when distribution has no such event."""
    action = _ACTIONS.get(event.type)
    if action is None:
        return None
    data = event.data
    target: dict[str, Any] = {"repository": event.repository}
    if event.type == MANIFEST_PUSHED:
        target.update(
            mediaType=data.get("mediaType"),
            size=data.get("size"),
            digest=data.get("digest"),
            length=data.get("size"),
        )
        if data.get("url"):
            target["url"] = data["url"]
        if data.get("tag"):
            target["tag"] = data["tag"]
    elif event.type == MANIFEST_DELETED:
        target["digest"] = data.get("digest")
    else:
        target["tag"] = data.get("tag")
    request = data.get("request") or {}
    actor = data.get("actor") or {}
    record: dict[str, Any] = {
        "id": event.id,
        "timestamp": rfc3339(event.created_at, digits=6),
        "action": action,
        "target": target,
        "request": {
            "id": request.get("id") or "",
            "addr": request.get("addr") or "",
            "host": request.get("host") or "",
            "method": request.get("method") or "",
            "useragent": request.get("userAgent") or "",
        },
        "actor": {"name": actor["name"]} if actor.get("name") else {},
        "source": {"addr": source.addr, "instanceID": source.instance_id},
    }
    return {"events": [record]}
