"""Security headers on every answer of both services.

Every response gets, unless the handler set its own (the dashboard under
``/ui/`` sends its own Content-Security-Policy):

- ``X-Content-Type-Options: nosniff``: a blob or an error is never read as
  HTML or script, whatever a pushed layer contains;
- ``Content-Security-Policy: default-src 'none'; frame-ancestors 'none';
  base-uri 'none'; form-action 'none'``: no answer of an API may load,
  run or frame anything, should a browser ever render one;
- ``X-Frame-Options: DENY`` and ``Referrer-Policy: no-referrer``;
- ``Cache-Control: no-store`` on every answer under one of the `no_store`
  path prefixes (the auth service: everything but the public keys, which
  set their own; the registry: the dashboard API), so no cache keeps a
  token, a secret or a private listing.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["API_CSP", "SecurityHeadersMiddleware"]

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
_DEFAULTS = (
    (b"x-content-type-options", b"nosniff"),
    (b"content-security-policy", API_CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
_NO_STORE = (b"cache-control", b"no-store")


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, no_store: Sequence[str] = ()) -> None:
        self.app = app
        self.no_store = tuple(no_store)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        defaults = list(_DEFAULTS)
        if path.startswith(self.no_store):
            defaults.append(_NO_STORE)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(n, v) for n, v in defaults if n not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
