"""Fixtures of the event tests: a webhook receiver in the test process, NATS streams, stacks.

`Receiver` is a real HTTP server on 127.0.0.1 (a thread of the test
process) that records every delivery by path and answers as each path is
told to: fail the first N attempts, hold requests until released, and so on.
`nats_stream` gives each test module a JetStream stream and subject prefix
of its own on the NATS server at 127.0.0.1:4222, deleted afterwards, so
parallel runs never see each other's messages. `estack` is one auth +
registry pair per module and database (SQLite, then PostgreSQL) with the
operator webhooks, NATS and quick retries configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.conftest import Stack, build_stack
from tests.registry.conftest import pg_url, registry_sql

__all__ = ["pg_url"]  # the per-module PostgreSQL database fixture, shared with tests/registry

NATS_URL = os.environ.get("ECLOUD_TEST_NATS", "nats://127.0.0.1:4222")
OP_SECRET = "operator-secret-" + secrets.token_hex(8)
OP_DIST_SECRET = "operator-dist-secret-" + secrets.token_hex(8)


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _Plan:
    fail_first: int = 0
    status: int = 500
    hold: threading.Event | None = None
    location: str | None = None  # sent with the failing answers (redirect tests)
    answered: int = 0


@dataclass
class Receiver:
    """A webhook receiver: records deliveries per path, answers per plan."""

    server: ThreadingHTTPServer
    thread: threading.Thread
    deliveries: list[Delivery] = field(default_factory=list)
    plans: dict[str, _Plan] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def plan(self, path: str, **kwargs: Any) -> _Plan:
        with self.lock:
            self.plans[path] = _Plan(**kwargs)
            return self.plans[path]

    def record(self, delivery: Delivery) -> tuple[int, str | None]:
        with self.lock:
            self.deliveries.append(delivery)
            plan = self.plans.setdefault(delivery.path, _Plan())
            plan.answered += 1
            fail = plan.answered <= plan.fail_first
            hold, status, location = plan.hold, plan.status, plan.location
        with self.arrived:
            self.arrived.notify_all()
        if hold is not None:
            hold.wait(120)
        return (status, location) if fail else (200, None)

    def at(self, path: str, where: Callable[[Delivery], bool] | None = None) -> list[Delivery]:
        with self.lock:
            return [d for d in self.deliveries if d.path == path and (where is None or where(d))]

    def wait(
        self,
        path: str,
        count: int,
        where: Callable[[Delivery], bool] | None = None,
        timeout: float = 60,
    ) -> list[Delivery]:
        """At least `count` deliveries at `path` (matching `where`), waiting for them."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.at(path, where)
            if len(found) >= count:
                return found
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{len(found)} of {count} deliveries at {path}: {found}")
            with self.arrived:
                self.arrived.wait(min(left, 0.5))


class _Handler(BaseHTTPRequestHandler):
    receiver: Receiver

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, location = self.receiver.record(Delivery(self.path, headers, body, time.time()))
        try:
            self.send_response(status)
            if location:
                self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()
        except OSError:
            pass  # the registry went away (killed) while we held its request

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    handler = type("Handler", (_Handler,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    rec = Receiver(server, thread)
    handler.receiver = rec
    thread.start()
    yield rec
    with rec.lock:
        for plan in rec.plans.values():
            if plan.hold is not None:
                plan.hold.set()
    server.shutdown()
    server.server_close()


@dataclass(frozen=True)
class NatsStream:
    name: str
    prefix: str

    def messages(self, subject: str, count: int, timeout: float = 30) -> list[Any]:
        """The messages on `subject` (a filter), once at least `count` are stored."""
        return asyncio.run(_fetch(self.name, subject, count, timeout))


async def _fetch(stream: str, subject: str, count: int, timeout: float) -> list[Any]:
    import nats

    nc = await nats.connect(NATS_URL, connect_timeout=5)
    try:
        js = nc.jetstream()
        deadline = time.monotonic() + timeout
        sub = await js.pull_subscribe(subject, stream=stream)
        got: list[Any] = []
        while True:
            try:
                batch = await sub.fetch(100, timeout=0.5)
            except Exception:  # nats.errors.TimeoutError: nothing more right now
                batch = []
            for msg in batch:
                await msg.ack()
            got.extend(batch)
            if len(got) >= count and not batch:
                return got
            if time.monotonic() > deadline:
                return got
    finally:
        await nc.close()


def _nats_available() -> bool:
    async def probe() -> None:
        import nats

        nc = await nats.connect(NATS_URL, connect_timeout=3, max_reconnect_attempts=0)
        await nc.jetstream().account_info()
        await nc.close()

    try:
        asyncio.run(probe())
    except Exception:
        return False
    return True


@contextlib.contextmanager
def fresh_nats_stream() -> Iterator[NatsStream]:
    """A stream name and subject prefix nobody else uses; the stream is deleted afterwards.

    Skips (fails under CI) when NATS with JetStream is not reachable.
    """
    if not _nats_available():
        if os.environ.get("CI"):
            raise RuntimeError(f"NATS with JetStream is not reachable at {NATS_URL}")
        pytest.skip(f"NATS with JetStream is not reachable at {NATS_URL}")
    token = secrets.token_hex(5)
    stream = NatsStream(name=f"ECLOUD_TEST_{token.upper()}", prefix=f"t{token}.ecloud.registry")
    try:
        yield stream
    finally:

        async def drop() -> None:
            import nats
            from nats.js.errors import NotFoundError

            nc = await nats.connect(NATS_URL, connect_timeout=5)
            with contextlib.suppress(NotFoundError):  # never created: no event reached NATS
                await nc.jetstream().delete_stream(stream.name)
            await nc.close()

        asyncio.run(drop())


@pytest.fixture(scope="module")
def nats_stream() -> Iterator[NatsStream]:
    with fresh_nats_stream() as stream:
        yield stream


def event_env(receiver: Receiver | None, stream: NatsStream | None, **extra: str) -> dict[str, str]:
    env = {
        "ECLOUD_WEBHOOK_ALLOW_PRIVATE": "true",
        "ECLOUD_EVENTS_RETRY_BASE": "0.2",
        "ECLOUD_EVENTS_RETRY_MAX": "2",
        "ECLOUD_EVENTS_POLL_SECONDS": "0.2",
        # Long enough that a slow machine never sees a lease expire mid-delivery
        # (which would make a legitimate duplicate); the SIGKILL tests wait it out.
        "ECLOUD_EVENTS_LEASE_SECONDS": "15",
        "ECLOUD_WEBHOOK_TIMEOUT": "3",
        # A manifest pushed by digest alone is collectable at once (GC test).
        "ECLOUD_GC_UNTAGGED_TTL": "0",
        **extra,
    }
    if receiver is not None:
        env["ECLOUD_WEBHOOKS"] = json.dumps(
            [
                {"url": receiver.url("/op/ce"), "secret": OP_SECRET, "format": "cloudevents"},
                {
                    "url": receiver.url("/op/dist"),
                    "secret": OP_DIST_SECRET,
                    "format": "distribution",
                },
            ]
        )
    if stream is not None:
        env.update(
            ECLOUD_EVENTS_NATS_URL=NATS_URL,
            ECLOUD_EVENTS_NATS_STREAM=stream.name,
            ECLOUD_EVENTS_NATS_SUBJECT_PREFIX=stream.prefix,
        )
    return env


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def estack(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    receiver: Receiver,
    nats_stream: NatsStream,
) -> Iterator[Stack]:
    extra = event_env(receiver, nats_stream)
    if request.param == "postgresql":
        extra["ECLOUD_REGISTRY_DATABASE_URL"] = request.getfixturevalue("pg_url")
    s = build_stack(tmp_path_factory.mktemp(f"events-{request.param}"), extra)
    yield s
    s.stop()


def events_of(stack: Stack, namespace: str) -> list[tuple[Any, ...]]:
    """(id, type, status) of the namespace's events, oldest first."""
    return registry_sql(
        stack, "SELECT id, type, status FROM events WHERE namespace = ? ORDER BY seq", namespace
    )


def wait_settled(stack: Stack, namespace: str, count: int, timeout: float = 60) -> list[Any]:
    """Wait until the namespace has `count` events and none is pending or leased."""
    deadline = time.monotonic() + timeout
    while True:
        rows = registry_sql(
            stack,
            "SELECT id, type, status, lease_holder FROM events WHERE namespace = ? ORDER BY seq",
            namespace,
        )
        if len(rows) >= count and all(r[2] != "pending" and r[3] is None for r in rows):
            return rows
        if time.monotonic() > deadline:
            raise AssertionError(f"events of {namespace} not settled: {rows}")
        time.sleep(0.2)


def session_client(stack: Stack, user: str) -> httpx.Client:
    return httpx.Client(
        base_url=stack.registry_url,
        headers={"Authorization": f"Bearer {stack.session(user)}"},
        timeout=30,
    )
