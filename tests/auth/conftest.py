"""Fixtures of the auth service's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Stack, build_stack


@pytest.fixture(scope="module")
def sa_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of our own: these tests fail logins on purpose, and the shared `stack`
    must not hit its failure rate limit because of them."""
    s = build_stack(
        tmp_path_factory.mktemp("sa-stack"),
        {"ECLOUD_RATE_LIMIT_FAILURES": "10000/60", "ECLOUD_RATE_LIMIT_REQUESTS": "10000/60"},
    )
    yield s
    s.stop()
