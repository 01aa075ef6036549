"""Rate limits on the login and token endpoints, per client address and per account."""

from __future__ import annotations

import re

import httpx

from tests.conftest import Stack


def test_failed_logins_are_limited_per_account(make_stack) -> None:  # type: ignore[no-untyped-def]
    stack: Stack = make_stack({"ECLOUD_RATE_LIMIT_FAILURES": "3/60"})
    user, password = stack.create_user()
    url = stack.auth_url + "/v2/token"
    for _ in range(3):
        assert httpx.get(url, auth=(user, "wrong")).status_code == 401
    r = httpx.get(url, auth=(user, password))
    assert r.status_code == 429
    assert r.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
    assert int(r.headers["retry-after"]) >= 1
    assert re.fullmatch(r'"failures";q=3;w=60', r.headers["ratelimit-policy"])
    assert re.fullmatch(r'"failures";r=0;t=\d+', r.headers["ratelimit"])
    # The same account is limited on POST and on the session login too.
    r = httpx.post(
        url,
        data={
            "grant_type": "password",
            "username": user,
            "password": password,
            "client_id": "x",
            "service": "registry",
        },
    )
    assert r.status_code == 429
    r = httpx.post(stack.auth_url + "/api/login", json={"username": user, "password": password})
    assert r.status_code == 429
    assert "retry-after" in r.headers
    log = (stack.root / "auth.log").read_text()
    assert log.count('"event":"auth_failed"') >= 3 and '"event":"rate_limited"' in log


def test_requests_are_limited_per_client_address(make_stack) -> None:  # type: ignore[no-untyped-def]
    stack: Stack = make_stack({"ECLOUD_RATE_LIMIT_REQUESTS": "5/60"})
    statuses = [
        httpx.get(stack.auth_url + "/v2/token", params={"service": "registry"}).status_code
        for _ in range(7)
    ]
    assert statuses[:5] == [200] * 5
    assert statuses[5:] == [429, 429]
    # Other endpoints are not limited.
    assert httpx.get(stack.auth_url + "/.well-known/jwks.json").status_code == 200
