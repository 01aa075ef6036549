"""Service accounts and ``ecloud_`` tokens over HTTP against a real auth service."""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest

from services.auth.sa_secrets import TOKEN_LENGTH
from tests.auth.conftest import auth_sql
from tests.conftest import Stack


@dataclass
class Owner:
    """A user with a live session, driving the service-account API."""

    stack: Stack
    username: str
    password: str
    session: str
    user_id: str

    @classmethod
    def new(cls, stack: Stack) -> Owner:
        username, password = stack.create_user()
        r = httpx.post(
            stack.auth_url + "/api/login",
            json={"username": username, "password": password},
            timeout=10,
        )
        r.raise_for_status()
        body = r.json()
        return cls(stack, username, password, body["token"], body["user"]["id"])

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(
            method,
            self.stack.auth_url + path,
            headers={"Authorization": f"Bearer {self.session}"},
            timeout=10,
            **kwargs,
        )

    def account(self, *scopes: str, name: str | None = None) -> dict[str, Any]:
        name = name or f"sa-{time.monotonic_ns()}"
        r = self.call("POST", "/api/service-accounts", json={"name": name, "scopes": list(scopes)})
        assert r.status_code == 201, r.text
        return dict(r.json())

    def token(self, account_id: str, **body: Any) -> dict[str, Any]:
        r = self.call("POST", f"/api/service-accounts/{account_id}/tokens", json=body)
        assert r.status_code == 201, r.text
        return dict(r.json())


def token_get(stack: Stack, secret: str, *scopes: str, username: str = "anything", **params: str):
    query = [("service", "registry"), *(("scope", s) for s in scopes), *params.items()]
    return httpx.get(
        stack.auth_url + "/v2/token", params=query, auth=(username, secret), timeout=10
    )


def access_of(response: httpx.Response) -> dict[str, list[str]]:
    assert response.status_code == 200, response.text
    claims = jwt.decode(response.json()["token"], options={"verify_signature": False})
    return {f"{a['type']}:{a['name']}": a["actions"] for a in claims["access"]}


def claims_of(response: httpx.Response) -> dict[str, Any]:
    token = response.json().get("token") or response.json()["access_token"]
    return dict(jwt.decode(token, options={"verify_signature": False}))


@pytest.fixture
def owner(sa_stack: Stack) -> Owner:
    return Owner.new(sa_stack)


def test_create_account_and_token_full_scope(sa_stack: Stack, owner: Owner) -> None:
    account = owner.account("storage.me.registry=read,create,delete", name="ci")
    assert account["name"] == "ci"
    assert account["id"].startswith("sa_")
    assert account["scopes"] == [f"storage.{owner.user_id}.registry=pull,push,delete"]

    issued = owner.token(account["id"], expires_in="30d")
    secret = issued["token"]
    assert secret.startswith("ecloud_") and len(secret) == TOKEN_LENGTH
    assert issued["hint"] == secret[-4:]
    created = time.time()
    assert issued["expires_at"] is not None

    # The secret is shown once: neither the account nor the token list repeats it.
    listed = owner.call("GET", f"/api/service-accounts/{account['id']}/tokens")
    assert listed.status_code == 200
    assert secret not in listed.text
    [row] = listed.json()["tokens"]
    assert row["id"] == issued["id"] and row["hint"] == secret[-4:]
    assert row["last_used_at"] is None
    assert "token" not in row
    got = owner.call("GET", f"/api/service-accounts/{account['id']}")
    assert got.json() == account
    all_accounts = owner.call("GET", "/api/service-accounts").json()["service_accounts"]
    assert [a["id"] for a in all_accounts] == [account["id"]]

    mine, theirs = f"{owner.username}/app", "someoneelse/app"
    r = token_get(
        sa_stack,
        secret,
        f"repository:{mine}:pull,push,delete",
        f"repository:{theirs}:pull",
        "registry:catalog:*",
    )
    assert access_of(r) == {
        f"repository:{mine}": ["pull", "push", "delete"],
        "registry:catalog": ["*"],
    }
    claims = claims_of(r)
    assert claims["sa"] == account["id"]
    assert claims["sub"] == owner.user_id

    [row] = owner.call("GET", f"/api/service-accounts/{account['id']}/tokens").json()["tokens"]
    assert row["last_used_at"] is not None
    assert row["expires_at"] > row["created_at"]
    expires = calendar.timegm(time.strptime(row["expires_at"], "%Y-%m-%dT%H:%M:%SZ"))
    assert abs(expires - (created + 30 * 86400)) < 120


def test_read_only_account_pulls_but_does_not_push(sa_stack: Stack, owner: Owner) -> None:
    account = owner.account("storage.me.registry=read")
    secret = owner.token(account["id"])["token"]
    repo = f"{owner.username}/app"
    assert access_of(token_get(sa_stack, secret, f"repository:{repo}:pull,push")) == {
        f"repository:{repo}": ["pull"]
    }
    # The catalog needs a scope over every repository: a read scope is one.
    assert access_of(token_get(sa_stack, secret, "registry:catalog:*")) == {
        "registry:catalog": ["*"]
    }


def test_repository_scope_covers_only_that_repository(sa_stack: Stack, owner: Owner) -> None:
    one = f"{owner.username}/one"
    account = owner.account(f"storage.me.registry.{one}=pull,push")
    assert account["scopes"] == [f"storage.{owner.user_id}.registry.{one}=pull,push"]
    secret = owner.token(account["id"], expires_in="never")["token"]
    r = token_get(
        sa_stack,
        secret,
        f"repository:{one}:pull,push,delete",
        f"repository:{owner.username}/two:pull",
        "registry:catalog:*",
    )
    assert access_of(r) == {f"repository:{one}": ["pull", "push"]}


def test_another_users_repository_is_never_granted(sa_stack: Stack, owner: Owner) -> None:
    other = Owner.new(sa_stack)
    secret = owner.token(owner.account("storage.me.registry=pull,push,delete")["id"])["token"]
    r = token_get(sa_stack, secret, f"repository:{other.username}/app:pull,push,delete")
    assert access_of(r) == {}
    # Nor can the other user name the owner's id in a scope.
    r = other.call(
        "POST",
        "/api/service-accounts",
        json={"name": "steal", "scopes": [f"storage.{owner.user_id}.registry=read"]},
    )
    assert r.status_code == 400
    assert "your own user id" in r.json()["error"]["message"]


def test_post_password_grant_with_sa_token(sa_stack: Stack, owner: Owner) -> None:
    account = owner.account("storage.me.registry=read")
    secret = owner.token(account["id"])["token"]
    repo = f"{owner.username}/app"
    r = httpx.post(
        sa_stack.auth_url + "/v2/token",
        data={
            "grant_type": "password",
            "username": "whatever",
            "password": secret,
            "client_id": "test",
            "service": "registry",
            "scope": f"repository:{repo}:pull,push",
        },
        timeout=10,
    )
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == f"repository:{repo}:pull"
    claims = claims_of(r)
    assert claims["sa"] == account["id"]
    assert claims["access"] == [{"type": "repository", "name": repo, "actions": ["pull"]}]


def test_deleted_account_revoked_and_rotated_tokens_stop_at_once(
    sa_stack: Stack, owner: Owner
) -> None:
    repo = f"repository:{owner.username}/app:pull"
    account = owner.account("storage.me.registry=read")
    old = owner.token(account["id"])
    assert token_get(sa_stack, old["token"], repo).status_code == 200

    # Rotation: a second token first, then the first is revoked.
    new = owner.token(account["id"])
    assert owner.call("DELETE", f"/api/tokens/{old['id']}").status_code == 204
    r = token_get(sa_stack, old["token"], repo)
    assert r.status_code == 401
    assert r.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert token_get(sa_stack, new["token"], repo).status_code == 200
    listed = owner.call("GET", f"/api/service-accounts/{account['id']}/tokens").json()["tokens"]
    assert [t["id"] for t in listed] == [new["id"]]
    # Revoking twice: the token is gone.
    assert owner.call("DELETE", f"/api/tokens/{old['id']}").status_code == 404

    assert owner.call("DELETE", f"/api/service-accounts/{account['id']}").status_code == 204
    assert token_get(sa_stack, new["token"], repo).status_code == 401
    assert owner.call("GET", f"/api/service-accounts/{account['id']}").status_code == 404
    assert owner.call("GET", f"/api/service-accounts/{account['id']}/tokens").status_code == 404


def _refresh(stack: Stack, refresh_token: str, scope: str) -> httpx.Response:
    return httpx.post(
        stack.auth_url + "/v2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": "test",
            "service": "registry",
            "scope": scope,
        },
        timeout=10,
    )


@pytest.mark.parametrize("how", ["revoke token", "delete account"])
def test_refresh_token_dies_with_its_sa_token(sa_stack: Stack, owner: Owner, how: str) -> None:
    scope = f"repository:{owner.username}/app:pull"
    account = owner.account("storage.me.registry=read")
    issued = owner.token(account["id"])
    r = token_get(sa_stack, issued["token"], offline_token="true", client_id="docker")
    assert r.status_code == 200
    refresh_token = r.json()["refresh_token"]
    r = _refresh(sa_stack, refresh_token, scope)
    assert r.status_code == 200
    assert claims_of(r)["sa"] == account["id"]
    assert r.json()["scope"] == scope
    if how == "revoke token":
        assert owner.call("DELETE", f"/api/tokens/{issued['id']}").status_code == 204
    else:
        assert owner.call("DELETE", f"/api/service-accounts/{account['id']}").status_code == 204
    assert _refresh(sa_stack, refresh_token, scope).status_code == 401


def test_scope_change_applies_to_existing_tokens(sa_stack: Stack, owner: Owner) -> None:
    repo = f"{owner.username}/app"
    account = owner.account("storage.me.registry=read")
    secret = owner.token(account["id"])["token"]
    r = owner.call(
        "PUT",
        f"/api/service-accounts/{account['id']}/scopes",
        json={"scopes": ["storage.me.registry=read,update", f"storage.me.registry.{repo}=delete"]},
    )
    assert r.status_code == 200, r.text
    updated = r.json()
    assert updated["scopes"] == [
        f"storage.{owner.user_id}.registry=pull,push",
        f"storage.{owner.user_id}.registry.{repo}=delete",
    ]
    r = token_get(
        sa_stack, secret, f"repository:{repo}:pull,push,delete", f"repository:{repo}x:delete"
    )
    assert access_of(r) == {f"repository:{repo}": ["pull", "push", "delete"]}
    bad = owner.call(
        "PUT", f"/api/service-accounts/{account['id']}/scopes", json={"scopes": ["nope"]}
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["message"].startswith("scope 'nope'")
    unchanged = owner.call("GET", f"/api/service-accounts/{account['id']}").json()
    assert unchanged["scopes"] == updated["scopes"]


def test_expired_token_is_refused(sa_stack: Stack, owner: Owner) -> None:
    issued = owner.token(owner.account("storage.me.registry=read")["id"], expires_in="30d")
    assert token_get(sa_stack, issued["token"]).status_code == 200
    # Move the expiry into the past in the real database.
    auth_sql(
        sa_stack, "UPDATE sa_tokens SET expires_at = ? WHERE id = ?", time.time() - 1, issued["id"]
    )
    r = token_get(sa_stack, issued["token"])
    assert r.status_code == 401


def test_malformed_or_mistyped_tokens_are_refused(sa_stack: Stack, owner: Owner) -> None:
    secret = owner.token(owner.account("storage.me.registry=read")["id"])["token"]
    # One character changed in the random part: the checksum no longer matches.
    flipped = secret[:10] + ("A" if secret[10] != "A" else "B") + secret[11:]
    for bad in (flipped, secret[:-1], secret + "x", "ecloud_", "ecloud_" + "0" * 49):
        r = token_get(sa_stack, bad)
        assert r.status_code == 401, bad
        r = httpx.post(
            sa_stack.auth_url + "/v2/token",
            data={
                "grant_type": "password",
                "username": owner.username,
                "password": bad,
                "client_id": "t",
                "service": "registry",
            },
            timeout=10,
        )
        assert r.status_code == 401, bad


def test_sa_token_never_acts_as_a_session(sa_stack: Stack, owner: Owner) -> None:
    secret = owner.token(owner.account("storage.me.registry=read,create,delete")["id"])["token"]
    r = httpx.post(
        sa_stack.auth_url + "/api/login",
        json={"username": owner.username, "password": secret},
        timeout=10,
    )
    assert r.status_code == 401
    bearer = {"Authorization": f"Bearer {secret}"}
    for method, path in [
        ("GET", "/api/session"),
        ("GET", "/api/service-accounts"),
        ("POST", "/api/logout"),
        ("GET", "/admin/users"),
    ]:
        r = httpx.request(method, sa_stack.auth_url + path, headers=bearer, timeout=10)
        assert r.status_code == 401, (method, path)
    r = httpx.get(sa_stack.registry_url + "/v2/", headers=bearer, timeout=10)
    assert r.status_code == 401
    # Nor does a registry token obtained with it open the account API.
    registry_token = token_get(sa_stack, secret).json()["token"]
    r = httpx.get(
        sa_stack.auth_url + "/api/service-accounts",
        headers={"Authorization": f"Bearer {registry_token}"},
        timeout=10,
    )
    assert r.status_code == 401


@pytest.mark.parametrize(
    ("scopes", "message"),
    [
        (["storage.usr_someoneelse.registry=read"], "your own user id"),
        (["storage.me.registry=read,fly"], "unknown action 'fly'"),
        (["storage.me.registry"], "lacks '=<actions>'"),
        (["registry=read"], "storage.<user-id>.registry"),
        (["storage.me.registry="], "names no action"),
        (["storage.me.registry.someoneelse/app=read"], "outside your namespace"),
        (["storage.me.registry.Bad Name=read"], "invalid repository name"),
        ([], "at least one scope"),
        ("storage.me.registry=read", "list of strings"),
        (None, "list of strings"),
    ],
)
def test_bad_scopes_are_400_with_a_clear_message(
    owner: Owner, scopes: object, message: str
) -> None:
    r = owner.call("POST", "/api/service-accounts", json={"name": "bad", "scopes": scopes})
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]["message"]
    assert owner.call("GET", "/api/service-accounts").json() == {"service_accounts": []}


def test_bad_requests(owner: Owner) -> None:
    ok = ["storage.me.registry=read"]
    for body, message in [
        ({"name": "", "scopes": ok}, "name must be"),
        ({"name": "a b", "scopes": ok}, "name must be"),
        ({"name": 3, "scopes": ok}, "name must be"),
        ({"scopes": ok}, "name must be"),
    ]:
        r = owner.call("POST", "/api/service-accounts", json=body)
        assert r.status_code == 400
        assert message in r.json()["error"]["message"]
    r = owner.call("POST", "/api/service-accounts", content=b"{not json")
    assert r.status_code == 400
    account = owner.account(*ok, name="dup")
    r = owner.call("POST", "/api/service-accounts", json={"name": "dup", "scopes": ok})
    assert r.status_code == 409
    assert "already exists" in r.json()["error"]["message"]
    r = owner.call(
        "POST", f"/api/service-accounts/{account['id']}/tokens", json={"expires_in": "7d"}
    )
    assert r.status_code == 400
    assert "30d, 90d, 365d, never" in r.json()["error"]["message"]
    # No body at all: the default expiry.
    r = owner.call("POST", f"/api/service-accounts/{account['id']}/tokens")
    assert r.status_code == 201
    assert r.json()["expires_at"] is not None


def test_other_users_accounts_and_tokens_are_404(sa_stack: Stack, owner: Owner) -> None:
    account = owner.account("storage.me.registry=read")
    issued = owner.token(account["id"])
    other = Owner.new(sa_stack)
    sa_path = f"/api/service-accounts/{account['id']}"
    for method, path, body in [
        ("GET", sa_path, None),
        ("DELETE", sa_path, None),
        ("PUT", sa_path + "/scopes", {"scopes": ["storage.me.registry=read"]}),
        ("GET", sa_path + "/tokens", None),
        ("POST", sa_path + "/tokens", {}),
        ("DELETE", f"/api/tokens/{issued['id']}", None),
    ]:
        theirs = other.call(method, path, json=body)
        nowhere = path.replace(account["id"], "sa_nonexistent").replace(issued["id"], "tok_none")
        missing = other.call(method, nowhere, json=body)
        assert theirs.status_code == 404, (method, path)
        # Same answer as for an id that does not exist: no existence oracle.
        assert theirs.json() == missing.json()
    assert other.call("GET", "/api/service-accounts").json() == {"service_accounts": []}
    # Untouched for the owner.
    assert token_get(sa_stack, issued["token"]).status_code == 200
    assert owner.call("GET", sa_path).json()["scopes"] == account["scopes"]


def test_every_endpoint_needs_a_live_session(sa_stack: Stack, owner: Owner) -> None:
    account = owner.account("storage.me.registry=read")
    paths = [
        ("GET", "/api/service-accounts"),
        ("POST", "/api/service-accounts"),
        ("GET", f"/api/service-accounts/{account['id']}"),
        ("DELETE", f"/api/service-accounts/{account['id']}"),
        ("PUT", f"/api/service-accounts/{account['id']}/scopes"),
        ("GET", f"/api/service-accounts/{account['id']}/tokens"),
        ("POST", f"/api/service-accounts/{account['id']}/tokens"),
        ("DELETE", "/api/tokens/tok_x"),
    ]
    for method, path in paths:
        r = httpx.request(method, sa_stack.auth_url + path, timeout=10)
        assert r.status_code == 401, (method, path)
    assert owner.call("POST", "/api/logout").status_code == 204
    for method, path in paths:
        assert owner.call(method, path).status_code == 401, (method, path)


def test_deleting_the_user_removes_accounts(sa_stack: Stack) -> None:
    owner = Owner.new(sa_stack)
    secret = owner.token(owner.account("storage.me.registry=read")["id"])["token"]
    admin_name, _ = sa_stack.create_user(admin=True)
    admin = sa_stack.session(admin_name)
    r = httpx.delete(
        f"{sa_stack.auth_url}/admin/users/{owner.user_id}",
        headers={"Authorization": f"Bearer {admin}"},
        timeout=10,
    )
    assert r.status_code == 204
    assert token_get(sa_stack, secret).status_code == 401
