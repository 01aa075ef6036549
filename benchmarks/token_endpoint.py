"""Throughput and latency of the auth service's token endpoint, on loopback.

Starts a real auth service and registry (production Argon2 parameters unless
--fast-hash), then fires requests with a fixed concurrency for each way of
getting a token and prints requests/s and latency percentiles. Stops by itself.

    python -m benchmarks.token_endpoint [--requests 400] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from tests.conftest import build_stack


async def measure(
    name: str, total: int, concurrency: int, call: Callable[[httpx.AsyncClient], Awaitable[int]]
) -> None:
    latencies: list[float] = []
    failures = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(i)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal failures
        while not queue.empty():
            queue.get_nowait()
            begun = time.perf_counter()
            status = await call(client)
            latencies.append(time.perf_counter() - begun)
            failures += status != 200

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        begun = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - begun
    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    print(
        f"{name:<28} {total / elapsed:8.1f} req/s   p50 {p(0.5):7.1f} ms   p99 {p(0.99):7.1f} ms"
        f"   mean {statistics.mean(latencies) * 1000:7.1f} ms   non-200: {failures}"
    )


async def run(args: argparse.Namespace, auth_url: str, user: str, password: str) -> None:
    url = auth_url + "/v2/token"
    scope = f"repository:{user}/app:pull,push"
    async with httpx.AsyncClient() as client:
        refresh = (
            await client.get(
                url,
                params={"service": "registry", "offline_token": "true", "client_id": "bench"},
                auth=(user, password),
            )
        ).json()["refresh_token"]

    async def anonymous(c: httpx.AsyncClient) -> int:
        return (await c.get(url, params={"service": "registry", "scope": scope})).status_code

    async def with_password(c: httpx.AsyncClient) -> int:
        r = await c.get(url, params={"service": "registry", "scope": scope}, auth=(user, password))
        return r.status_code

    async def with_refresh(c: httpx.AsyncClient) -> int:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "client_id": "bench",
            "service": "registry",
            "scope": scope,
        }
        return (await c.post(url, data=form)).status_code

    print(f"{args.requests} requests each, concurrency {args.concurrency}")
    await measure("anonymous GET", args.requests, args.concurrency, anonymous)
    await measure("password GET (Argon2id)", args.requests, args.concurrency, with_password)
    await measure("refresh_token POST", args.requests, args.concurrency, with_refresh)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--fast-hash", action="store_true", help="Argon2 with test parameters")
    args = parser.parse_args()
    env = {"ECLOUD_RATE_LIMIT_REQUESTS": "1000000/60", "ECLOUD_LOG_LEVEL": "warning"}
    if not args.fast_hash:
        env.update(
            {
                "ECLOUD_ARGON2_MEMORY_KIB": "65536",
                "ECLOUD_ARGON2_TIME_COST": "3",
                "ECLOUD_ARGON2_PARALLELISM": "4",
            }
        )
    with tempfile.TemporaryDirectory() as tmp:
        stack = build_stack(Path(tmp), env)
        try:
            user, password = stack.create_user()
            asyncio.run(run(args, stack.auth_url, user, password))
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
