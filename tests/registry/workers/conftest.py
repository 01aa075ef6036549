"""Two registry processes on one database and one storage folder.

`pair` is one auth service and two ``ecloud-registry serve`` processes on two
ports, sharing the data folder (SQLite file or a PostgreSQL database, and the
blob storage), once per module and database: what ``--workers N`` or several
replicas do, with each process reachable on its own, so a test chooses which
process serves each request.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.conftest import Server, Stack, build_stack, free_port


@dataclass
class Pair:
    stack: Stack
    other: Server
    username: str

    @property
    def urls(self) -> tuple[str, str]:
        return self.stack.registry_url, self.other.url

    def clients(self, repository: str) -> tuple[httpx.Client, httpx.Client]:
        token = self.stack.token(self.username, f"repository:{repository}:pull,push,delete")
        headers = {"Authorization": f"Bearer {token}"}
        return tuple(  # type: ignore[return-value]
            httpx.Client(base_url=url, headers=headers, timeout=60) for url in self.urls
        )

    def repo(self) -> str:
        return f"{self.username}/r{secrets.token_hex(3)}"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    # No sweeps of their own; deleted content is collectable at once by
    # the sweeps tests run (ecloud-registry gc in a third process).
    extra = {"ECLOUD_GC_INTERVAL": "0", "ECLOUD_GC_GRACE": "0"}
    if request.param == "postgresql":
        extra["ECLOUD_REGISTRY_DATABASE_URL"] = request.getfixturevalue("pg_url")
    root = tmp_path_factory.mktemp(f"pair-{request.param}")
    stack = build_stack(root, extra)
    other = Server("ecloud-registry", [], stack.env, root / "registry-b.log", free_port())
    try:
        other.start()
        username, _ = stack.create_user()
        yield Pair(stack, other, username)
    finally:
        other.stop()
        stack.stop()
