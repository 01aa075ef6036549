"""Publishing events to NATS JetStream with ``nats-py``.

Each event becomes one message on ``<prefix>.<namespace>.<event type>``
(default prefix ``ecloud.registry``, e.g. ``ecloud.registry.alice.manifest.pushed``)
whose body is the CloudEvents JSON of the event. The event id goes in
``Nats-Msg-Id``, so JetStream drops a re-delivery of the same event inside
its duplicate window (two minutes by default). A namespace containing ``.``
(usernames may) is written with ``%2E`` in its place, since ``.`` separates
subject tokens. The stream (``ECLOUD_EVENTS_NATS_STREAM``) is created on
first use when missing, capturing ``<prefix>.>``; an existing stream is used
as it is. The connection opens on first use and is opened again after it
drops; every failure is reported to the dispatcher, which retries later.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from services.registry.events.formats import CLOUDEVENTS_CONTENT_TYPE
from services.registry.events.model import StoredEvent

if TYPE_CHECKING:
    from nats.aio.client import Client as NatsClient
    from nats.js import JetStreamContext

# nats-py is imported when the first event is published, not when the registry
# starts: it costs a noticeable part of the start-up, and most registries have
# no NATS configured.

__all__ = ["NatsPublisher", "NatsUnavailable", "subject_for"]

logger = logging.getLogger("ecloud.registry.events.nats")


class NatsUnavailable(Exception):
    """The message was not acknowledged by JetStream; the reason is safe to log."""


def subject_for(prefix: str, namespace: str, event_type: str) -> str:
    return f"{prefix}.{namespace.replace('.', '%2E')}.{event_type}"


def _where(url: str) -> str:
    """The server without credentials, for log lines."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 4222}"


class NatsPublisher:
    def __init__(self, url: str, stream: str, prefix: str, timeout: float = 5.0) -> None:
        self.url = url
        self.stream = stream
        self.prefix = prefix
        self.timeout = timeout
        self._client: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._stream_ready = False
        self._lock = asyncio.Lock()

    async def _error(self, exc: Exception) -> None:
        # Failed publishes are logged by the dispatcher; this is the client's chatter.
        logger.debug("NATS at %s: %s", _where(self.url), exc)

    async def _jetstream(self) -> JetStreamContext:
        import nats
        from nats.errors import Error as NatsError

        async with self._lock:
            if self._client is None or self._client.is_closed:
                try:
                    # No reconnection loop inside the client (nats-py retries even
                    # the first connection up to max_reconnect_attempts times): a
                    # connection that drops is closed, and replaced here at the
                    # next publish; the dispatcher's backoff paces the attempts.
                    self._client = await asyncio.wait_for(
                        nats.connect(
                            self.url,
                            name="ecloud-registry",
                            connect_timeout=self.timeout,
                            allow_reconnect=False,
                            max_reconnect_attempts=1,
                            reconnect_time_wait=0.5,
                            error_cb=self._error,
                        ),
                        self.timeout * 3,
                    )
                except (TimeoutError, NatsError, OSError) as exc:
                    self._client = None
                    raise NatsUnavailable(f"cannot connect to {_where(self.url)}: {exc}") from exc
                self._js = self._client.jetstream(timeout=self.timeout)
                self._stream_ready = False
            assert self._js is not None
            if not self._stream_ready:
                await self._ensure_stream(self._js)
                self._stream_ready = True
            return self._js

    async def _ensure_stream(self, js: JetStreamContext) -> None:
        from nats.errors import Error as NatsError
        from nats.js.errors import Error as JetStreamError
        from nats.js.errors import NotFoundError

        try:
            await js.stream_info(self.stream)
            return
        except NotFoundError:
            pass
        except (TimeoutError, NatsError, JetStreamError) as exc:
            raise NatsUnavailable(f"JetStream is not answering: {exc}") from exc
        try:
            await js.add_stream(name=self.stream, subjects=[f"{self.prefix}.>"])
            logger.info("created JetStream stream %s for %s.>", self.stream, self.prefix)
        except (TimeoutError, NatsError, JetStreamError) as exc:
            # Another replica may have created it just now.
            try:
                await js.stream_info(self.stream)
            except (TimeoutError, NatsError, JetStreamError):
                raise NatsUnavailable(f"cannot create stream {self.stream}: {exc}") from exc

    async def publish(self, event: StoredEvent, body: bytes) -> None:
        from nats.errors import Error as NatsError
        from nats.js.errors import Error as JetStreamError

        js = await self._jetstream()
        subject = subject_for(self.prefix, event.namespace, event.type)
        try:
            await js.publish(
                subject,
                body,
                timeout=self.timeout,
                stream=self.stream,
                headers={"Nats-Msg-Id": event.id, "Content-Type": CLOUDEVENTS_CONTENT_TYPE},
            )
        except (TimeoutError, NatsError, JetStreamError) as exc:
            # The stream may have been deleted under us: check it again next time.
            self._stream_ready = False
            raise NatsUnavailable(f"publish to {subject} not acknowledged: {exc!r}") from exc

    async def close(self) -> None:
        from nats.errors import Error as NatsError

        async with self._lock:
            if self._client is not None and not self._client.is_closed:
                try:
                    await self._client.drain()
                except (TimeoutError, NatsError):
                    await self._client.close()
            self._client = None
