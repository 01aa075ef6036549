"""The auth service behind proxies and in browsers: ``ECLOUD_TRUSTED_PROXIES`` and CORS.

The client address keys the per-address rate limit, so the limit shows
which address the service believed. A proxy on a listed network is
believed (its ``X-Forwarded-For``, read right to left past other listed
hops); any other peer's header is ignored. Requests come from real source
addresses on the loopback network (127.0.0.2 is the "proxy").
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.conftest import Stack

PROXY = "127.0.0.2"


def _anonymous_token(stack: Stack, source: str, forwarded: str | None) -> int:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=10) as client:
        r = client.get(
            stack.auth_url + "/v2/token", params={"service": "registry"}, headers=headers
        )
    return r.status_code


def test_forwarded_for_is_believed_from_listed_proxies_only(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack(
        {
            "ECLOUD_RATE_LIMIT_REQUESTS": "2/600",
            "ECLOUD_TRUSTED_PROXIES": f"{PROXY}/32, 10.0.0.0/8",
        }
    )
    # Through the proxy, each forwarded client has its own budget.
    assert [_anonymous_token(stack, PROXY, "198.51.100.1") for _ in range(3)] == [200, 200, 429]
    assert _anonymous_token(stack, PROXY, "198.51.100.2") == 200
    # Listed hops are skipped from the right; the nearest unlisted one is the client.
    assert _anonymous_token(stack, PROXY, "198.51.100.1, 10.1.2.3") == 429
    assert _anonymous_token(stack, PROXY, "198.51.100.3, 10.1.2.3") == 200
    # A client cannot pick its address by prepending one: the proxy appended the real one.
    assert _anonymous_token(stack, PROXY, "198.51.100.2, 198.51.100.4") == 200
    assert _anonymous_token(stack, PROXY, "198.51.100.1, 198.51.100.4") == 200
    assert _anonymous_token(stack, PROXY, "198.51.100.9, 198.51.100.4") == 429
    # Only listed hops: the proxy's own address is the client (its own budget).
    assert _anonymous_token(stack, PROXY, "10.9.9.9") == 200
    # A peer that is not listed is its own client, whatever it forwards (127.0.0.1
    # included: uvicorn's own proxy-header handling, which trusts it, is off).
    statuses = [_anonymous_token(stack, "127.0.0.1", f"198.51.100.{50 + i}") for i in range(3)]
    assert statuses == [200, 200, 429]
    assert _anonymous_token(stack, "127.0.0.1", None) == 429
    assert _anonymous_token(stack, "127.0.0.1", "garbage, not-an-ip") == 429
    _revocation_list_is_for_the_registries_only(stack)


def _get(stack: Stack, path: str, source: str, forwarded: str | None) -> httpx.Response:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=10) as client:
        return client.get(stack.auth_url + path, headers=headers)


def _revocation_list_is_for_the_registries_only(stack: Stack) -> None:
    """Through the ingress (a trusted proxy naming a client) the revocation list is an
    unknown path, byte for byte; a registry asking directly gets it (issue 11, item 9)."""
    path = "/internal/sessions/revoked"
    # A revoked session, so that the list has something to hide (from an address
    # of its own: 127.0.0.1 has spent its request budget above).
    stack.cli(
        "ecloud-auth", "users", "create", "revoked-one", "--password-stdin", stdin="pw-1234567890\n"
    )
    transport = httpx.HTTPTransport(local_address="127.0.0.3")
    with httpx.Client(transport=transport, timeout=10, base_url=stack.auth_url) as client:
        r = client.post("/api/login", json={"username": "revoked-one", "password": "pw-1234567890"})
        assert r.status_code == 200, r.text
        bearer = {"Authorization": f"Bearer {r.json()['token']}"}
        assert client.post("/api/logout", headers=bearer).status_code == 204
    proxied = _get(stack, path, PROXY, "198.51.100.77")
    unknown = _get(stack, "/internal/sessions/unknown", PROXY, "198.51.100.77")
    assert proxied.status_code == unknown.status_code == 404
    assert proxied.content == unknown.content
    skip = {"date", "x-request-id", "content-length"}
    assert {k: v for k, v in proxied.headers.items() if k not in skip} == {
        k: v for k, v in unknown.headers.items() if k not in skip
    }
    direct = _get(stack, path, "127.0.0.1", None)
    assert direct.status_code == 200
    assert direct.headers["cache-control"] == "no-store"
    assert len(direct.json()["revoked"]) >= 1


def test_without_trusted_proxies_forwarded_for_is_ignored(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack({"ECLOUD_RATE_LIMIT_REQUESTS": "2/600"})
    statuses = [_anonymous_token(stack, PROXY, f"198.51.100.{i}") for i in range(3)]
    assert statuses == [200, 200, 429]


ORIGINS = "https://cloud.example.com,*.apps.example.com"
ALLOWED = ["https://cloud.example.com", "https://x.apps.example.com", "http://y.apps.example.com"]
REFUSED = [
    "https://evil.example.com",
    "http://cloud.example.com",  # the exact entry names its scheme
    "https://apps.example.com",  # the wildcard covers subdomains only
    "https://cloud.example.com.evil.com",
    "null",
]


def _preflight(stack: Stack, path: str, origin: str, method: str = "POST") -> httpx.Response:
    return httpx.options(
        stack.auth_url + path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type",
        },
        timeout=10,
    )


def test_cors_for_configured_origins_only(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack({"ECLOUD_CORS_ORIGINS": ORIGINS})
    user, password = stack.create_user()
    for origin in ALLOWED:
        r = _preflight(stack, "/api/login", origin)
        assert r.status_code == 200, (origin, r.text)
        assert r.headers["access-control-allow-origin"] == origin
        assert "POST" in r.headers["access-control-allow-methods"]
        allowed_headers = r.headers["access-control-allow-headers"].lower()
        assert "authorization" in allowed_headers and "content-type" in allowed_headers
        assert "access-control-allow-credentials" not in r.headers  # bearer tokens, no cookies
        login = httpx.post(
            stack.auth_url + "/api/login",
            json={"username": user, "password": password},
            headers={"Origin": origin},
            timeout=10,
        )
        assert login.status_code == 200
        assert login.headers["access-control-allow-origin"] == origin
        # Errors are readable by the page too.
        wrong = httpx.post(
            stack.auth_url + "/api/login",
            json={"username": user, "password": "wrong"},
            headers={"Origin": origin},
            timeout=10,
        )
        assert wrong.status_code == 401
        assert wrong.headers["access-control-allow-origin"] == origin
        session = login.json()["token"]
        r = _preflight(stack, "/api/service-accounts", origin, "DELETE")
        assert r.status_code == 200 and "DELETE" in r.headers["access-control-allow-methods"]
        r = httpx.get(
            stack.auth_url + "/api/session",
            headers={"Origin": origin, "Authorization": f"Bearer {session}"},
            timeout=10,
        )
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == origin
    for origin in REFUSED:
        r = _preflight(stack, "/api/login", origin)
        assert r.status_code == 400, origin
        assert "access-control-allow-origin" not in r.headers, origin
        r = httpx.get(stack.auth_url + "/.well-known/jwks.json", headers={"Origin": origin})
        assert r.status_code == 200  # the browser decides; the answer lacks the grant
        assert "access-control-allow-origin" not in r.headers, origin


def test_no_cors_by_default(stack: Stack) -> None:
    r = _preflight(stack, "/api/login", "https://cloud.example.com")
    assert "access-control-allow-origin" not in r.headers
    r = httpx.get(
        stack.auth_url + "/.well-known/jwks.json", headers={"Origin": "https://cloud.example.com"}
    )
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
