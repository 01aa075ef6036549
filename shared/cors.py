"""CORS origin patterns: exact origins and ``*.domain`` wildcards, compiled to one regex."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

__all__ = ["cors_middleware", "origin_regex"]


def origin_regex(patterns: Iterable[str]) -> str | None:
    """A full-match regex for the configured origins, or None when there are none.

    ``https://cloud.example.com`` matches that origin exactly;
    ``*.cloud.example.com`` matches any subdomain over http or https (not the
    bare domain, which must be listed on its own); a pattern with a scheme,
    such as ``https://*.example.com``, keeps that scheme.
    """
    parts: list[str] = []
    for raw in patterns:
        pattern = raw.strip().rstrip("/")
        if not pattern:
            continue
        scheme, sep, host = pattern.partition("://")
        if not sep:
            scheme, host = "", pattern
        scheme_re = re.escape(scheme) + "://" if scheme else "https?://"
        if host.startswith("*."):
            host_re = r"[a-z0-9-]+(?:\.[a-z0-9-]+)*\." + re.escape(host[2:])
        else:
            host_re = re.escape(host)
        parts.append(
            f"{scheme_re}{host_re}(?::[0-9]+)?"
            if host.startswith("*.") or not scheme
            else f"{scheme_re}{host_re}"
        )
    return "(?:" + "|".join(parts) + ")" if parts else None


def cors_middleware(
    origins: Iterable[str], methods: Sequence[str], expose_headers: Sequence[str] = ()
) -> list[Middleware]:
    """The CORS middleware for the configured origins; none at all when there are none."""
    regex = origin_regex(origins)
    if regex is None:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origin_regex=regex,
            allow_methods=list(methods),
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=list(expose_headers),
            allow_credentials=False,
            max_age=600,
        )
    ]
