"""The shared middleware: metrics, fixed headers, and a JSON 500 instead of a traceback."""

from __future__ import annotations

import asyncio
import logging

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from shared.metrics import Registry
from shared.observe import ObserveMiddleware
from tests.shared.promtext import sample


def build() -> tuple[Starlette, Registry]:
    async def ok(request: Request) -> Response:
        return PlainTextResponse("fine")

    async def boom(request: Request) -> Response:
        raise RuntimeError("secret internals")

    metrics = Registry()
    app = Starlette(routes=[Route("/ok/{x}", ok), Route("/boom", boom)])
    app.add_middleware(
        ObserveMiddleware,
        requests=metrics.counter("reqs_total", "requests", ("method", "route", "status")),
        latency=metrics.histogram("lat", "latency", ("route",)),
        crash_response=lambda: JSONResponse({"error": "internal"}, 500),
        logger=logging.getLogger("test"),
        extra_headers=[(b"x-fixed", b"yes")],
    )
    return app, metrics


def test_metrics_headers_and_crash() -> None:
    app, metrics = build()

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return [await client.get(p) for p in ("/ok/1", "/ok/2", "/boom", "/nope")]

    ok1, _, boom, nope = asyncio.run(run())
    assert ok1.text == "fine" and ok1.headers["x-fixed"] == "yes"
    assert boom.status_code == 500 and boom.json() == {"error": "internal"}
    assert "secret internals" not in boom.text
    assert boom.headers["x-fixed"] == "yes"
    assert nope.status_code == 404
    text = metrics.render()
    # Route templates, not raw paths, label the series.
    assert sample(text, "reqs_total", method="GET", route="/ok/{x}", status="200") == 2
    assert sample(text, "reqs_total", method="GET", route="/boom", status="500") == 1
    assert sample(text, "reqs_total", method="GET", route="unmatched", status="404") == 1
    assert sample(text, "lat_count", route="/ok/{x}") == 2


def test_request_id_is_accepted_when_safe_generated_otherwise_and_seen_by_handlers() -> None:
    from shared.requestid import current_request_id

    seen: list[str | None] = []

    async def echo(request: Request) -> Response:
        seen.append(current_request_id())
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/e", echo)])
    metrics = Registry()
    app.add_middleware(
        ObserveMiddleware,
        requests=metrics.counter("reqs_total", "requests", ("method", "route", "status")),
        latency=metrics.histogram("lat", "latency", ("route",)),
        crash_response=lambda: JSONResponse({"error": "internal"}, 500),
        logger=logging.getLogger("test"),
    )

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return [
                await client.get("/e", headers={"X-Request-ID": "abc-123"}),
                await client.get("/e", headers={"X-Request-ID": "bad id\twith spaces"}),
                await client.get("/e"),
            ]

    given, bad, none = asyncio.run(run())
    assert given.headers["x-request-id"] == "abc-123" and seen[0] == "abc-123"
    assert bad.headers["x-request-id"] != "bad id\twith spaces"
    assert len(bad.headers["x-request-id"]) == 24 and seen[1] == bad.headers["x-request-id"]
    assert none.headers["x-request-id"] == seen[2] and seen[2] is not None
    assert seen[1] != seen[2]
    assert current_request_id() is None
