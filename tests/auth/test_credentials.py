"""A user's credentials can be listed and revoked, and a password changed or reset.

Refresh tokens (from ``/api/login`` with ``refresh: true`` and from the Docker
token endpoint) stop working at once after a revocation, a logout naming
them, a password change or an administrator's reset. Runs on SQLite and on
the PostgreSQL on 127.0.0.1:5432: every endpoint here writes to the store.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.conftest import Stack

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
LIMITS = {"ECLOUD_RATE_LIMIT_FAILURES": "1000/60", "ECLOUD_RATE_LIMIT_REQUESTS": "10000/60"}


@pytest.fixture(params=["sqlite", "postgresql"])
def creds_stack(request: pytest.FixtureRequest, make_stack: Callable[..., Stack]) -> Stack:
    env = dict(LIMITS)
    if request.param == "postgresql":
        env["ECLOUD_AUTH_DATABASE_URL"] = request.getfixturevalue("pg_database")
    return make_stack(env)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Client:
    """One user talking to the auth service."""

    def __init__(self, stack: Stack, username: str, password: str) -> None:
        self.stack, self.username, self.password = stack, username, password

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(self.stack.auth_url + path, timeout=30, **kwargs)

    def login(self, *, refresh: bool = False, password: str | None = None) -> httpx.Response:
        body: dict[str, Any] = {"username": self.username, "password": password or self.password}
        if refresh:
            body["refresh"] = True
        return self.post("/api/login", json=body)

    def session(self, **kwargs: Any) -> dict[str, Any]:
        r = self.login(**kwargs)
        assert r.status_code == 200, r.text
        return dict(r.json())

    def call(self, method: str, path: str, session: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(
            method, self.stack.auth_url + path, headers=bearer(session), timeout=30, **kwargs
        )

    def alive(self, session: str) -> bool:
        status = self.call("GET", "/api/session", session).status_code
        assert status in (200, 401)
        return status == 200

    def refresh_session(self, refresh_token: str) -> httpx.Response:
        return self.post("/api/session/refresh", json={"refresh_token": refresh_token})

    def refresh_grant(self, refresh_token: str) -> httpx.Response:
        return self.post(
            "/v2/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "client_id": "any-client",
                "service": "registry",
                "scope": f"repository:{self.username}/app:pull",
            },
        )

    def refresh_works(self, refresh_token: str) -> bool:
        """Whether the token still gives a session and a registry token (both or neither)."""
        as_session = self.refresh_session(refresh_token).status_code
        as_grant = self.refresh_grant(refresh_token).status_code
        assert {as_session, as_grant} <= {200, 401}
        assert as_session == as_grant, (as_session, as_grant)
        return as_session == 200

    def docker_login(self) -> str:
        """What `docker login` does: GET /v2/token with offline_token; its refresh token."""
        r = httpx.get(
            self.stack.auth_url + "/v2/token",
            params={"service": "registry", "offline_token": "true", "client_id": "docker"},
            auth=(self.username, self.password),
            timeout=30,
        )
        assert r.status_code == 200, r.text
        return str(r.json()["refresh_token"])


def new_client(stack: Stack, *, admin: bool = False) -> Client:
    return Client(stack, *stack.create_user(admin=admin))


def user_id_of(client: Client, session: str) -> str:
    return str(client.call("GET", "/api/session", session).json()["user_id"])


def test_refresh_tokens_are_listed_revoked_and_end_with_logout(creds_stack: Stack) -> None:
    alice, bob = new_client(creds_stack), new_client(creds_stack)
    login = alice.login(refresh=True)
    assert login.status_code == 200 and login.headers["cache-control"] == "no-store"
    body = login.json()
    assert body["refresh_token"].startswith("rt_") and ISO.fullmatch(body["refresh_expires_at"])
    assert isinstance(body["expires_at"], int)
    session, refresh = body["token"], body["refresh_token"]
    assert "refresh_token" not in alice.session()  # only when asked for

    # The refresh token gives new sessions and, like docker's, registry tokens.
    r = alice.refresh_session(refresh)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    assert set(r.json()) == {"token", "token_type", "expires_in", "expires_at"}
    assert alice.alive(r.json()["token"])
    grant = alice.refresh_grant(refresh)
    assert grant.status_code == 200 and grant.json()["refresh_token"] == refresh

    docker_refresh = alice.docker_login()
    listed = alice.call("GET", "/api/refresh-tokens", session).json()["refresh_tokens"]
    assert [t["client_id"] for t in listed] == ["login", "docker"]
    for token in listed:
        assert set(token) == {
            "id",
            "client_id",
            "service",
            "created_at",
            "expires_at",
            "last_used_at",
        }
        assert token["service"] == "registry"
        assert ISO.fullmatch(token["created_at"]) and ISO.fullmatch(token["expires_at"])
    assert ISO.fullmatch(listed[0]["last_used_at"]) and listed[1]["last_used_at"] is None
    assert refresh not in str(listed) and docker_refresh not in str(listed)

    # Another user sees none of them and cannot revoke them: 404 like a missing one.
    bob_session = bob.session()["token"]
    assert bob.call("GET", "/api/refresh-tokens", bob_session).json() == {"refresh_tokens": []}
    for token_id in (listed[1]["id"], "rtk_doesnotexist"):
        r = bob.call("DELETE", f"/api/refresh-tokens/{token_id}", bob_session)
        assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
    assert alice.refresh_works(docker_refresh)

    # Revoking docker's refresh token stops it at once, and only it.
    r = alice.call("DELETE", f"/api/refresh-tokens/{listed[1]['id']}", session)
    assert r.status_code == 204
    assert not alice.refresh_works(docker_refresh)
    assert (
        alice.call("DELETE", f"/api/refresh-tokens/{listed[1]['id']}", session).status_code == 404
    )
    assert alice.refresh_works(refresh)

    # Logout with a refresh token revokes it too; bob naming alice's changes nothing.
    other = alice.session(refresh=True)
    r = bob.call("POST", "/api/logout", bob_session, json={"refresh_token": other["refresh_token"]})
    assert r.status_code == 204 and not bob.alive(bob_session)
    assert alice.refresh_works(other["refresh_token"])
    r = alice.call("POST", "/api/logout", session, json={"refresh_token": refresh})
    assert r.status_code == 204
    assert not alice.alive(session) and not alice.refresh_works(refresh)
    assert alice.refresh_works(other["refresh_token"])
    listed = alice.call("GET", "/api/refresh-tokens", other["token"]).json()["refresh_tokens"]
    assert [t["client_id"] for t in listed] == ["login"]


def test_revoke_all_password_change_and_admin_reset(creds_stack: Stack) -> None:
    admin, alice = new_client(creds_stack, admin=True), new_client(creds_stack)
    admin_session = admin.session()["token"]

    # revoke-all: every session (the calling one included) and refresh token.
    first, second = alice.session(refresh=True), alice.session(refresh=True)
    docker_refresh = alice.docker_login()
    r = alice.call("POST", "/api/sessions/revoke-all", first["token"])
    assert r.status_code == 200
    assert r.json() == {"revoked_sessions": 2, "revoked_refresh_tokens": 3}
    for body in (first, second):
        assert not alice.alive(body["token"]) and not alice.refresh_works(body["refresh_token"])
    assert not alice.refresh_works(docker_refresh)

    # Password change: the current password is checked, then everything ends.
    current = alice.session(refresh=True)
    docker_refresh = alice.docker_login()
    change = {"current_password": "not-the-password", "new_password": "a-new-long-password"}
    r = alice.call("POST", "/api/password", current["token"], json=change)
    assert r.status_code == 403 and r.json()["error"]["code"] == "DENIED"
    assert alice.alive(current["token"]) and alice.refresh_works(current["refresh_token"])
    for bad in ({"current_password": alice.password, "new_password": "short"}, {}, []):
        r = alice.call("POST", "/api/password", current["token"], json=bad)
        assert r.status_code == 400 and r.json()["error"]["code"] == "BAD_REQUEST"
    change["current_password"] = alice.password
    r = alice.call("POST", "/api/password", current["token"], json=change)
    assert r.status_code == 204
    assert not alice.alive(current["token"])
    assert not alice.refresh_works(current["refresh_token"])
    assert not alice.refresh_works(docker_refresh)
    assert alice.login().status_code == 401
    alice.password = change["new_password"]
    session = alice.session(refresh=True)
    user_id = user_id_of(alice, session["token"])

    # An administrator resets the password and revokes everything; nobody else may.
    r = alice.call("POST", f"/admin/users/{user_id}/revoke", session["token"])
    assert r.status_code == 403
    r = admin.call(
        "POST", f"/admin/users/{user_id}/password", admin_session, json={"new_password": "x"}
    )
    assert r.status_code == 400
    r = admin.call(
        "POST", "/admin/users/usr_nobody/password", admin_session, json={"new_password": "y" * 12}
    )
    assert r.status_code == 404
    reset = {"new_password": "reset-by-the-admin"}
    r = admin.call("POST", f"/admin/users/{user_id}/password", admin_session, json=reset)
    assert r.status_code == 204
    assert not alice.alive(session["token"]) and not alice.refresh_works(session["refresh_token"])
    assert alice.login().status_code == 401
    alice.password = reset["new_password"]
    session = alice.session(refresh=True)
    r = admin.call("POST", f"/admin/users/{user_id}/revoke", admin_session)
    assert r.status_code == 200
    assert r.json() == {"revoked_sessions": 1, "revoked_refresh_tokens": 1}
    assert not alice.alive(session["token"]) and not alice.refresh_works(session["refresh_token"])
    assert admin.call("POST", "/admin/users/usr_nobody/revoke", admin_session).status_code == 404
    assert admin.alive(admin_session)

    # The same from the server's command line.
    session = alice.session(refresh=True)
    out = creds_stack.cli(
        "ecloud-auth",
        "users",
        "set-password",
        alice.username,
        "--password-stdin",
        stdin="set-on-the-server\n",
    )
    assert "ended 1 session(s) and 1 refresh token(s)" in out
    assert not alice.alive(session["token"]) and not alice.refresh_works(session["refresh_token"])
    alice.password = "set-on-the-server"
    session = alice.session(refresh=True)
    out = creds_stack.cli("ecloud-auth", "users", "revoke", alice.username)
    assert "ended 1 session(s) and 1 refresh token(s)" in out
    assert not alice.alive(session["token"]) and not alice.refresh_works(session["refresh_token"])
    session = alice.session(refresh=True)
    creds_stack.cli("ecloud-auth", "users", "delete", alice.username, "--yes")
    assert not alice.alive(session["token"]) and not alice.refresh_works(session["refresh_token"])
    assert alice.login().status_code == 401
    for command in (["revoke", "nobody"], ["delete", "nobody", "--yes"]):
        out = creds_stack.cli("ecloud-auth", "users", *command, check=False)
        assert "error: no user named 'nobody'" in out


def test_session_refresh_refuses_what_is_not_a_live_user_refresh_token(stack: Stack) -> None:
    alice = new_client(stack)
    for body in ({"refresh_token": "rt_unknown"}, {"refresh_token": "x" * 5000}):
        r = alice.post("/api/session/refresh", json=body)
        assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHORIZED"
    for body in ({}, {"refresh_token": 5}, []):
        r = alice.post("/api/session/refresh", json=body)
        assert r.status_code == 400 and r.json()["error"]["code"] == "BAD_REQUEST"
    # A refresh token obtained with a service-account token never becomes a session.
    session = alice.session()["token"]
    account = alice.call(
        "POST",
        "/api/service-accounts",
        session,
        json={"name": "ci", "scopes": ["storage.me.registry=read"]},
    ).json()
    secret = alice.call("POST", f"/api/service-accounts/{account['id']}/tokens", session).json()
    r = httpx.get(
        stack.auth_url + "/v2/token",
        params={"service": "registry", "offline_token": "true"},
        auth=("ci", secret["token"]),
        timeout=30,
    )
    sa_refresh = r.json()["refresh_token"]
    assert alice.refresh_grant(sa_refresh).status_code == 200
    assert alice.refresh_session(sa_refresh).status_code == 401
