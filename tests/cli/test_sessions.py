"""Logins that last: the session refreshed with its refresh token, logout revoking both,
``ec auth sessions ls|rm`` and ``ec auth password`` (the auth service's credentials API)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from tests.cli.conftest import Ec, make_ec
from tests.conftest import Stack, build_stack

SESSION_TTL = 60  # the auth service's minimum


@pytest.fixture(scope="module")
def short_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = build_stack(
        tmp_path_factory.mktemp("short-sessions"),
        {
            "ECLOUD_SESSION_TTL": str(SESSION_TTL),
            "ECLOUD_RATE_LIMIT_FAILURES": "10000/60",
            "ECLOUD_RATE_LIMIT_REQUESTS": "10000/60",
        },
    )
    yield s
    s.stop()


@pytest.fixture
def short_ec(tmp_path: Path, short_stack: Stack) -> Ec:
    return make_ec(tmp_path / "home", short_stack)


def _config(ec: Ec) -> dict[str, str]:
    return dict(json.loads(ec.config_file.read_text()))


def _session_alive(stack: Stack, token: str) -> bool:
    r = httpx.get(
        stack.auth_url + "/api/session", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    return r.status_code == 200


def _refresh(stack: Stack, refresh_token: str) -> int:
    r = httpx.post(
        stack.auth_url + "/api/session/refresh", json={"refresh_token": refresh_token}, timeout=10
    )
    return r.status_code


def test_an_expired_session_is_refreshed_and_logout_revokes_the_refresh_token(
    short_ec: Ec, short_stack: Stack
) -> None:
    user, _ = short_stack.create_user()
    short_ec.login(short_stack, user)
    first = _config(short_ec)
    assert first["refresh_token"] and first["refresh_expires_at"].endswith("Z")
    expiry = jwt.decode(first["token"], options={"verify_signature": False})["exp"]
    while time.time() < expiry + 1:  # the session really ends (no early refresh to test)
        time.sleep(min(5, max(0.1, expiry + 1 - time.time())))
    assert not _session_alive(short_stack, first["token"])

    short_ec.ok("storage", "registry", "ls")
    second = _config(short_ec)
    assert second["token"] != first["token"]
    assert second["refresh_token"] == first["refresh_token"]
    assert _session_alive(short_stack, second["token"])
    status = short_ec.ok("--json", "auth", "status").json()
    assert status["username"] == user
    assert status["refreshed_until"] == first["refresh_expires_at"]

    out = short_ec.ok("auth", "logout").stdout
    assert "refresh token are revoked" in out
    assert not _session_alive(short_stack, second["token"])
    assert _refresh(short_stack, first["refresh_token"]) == 401
    left = _config(short_ec)
    assert "token" not in left and "refresh_token" not in left
    assert short_ec.run("auth", "status").code == 4


def test_a_revoked_session_is_renewed_once(ec: Ec, cli_stack: Stack) -> None:
    user, _ = cli_stack.create_user()
    ec.login(cli_stack, user)
    first = _config(ec)
    # The session ends early (another logout), the refresh token lives on.
    r = httpx.post(
        cli_stack.auth_url + "/api/logout",
        headers={"Authorization": f"Bearer {first['token']}"},
        timeout=10,
    )
    assert r.status_code == 204
    assert ec.ok("--json", "auth", "service-accounts", "ls").json() == []
    assert _config(ec)["token"] != first["token"]

    # Refresh token revoked too: one clear line, exit 4, log in again.
    httpx.post(
        cli_stack.auth_url + "/api/logout",
        headers={"Authorization": f"Bearer {_config(ec)['token']}"},
        json={"refresh_token": first["refresh_token"]},
        timeout=10,
    ).raise_for_status()
    result = ec.run("auth", "service-accounts", "ls")
    assert result.code == 4
    assert result.stderr == "error: your login has expired or was revoked: run `ec auth login`\n"
    # A token given on the command line is used as it is, never refreshed.
    session = cli_stack.session(user)
    assert ec.ok("--token", session, "--json", "auth", "status").json()["username"] == user


def test_sessions_ls_and_rm(ec: Ec, cli_stack: Stack) -> None:
    user, _ = cli_stack.create_user()
    ec.login(cli_stack, user)
    [mine] = ec.ok("auth", "sessions", "ls", "-q").stdout.split()
    laptop = make_ec(ec.home / "laptop", cli_stack)
    laptop.login(cli_stack, user)
    listed = ec.ok("--json", "auth", "sessions", "ls").json()
    assert len(listed) == 2 and {t["client_id"] for t in listed} == {"ec"}
    ids = ec.ok("auth", "sessions", "ls", "-q").stdout.split()
    assert sorted(ids) == sorted(t["id"] for t in listed)
    [laptop_id] = set(ids) - {mine}
    for line in ec.ok("auth", "sessions", "ls").stdout.splitlines():
        token_id, client, created, expires, _used = line.split("\t")
        assert token_id in ids and client == "ec" and created < expires

    laptop_refresh = _config(laptop)["refresh_token"]
    assert ec.run("auth", "sessions", "rm", laptop_id).code == 2  # no terminal, no --yes
    assert ec.run("auth", "sessions", "rm", laptop_id, "--all", "--yes").code == 2
    assert ec.run("auth", "sessions", "rm", "--yes").code == 2
    assert _refresh(cli_stack, laptop_refresh) == 200
    ec.ok("auth", "sessions", "rm", laptop_id, "--yes")
    assert _refresh(cli_stack, laptop_refresh) == 401
    assert ec.run("auth", "sessions", "rm", laptop_id, "--yes").code == 5
    assert ec.ok("auth", "sessions", "ls", "-q").stdout.split() == [mine]

    counts = ec.ok("--json", "auth", "sessions", "rm", "--all", "--yes").json()
    assert counts["revoked_refresh_tokens"] == 1 and counts["revoked_sessions"] >= 2
    assert "refresh_token" not in _config(ec)
    assert ec.run("auth", "status").code == 4
    assert laptop.run("auth", "status").code == 4


def test_password_change(ec: Ec, cli_stack: Stack) -> None:
    user, old = cli_stack.create_user()
    ec.login(cli_stack, user)
    laptop = make_ec(ec.home / "laptop", cli_stack)
    laptop.login(cli_stack, user)
    laptop_refresh = _config(laptop)["refresh_token"]
    new = old + "-and-then-some"

    result = ec.run("auth", "password", "--password-stdin", stdin=f"wrong\n{new}\n")
    assert result.code == 1 and "current password is wrong" in result.stderr
    assert ec.run("auth", "password", "--password-stdin", stdin=f"{old}\n{old}\n").code == 2
    assert ec.run("auth", "password", "--password-stdin", stdin=f"{old}\n").code == 2

    out = ec.ok("auth", "password", "--password-stdin", stdin=f"{old}\n{new}\n").stdout
    assert "logged in again" in out
    assert ec.ok("--json", "auth", "status").json()["username"] == user
    # Every other login ended; the old password no longer works, the new one does.
    assert _refresh(cli_stack, laptop_refresh) == 401
    assert laptop.run("auth", "status").code == 4
    line = laptop.fails("auth", "login", "-u", user, "--password-stdin", stdin=old + "\n")
    assert "wrong username or password" in line
    laptop.ok("auth", "login", "-u", user, "--password-stdin", stdin=new + "\n")
