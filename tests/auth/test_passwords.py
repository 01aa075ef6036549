"""Argon2id password storage and rehash-on-login when the parameters change."""

from __future__ import annotations

import httpx

from services.auth.passwords import Passwords
from tests.auth.conftest import auth_sql
from tests.conftest import Stack


def stored_hash(stack: Stack, username: str) -> str:
    rows = auth_sql(stack, "SELECT password_hash FROM users WHERE username = ?", username)
    return str(rows[0][0])


def test_passwords_are_argon2id() -> None:
    passwords = Passwords(time_cost=1, memory_kib=8192, parallelism=1)
    h = passwords.hash("correct horse")
    assert h.startswith("$argon2id$v=19$m=8192,t=1,p=1$")
    assert passwords.verify(h, "correct horse")
    assert not passwords.verify(h, "wrong")
    assert not passwords.verify(None, "anything")
    assert not passwords.verify("not-a-hash", "x")
    assert Passwords(time_cost=2, memory_kib=8192, parallelism=1).needs_rehash(h)
    assert not passwords.needs_rehash(h)


def test_rehash_on_login_when_parameters_change(make_stack, auth_db) -> None:  # type: ignore[no-untyped-def]
    stack: Stack = make_stack({"ECLOUD_AUTH_DATABASE_URL": auth_db} if auth_db else {})
    user, password = stack.create_user()
    assert "m=8192,t=1,p=1" in stored_hash(stack, user)
    stack.auth.stop()
    stack.auth.env = {**stack.auth.env, "ECLOUD_ARGON2_TIME_COST": "2"}
    stack.auth.start()
    # A wrong password changes nothing.
    assert httpx.get(stack.auth_url + "/v2/token", auth=(user, "nope")).status_code == 401
    assert "m=8192,t=1,p=1" in stored_hash(stack, user)
    assert httpx.get(stack.auth_url + "/v2/token", auth=(user, password)).status_code == 200
    assert "m=8192,t=2,p=1" in stored_hash(stack, user)
    assert httpx.get(stack.auth_url + "/v2/token", auth=(user, password)).status_code == 200
