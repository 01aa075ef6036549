"""Sessions: login, logout, session info, and their use at the registry."""

from __future__ import annotations

import time

import httpx
import jwt

from tests.conftest import Stack


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_login_session_logout(stack: Stack) -> None:
    user, password = stack.create_user()
    r = httpx.post(stack.auth_url + "/api/login", json={"username": user, "password": password})
    assert r.status_code == 200
    body = r.json()
    token = body["token"]
    assert body["user"]["username"] == user and body["user"]["admin"] is False
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["typ"] == "session" and claims["username"] == user
    assert {"iss", "sub", "aud", "sid", "admin", "exp", "iat"} <= set(claims)
    r = httpx.get(stack.auth_url + "/api/session", headers=bearer(token))
    assert r.status_code == 200 and r.json()["username"] == user
    assert httpx.post(stack.auth_url + "/api/logout", headers=bearer(token)).status_code == 204
    assert httpx.get(stack.auth_url + "/api/session", headers=bearer(token)).status_code == 401
    assert httpx.post(stack.auth_url + "/api/logout", headers=bearer(token)).status_code == 401


def test_login_errors_are_json(stack: Stack) -> None:
    user, _ = stack.create_user()
    r = httpx.post(stack.auth_url + "/api/login", json={"username": user, "password": "wrong"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHORIZED"
    for body in [b"not json", b"[]", b'{"username": 1, "password": "x"}', b"{}"]:
        r = httpx.post(stack.auth_url + "/api/login", content=body)
        assert r.status_code == 400 and r.json()["error"]["code"] == "BAD_REQUEST"


def test_registry_token_is_not_a_session(stack: Stack) -> None:
    user, _ = stack.create_user()
    token = stack.token(user, f"repository:{user}/a:pull")
    assert httpx.get(stack.auth_url + "/api/session", headers=bearer(token)).status_code == 401


def test_session_token_works_at_registry_until_logout(stack: Stack) -> None:
    user, _ = stack.create_user()
    token = stack.session(user)
    r = httpx.get(stack.registry_url + "/v2/", headers=bearer(token))
    assert r.status_code == 200 and r.json() == {}
    httpx.post(stack.auth_url + "/api/logout", headers=bearer(token)).raise_for_status()
    # The registry polls revocations every second in tests (at most 60 s in production).
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        r = httpx.get(stack.registry_url + "/v2/", headers=bearer(token))
        if r.status_code == 401:
            break
        time.sleep(0.2)
    assert r.status_code == 401
    assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert 'error="invalid_token"' in r.headers["www-authenticate"]


def test_deleting_a_user_revokes_their_sessions(stack: Stack) -> None:
    admin, _ = stack.create_user(admin=True)
    user, _ = stack.create_user()
    token = stack.session(user)
    admin_token = stack.session(admin)
    users = httpx.get(stack.auth_url + "/admin/users", headers=bearer(admin_token)).json()
    user_id = next(u["id"] for u in users["users"] if u["username"] == user)
    r = httpx.delete(f"{stack.auth_url}/admin/users/{user_id}", headers=bearer(admin_token))
    assert r.status_code == 204
    assert httpx.get(stack.auth_url + "/api/session", headers=bearer(token)).status_code == 401


def test_admin_endpoints_need_an_admin(stack: Stack) -> None:
    user, _ = stack.create_user()
    token = stack.session(user)
    assert httpx.get(stack.auth_url + "/admin/users", headers=bearer(token)).status_code == 403
    assert httpx.get(stack.auth_url + "/admin/users").status_code == 401
    admin, _ = stack.create_user(admin=True)
    admin_token = stack.session(admin)
    r = httpx.post(
        stack.auth_url + "/admin/users",
        json={"username": user, "password": "long-enough-pw"},
        headers=bearer(admin_token),
    )
    assert r.status_code == 409
    r = httpx.post(
        stack.auth_url + "/admin/users",
        json={"username": "Bad/Name", "password": "long-enough-pw"},
        headers=bearer(admin_token),
    )
    assert r.status_code == 400


def test_forged_session_is_refused_by_registry_and_auth(stack: Stack) -> None:
    user, _ = stack.create_user()
    token = stack.session(user)
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{signature[::-1]}"
    assert httpx.get(stack.registry_url + "/v2/", headers=bearer(forged)).status_code == 401
    assert httpx.get(stack.auth_url + "/api/session", headers=bearer(forged)).status_code == 401
