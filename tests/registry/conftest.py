"""Fixtures for the registry's HTTP tests: a stack per database, accounts, raw pushes.

`rstack` is one real auth + registry pair per test module and database:
SQLite first, then a fresh PostgreSQL database on 127.0.0.1:5432 (a skip
when PostgreSQL is unreachable, so a failure under CI). `Account` wraps
one user: tokens for scopes, and the few raw HTTP sequences tests repeat.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.conftest import Stack, build_stack, fresh_pg_database, service_sql


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test module, dropped afterwards."""
    with fresh_pg_database() as url:
        yield url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def rstack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    extra = {}
    if request.param == "postgresql":
        extra["ECLOUD_REGISTRY_DATABASE_URL"] = request.getfixturevalue("pg_url")
    s = build_stack(tmp_path_factory.mktemp(f"reg-{request.param}"), extra)
    yield s
    s.stop()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Account:
    stack: Stack
    username: str
    password: str

    def repo(self, path: str | None = None) -> str:
        return f"{self.username}/{path or 'r' + secrets.token_hex(3)}"

    def token(self, repository: str, actions: str = "pull,push") -> str:
        return self.stack.token(self.username, f"repository:{repository}:{actions}")

    def client(self, repository: str, actions: str = "pull,push") -> httpx.Client:
        return httpx.Client(
            base_url=self.stack.registry_url,
            headers={"Authorization": f"Bearer {self.token(repository, actions)}"},
            timeout=30,
        )

    def push_blob(self, repository: str, data: bytes) -> str:
        """Monolithic upload of `data`; returns its digest."""
        digest = sha256(data)
        with self.client(repository) as c:
            r = c.post(f"/v2/{repository}/blobs/uploads/", params={"digest": digest}, content=data)
            assert r.status_code == 201, r.text
        return digest


@pytest.fixture
def make_account(rstack: Stack) -> Callable[[], Account]:
    def factory() -> Account:
        username, password = rstack.create_user()
        return Account(rstack, username, password)

    return factory


@pytest.fixture
def alice(make_account: Callable[[], Account]) -> Account:
    return make_account()


@pytest.fixture
def bob(make_account: Callable[[], Account]) -> Account:
    return make_account()


@pytest.fixture
def repo(alice: Account) -> Iterator[tuple[str, httpx.Client]]:
    """A fresh repository name of alice's and a client holding pull,push,delete on it."""
    name = alice.repo()
    with alice.client(name, "pull,push,delete") as client:
        yield name, client


def error_code(response: httpx.Response) -> str:
    code: str = response.json()["errors"][0]["code"]
    return code


def registry_sql(stack: Stack, sql: str, *args: object) -> list[tuple[object, ...]]:
    """Run one statement on the stack's registry database (``?`` placeholders)."""
    return service_sql(stack, "registry", sql, *args)
