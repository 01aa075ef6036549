"""Fixtures for the registry's HTTP tests: a stack per database, accounts, raw pushes.

`rstack` is the session's SQLite stack, or a fresh stack on a fresh
PostgreSQL database, following the `registry_db` parameter. `Account` wraps
one user: tokens for scopes, and the few raw HTTP sequences tests repeat.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.conftest import Stack


@pytest.fixture
def rstack(registry_db: str | None, stack: Stack, make_stack: Callable[..., Stack]) -> Stack:
    if registry_db is None:
        return stack
    return make_stack({"ECLOUD_REGISTRY_DATABASE_URL": registry_db}, name="pg")


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
