"""``ec auth login|logout|status|set-token``, the config file and the global options."""

from __future__ import annotations

import json
import sqlite3
import stat
import time

import httpx
import pytest

from tests.cli.conftest import Ec, make_ec
from tests.conftest import Stack, free_port


def _mode(path: object) -> int:
    return stat.S_IMODE(path.stat().st_mode)  # type: ignore[attr-defined]


def test_login_status_logout(ec: Ec, cli_stack: Stack) -> None:
    user, _ = cli_stack.create_user()
    out = ec.login(cli_stack, user)
    assert f"as {user}" in out.stdout

    config = json.loads(ec.config_file.read_text())
    assert config["username"] == user
    assert config["auth_url"] == cli_stack.auth_url
    session = config["token"]
    assert _mode(ec.config_file) == 0o600
    assert _mode(ec.config_file.parent) == 0o700

    status = ec.ok("--json", "auth", "status").json()
    assert status["username"] == user
    assert status["kind"] == "session"
    assert status["token_source"] == "config"
    assert status["user_id"].startswith("usr_")
    human = ec.ok("auth", "status").stdout
    assert user in human and "config" in human

    out = ec.ok("auth", "logout")
    assert "revoked" in out.stdout
    assert "token" not in json.loads(ec.config_file.read_text())
    # The session is revoked on the server, not only forgotten here.
    r = httpx.get(
        cli_stack.auth_url + "/api/session",
        headers={"Authorization": f"Bearer {session}"},
        timeout=10,
    )
    assert r.status_code == 401
    line = ec.fails("--token", session, "auth", "status")
    assert "expired or was revoked" in line
    assert "not logged in" in ec.fails("auth", "status")


def test_login_json_and_prompts(ec: Ec, cli_stack: Stack) -> None:
    user, password = cli_stack.create_user()
    out = ec.ok("auth", "login", "--json", stdin=f"{user}\n{password}\n")
    body = out.json()
    assert body["username"] == user
    assert "token" not in body  # the session stays in the config file only
    assert ec.ok("--json", "auth", "status").json()["username"] == user


def test_wrong_password_and_missing_stdin(ec: Ec, cli_stack: Stack) -> None:
    user, _ = cli_stack.create_user()
    line = ec.fails("auth", "login", "-u", user, "--password-stdin", stdin="wrong-password\n")
    assert line == "error: wrong username or password"
    assert not ec.config_file.exists()
    assert "no password" in ec.fails("auth", "login", "-u", user, "--password-stdin", stdin="")
    assert "needs --username" in ec.fails("auth", "login", "--password-stdin", stdin="x\n")
    line = ec.fails(
        "auth", "login", "-u", user, "--password-stdin", stdin="ecloud_" + "a" * 49 + "\n"
    )
    assert "not a password" in line


def test_unreachable_server(ec: Ec) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    line = ec.fails("--auth-url", url, "auth", "login", "-u", "x", "--password-stdin", stdin="p\n")
    assert line.startswith(f"error: cannot reach the auth service at {url}")
    line = ec.fails("--auth-url", url, "--token", "abc", "auth", "status")
    assert f"cannot reach the auth service at {url}" in line
    line = ec.fails("--registry-url", url, "--token", "abc", "storage", "registry", "ls")
    assert f"cannot reach the registry at {url}" in line


def test_base_domain_and_missing_configuration(ec: Ec) -> None:
    line = ec.fails("--base", "example.invalid", "--token", "t", "auth", "status", EC_TIMEOUT="5")
    assert "https://auth.example.invalid" in line
    env_less = make_ec(ec.home / "bare", None)
    assert "no auth service configured" in env_less.fails("--token", "t", "auth", "status")
    assert "--base takes a domain" in ec.fails("--base", "https://x.y", "auth", "status")
    assert "must start with http" in ec.fails("--auth-url", "ftp://x", "auth", "status")


def test_expired_session_is_one_clear_line(ec: Ec, cli_stack: Stack) -> None:
    user, _ = cli_stack.create_user()
    ec.login(cli_stack, user)
    # The JWT itself is valid for hours: end the session row as its expiry would.
    with sqlite3.connect(cli_stack.root / "data" / "auth.db") as db:
        user_id = db.execute("SELECT id FROM users WHERE username = ?", (user,)).fetchone()[0]
        db.execute(
            "UPDATE sessions SET expires_at = ? WHERE user_id = ?", (time.time() - 1, user_id)
        )
    for args in (
        ("auth", "status"),
        ("auth", "service-accounts", "ls"),
        ("auth", "tokens", "ls", "--service-account", "sa_x"),
    ):
        line = ec.fails(*args)
        assert "your session has expired or was revoked" in line
        assert "ec auth login" in line
    # Logout still clears the local copy of a session the server has ended.
    out = ec.ok("auth", "logout")
    assert "already ended" in out.stdout
    assert "token" not in json.loads(ec.config_file.read_text())


def test_token_precedence(ec: Ec, cli_stack: Stack) -> None:
    names = [cli_stack.create_user()[0] for _ in range(3)]
    in_config, in_env, on_line = (cli_stack.session(n) for n in names)
    ec.ok("auth", "set-token", "-", stdin=in_config + "\n")
    assert _mode(ec.config_file) == 0o600
    assert ec.ok("--json", "auth", "status").json()["username"] == names[0]
    status = ec.ok("--json", "auth", "status", EC_TOKEN=in_env).json()
    assert (status["username"], status["token_source"]) == (names[1], "EC_TOKEN")
    status = ec.ok("--json", "--token", on_line, "auth", "status", EC_TOKEN=in_env).json()
    assert (status["username"], status["token_source"]) == (names[2], "--token")


def test_xdg_config_home_and_tightened_permissions(ec: Ec, cli_stack: Stack) -> None:
    user, _ = cli_stack.create_user()
    xdg = ec.home / "xdg"
    ec.env["XDG_CONFIG_HOME"] = str(xdg)
    ec.config_file.parent.mkdir(parents=True, mode=0o755)
    ec.login(cli_stack, user)
    assert ec.config_file == xdg / "ec" / "config.json"
    assert ec.config_file.exists()
    assert not (ec.home / ".config").exists()
    assert _mode(ec.config_file) == 0o600
    assert _mode(ec.config_file.parent) == 0o700
    # A file someone loosened is reported.
    ec.config_file.chmod(0o644)
    result = ec.run("auth", "status")
    assert result.code == 0
    assert "readable by other users" in result.stderr


def test_broken_config_file(ec: Ec) -> None:
    ec.config_file.parent.mkdir(parents=True)
    ec.config_file.write_text("{not json")
    ec.config_file.chmod(0o600)
    line = ec.fails("auth", "status")
    assert str(ec.config_file) in line and "not valid JSON" in line


def test_sa_token_is_not_a_session_for_the_cli(ec: Ec, cli_stack: Stack) -> None:
    user, _ = cli_stack.create_user()
    ec.login(cli_stack, user)
    created = ec.ok(
        "--json", "auth", "service-accounts", "create", "--name", "ci", "--scope",
        "storage.me.registry=read",
    ).json()  # fmt: skip
    secret = created["token"]["token"]
    for args in (
        ("auth", "service-accounts", "ls"),
        ("auth", "tokens", "ls", "--service-account", created["service_account"]["id"]),
    ):
        assert "needs a login session" in ec.fails("--token", secret, *args)
    status = ec.ok("--json", "--token", secret, "auth", "status").json()
    assert status["kind"] == "service-account token"
    assert status["hint"] == secret[-4:]
    ec.ok("auth", "tokens", "rm", created["token"]["id"], "--yes")
    assert "was refused" in ec.fails("--token", secret, "auth", "status")


@pytest.mark.parametrize(
    "path",
    [
        [],
        ["auth"],
        ["auth", "login"],
        ["auth", "logout"],
        ["auth", "status"],
        ["auth", "set-token"],
        ["auth", "service-accounts"],
        ["auth", "service-accounts", "ls"],
        ["auth", "service-accounts", "create"],
        ["auth", "service-accounts", "get"],
        ["auth", "service-accounts", "rm"],
        ["auth", "service-accounts", "rotate"],
        ["auth", "tokens"],
        ["auth", "tokens", "ls"],
        ["auth", "tokens", "create"],
        ["auth", "tokens", "rm"],
        ["storage"],
        ["storage", "registry"],
        ["storage", "registry", "ls"],
        ["storage", "registry", "tags"],
        ["storage", "registry", "rm"],
        ["storage", "registry", "inspect"],
        ["auth", "configure-docker"],
        ["completion"],
    ],
)
def test_help_with_examples_at_every_level(ec: Ec, path: list[str]) -> None:
    out = ec.ok(*path, "--help").stdout
    assert "Usage: ec" in out
    assert "Examples" in out
    # The examples show this very command.
    assert " ".join(path) in " ".join(out.split()[out.split().index("Examples:") :])
