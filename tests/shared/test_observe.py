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


def build() -> tuple[Starlette, Registry]:
    async def ok(request: Request) -> Response:
        return PlainTextResponse("fine")

    async def boom(request: Request) -> Response:
        raise RuntimeError("secret internals")

    metrics = Registry()
    app = Starlette(routes=[Route("/ok/{x}", ok), Route("/boom", boom)])
    app.add_middleware(
        ObserveMiddleware,
        requests=metrics.counter("reqs", "requests", ("method", "route", "status")),
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
    assert 'reqs{method="GET",route="/ok/{x}",status="200"} 2' in text
    assert 'reqs{method="GET",route="/boom",status="500"} 1' in text
    assert 'reqs{method="GET",route="unmatched",status="404"} 1' in text
    assert 'lat_count{route="/ok/{x}"} 2' in text
