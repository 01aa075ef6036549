"""Fixtures of the auth service's tests: the HTTP suite runs on both databases.

`auth_db` parametrizes a module over the default SQLite file and a fresh
PostgreSQL database (like ``registry_db`` for the registry); `stack` (which
here overrides the session-wide SQLite stack) and `sa_stack` are one real
pair per module and database. Tests that read or change rows use
`auth_sql`, which speaks to whichever database the stack uses.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Stack, build_stack, fresh_pg_database, service_sql


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def auth_db(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None for the SQLite file, or the URL of a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield None
        return
    with fresh_pg_database() as url:
        yield url


def _db_env(url: str | None) -> dict[str, str]:
    return {"ECLOUD_AUTH_DATABASE_URL": url} if url else {}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, auth_db: str | None) -> Iterator[Stack]:
    s = build_stack(tmp_path_factory.mktemp("auth-stack"), _db_env(auth_db))
    yield s
    s.stop()


@pytest.fixture(scope="module")
def sa_stack(tmp_path_factory: pytest.TempPathFactory, auth_db: str | None) -> Iterator[Stack]:
    """A stack of our own: these tests fail logins on purpose, and the shared `stack`
    must not hit its failure rate limit because of them."""
    s = build_stack(
        tmp_path_factory.mktemp("sa-stack"),
        {
            "ECLOUD_RATE_LIMIT_FAILURES": "10000/60",
            "ECLOUD_RATE_LIMIT_REQUESTS": "10000/60",
            **_db_env(auth_db),
        },
    )
    yield s
    s.stop()


def auth_sql(stack: Stack, sql: str, *args: object) -> list[tuple[object, ...]]:
    """Run one statement on the stack's auth database (``?`` placeholders)."""
    return service_sql(stack, "auth", sql, *args)
