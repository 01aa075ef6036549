"""Unit tests of ``n``/``last`` parsing and the ``Link`` header (services.registry.pagination)."""

from __future__ import annotations

import asyncio
from functools import partial

import pytest
from starlette.datastructures import QueryParams

from services.registry.errors import RegistryError
from services.registry.pagination import DEFAULT_PAGE, MAX_PAGE, PageRequest, fetch_page
from services.registry.pagination import parse_page as parse_any_page
from shared.names import is_valid_name, is_valid_tag

parse_page = partial(parse_any_page, last_is_valid=is_valid_tag, last_error="TAG_INVALID")

NAMES = sorted(f"user/r{i:02d}" for i in range(7))


async def fetch(last: str | None, limit: int) -> list[str]:
    return [n for n in NAMES if last is None or n > last][:limit]


def test_parse_page_defaults_and_bounds() -> None:
    assert parse_page(QueryParams("")) == PageRequest(DEFAULT_PAGE, None)
    assert parse_page(QueryParams("n=5&last=x")) == PageRequest(5, "x")
    assert parse_page(QueryParams("n=0")) == PageRequest(0, None)
    assert parse_page(QueryParams(f"n={MAX_PAGE * 10}")).n == MAX_PAGE
    assert parse_page(QueryParams("n=999999999")).n == MAX_PAGE
    assert parse_page(QueryParams("n=" + "0" * 50 + "7")).n == 7


@pytest.mark.parametrize(
    "raw", ["-1", "x", "1e3", "2.0", " 3", "+3", "3_0", "9999999999", "9" * 5000, "²", "٣", "\0"]
)
def test_parse_page_rejects_bad_n(raw: str) -> None:
    with pytest.raises(RegistryError) as info:
        parse_page(QueryParams({"n": raw}))
    assert info.value.code == "PAGINATION_NUMBER_INVALID" and info.value.status == 400


@pytest.mark.parametrize("last", ["a\x00b", "\x00", "é", "-lead", "a/b", "x" * 129])
def test_tag_list_last_must_be_a_tag(last: str) -> None:
    """NUL (which PostgreSQL cannot compare), non-ASCII, anything no listing returns: 400."""
    with pytest.raises(RegistryError) as info:
        parse_page(QueryParams({"last": last}))
    assert info.value.code == "TAG_INVALID" and info.value.status == 400


@pytest.mark.parametrize("last", ["a\x00b", "\x00", "é", "-lead", "A/b", "a//b", "x" * 256])
def test_catalog_last_must_be_a_name(last: str) -> None:
    catalog = partial(parse_any_page, last_is_valid=is_valid_name, last_error="NAME_INVALID")
    assert catalog(QueryParams({"last": "user/r02"})).last == "user/r02"
    with pytest.raises(RegistryError) as info:
        catalog(QueryParams({"last": last}))
    assert info.value.code == "NAME_INVALID" and info.value.status == 400


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
