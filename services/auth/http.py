"""Request helpers of the auth service: JSON errors, Basic credentials, client address."""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse

__all__ = ["api_error", "basic_credentials", "bearer_token", "client_address", "token_error"]


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


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """``(username, password)`` from ``Authorization: Basic``; None when absent or malformed."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else None


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def client_address(request: Request, trusted_proxies: tuple[str, ...]) -> str:
    """The client's address; ``X-Forwarded-For`` is believed only from trusted proxies."""
    peer = request.client.host if request.client else "unknown"
    if not trusted_proxies or not _in_networks(peer, trusted_proxies):
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _in_networks(hop, trusted_proxies):
            return hop
    return peer


def _in_networks(address: str, networks: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for net in networks:
        try:
            if ip in ipaddress.ip_network(net, strict=False):
                return True
        except ValueError:
            continue
    return False
