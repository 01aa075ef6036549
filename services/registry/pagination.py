"""``n``/``last`` pagination of the tag list and the catalog, and its ``Link`` header.

A page holds at most `n` names after `last` in bytewise order. When more
remain, the response carries ``Link: <path?n=N&last=X>; rel="next"`` (the
spec's form). ``n=0`` asks for an empty page; ``n`` that is not a
non-negative integer below `MAX_N` is PAGINATION_NUMBER_INVALID; a ``last``
that no page could have returned is the listing's own invalid-value error.
Without ``n`` a page holds up to `DEFAULT_PAGE`; a larger ``n`` is served as
`MAX_PAGE` with a link, which the spec allows (a registry may return fewer
than ``n``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from services.registry.errors import RegistryError
from shared.numbers import saturating_int

__all__ = ["DEFAULT_PAGE", "MAX_PAGE", "Page", "PageRequest", "fetch_page", "parse_page"]

DEFAULT_PAGE = 1000
MAX_PAGE = 1000
# `n` is refused from this value on (it has never meant anything but "all").
MAX_N = 10**9


@dataclass(frozen=True, slots=True)
class PageRequest:
    n: int
    last: str | None


@dataclass(frozen=True, slots=True)
class Page:
    items: list[str]
    next_link: str | None

    def headers(self) -> dict[str, str]:
        return {"Link": self.next_link} if self.next_link else {}


def parse_page(
    query: QueryParams, last_is_valid: Callable[[str], bool], last_error: str
) -> PageRequest:
    """``n`` and ``last`` of a listing.

    `last` must be something the listing could have returned (a tag, a
    repository name: `last_is_valid`), else `last_error` (400). That also keeps
    NUL and other bytes the databases cannot compare out of the query.
    """
    raw = query.get("n")
    if raw is None or raw == "":
        n = DEFAULT_PAGE
    else:
        value = saturating_int(raw, MAX_N)
        if value is None or value >= MAX_N:
            raise RegistryError(
                "PAGINATION_NUMBER_INVALID",
                f"n must be a non-negative integer below {MAX_N}, got {raw[:50]!r}",
                {"n": raw[:50]},
            )
        n = min(value, MAX_PAGE)
    last = query.get("last") or None
    if last is not None and not last_is_valid(last):
        raise RegistryError(
            last_error,
            f"last must be a value of a previous page, got {last[:100]!r}",
            {"last": last[:100]},
        )
    return PageRequest(n=n, last=last)


async def fetch_page(
    path: str,
    page: PageRequest,
    fetch: Callable[[str | None, int], Awaitable[list[str]]],
) -> Page:
    """One page from `fetch(last, limit)`; asks for one extra to know whether more remain."""
    if page.n == 0:
        return Page(items=[], next_link=None)
    rows = await fetch(page.last, page.n + 1)
    items = rows[: page.n]
    next_link = None
    if len(rows) > page.n:
        query = urlencode({"n": page.n, "last": items[-1]})
        next_link = f'<{path}?{query}>; rel="next"'
    return Page(items=items, next_link=next_link)
