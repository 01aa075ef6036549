"""Unit tests of ``n``/``last`` parsing and the ``Link`` header (services.registry.pagination)."""

from __future__ import annotations

import asyncio

import pytest
from starlette.datastructures import QueryParams

from services.registry.errors import RegistryError
from services.registry.pagination import DEFAULT_PAGE, MAX_PAGE, PageRequest, fetch_page, parse_page

NAMES = sorted(f"user/r{i:02d}" for i in range(7))


async def fetch(last: str | None, limit: int) -> list[str]:
    return [n for n in NAMES if last is None or n > last][:limit]


def test_parse_page_defaults_and_bounds() -> None:
    assert parse_page(QueryParams("")) == PageRequest(DEFAULT_PAGE, None)
    assert parse_page(QueryParams("n=5&last=x")) == PageRequest(5, "x")
    assert parse_page(QueryParams("n=0")) == PageRequest(0, None)
    assert parse_page(QueryParams(f"n={MAX_PAGE * 10}")).n == MAX_PAGE


@pytest.mark.parametrize("raw", ["-1", "x", "1e3", "2.0", " 3", "9999999999"])
def test_parse_page_rejects_bad_n(raw: str) -> None:
    with pytest.raises(RegistryError) as info:
        parse_page(QueryParams({"n": raw}))
    assert info.value.code == "PAGINATION_NUMBER_INVALID" and info.value.status == 400


def test_pages_and_links() -> None:
    page = asyncio.run(fetch_page("/v2/_catalog", PageRequest(3, None), fetch))
    assert page.items == NAMES[:3]
    assert page.headers() == {"Link": '</v2/_catalog?n=3&last=user%2Fr02>; rel="next"'}
    page = asyncio.run(fetch_page("/v2/_catalog", PageRequest(3, NAMES[5]), fetch))
    assert page.items == NAMES[6:] and page.headers() == {}
    page = asyncio.run(fetch_page("/v2/_catalog", PageRequest(7, None), fetch))
    assert page.items == NAMES and page.next_link is None
    page = asyncio.run(fetch_page("/v2/_catalog", PageRequest(0, None), fetch))
    assert page.items == [] and page.next_link is None
