"""Service accounts with the auth database on the real PostgreSQL (the SQL must hold on both)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.auth.test_service_accounts import Owner, access_of, token_get
from tests.conftest import Stack

pytestmark = pytest.mark.postgres


def test_lifecycle_on_postgresql(make_stack: Callable[..., Stack], pg_database: str) -> None:
    stack = make_stack({"ECLOUD_AUTH_DATABASE_URL": pg_database})
    owner = Owner.new(stack)
    account = owner.account("storage.me.registry=read,create", name="ci")
    r = owner.call(
        "POST", "/api/service-accounts", json={"name": "ci", "scopes": ["storage.me.registry=read"]}
    )
    assert r.status_code == 409
    issued = owner.token(account["id"], expires_in="never")
    repo = f"{owner.username}/app"
    r = token_get(stack, issued["token"], f"repository:{repo}:pull,push,delete", offline_token="1")
    assert access_of(r) == {f"repository:{repo}": ["pull", "push"]}
    refresh = r.json()["refresh_token"]
    assert owner.call("DELETE", f"/api/service-accounts/{account['id']}").status_code == 204
    assert token_get(stack, issued["token"]).status_code == 401
    r = httpx.post(
        stack.auth_url + "/v2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "client_id": "t",
            "service": "registry",
        },
        timeout=10,
    )
    assert r.status_code == 401
    listed = owner.call("GET", "/api/service-accounts").json()
    assert listed == {"service_accounts": []}
