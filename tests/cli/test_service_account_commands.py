"""``ec auth service-accounts …`` and ``ec auth tokens …`` against a real auth service."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import jwt
import pytest

from tests.cli.conftest import Ec
from tests.conftest import Stack


def registry_access(stack: Stack, secret: str, scope: str) -> httpx.Response:
    return httpx.get(
        stack.auth_url + "/v2/token",
        params={"service": "registry", "scope": scope},
        auth=("ci", secret),
        timeout=10,
    )


def granted(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    claims = jwt.decode(response.json()["token"], options={"verify_signature": False})
    return [a for entry in claims["access"] for a in entry["actions"]]


@pytest.fixture
def user(ec: Ec, cli_stack: Stack) -> str:
    name, _ = cli_stack.create_user()
    ec.login(cli_stack, name)
    return name


def test_service_account_lifecycle(ec: Ec, cli_stack: Stack, user: str) -> None:
    created = ec.ok(
        "--json", "auth", "service-accounts", "create", "--name", "ci",
        "--scope", "storage.me.registry=read,create,delete",
    ).json()  # fmt: skip
    account, first = created["service_account"], created["token"]
    assert account["name"] == "ci"
    assert account["scopes"][0].endswith(".registry=pull,push,delete")
    assert first["token"].startswith("ecloud_")
    scope = f"repository:{user}/app:pull,push,delete"
    assert granted(registry_access(cli_stack, first["token"], scope)) == ["pull", "push", "delete"]

    listed = ec.ok("auth", "service-accounts", "ls", "--json").json()
    assert [a["id"] for a in listed] == [account["id"]]
    human = ec.ok("auth", "service-accounts", "ls").stdout
    assert "ci" in human and account["id"] in human

    shown = ec.ok("--json", "auth", "service-accounts", "get", account["id"])
    assert first["token"] not in shown.stdout
    body = shown.json()
    assert body["service_account"] == account
    assert [t["id"] for t in body["tokens"]] == [first["id"]]
    assert ec.ok("auth", "service-accounts", "get", account["id"]).stdout.count(first["id"]) == 1

    # A name is unique per user: the server's message, one line.
    line = ec.fails(
        "auth", "service-accounts", "create", "--name", "ci", "--scope", "storage.me.registry=read"
    )
    assert "already exists" in line

    rotated = ec.ok("--json", "auth", "service-accounts", "rotate", account["id"], "-y").json()
    assert rotated["revoked"] == [first["id"]]
    assert registry_access(cli_stack, first["token"], scope).status_code == 401
    assert granted(registry_access(cli_stack, rotated["token"]["token"], scope)) == [
        "pull",
        "push",
        "delete",
    ]

    out = ec.ok("auth", "service-accounts", "rm", account["id"], "--yes")
    assert "Deleted" in out.stdout
    assert registry_access(cli_stack, rotated["token"]["token"], scope).status_code == 401
    assert "not found: no such service account" in ec.fails(
        "auth", "service-accounts", "get", account["id"]
    )
    assert ec.ok("--json", "auth", "service-accounts", "ls").json() == []


def test_create_prints_the_token_once_for_people(ec: Ec, cli_stack: Stack, user: str) -> None:
    result = ec.ok(
        "auth", "service-accounts", "create", "--name", "deploy",
        "--scope", f"storage.me.registry.{user}/app=pull", "--expires-in", "30d",
    )  # fmt: skip
    [secret] = [w for w in result.stdout.split() if w.startswith("ecloud_")]
    assert "not shown again" in result.stderr
    assert granted(registry_access(cli_stack, secret, f"repository:{user}/app:pull,push")) == [
        "pull"
    ]
    assert granted(registry_access(cli_stack, secret, f"repository:{user}/other:pull")) == []


@pytest.mark.parametrize(
    ("scope", "message"),
    [
        ("storage.usr_nobody.registry=read", "your own user id"),
        ("storage.me.registry=read,fly", "unknown action 'fly'"),
        ("storage.me.registry", "lacks '=<actions>'"),
        ("storage.me.registry.someoneelse/app=read", "outside your namespace"),
    ],
)
def test_bad_scope_is_the_servers_message(ec: Ec, user: str, scope: str, message: str) -> None:
    line = ec.fails("auth", "service-accounts", "create", "--name", "x", "--scope", scope)
    assert message in line
    assert ec.ok("--json", "auth", "service-accounts", "ls").json() == []


def test_tokens_commands(ec: Ec, cli_stack: Stack, user: str) -> None:
    account = ec.ok(
        "--json", "auth", "service-accounts", "create", "--name", "ci",
        "--scope", "storage.me.registry=read",
    ).json()["service_account"]  # fmt: skip
    sa = account["id"]
    extra = ec.ok(
        "auth", "tokens", "create", "--service-account", sa, "--expires-in", "never",
        "--name", "laptop", "--json",
    ).json()  # fmt: skip
    assert extra["expires_at"] is None and extra["name"] == "laptop"
    scope = f"repository:{user}/app:pull"
    assert granted(registry_access(cli_stack, extra["token"], scope)) == ["pull"]

    tokens = ec.ok("--json", "auth", "tokens", "ls", "--service-account", sa).json()
    assert len(tokens) == 2
    assert all("token" not in t for t in tokens)
    laptop = next(t for t in tokens if t["id"] == extra["id"])
    assert laptop["hint"] == extra["token"][-4:]
    assert laptop["last_used_at"] is not None
    human = ec.ok("auth", "tokens", "ls", "--service-account", sa).stdout
    assert "laptop" in human and "never" in human and extra["token"] not in human

    assert "Revoked" in ec.ok("auth", "tokens", "rm", extra["id"], "--yes").stdout
    assert registry_access(cli_stack, extra["token"], scope).status_code == 401
    assert "not found" in ec.fails("auth", "tokens", "rm", extra["id"], "--yes")
    # A usage error: click's own report (exit 2), checked before any request.
    result = ec.run("auth", "tokens", "create", "--service-account", sa, "--expires-in", "7d")
    assert result.code == 2
    assert "30d, 90d, 365d, never" in result.stderr and "Traceback" not in result.stderr
    # Ids are path segments, never paths.
    assert "not found" in ec.fails("auth", "tokens", "ls", "--service-account", "../../api/x")


def test_another_users_account_is_not_found(ec: Ec, cli_stack: Stack, user: str) -> None:
    sa = ec.ok(
        "--json", "auth", "service-accounts", "create", "--name", "ci",
        "--scope", "storage.me.registry=read",
    ).json()["service_account"]["id"]  # fmt: skip
    other, _ = cli_stack.create_user()
    session = cli_stack.session(other)
    for args in (
        ("auth", "service-accounts", "get", sa),
        ("auth", "service-accounts", "rm", sa, "--yes"),
        ("auth", "service-accounts", "rotate", sa, "--yes"),
        ("auth", "tokens", "ls", "--service-account", sa),
    ):
        assert "not found" in ec.fails("--token", session, *args)
    assert ec.ok("--json", "auth", "service-accounts", "get", sa).json()["service_account"]


class _Failing(BaseHTTPRequestHandler):
    """A server that breaks: 500 with a JSON error, or 502 with an HTML page."""

    def do_GET(self) -> None:
        if self.path.startswith("/api/session"):
            body, kind, status = b'{"error":{"code":"INTERNAL","message":"db down"}}', "json", 500
        else:
            body, kind, status = b"<html>bad gateway</html>", "html", 502
        self.send_response(status)
        self.send_header("Content-Type", f"application/{kind}" if kind == "json" else "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def failing_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_server_errors_are_one_line(ec: Ec, failing_server: str) -> None:
    line = ec.fails("--auth-url", failing_server, "--token", "t", "auth", "status")
    assert line == "error: the auth service failed (HTTP 500): db down"
    line = ec.fails("--auth-url", failing_server, "--token", "t", "auth", "service-accounts", "ls")
    assert line == "error: the auth service failed (HTTP 502): Bad Gateway"
