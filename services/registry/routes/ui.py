"""The web dashboard: ``/ui/`` (the page), ``/ui/config.json``, ``/ui/assets/<version>/…``;
``/`` and ``/ui`` redirect to ``/ui/``.

Every answer here carries the same security headers: a Content-Security-Policy
that lets the page load scripts, styles and images from this origin only (no
inline code or style attributes), call only this origin and the auth
service's public origin, and never build HTML from strings (Trusted Types
required, no policy allowed); no framing, no referrer, ``nosniff``.

The page learns where the auth service is and which host to show in docker
commands from ``config.json`` (the settings ``ECLOUD_AUTH_URL`` and
``ECLOUD_REGISTRY_URL``), so nothing in the files names a host.

Caching: ``index.html`` and ``config.json`` are revalidated on every load
(ETag); the files under ``/ui/assets/<version>/`` never change within a
version and are cached for a year.
"""

from __future__ import annotations

import hashlib
import json

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from services.registry.settings import RegistrySettings
from services.registry.ui.assets import UiAssets, load_assets
from shared.settings import url_origin

__all__ = ["build_routes", "content_security_policy"]

_REVALIDATE = "no-cache"
_IMMUTABLE = "public, max-age=31536000, immutable"


def content_security_policy(settings: RegistrySettings) -> str:
    connect = ["'self'"]
    auth_origin = url_origin(settings.auth_url)
    if auth_origin != url_origin(settings.registry_url):
        connect.append(auth_origin)
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self'",
            "connect-src " + " ".join(connect),
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
            "require-trusted-types-for 'script'",
            "trusted-types 'none'",
        ]
    )


def build_routes(settings: RegistrySettings) -> list[BaseRoute]:
    """The dashboard's routes; the files are read (once) here."""
    assets: UiAssets = load_assets()
    security = {
        "Content-Security-Policy": content_security_policy(settings),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Resource-Policy": "same-origin",
    }
    config = json.dumps(
        {
            "auth_url": settings.auth_url,
            "registry_url": settings.registry_url,
            "registry_host": url_origin(settings.registry_url).split("://", 1)[1],
            "service": settings.service,
            "version": assets.version,
        },
        separators=(",", ":"),
    ).encode()

    def revalidated(request: Request, body: bytes, media_type: str) -> Response:
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        headers = {**security, "Cache-Control": _REVALIDATE, "ETag": etag}
        if etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type=media_type, headers=headers)

    def not_found() -> Response:
        return Response(
            "not found",
            404,
            media_type="text/plain",
            headers={**security, "Cache-Control": _REVALIDATE},
        )

    async def to_dashboard(request: Request) -> Response:
        return RedirectResponse("/ui/", status_code=302, headers=security)

    async def page(request: Request) -> Response:
        return revalidated(request, assets.index_html, "text/html; charset=utf-8")

    async def page_config(request: Request) -> Response:
        return revalidated(request, config, "application/json")

    async def asset(request: Request) -> Response:
        found = assets.files.get(request.path_params["path"])
        if request.path_params["version"] != assets.version or found is None:
            return not_found()
        return Response(
            found.body,
            media_type=found.media_type,
            headers={**security, "Cache-Control": _IMMUTABLE},
        )

    async def unknown(request: Request) -> Response:
        return not_found()

    return [
        Route("/", to_dashboard, methods=["GET"]),
        Route("/ui", to_dashboard, methods=["GET"]),
        Route("/ui/", page, methods=["GET"]),
        Route("/ui/config.json", page_config, methods=["GET"]),
        Route("/ui/assets/{version}/{path:path}", asset, methods=["GET"]),
        Route("/ui/{path:path}", unknown, methods=["GET"]),
    ]
