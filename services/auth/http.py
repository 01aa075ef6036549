"""Request helpers of the auth service: JSON errors and bodies, Basic credentials, clients."""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from shared.numbers import saturating_int
from shared.safejson import JSONError, loads

__all__ = [
    "MAX_JSON_BODY",
    "api_error",
    "basic_credentials",
    "bearer_token",
    "client_address",
    "forwarded_by_trusted_proxy",
    "iso_time",
    "json_object",
    "token_error",
]

# Every JSON body of the auth API is a small object: read at most this much.
MAX_JSON_BODY = 64 * 1024


def iso_time(value: float | None) -> str | None:
    """A UTC timestamp as ISO 8601 (``2025-01-31T12:00:00Z``); None stays None."""
    if value is None:
        return None
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def api_error(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """An `/api/` error: ``{"error": {"code", "message"}}``."""
    return JSONResponse({"error": {"code": code, "message": message}}, status, dict(headers or {}))


def token_error(
    status: int,
    code: str,
    message: str,
    oauth_error: str,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A token-endpoint error, readable both as a registry error and an OAuth2 error."""
    body = {
        "errors": [{"code": code, "message": message, "detail": None}],
        "error": oauth_error,
        "error_description": message,
    }
    return JSONResponse(body, status, dict(headers or {}))


async def json_object(
    request: Request, what: str, *, optional: bool = False, limit: int = MAX_JSON_BODY
) -> dict[str, Any] | JSONResponse:
    """The body as a JSON object, read with a size cap before parsing; else the 4xx to return.

    `what` names the expected fields for the error message. An empty body is
    ``{}`` when `optional`.
    """
    declared = saturating_int(request.headers.get("content-length", ""), limit + 1)
    if declared is not None and declared > limit:
        return _too_large(limit)
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > limit:
            return _too_large(limit)
    if optional and not raw.strip():
        return {}
    try:
        body = loads(bytes(raw))
    except JSONError as exc:
        return api_error(400, "BAD_REQUEST", f"{exc}; expected a JSON object {what}")
    if not isinstance(body, dict):
        return api_error(400, "BAD_REQUEST", f"expected a JSON object {what}")
    return body


def _too_large(limit: int) -> JSONResponse:
    return api_error(413, "TOO_LARGE", f"the body is larger than {limit} bytes")


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """``(username, password)`` from ``Authorization: Basic``; None when absent or malformed.

    NUL and other control characters are malformed: no username or token has
    them, and PostgreSQL refuses NUL in a query parameter.
    """
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    if not sep or not username.isprintable():
        return None
    return username, password


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_address(request: Request, trusted_proxies: tuple[Network, ...]) -> str:
    """The client's address: the one source of truth for per-address limits and audit lines.

    ``X-Forwarded-For`` is believed only when the peer is a trusted proxy, and
    then read from the right: the first hop that is not itself a trusted proxy
    is the client (hops further left are whatever the client wrote). The
    server's own proxy-header handling is off, so the peer is the real one.
    """
    peer = request.client.host if request.client else "unknown"
    current = _parse(peer)
    if current is None or not _in_networks(current, trusted_proxies):
        return peer
    for raw in reversed(request.headers.get("x-forwarded-for", "").split(",")):
        hop = _parse(raw.strip())
        if hop is None:
            break  # garbage: trust nothing further left
        current = hop
        if not _in_networks(hop, trusted_proxies):
            break
    return str(current)


def forwarded_by_trusted_proxy(request: Request, trusted_proxies: tuple[Network, ...]) -> bool:
    """Whether the request came through one of our proxies (it names a client behind it)."""
    peer = _parse(request.client.host) if request.client else None
    return (
        peer is not None
        and "x-forwarded-for" in request.headers
        and _in_networks(peer, trusted_proxies)
    )


def _parse(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _in_networks(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, networks: tuple[Network, ...]
) -> bool:
    return any(address.version == net.version and address in net for net in networks)
