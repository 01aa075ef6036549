"""One ASGI middleware for both services: request metrics, fixed headers, no tracebacks.

It counts every request by method, route template and status, observes the
time to the first response byte, adds fixed headers to every response (the
registry's ``Docker-Distribution-API-Version``), and turns an exception that
escaped every handler into the service's JSON 500, logging the traceback
server-side only. It also gives every request its id (`shared.requestid`):
taken from ``X-Request-ID`` when safe, generated otherwise, answered in
``X-Request-ID`` and visible to the handlers while they run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.metrics import Counter, Histogram
from shared.requestid import HEADER, accept_request_id, request_id_var

__all__ = ["ObserveMiddleware", "route_label"]


def route_label(scope: Scope) -> str:
    """The matched route's template (bounded label values), or ``unmatched``."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else "unmatched"


class ObserveMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        requests: Counter,
        latency: Histogram,
        crash_response: Callable[[], Response],
        logger: logging.Logger,
        extra_headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> None:
        self.app = app
        self.requests = requests
        self.latency = latency
        self.crash_response = crash_response
        self.logger = logger
        self.extra_headers = list(extra_headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = False
        begun = time.perf_counter()
        sent_id = None
        for name, value in scope.get("headers", ()):
            if name == HEADER.encode():
                sent_id = value.decode("latin-1")
                break
        request_id = accept_request_id(sent_id)
        token = request_id_var.set(request_id)
        id_header = (HEADER.encode(), request_id.encode())

        async def send_wrapper(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                headers = [*message.get("headers", []), *self.extra_headers, id_header]
                message = {**message, "headers": headers}
                self.latency.observe(time.perf_counter() - begun, route=route_label(scope))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            self.logger.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if not started:
                await self.crash_response()(scope, receive, send_wrapper)
        finally:
            self.requests.inc(method=scope["method"], route=route_label(scope), status=str(status))
            request_id_var.reset(token)
