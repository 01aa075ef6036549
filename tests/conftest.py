"""Fixtures that start real servers: the auth service and the registry on 127.0.0.1.

Each service runs as its own process through its console script, exactly as
the README starts it, with its data folder in a temporary directory. A stack
is the pair plus helpers to create users and fetch tokens.

`stack` is shared by a whole test session (SQLite); `make_stack` builds a
fresh pair with extra settings (rate limits, PostgreSQL, ...). The
`registry_db` fixture parametrizes over SQLite and the PostgreSQL on
127.0.0.1:5432 for the registry's HTTP suite.

Under CI every skip is a failure (the two hooks below; `tests.needs` says
why and holds the helpers that name what is missing and how to install it).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.needs import in_ci, missing

BIN = Path(sys.executable).parent
# The checkout under test: servers and CLIs import from here, not from wherever
# the project happens to be installed (several work trees may share one venv).
ROOT = Path(__file__).resolve().parents[1]
PG_DSN = os.environ.get("ECLOUD_TEST_PG", "postgresql://postgres@127.0.0.1:5432")


_CI_SKIP = (
    "skipped under CI={ci}, and under CI a skip is a failure: {reason}\n"
    "(so that a missing tool, package, service or feature cannot pass as green: install"
    " what is missing, or fix the test; .ci/run installs the Debian packages and"
    " `pip install -e '.[dev]'` the Python ones; see tests/needs.py)"
)


def _skip_reason(longrepr: object) -> str:
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _fail_skip_in_ci(report: pytest.TestReport | pytest.CollectReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail") and in_ci():
        reason = _skip_reason(report.longrepr)
        report.outcome = "failed"
        report.longrepr = _CI_SKIP.format(ci=os.environ.get("CI"), reason=reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    _fail_skip_in_ci(outcome.get_result())  # type: ignore[attr-defined]


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    outcome = yield
    _fail_skip_in_ci(outcome.get_result())  # type: ignore[attr-defined]


# The longest modules first (an image build, GC races and crashes, a real dockerd, a
# browser, a cluster behind a load balancer, real clients, many `ec` processes...),
# roughly by how long each takes. scripts/test hands whole modules to the workers
# (`--dist loadscope`) in this order, each to the first worker free: longest first
# leaves only short modules for the end, so the workers finish close together. Stable:
# the order within each group, and so every worker's collection, stays the same.
_LONG_FIRST = (
    "tests/k8s/test_container_image.py",
    "tests/registry/test_gc_races.py",
    "tests/registry/test_gc.py",
    "tests/cli/",
    "tests/ui/",
    "tests/registry/test_dashboard.py",
    "tests/auth/test_service_accounts.py",
    "tests/registry/test_blobs.py",
    "tests/registry/test_auth_bounds.py",
    "tests/auth/test_credentials.py",
    "tests/events/",
    "tests/registry/test_catalog.py",
    "tests/auth/test_token_endpoint.py",
    "tests/cluster/",
    "tests/docker/",
    "tests/auth/test_proxies_and_cors.py",
    "tests/auth/test_attacks.py",
    "tests/test_openapi.py",
    "tests/upgrade/",
    "tests/registry/test_isolation_matrix.py",
    "tests/e2e/",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        for index, prefix in enumerate(_LONG_FIRST):
            if item.nodeid.startswith(prefix):
                return index
        return len(_LONG_FIRST)

    items.sort(key=rank)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server at {url} did not become healthy:\n{log.read_text()[-4000:]}")


@dataclass
class Server:
    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as handle:
            self.proc = subprocess.Popen(
                [str(BIN / self.name), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env,
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_healthy(self.url, self.proc, self.log)
        except BaseException:
            # A server that never became healthy must not outlive the test.
            self.kill()
            raise

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                # A graceful shutdown on a loaded machine can take a while.
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


@dataclass
class Stack:
    """A running auth service and registry sharing one data folder."""

    root: Path
    env: dict[str, str]
    auth: Server
    registry: Server
    passwords: dict[str, str] = field(default_factory=dict)
    _admin_session: str | None = None

    @property
    def auth_url(self) -> str:
        return self.auth.url

    @property
    def registry_url(self) -> str:
        return self.registry.url

    @property
    def registry_host(self) -> str:
        return f"127.0.0.1:{self.registry.port}"

    def cli(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        """Run ``ecloud-auth``/``ecloud-registry`` admin commands against this stack."""
        result = subprocess.run(
            [str(BIN / args[0]), *args[1:]],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=180,  # as generous as the health wait: Python starts slowly under load
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"{args} failed: {result.stdout}{result.stderr}")
        return result.stdout + result.stderr

    def auth_cli_in_process(self, *args: str, stdin: str | None = None) -> str:
        """``ecloud-auth`` like `cli`, without a new process: the same typer command,
        invoked in a thread of this one with the stack's environment. Each stack
        makes its first user this way, and a Python start costs a second of CPU on a
        2-core machine running four test workers. Tests of the commands use `cli`."""
        from typer.testing import CliRunner

        from services.auth.cli import app

        results: list[Any] = []
        # A thread of its own: the command runs its own event loop (asyncio.run).
        worker = threading.Thread(
            target=lambda: results.append(
                CliRunner().invoke(app, list(args), input=stdin, env=self.env)
            )
        )
        worker.start()
        worker.join(timeout=180)
        if not results:
            raise RuntimeError(f"{args} did not finish")
        result = results[0]
        if result.exit_code != 0:
            raise RuntimeError(f"{args} failed ({result.exit_code}): {result.output}")
        return str(result.output)

    def create_user(self, username: str | None = None, *, admin: bool = False) -> tuple[str, str]:
        """A new user with a random password; returns (username, password).

        The first user is created with the real ``ecloud-auth users create``
        command (an administrator), run in this process (see `auth_cli_in_process`);
        later ones through its ``/admin/users`` API.
        """
        username = username or f"u{secrets.token_hex(4)}"
        password = secrets.token_urlsafe(12)
        if self._admin_session is None:
            admin_name, admin_password = f"admin{secrets.token_hex(3)}", secrets.token_urlsafe(12)
            self.auth_cli_in_process(
                "users",
                "create",
                admin_name,
                "--password-stdin",
                "--admin",
                stdin=admin_password + "\n",
            )
            self.passwords[admin_name] = admin_password
            self._admin_session = self.session(admin_name)
        response = httpx.post(
            self.auth_url + "/admin/users",
            json={"username": username, "password": password, "admin": admin},
            headers={"Authorization": f"Bearer {self._admin_session}"},
            timeout=10,
        )
        response.raise_for_status()
        self.passwords[username] = password
        return username, password

    def token(self, username: str, *scopes: str, password: str | None = None) -> str:
        """A registry token for `username` with the given scopes (GET /v2/token)."""
        params = [("service", "registry")] + [("scope", s) for s in scopes]
        response = httpx.get(
            self.auth_url + "/v2/token",
            params=params,
            auth=(username, password or self.passwords[username]),
            timeout=10,
        )
        response.raise_for_status()
        return str(response.json()["token"])

    def session(self, username: str, password: str | None = None) -> str:
        response = httpx.post(
            self.auth_url + "/api/login",
            json={"username": username, "password": password or self.passwords[username]},
            timeout=10,
        )
        response.raise_for_status()
        return str(response.json()["token"])

    def stop(self) -> None:
        self.registry.stop()
        self.auth.stop()


def _base_env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECLOUD_")}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "ECLOUD_DATA_DIR": str(root / "data"),
            "ECLOUD_ARGON2_MEMORY_KIB": "8192",
            "ECLOUD_ARGON2_TIME_COST": "1",
            "ECLOUD_ARGON2_PARALLELISM": "1",
            "ECLOUD_LOG_LEVEL": "info",
            "ECLOUD_REVOCATION_POLL_SECONDS": "1",
            "ECLOUD_KEY_REFRESH_SECONDS": "5",
        }
    )
    return env


def build_stack(root: Path, extra_env: dict[str, str] | None = None, attempts: int = 3) -> Stack:
    """Start a pair; a port taken between choosing it and binding it (parallel test
    workers) is retried with fresh ports."""
    root.mkdir(parents=True, exist_ok=True)
    for attempt in range(attempts):
        env = _base_env(root)
        auth_port, registry_port = free_port(), free_port()
        env["ECLOUD_AUTH_URL"] = f"http://127.0.0.1:{auth_port}"
        env["ECLOUD_REGISTRY_URL"] = f"http://127.0.0.1:{registry_port}"
        env.update(extra_env or {})
        auth = Server("ecloud-auth", [], env, root / "auth.log", auth_port)
        registry = Server("ecloud-registry", [], env, root / "registry.log", registry_port)
        try:
            auth.start()
            try:
                registry.start()
            except BaseException:
                auth.stop()
                raise
        except RuntimeError as exc:
            if "address already in use" not in str(exc).lower() or attempt == attempts - 1:
                raise
            continue
        return Stack(root, env, auth, registry)
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = build_stack(tmp_path_factory.mktemp("stack"))
    yield s
    s.stop()


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    made: list[Stack] = []

    def factory(extra_env: dict[str, str] | None = None, name: str = "stack") -> Stack:
        s = build_stack(tmp_path / f"{name}{len(made)}", extra_env)
        made.append(s)
        return s

    yield factory
    for s in made:
        s.stop()


def pg_admin(sql: str) -> None:
    import asyncio

    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(PG_DSN + "/postgres", timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


@contextmanager
def fresh_pg_database() -> Iterator[str]:
    """A new PostgreSQL database on `PG_DSN` (a skip, so a failure under CI, when it is
    unreachable); dropped on exit."""
    import asyncpg

    name = f"ecloud_test_{secrets.token_hex(6)}"
    try:
        pg_admin(f'CREATE DATABASE "{name}"')
    except (OSError, asyncpg.PostgresError) as exc:
        missing(f"PostgreSQL at {PG_DSN} ({exc})", "start it (.ci/run does) or set ECLOUD_TEST_PG")
    try:
        yield f"{PG_DSN}/{name}"
    finally:
        pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database on 127.0.0.1:5432, dropped afterwards."""
    with fresh_pg_database() as url:
        yield url


def service_sql(stack: Stack, service: str, sql: str, *args: object) -> list[tuple[object, ...]]:
    """Run one statement (``?`` placeholders) on `service`'s database ("auth" or
    "registry") of `stack`: its SQLite file, or its PostgreSQL database."""
    url = stack.env.get(f"ECLOUD_{service.upper()}_DATABASE_URL")
    if url is None:
        import sqlite3

        with sqlite3.connect(stack.root / "data" / f"{service}.db", timeout=30) as conn:
            return [tuple(row) for row in conn.execute(sql, args).fetchall()]
    import asyncio

    import asyncpg

    parts = sql.split("?")
    pg_sql = parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], start=1))

    async def run() -> list[tuple[object, ...]]:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            return [tuple(row) for row in await conn.fetch(pg_sql, *args)]
        finally:
            await conn.close()

    return asyncio.run(run())


@pytest.fixture(params=["sqlite", "postgresql"])
def registry_db(request: pytest.FixtureRequest) -> str | None:
    """None for the default SQLite file, or a PostgreSQL URL for the registry's database."""
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("pg_database")
    return url
