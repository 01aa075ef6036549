"""The seed's smoke tests 1-3 against a real pair of servers."""

from __future__ import annotations

import httpx

from tests.conftest import Stack


def test_version_check_challenge_token_and_access(stack: Stack) -> None:
    user, password = stack.create_user()
    r = httpx.get(stack.registry_url + "/v2/")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == (
        f'Bearer realm="{stack.auth_url}/v2/token",service="registry"'
    )
    assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert r.headers["docker-distribution-api-version"] == "registry/2.0"
    r = httpx.get(
        stack.auth_url + "/v2/token",
        params={"service": "registry", "scope": f"repository:{user}/test:pull,push"},
        auth=(user, password),
    )
    assert r.status_code == 200
    token = r.json()["token"]
    r = httpx.get(stack.registry_url + "/v2/", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    assert r.json() == {}
