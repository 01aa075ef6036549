"""Two registry processes on one PostgreSQL database: each event once, or at least once.

Both processes run a dispatcher. Leases on the events make exactly one of
them deliver each event in the normal case; when the one delivering is
killed (SIGKILL) mid-delivery, the other delivers it again once the lease
has expired.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Server, Stack, build_stack, free_port
from tests.events.conftest import Receiver, event_env, session_client, wait_settled
from tests.registry.conftest import registry_sql
from tests.registry.manifest_helpers import Repo

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory, receiver: Receiver, pg_url: str
) -> Iterator[tuple[Stack, Server]]:
    root: Path = tmp_path_factory.mktemp("replicas")
    extra = event_env(receiver, None, ECLOUD_REGISTRY_DATABASE_URL=pg_url)
    stack = build_stack(root, extra)
    second = Server("ecloud-registry", [], stack.env, root / "registry2.log", free_port())
    try:
        second.start()
        yield stack, second
    finally:
        second.stop()
        stack.stop()


def _via(stack: Stack, server: Server) -> Stack:
    """The same stack, talking to `server` as its registry."""
    return Stack(stack.root, stack.env, stack.auth, server, stack.passwords, stack._admin_session)


def test_two_processes_deliver_each_event_once(
    replicas: tuple[Stack, Server], receiver: Receiver
) -> None:
    stack, second = replicas
    repo = Repo.create(stack)
    other = Repo(_via(stack, second), repo.user, repo.name, repo.token)
    for i in range(6):
        target = repo if i % 2 == 0 else other
        assert target.put_manifest(f"v{i}", target.image()).status_code == 201
    rows = wait_settled(stack, repo.user, 7)
    assert all(r[2] == "delivered" for r in rows)
    ids = [str(r[0]) for r in rows]
    for path in ("/op/ce", "/op/dist"):
        seen = Counter(
            d.headers["ecloud-event-id"]
            for d in receiver.at(path)
            if d.headers["ecloud-event-id"] in ids
        )
        expected = len(ids) if path == "/op/ce" else len(ids) - 1  # no repository.created
        assert len(seen) == expected, (path, seen)
        assert set(seen.values()) == {1}, (path, seen)


def test_killing_the_delivering_process_delivers_again(
    replicas: tuple[Stack, Server], receiver: Receiver
) -> None:
    stack, second = replicas
    repo = Repo.create(stack)
    path = f"/held/{repo.user}"
    held = receiver.plan(path, hold=threading.Event())
    with session_client(stack, repo.user) as client:
        assert client.post("/api/webhooks", json={"url": receiver.url(path)}).status_code == 201
    assert repo.put_manifest("v1", repo.image()).status_code == 201
    first = receiver.wait(path, 1)[0]
    event_id = first.headers["ecloud-event-id"]
    [(holder,)] = registry_sql(stack, "SELECT lease_holder FROM events WHERE id = ?", event_id)
    pid = int(str(holder).split(":")[1])
    servers = {s.proc.pid: s for s in (stack.registry, second) if s.proc is not None}
    victim = servers[pid]
    victim.kill()
    receiver.plan(path)
    assert held.hold is not None
    held.hold.set()
    again = receiver.wait(path, 2, where=lambda d: d.headers["ecloud-event-id"] == event_id)
    assert again[-1].body == first.body
    rows = wait_settled(stack, repo.user, 2)
    assert all(r[2] == "delivered" for r in rows)
    victim.start()
