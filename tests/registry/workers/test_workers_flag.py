"""``serve --workers 2`` (here through ECLOUD_WORKERS): both services start several
worker processes on one port, answer, and stop cleanly with all their workers."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx

from tests.conftest import build_stack
from tests.registry.conftest import sha256


def workers_of(pid: int) -> set[int]:
    """The worker processes (multiprocessing spawns) under supervisor `pid`."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            if b"multiprocessing.spawn" in cmdline:
                found.add(int(child))
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead but not yet reaped by its parent.
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


def test_two_workers_per_service_serve_and_stop(tmp_path: Path) -> None:
    stack = build_stack(tmp_path, {"ECLOUD_WORKERS": "2", "ECLOUD_GC_INTERVAL": "0"})
    workers: set[int] = set()
    try:
        for server in (stack.auth, stack.registry):
            assert server.proc is not None
            workers |= workers_of(server.proc.pid)
        assert len(workers) == 4, workers  # two workers under each supervisor
        user, _ = stack.create_user()
        name = f"{user}/app"
        token = stack.token(user, f"repository:{name}:pull,push")
        data = os.urandom(100_000)
        with httpx.Client(
            base_url=stack.registry_url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as c:
            for _ in range(6):  # new connections: whichever worker accepts each
                r = c.post(
                    f"/v2/{name}/blobs/uploads/",
                    params={"digest": sha256(data)},
                    content=data,
                    headers={"Connection": "close"},
                )
                assert r.status_code == 201, r.text
                got = c.get(f"/v2/{name}/blobs/{sha256(data)}", headers={"Connection": "close"})
                assert got.status_code == 200 and got.content == data
        supervisors = [s.proc for s in (stack.auth, stack.registry)]
    finally:
        stack.stop()
    for proc in supervisors:
        assert proc is not None and proc.returncode == 0
    deadline = time.monotonic() + 60  # the supervisor has joined them; reaping may lag
    while [pid for pid in workers if alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if alive(pid)]
