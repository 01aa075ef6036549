"""GET and POST /v2/token against a real auth service."""

from __future__ import annotations

import re
import time

import httpx
import jwt
import pytest

from tests.conftest import Stack


def claims(token: str) -> dict[str, object]:
    return jwt.decode(token, options={"verify_signature": False})


def access(token: str) -> dict[tuple[str, str], set[str]]:
    entries = claims(token)["access"]
    assert isinstance(entries, list)
    return {(e["type"], e["name"]): set(e["actions"]) for e in entries}


def get_token(stack: Stack, params: list[tuple[str, str]], auth: tuple[str, str] | None):
    return httpx.get(stack.auth_url + "/v2/token", params=params, auth=auth, timeout=10)


def test_docker_login_request_gets_token_and_refresh_token(stack: Stack) -> None:
    user, password = stack.create_user()
    r = get_token(
        stack,
        [
            ("account", user),
            ("client_id", "docker"),
            ("offline_token", "true"),
            ("service", "registry"),
        ],
        (user, password),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token"] == body["access_token"]
    assert body["expires_in"] >= 60
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["issued_at"])
    assert body["refresh_token"]
    c = claims(body["token"])
    assert c["aud"] == "registry" and c["iss"] == "ecloud-auth" and c["access"] == []
    assert str(c["sub"]).startswith("usr_")
    assert {"exp", "nbf", "iat", "jti"} <= set(c)
    assert r.headers["cache-control"] == "no-store"


def test_several_scope_params_and_space_separated_scopes(stack: Stack) -> None:
    user, password = stack.create_user()
    r = get_token(
        stack,
        [
            ("service", "registry"),
            ("scope", f"repository:{user}/a:pull,push"),
            ("scope", f"repository:{user}/b:pull repository:{user}/c:delete"),
            ("scope", "registry:catalog:*"),
        ],
        (user, password),
    )
    assert r.status_code == 200
    assert access(r.json()["token"]) == {
        ("repository", f"{user}/a"): {"pull", "push"},
        ("repository", f"{user}/b"): {"pull"},
        ("repository", f"{user}/c"): {"delete"},
        ("registry", "catalog"): {"*"},
    }


def test_other_namespace_never_granted(stack: Stack) -> None:
    alice, pw = stack.create_user()
    bob, _ = stack.create_user()
    r = get_token(
        stack,
        [
            ("service", "registry"),
            ("scope", f"repository:{bob}/app:pull,push,delete"),
            ("scope", f"repository:{bob}/never-pushed:push"),
            ("scope", "repository:library:pull"),
            ("scope", f"repository:{alice}/ok:pull"),
        ],
        (alice, pw),
    )
    assert r.status_code == 200
    assert access(r.json()["token"]) == {("repository", f"{alice}/ok"): {"pull"}}


@pytest.mark.parametrize(
    "bad_scope",
    [
        "repository",
        "repository:Bad/Name:pull",
        "x:y:z",
        "repository:a/b:",
        ":::",
        "%00",
        "a" * 5000,
    ],
)
def test_malformed_scope_grants_nothing_and_is_not_a_500(stack: Stack, bad_scope: str) -> None:
    user, password = stack.create_user()
    r = get_token(stack, [("service", "registry"), ("scope", bad_scope)], (user, password))
    assert r.status_code == 200
    assert claims(r.json()["token"])["access"] == []


def test_no_credentials_gives_empty_access(stack: Stack) -> None:
    r = get_token(stack, [("service", "registry"), ("scope", "repository:x/y:pull")], None)
    assert r.status_code == 200
    c = claims(r.json()["token"])
    assert c["access"] == [] and c["sub"] == ""
    assert "refresh_token" not in r.json()


def test_wrong_credentials_get_401_json_on_get_and_post(stack: Stack) -> None:
    user, _ = stack.create_user()
    r = get_token(stack, [("service", "registry")], (user, "wrong-password"))
    assert r.status_code == 401
    assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"
    r = get_token(stack, [("service", "registry")], ("nobody-here", "whatever"))
    assert r.status_code == 401
    r = httpx.post(
        stack.auth_url + "/v2/token",
        data={
            "grant_type": "password",
            "username": user,
            "password": "nope",
            "client_id": "containerd",
            "service": "registry",
        },
    )
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_grant"
    assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"


def test_malformed_basic_header_is_401(stack: Stack) -> None:
    r = httpx.get(stack.auth_url + "/v2/token", headers={"Authorization": "Basic !!!notbase64"})
    assert r.status_code == 401


def test_unknown_service_is_refused(stack: Stack) -> None:
    user, password = stack.create_user()
    r = get_token(stack, [("service", "elsewhere")], (user, password))
    assert r.status_code == 400


def test_post_password_and_refresh_grants(stack: Stack) -> None:
    user, password = stack.create_user()
    r = httpx.post(
        stack.auth_url + "/v2/token",
        data={
            "grant_type": "password",
            "username": user,
            "password": password,
            "client_id": "containerd",
            "service": "registry",
            "access_type": "offline",
            "scope": f"repository:{user}/app:pull repository:other/app:pull",
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["scope"] == f"repository:{user}/app:pull"
    assert access(body["access_token"]) == {("repository", f"{user}/app"): {"pull"}}
    refresh = body["refresh_token"]
    r = httpx.post(
        stack.auth_url + "/v2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "client_id": "containerd",
            "service": "registry",
            "scope": f"repository:{user}/app:pull,push",
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["refresh_token"] == refresh
    assert access(r.json()["access_token"]) == {("repository", f"{user}/app"): {"pull", "push"}}
    r = httpx.post(
        stack.auth_url + "/v2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh + "x",
            "client_id": "containerd",
            "service": "registry",
        },
    )
    assert r.status_code == 401


def test_refresh_token_from_get_works_on_post(stack: Stack) -> None:
    user, password = stack.create_user()
    r = get_token(
        stack,
        [("service", "registry"), ("offline_token", "true"), ("client_id", "docker")],
        (user, password),
    )
    refresh = r.json()["refresh_token"]
    r = httpx.post(
        stack.auth_url + "/v2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "client_id": "docker",
            "service": "registry",
            "scope": f"repository:{user}/x:pull",
        },
    )
    assert r.status_code == 200
    assert r.json()["refresh_token"] == refresh


@pytest.mark.parametrize(
    "form",
    [
        {"grant_type": "password", "username": "a", "password": "b", "service": "registry"},
        {"grant_type": "password", "username": "a", "password": "b", "client_id": "x"},
        {"grant_type": "client_credentials", "client_id": "x", "service": "registry"},
    ],
)
def test_post_bad_requests(stack: Stack, form: dict[str, str]) -> None:
    r = httpx.post(stack.auth_url + "/v2/token", data=form)
    assert r.status_code == 400
    assert "error" in r.json()


def test_token_lifetime(stack: Stack) -> None:
    user, password = stack.create_user()
    before = int(time.time())
    token = get_token(stack, [("service", "registry")], (user, password)).json()["token"]
    c = claims(token)
    assert before - 2 <= int(c["iat"]) <= int(time.time()) + 2  # type: ignore[call-overload]
    assert int(c["exp"]) - int(c["iat"]) == 300  # type: ignore[call-overload]


def test_secrets_never_reach_the_log(stack: Stack) -> None:
    user, password = stack.create_user()
    r = get_token(
        stack,
        [
            ("service", "registry"),
            ("offline_token", "true"),
            ("scope", f"repository:{user}/a:pull"),
        ],
        (user, password),
    )
    get_token(stack, [("service", "registry")], (user, password + "-wrong"))
    log = (stack.root / "auth.log").read_text()
    assert '"event":"token_issued"' in log and '"event":"auth_failed"' in log
    for secret in [password, r.json()["token"], r.json()["refresh_token"]]:
        assert secret not in log
