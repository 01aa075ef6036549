"""Per-user webhooks: ``/api/webhooks`` (list, create), ``/api/webhooks/{id}`` (get, delete),
``/api/webhooks/{id}/test`` (send a signed test delivery now) and
``/api/webhooks/{id}/deliveries`` (the delivery log: last attempts, status, latency).

Only a login session may manage webhooks (they concern the whole account,
which no registry token's scopes describe): anything else is refused with
403 DENIED, no token at all with the usual 401. A user sees and touches only
their own webhooks; someone else's id answers 404 like a missing one. A
webhook receives the events of the repositories its owner owns.

The secret signs every delivery. The caller may choose it (16 to 256
characters) or let the registry generate one; it is returned once, in the
creation's answer, and stored only encrypted (``events.secretbox``).
Unless the operator allows private addresses, a URL whose host is or
resolves to a loopback, private or link-local address is refused here, and
again at each delivery (``events.addresses``).
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.registry.access import authenticate
from services.registry.audit_trail import audit_denied
from services.registry.auth import Caller
from services.registry.context import RegistryContext
from services.registry.errors import RegistryError
from services.registry.events.addresses import AddressRefused, resolve_checked
from services.registry.events.formats import rfc3339
from services.registry.events.model import FORMATS, TEST_EVENT
from services.registry.events.secretbox import SecretBoxError
from services.registry.events.targets import send_test, user_endpoint
from services.registry.metadata.outbox import DeliveryLogEntry, log_delivery
from services.registry.metadata.webhooks import (
    Delivery,
    Webhook,
    WebhookLimitReached,
    create_webhook,
    delete_webhook,
    get_webhook,
    last_delivery,
    list_deliveries,
    list_webhooks,
)
from shared import strictjson
from shared.audit import audit
from shared.numbers import saturating_int

__all__ = ["MAX_WEBHOOKS", "routes"]

MAX_WEBHOOKS = 20
MAX_URL_LENGTH = 2048
MAX_BODY_BYTES = 16 * 1024
_ID = re.compile(r"wh_[0-9a-f]{24}")
_SECRET = re.compile(r"[\x21-\x7e]{16,256}")


def _ctx(request: Request) -> RegistryContext:
    ctx: RegistryContext = request.app.state.ctx
    return ctx


def _bad(message: str, detail: Any = None) -> RegistryError:
    return RegistryError("UNSUPPORTED", message, detail, status=400)


async def _session(request: Request) -> Caller:
    caller = await authenticate(request)
    if caller.kind != "session" or not caller.username:
        audit_denied(request, "session_required", caller=caller)
        raise RegistryError(
            "DENIED",
            "webhooks are managed with a login session (ec auth login), not a registry token",
        )
    return caller


def _when(timestamp: float | None) -> str | None:
    return None if timestamp is None else rfc3339(timestamp)


def _delivery_json(d: Delivery) -> dict[str, Any]:
    return {
        "event_id": d.event_id,
        "event_type": d.event_type,
        "attempt": d.attempt,
        "outcome": d.outcome,
        "status_code": d.status_code,
        "error": d.error,
        "latency_ms": d.latency_ms,
        "at": _when(d.created_at),
    }


def _webhook_json(hook: Webhook, last: Delivery | None = None) -> dict[str, Any]:
    return {
        "id": hook.id,
        "url": hook.url,
        "format": hook.format,
        "namespace": hook.namespace,
        "created_at": _when(hook.created_at),
        "last_delivery": None if last is None else _delivery_json(last),
    }


async def _own(request: Request, caller: Caller) -> Webhook:
    webhook_id: str = request.path_params["id"]
    hook = None
    if _ID.fullmatch(webhook_id):
        hook = await get_webhook(_ctx(request).db, caller.subject, webhook_id)
    if hook is None:
        raise RegistryError(
            "NAME_UNKNOWN", f"webhook {webhook_id[:40]} does not exist", {"id": webhook_id[:40]}
        )
    return hook


async def _json_body(request: Request) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ("application/json", ""):
        raise RegistryError("UNSUPPORTED", "send the webhook as application/json")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise _bad(f"the request body exceeds {MAX_BODY_BYTES} bytes")
    try:
        # Bounded nesting and numbers, no NUL or lone surrogate: never a 500.
        document = strictjson.loads(bytes(body) or b"null", unique_keys=True)
    except strictjson.JSONRejected as exc:
        raise _bad(f"the request body is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise _bad('expected a JSON object such as {"url": "https://…", "format": "cloudevents"}')
    return document


def _check_url(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise _bad("url is required: the http:// or https:// address to deliver events to")
    if len(value) > MAX_URL_LENGTH:
        raise _bad(f"url is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise _bad("url is not a valid URL") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _bad("url must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise _bad("url must not carry credentials (user:password@); use the signature")
    if parts.fragment:
        raise _bad("url must not have a #fragment")
    if any(ord(c) < 0x21 or ord(c) > 0x7E for c in value):
        raise _bad("url must be plain ASCII without spaces (percent-encode the rest)")
    if port == 0:
        raise _bad("url has an invalid port")
    return value


async def _check_address(ctx: RegistryContext, url: str) -> None:
    if ctx.settings.events.allow_private:
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        await resolve_checked(host, port, False, ctx.settings.events.webhook_timeout)
    except AddressRefused as exc:
        raise RegistryError(
            "DENIED",
            f"webhook refused: {exc}; this registry only calls public addresses",
            {"host": host},
        ) from exc
    except OSError as exc:
        raise _bad(f"webhook refused: cannot resolve {host}", {"host": host}) from exc


async def list_hooks(request: Request) -> Response:
    caller = await _session(request)
    db = _ctx(request).db
    hooks = await list_webhooks(db, caller.subject)
    return JSONResponse(
        {"webhooks": [_webhook_json(h, await last_delivery(db, h.id)) for h in hooks]}
    )


async def create_hook(request: Request) -> Response:
    caller = await _session(request)
    ctx = _ctx(request)
    document = await _json_body(request)
    unknown = set(document) - {"url", "format", "secret"}
    if unknown:
        raise _bad(f"unknown fields {sorted(unknown)[:5]}: expected url, format, secret")
    url = _check_url(document.get("url"))
    fmt = document.get("format", "cloudevents")
    if fmt not in FORMATS:
        raise _bad(f"format must be one of {', '.join(FORMATS)}")
    secret = document.get("secret")
    if secret is None:
        secret = "whsec_" + secrets.token_urlsafe(32)
    elif not isinstance(secret, str) or not _SECRET.fullmatch(secret):
        raise _bad("secret must be 16 to 256 printable ASCII characters without spaces")
    await _check_address(ctx, url)
    webhook_id = "wh_" + secrets.token_hex(12)
    try:
        box = ctx.secret_box.seal(secret, webhook_id)
    except SecretBoxError as exc:
        raise RegistryError("UNAVAILABLE", "webhook secrets cannot be stored right now") from exc
    assert caller.username is not None
    hook = Webhook(
        id=webhook_id,
        owner_id=caller.subject,
        namespace=caller.username,
        url=url,
        format=str(fmt),
        created_at=time.time(),
        secret_box=box,
    )
    try:
        await create_webhook(ctx.db, hook, MAX_WEBHOOKS)
    except WebhookLimitReached as exc:
        raise RegistryError("DENIED", f"you already have {MAX_WEBHOOKS} webhooks") from exc
    audit(
        "webhook.create",
        user=caller.username,
        user_id=caller.subject,
        webhook=webhook_id,
        host=urlsplit(url).hostname,
        format=fmt,
    )
    return JSONResponse({**_webhook_json(hook), "secret": secret}, status_code=201)


async def get_hook(request: Request) -> Response:
    caller = await _session(request)
    hook = await _own(request, caller)
    return JSONResponse(_webhook_json(hook, await last_delivery(_ctx(request).db, hook.id)))


async def delete_hook(request: Request) -> Response:
    caller = await _session(request)
    hook = await _own(request, caller)
    await delete_webhook(_ctx(request).db, caller.subject, hook.id)
    audit("webhook.delete", user=caller.username, user_id=caller.subject, webhook=hook.id)
    return Response(status_code=204)


async def test_hook(request: Request) -> Response:
    caller = await _session(request)
    hook = await _own(request, caller)
    ctx = _ctx(request)
    try:
        endpoint = user_endpoint(hook, ctx.secret_box)
    except SecretBoxError as exc:
        return JSONResponse(
            {"event_id": None, "delivered": False, "status_code": None, "error": str(exc)}
        )
    event_id, sent = await send_test(ctx.webhook_sender, endpoint, hook.namespace)
    outcome = "delivered" if sent.delivered else ("refused" if sent.refused else "failed")
    latency_ms = round(sent.latency * 1000, 1)
    entry = DeliveryLogEntry(
        hook.id, event_id, TEST_EVENT, 1, outcome, sent.status_code, sent.error, latency_ms
    )
    await log_delivery(ctx.db, entry, time.time())
    return JSONResponse(
        {
            "event_id": event_id,
            "delivered": sent.delivered,
            "status_code": sent.status_code,
            "error": sent.error,
            "latency_ms": latency_ms,
        }
    )


async def hook_deliveries(request: Request) -> Response:
    caller = await _session(request)
    hook = await _own(request, caller)
    # ASCII digits only: "²" is a digit to str.isdigit() but not to int() (was a 500).
    n = saturating_int(request.query_params.get("n", "50"), 101)
    if n is None or not 1 <= n <= 100:
        raise RegistryError("PAGINATION_NUMBER_INVALID", "n must be between 1 and 100")
    found = await list_deliveries(_ctx(request).db, hook.id, n)
    return JSONResponse({"id": hook.id, "deliveries": [_delivery_json(d) for d in found]})


routes = [
    Route("/api/webhooks", list_hooks, methods=["GET"]),
    Route("/api/webhooks", create_hook, methods=["POST"]),
    Route("/api/webhooks/{id}", get_hook, methods=["GET"]),
    Route("/api/webhooks/{id}", delete_hook, methods=["DELETE"]),
    Route("/api/webhooks/{id}/test", test_hook, methods=["POST"]),
    Route("/api/webhooks/{id}/deliveries", hook_deliveries, methods=["GET"]),
]
