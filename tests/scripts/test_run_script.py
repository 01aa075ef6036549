"""``./scripts/run``, the README's first command: ports, a port clash, a service that dies.

The script runs from a temporary copy of the checkout's ``scripts/run`` whose
``.venv`` is the test environment (so it installs nothing), with its data
folder and free ports in a temporary directory; servers import the checkout
under test. Every run is stopped by the test (its process group, by id).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, _base_env, free_port

VENV = Path(sys.executable).parent.parent


class Run:
    """One ``scripts/run`` process and what it printed."""

    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.log = tmp / "run.log"
        with self.log.open("wb") as handle:
            self.proc = subprocess.Popen(
                ["bash", str(tmp / "checkout" / "scripts" / "run")],
                env=env,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def output(self) -> str:
        return self.log.read_text()

    def wait_for(self, pattern: str, timeout: float = 180) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.output)
            if found:
                return found
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"no {pattern!r} in the output:\n{self.output[-4000:]}")

    def wait(self, timeout: float = 120) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # anything left in its group
        self.proc.wait()


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Run]]:
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "run", checkout / "scripts" / "run")
    (checkout / ".venv").symlink_to(VENV)
    runs: list[Run] = []

    def factory(**extra: str) -> Run:
        env = _base_env(tmp_path)
        env.update(extra)
        run = Run(tmp_path, env)
        runs.append(run)
        return run

    yield factory
    for run in runs:
        run.stop()


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_ports_from_the_environment_and_everything_stops_when_a_service_dies(
    start: Callable[..., Run],
) -> None:
    auth_port, registry_port = free_port(), free_port()
    run = start(ECLOUD_AUTH_PORT=str(auth_port), ECLOUD_REGISTRY_PORT=str(registry_port))
    password = run.wait_for(r"password: (\S+)").group(1)
    up = run.wait_for(
        rf"auth service on http://127\.0\.0\.1:{auth_port} \(pid (\d+)\), "
        rf"registry on http://127\.0\.0\.1:{registry_port} \(pid (\d+)\)"
    )
    auth_pid, registry_pid = int(up.group(1)), int(up.group(2))
    assert "source .venv/bin/activate" in run.output
    # The registry found the auth service on its port: a token flow works.
    r = httpx.get(f"http://127.0.0.1:{registry_port}/v2/", timeout=30)
    assert r.status_code == 401
    assert f'realm="http://127.0.0.1:{auth_port}/v2/token"' in r.headers["www-authenticate"]
    token = httpx.get(
        f"http://127.0.0.1:{auth_port}/v2/token",
        params={"service": "registry", "scope": "repository:admin/x:pull"},
        auth=("admin", password),
        timeout=30,
    ).json()["token"]
    r = httpx.get(
        f"http://127.0.0.1:{registry_port}/v2/",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert r.status_code == 200

    os.kill(registry_pid, signal.SIGKILL)
    assert run.wait() == 1
    assert "error: the registry stopped unexpectedly" in run.output
    assert "stopping everything" in run.output
    deadline = time.monotonic() + 30
    while alive(auth_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(auth_pid) and not listening(auth_port)


def test_a_taken_port_is_refused_before_anything_starts(start: Callable[..., Run]) -> None:
    auth_port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        registry_port = taken.getsockname()[1]
        run = start(ECLOUD_AUTH_PORT=str(auth_port), ECLOUD_REGISTRY_PORT=str(registry_port))
        assert run.wait() == 1
    out = run.output
    assert f"error: port {registry_port} (the registry) is already in use" in out, out
    assert "ECLOUD_REGISTRY_PORT=" in out
    assert "auth service on" not in out and not listening(auth_port)


@pytest.mark.parametrize("value", ["abc", "0", "70000"])
def test_a_bad_port_is_one_clear_error(start: Callable[..., Run], value: str) -> None:
    run = start(ECLOUD_AUTH_PORT=value, ECLOUD_REGISTRY_PORT=str(free_port()))
    assert run.wait() == 1
    assert "error: ECLOUD_AUTH_PORT must be" in run.output, run.output


def test_ctrl_c_stops_both(start: Callable[..., Run]) -> None:
    auth_port, registry_port = free_port(), free_port()
    run = start(ECLOUD_AUTH_PORT=str(auth_port), ECLOUD_REGISTRY_PORT=str(registry_port))
    up = run.wait_for(r"\(pid (\d+)\), registry on \S+ \(pid (\d+)\)")
    pids = [int(up.group(1)), int(up.group(2))]
    os.kill(run.proc.pid, signal.SIGINT)  # what Ctrl-C sends the script
    assert run.wait() == 0
    assert "==> stopped" in run.output
    assert not any(alive(p) for p in pids)
    assert not listening(auth_port) and not listening(registry_port)
