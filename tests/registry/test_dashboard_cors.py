"""CORS on the dashboard API: configured origins only (exact and ``*.domain``), preflight too."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.conftest import Stack
from tests.registry.manifest_helpers import Repo

ORIGINS = "https://cloud.example.com,*.cloud.example.com"
ALLOWED = [
    "https://cloud.example.com",
    "https://app.cloud.example.com",
    "https://a.b.cloud.example.com",
]
REFUSED = [
    "https://evil.example.com",
    "https://cloud.example.com.evil.com",
    "https://evilcloud.example.com",
    "http://cloud.example.com",  # the exact entry names its scheme
    "null",
]


@pytest.fixture
def cors_stack(make_stack: Callable[..., Stack], registry_db: str | None) -> Stack:
    env = {"ECLOUD_CORS_ORIGINS": ORIGINS}
    if registry_db is not None:
        env["ECLOUD_REGISTRY_DATABASE_URL"] = registry_db
    return make_stack(env)


def _push(stack: Stack, user: str) -> str:
    repo = Repo.create(stack, user, "app")
    assert repo.put_manifest("v1", repo.image([b"layer"])).status_code == 201
    return repo.name


def test_allowed_and_refused_origins(cors_stack: Stack) -> None:
    user, _ = cors_stack.create_user()
    name = _push(cors_stack, user)
    session = cors_stack.session(user)
    auth = {"Authorization": f"Bearer {session}"}
    base = cors_stack.registry_url

    for origin in ALLOWED:
        r = httpx.get(f"{base}/api/repos", headers={**auth, "Origin": origin}, timeout=10)
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == origin
        assert "origin" in r.headers.get("vary", "").lower()
        # Errors are readable by the dashboard too.
        r = httpx.get(f"{base}/api/repos/{user}/nothing", headers={"Origin": origin}, timeout=10)
        assert r.status_code == 401
        assert r.headers["access-control-allow-origin"] == origin
    for origin in REFUSED:
        r = httpx.get(f"{base}/api/repos", headers={**auth, "Origin": origin}, timeout=10)
        assert r.status_code == 200  # CORS is the browser's decision; the answer lacks the grant
        assert "access-control-allow-origin" not in r.headers

    r = httpx.delete(
        f"{base}/api/repos/{name}/tags/v1",
        headers={**auth, "Origin": "https://app.cloud.example.com"},
        timeout=10,
    )
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == "https://app.cloud.example.com"


@pytest.mark.parametrize("registry_db", ["sqlite"], indirect=True)
def test_preflight(cors_stack: Stack) -> None:
    user, _ = cors_stack.create_user()
    url = f"{cors_stack.registry_url}/api/repos/{user}/app/tags/v1"
    for origin in ALLOWED:
        r = httpx.options(
            url,
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "DELETE",
                "Access-Control-Request-Headers": "authorization",
            },
            timeout=10,
        )
        assert r.status_code == 200, r.text
        assert r.headers["access-control-allow-origin"] == origin
        methods = {m.strip() for m in r.headers["access-control-allow-methods"].split(",")}
        assert {"GET", "DELETE"} <= methods
        assert "authorization" in r.headers["access-control-allow-headers"].lower()
    for origin in REFUSED:
        r = httpx.options(
            url,
            headers={"Origin": origin, "Access-Control-Request-Method": "DELETE"},
            timeout=10,
        )
        assert r.status_code == 400
        assert "access-control-allow-origin" not in r.headers
    # A method the dashboard never uses is not offered.
    r = httpx.options(
        url,
        headers={"Origin": ALLOWED[0], "Access-Control-Request-Method": "PUT"},
        timeout=10,
    )
    assert r.status_code == 400


def test_no_origins_configured_means_no_cors(stack: Stack) -> None:
    user, _ = stack.create_user()
    r = httpx.get(
        f"{stack.registry_url}/api/repos",
        headers={
            "Authorization": f"Bearer {stack.session(user)}",
            "Origin": "https://cloud.example.com",
        },
        timeout=10,
    )
    assert r.status_code == 200
    assert "access-control-allow-origin" not in r.headers
    r = httpx.options(
        f"{stack.registry_url}/api/repos",
        headers={"Origin": "https://cloud.example.com", "Access-Control-Request-Method": "GET"},
        timeout=10,
    )
    assert "access-control-allow-origin" not in r.headers
