"""Access, audit and application lines of the real services: one JSON format, one line per
request carrying its id and its verified user, no secret anywhere, a quiet TLS probe."""

from __future__ import annotations

import json
import secrets
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Server, Stack, _base_env, free_port


def lines(log: Path) -> list[dict[str, Any]]:
    """Every line of a JSON log; fails on a line that is not a JSON object."""
    parsed = []
    for raw in log.read_text().splitlines():
        line = json.loads(raw)
        assert isinstance(line, dict), raw
        parsed.append(line)
    return parsed


def access_lines(log: Path, request_id: str, timeout: float = 20) -> list[dict[str, Any]]:
    """The access lines of one request, once at least one was written."""
    deadline = time.monotonic() + timeout
    while True:
        found = [
            line
            for line in lines(log)
            if line.get("logger") == "ecloud.access" and line.get("request_id") == request_id
        ]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def one_access_line(log: Path, request_id: str) -> dict[str, Any]:
    found = access_lines(log, request_id)
    assert len(found) == 1, found
    return found[0]


def test_every_request_has_exactly_one_access_line_with_its_id(stack: Stack) -> None:
    user, _password = stack.create_user()
    given = f"t-{secrets.token_hex(6)}"
    # A request id the client chose, on an unauthenticated registry request.
    r = httpx.get(stack.registry_url + "/v2/", headers={"X-Request-ID": given})
    assert r.status_code == 401 and r.headers["x-request-id"] == given
    line = one_access_line(stack.registry.log, given)
    assert line["event"] == "request" and line["service"] == "registry"
    assert line["method"] == "GET" and line["path"] == "/v2/" and line["status"] == 401
    assert line["bytes"] == len(r.content) and line["client"] == "127.0.0.1"
    assert isinstance(line["duration_ms"], float) and "user" not in line
    assert {"ts", "level"} <= line.keys() and line["level"] == "info"

    # A generated id, with a registry token: the verified user (its token names it).
    token = stack.token(user, f"repository:{user}/app:pull")
    r = httpx.get(stack.registry_url + "/v2/", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    generated = r.headers["x-request-id"]
    line = one_access_line(stack.registry.log, generated)
    assert line["status"] == 200 and line["user"] == user
    assert line["user_id"].startswith("usr_")

    # A session token tells the registry the username.
    session = stack.session(user)
    r = httpx.get(
        stack.registry_url + "/api/repos",
        headers={"Authorization": f"Bearer {session}", "X-Request-ID": given + "-s"},
    )
    assert r.status_code == 200
    line = one_access_line(stack.registry.log, given + "-s")
    assert line["user"] == user and line["user_id"].startswith("usr_")
    assert line["bytes"] == len(r.content)

    # A 404 of an unknown endpoint and a HEAD are logged too, once each.
    for method, path in (("GET", "/nowhere"), ("HEAD", f"/v2/{user}/app/manifests/nope")):
        rid = f"t-{secrets.token_hex(6)}"
        r = httpx.request(
            method,
            stack.registry_url + path,
            headers={"X-Request-ID": rid, "Authorization": f"Bearer {token}"},
        )
        line = one_access_line(stack.registry.log, rid)
        assert (line["method"], line["path"], line["status"]) == (method, path, r.status_code)

    # Every line of both logs is one JSON object (application lines included).
    assert any(line["logger"].startswith("uvicorn") for line in lines(stack.registry.log))
    lines(stack.auth.log)


def test_lines_about_a_request_carry_its_id_and_audit_fields_are_structured(
    stack: Stack,
) -> None:
    user, password = stack.create_user()
    rid = f"t-{secrets.token_hex(6)}"
    r = httpx.get(
        stack.auth_url + "/v2/token",
        params={"service": "registry", "scope": f"repository:{user}/x:pull"},
        auth=(user, password),
        headers={"X-Request-ID": rid},
    )
    assert r.status_code == 200
    line = one_access_line(stack.auth.log, rid)
    assert line["service"] == "auth" and line["user"] == user
    audit = [
        x
        for x in lines(stack.auth.log)
        if x["logger"] == "ecloud.audit" and x.get("request_id") == rid
    ]
    assert [a["event"] for a in audit] == ["token_issued"]
    # The fields are keys of the line itself, not JSON inside a message.
    assert audit[0]["user"] == user and audit[0]["granted"] == [f"repository:{user}/x:pull"]


def test_no_secret_reaches_any_line(stack: Stack) -> None:
    user, password = stack.create_user()
    wrong = "wrong-" + secrets.token_urlsafe(12)
    in_query = "query-" + secrets.token_urlsafe(12)
    refresh_in_query = "refresh-" + secrets.token_urlsafe(12)
    state = "state-" + secrets.token_urlsafe(12)
    ids: list[str] = []

    def rid() -> dict[str, str]:
        ids.append(f"t-{secrets.token_hex(6)}")
        return {"X-Request-ID": ids[-1]}

    r = httpx.get(
        stack.auth_url + "/v2/token",
        params={
            "service": "registry",
            "offline_token": "true",
            "password": in_query,
            "refresh_token": refresh_in_query,
        },
        auth=(user, password),
        headers=rid(),
    )
    assert r.status_code == 200
    token, refresh = r.json()["token"], r.json()["refresh_token"]
    httpx.get(stack.auth_url + "/v2/token", params={"service": "registry"}, auth=(user, wrong))
    login = httpx.post(
        stack.auth_url + "/api/login", json={"username": user, "password": password}, headers=rid()
    )
    session = login.json()["token"]
    httpx.post(stack.auth_url + "/api/login", json={"username": user, "password": wrong})
    form = httpx.post(
        stack.auth_url + "/v2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "client_id": "t",
            "service": "registry",
        },
        headers=rid(),
    )
    assert form.status_code == 200
    httpx.get(
        stack.auth_url + "/api/session", headers={"Authorization": f"Bearer {session}", **rid()}
    )
    httpx.get(
        stack.registry_url + f"/v2/{user}/x/blobs/uploads/abc",
        params={"_state": state, "access_token": token},
        headers={"Authorization": f"Bearer {token}", **rid()},
    )
    r = httpx.get(stack.registry_url + "/v2/", headers={"Authorization": f"Bearer {session}"})
    assert r.status_code == 200
    for request_id in ids[:-1]:
        one_access_line(stack.auth.log, request_id)
    one_access_line(stack.registry.log, ids[-1])
    one_access_line(stack.registry.log, r.headers["x-request-id"])
    redacted = one_access_line(stack.auth.log, ids[0])["path"]
    assert "password=REDACTED" in redacted and "refresh_token=REDACTED" in redacted
    assert "offline_token" in redacted
    text = stack.auth.log.read_text() + stack.registry.log.read_text()
    for secret in (password, wrong, in_query, refresh_in_query, state, token, refresh, session):
        assert secret not in text


def test_tls_probe_is_answered_quietly(stack: Stack) -> None:
    # What skopeo and podman send first: a TLS ClientHello on the plain-HTTP port.
    hello = bytes.fromhex("16030100a5010000a10303") + secrets.token_bytes(64)
    with socket.create_connection(("127.0.0.1", stack.registry.port), timeout=10) as s:
        s.sendall(hello)
        answer = s.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400")
    r = httpx.get(stack.registry_url + "/healthz")  # the service still serves
    assert r.status_code == 200
    one_access_line(stack.registry.log, r.headers["x-request-id"])
    for line in lines(stack.registry.log):
        assert line["level"] not in ("warning", "error"), line


def test_text_format_is_readable(tmp_path: Path) -> None:
    env = _base_env(tmp_path)
    env["ECLOUD_LOG_FORMAT"] = "text"
    for attempt in range(3):
        server = Server("ecloud-auth", [], env, tmp_path / "auth.log", free_port())
        try:
            server.start()
            break
        except RuntimeError as exc:
            if "address already in use" not in str(exc).lower() or attempt == 2:
                raise
    try:
        rid = f"t-{secrets.token_hex(6)}"
        r = httpx.get(
            server.url + "/v2/token",
            params={"service": "registry", "password": "hunter2-secret"},
            headers={"X-Request-ID": rid},
        )
        assert r.status_code == 200
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            found = [x for x in server.log.read_text().splitlines() if "[ecloud.access]" in x]
            if any(rid in x for x in found):
                break
            time.sleep(0.05)
    finally:
        server.stop()
    text = server.log.read_text()
    assert "hunter2-secret" not in text
    line = next(x for x in text.splitlines() if rid in x and "[ecloud.access]" in x)
    assert not line.startswith("{")
    # "<ts> [info     ] request   [ecloud.access] ... method=GET ... status=200"
    assert "[info" in line and " request " in line and "[ecloud.access]" in line
    assert "method=GET" in line and "status=200" in line and f"request_id={rid}" in line
    assert "Application startup complete." in text


@pytest.mark.parametrize("value", ["xml", "JSONL"])
def test_unknown_log_format_is_one_error_line(tmp_path: Path, value: str) -> None:
    import subprocess

    from tests.conftest import BIN

    env = _base_env(tmp_path)
    env["ECLOUD_LOG_FORMAT"] = value
    result = subprocess.run(
        [str(BIN / "ecloud-registry"), "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: ECLOUD_LOG_FORMAT must be one of json, text, got {value.lower()!r}"
    ]
