"""The coalescing HTTP protocol under every loop and parser uvicorn may pick.

uvicorn runs on uvloop with httptools when they are installed, on asyncio with
h11 otherwise; `shared.coalesce` wraps whichever transport it is given. Each
combination serves small answers (headers and body joined in one send), large
ones (written straight through), several requests on one kept-alive
connection, and a HEAD, all byte for byte.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shared import coalesce
from tests.conftest import free_port

BIG = bytes(range(256)) * (3 * coalesce.DIRECT_WRITE // 256 + 7)


async def small(request: Request) -> Response:
    return Response(f"hello {request.query_params.get('n', '')}", media_type="text/plain")


async def big(request: Request) -> Response:
    return Response(BIG, media_type="application/octet-stream")


async def echo(request: Request) -> Response:
    body = await request.body()
    return Response(hashlib.sha256(body).hexdigest(), media_type="text/plain")


APP = Starlette(
    routes=[
        Route("/small", small, methods=["GET", "HEAD"]),
        Route("/big", big),
        Route("/echo", echo, methods=["POST"]),
    ]
)


def _protocols() -> list[Any]:
    protocols: list[Any] = [pytest.param(coalesce.CoalescingH11Protocol, id="h11")]
    if coalesce.HAVE_HTTPTOOLS:
        protocols.append(pytest.param(coalesce.CoalescingHttpToolsProtocol, id="httptools"))
    return protocols


def _loops() -> list[str]:
    loops = ["asyncio"]
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return loops
    return [*loops, "uvloop"]


@pytest.fixture(params=_loops())
def loop_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=_protocols())
def served(loop_name: str, request: pytest.FixtureRequest) -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(
        APP, host="127.0.0.1", port=port, loop=loop_name, http=request.param, log_level="error"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(400):
        if server.started:
            break
        if not thread.is_alive():
            pytest.fail("the server did not start")
        time.sleep(0.025)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_answers_arrive_whole(served: str) -> None:
    with httpx.Client(base_url=served, timeout=30) as client:
        # One kept-alive connection: small, large and small again, in order.
        for n in range(3):
            r = client.get("/small", params={"n": str(n)})
            assert (r.status_code, r.text) == (200, f"hello {n}")
            assert r.headers["content-length"] == str(len(f"hello {n}"))
            r = client.get("/big")
            assert r.status_code == 200 and r.content == BIG
        r = client.head("/small")
        assert r.status_code == 200 and r.content == b""
        assert r.headers["content-length"] == str(len("hello "))
        body = BIG[: coalesce.DIRECT_WRITE + 1]
        r = client.post("/echo", content=body)
        assert r.text == hashlib.sha256(body).hexdigest()


def test_pipelined_requests_on_one_socket(served: str) -> None:
    """Two requests sent in one write: two complete answers, in order."""
    host, port = served.removeprefix("http://").split(":")

    async def talk() -> bytes:
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            b"GET /small?n=1 HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /small?n=2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout=30)
        writer.close()
        return data

    data = asyncio.run(talk())
    assert data.count(b"HTTP/1.1 200 OK") == 2
    assert data.index(b"hello 1") < data.index(b"hello 2")
