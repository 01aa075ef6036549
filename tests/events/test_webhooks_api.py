"""``/api/webhooks`` and ``ec storage registry webhooks``: who may manage what, bad input,
private addresses, secrets that never come back, the test delivery and the log.

Two stacks: `open_stack` allows private addresses (the receiver is on
127.0.0.1), `strict_stack` keeps the default and must refuse them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.registry.events.signing import verify
from tests.cli.conftest import make_ec
from tests.conftest import Stack, build_stack
from tests.events.conftest import Receiver, session_client


@pytest.fixture(scope="module")
def open_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = build_stack(
        tmp_path_factory.mktemp("webhooks-open"), {"ECLOUD_WEBHOOK_ALLOW_PRIVATE": "true"}
    )
    yield s
    s.stop()


@pytest.fixture(scope="module")
def strict_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = build_stack(tmp_path_factory.mktemp("webhooks-strict"))
    yield s
    s.stop()


@pytest.fixture(scope="module")
def strict_client(strict_stack: Stack) -> Iterator[httpx.Client]:
    """One user's session on the strict stack (a login per case would dominate the time)."""
    user, _ = strict_stack.create_user()
    with session_client(strict_stack, user) as client:
        yield client


@pytest.fixture(scope="module")
def open_client(open_stack: Stack) -> Iterator[httpx.Client]:
    user, _ = open_stack.create_user()
    with session_client(open_stack, user) as client:
        yield client


def _code(response: httpx.Response) -> str:
    return str(response.json()["errors"][0]["code"])


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://10.0.0.1/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:9/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "https://0.0.0.0/hook",
    ],
)
def test_private_addresses_are_refused_by_default(strict_client: httpx.Client, url: str) -> None:
    r = strict_client.post("/api/webhooks", json={"url": url})
    assert r.status_code == 403, r.text
    assert _code(r) == "DENIED"
    assert "private" in r.json()["errors"][0]["message"]
    assert strict_client.get("/api/webhooks").json() == {"webhooks": []}


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"not json", 400, "not valid JSON"),
        (b"[]", 400, "JSON object"),
        (b"{}", 400, "url is required"),
        (b'{"url": "ftp://127.0.0.1/x"}', 400, "http:// or https://"),
        (b'{"url": "http://u:p@127.0.0.1/x"}', 400, "credentials"),
        (b'{"url": "http://127.0.0.1/x#frag"}', 400, "fragment"),
        (b'{"url": "http://127.0.0.1/a b"}', 400, "ASCII"),
        (b'{"url": "http://127.0.0.1:99999/"}', 400, "not a valid URL"),
        (b'{"url": "http://127.0.0.1/", "format": "xml"}', 400, "format"),
        (b'{"url": "http://127.0.0.1/", "secret": "short"}', 400, "16 to 256"),
        (b'{"url": "http://127.0.0.1/", "secret": 7}', 400, "16 to 256"),
        (b'{"url": "http://127.0.0.1/", "color": "red"}', 400, "unknown fields"),
        (b'{"url": "http://127.0.0.1/' + b"a" * 2100 + b'"}', 400, "longer than"),
        # Each of these was a 500 (issue 11): nesting past the parser's recursion,
        # a number Python refuses to convert, NUL and a lone surrogate.
        (b"[" * 8000 + b"]" * 8000, 400, "not valid JSON"),
        (b'{"url": "http://127.0.0.1/", "x": ' + b"9" * 5000 + b"}", 400, "not valid JSON"),
        (b'{"url": "http://127.0.0.1/", "secret": "aaaaaaaaaaaaaaaa\\u0000"}', 400, "JSON"),
        (b'{"url": "http://127.0.0.1/\\ud800"}', 400, "JSON"),
        (b'{"url": "http://127.0.0.1/", "url": "http://127.0.0.2/"}', 400, "JSON"),
    ],
)
def test_bad_webhooks_get_clear_errors(
    open_stack: Stack, body: bytes, status: int, words: str
) -> None:
    user, _ = open_stack.create_user()
    with session_client(open_stack, user) as client:
        r = client.post("/api/webhooks", content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == status, r.text
        assert words in r.json()["errors"][0]["message"]
        assert client.get("/api/webhooks").json() == {"webhooks": []}


def test_only_a_login_session_manages_webhooks(open_stack: Stack) -> None:
    user, _ = open_stack.create_user()
    url = open_stack.registry_url + "/api/webhooks"
    assert httpx.get(url, timeout=10).status_code == 401
    bad = httpx.get(url, headers={"Authorization": "Bearer nope"}, timeout=10)
    assert bad.status_code == 401 and _code(bad) == "UNAUTHORIZED"
    token = open_stack.token(user, f"repository:{user}/app:pull,push,delete")
    r = httpx.post(
        url,
        json={"url": "http://127.0.0.1:9/"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert r.status_code == 403 and _code(r) == "DENIED"
    assert "login session" in r.json()["errors"][0]["message"]
    with session_client(open_stack, user) as client:
        r = client.post("/api/webhooks", content=b"{}", headers={"Content-Type": "text/plain"})
        assert r.status_code == 415


def _create(client: httpx.Client, url: str, **extra: Any) -> dict[str, Any]:
    r = client.post("/api/webhooks", json={"url": url, **extra})
    assert r.status_code == 201, r.text
    hook: dict[str, Any] = r.json()
    return hook


def test_webhook_lifecycle_test_delivery_and_log(
    open_stack: Stack, receiver: Receiver, tmp_path: Path
) -> None:
    alice, _ = open_stack.create_user()
    bob, _ = open_stack.create_user()
    path = f"/api-test/{alice}"
    with session_client(open_stack, alice) as client:
        hook = _create(client, receiver.url(path))
        assert hook["id"].startswith("wh_") and hook["secret"].startswith("whsec_")
        assert hook["format"] == "cloudevents" and hook["namespace"] == alice
        assert hook["last_delivery"] is None
        chosen = _create(
            client, receiver.url(path + "/d"), format="distribution", secret="x" * 16 + "-mine"
        )
        assert chosen["secret"] == "x" * 16 + "-mine"
        listed = client.get("/api/webhooks").json()["webhooks"]
        assert [h["id"] for h in listed] == [hook["id"], chosen["id"]]
        assert all("secret" not in h for h in listed)
        got = client.get(f"/api/webhooks/{hook['id']}").json()
        assert got["url"] == receiver.url(path) and "secret" not in got

        result = client.post(f"/api/webhooks/{hook['id']}/test").json()
        assert result["delivered"] is True and result["status_code"] == 200
        [delivery] = receiver.at(path)
        assert verify(
            hook["secret"], delivery.body, delivery.headers["ecloud-signature"], time.time()
        )
        doc = delivery.json()
        assert doc["type"] == "ecloud.registry.webhook.test" and doc["id"] == result["event_id"]
        assert doc["data"]["namespace"] == alice
        dist = client.post(f"/api/webhooks/{chosen['id']}/test").json()
        assert dist["delivered"] is True
        assert receiver.at(path + "/d")[0].json() == {"events": []}
        log = client.get(f"/api/webhooks/{hook['id']}/deliveries").json()["deliveries"]
        assert [(d["event_type"], d["outcome"], d["status_code"]) for d in log] == [
            ("webhook.test", "delivered", 200)
        ]
        assert client.get(f"/api/webhooks/{hook['id']}/deliveries?n=0").status_code == 400

    # The secret never lies in the database in clear.
    database = (open_stack.root / "data" / "registry.db").read_bytes()
    wal = open_stack.root / "data" / "registry.db-wal"
    database += wal.read_bytes() if wal.exists() else b""
    assert hook["secret"].encode() not in database and b"-mine" not in database

    # Bob learns nothing about alice's webhooks and cannot touch them.
    with session_client(open_stack, bob) as client:
        assert client.get("/api/webhooks").json() == {"webhooks": []}
        for method, suffix in (
            ("GET", ""),
            ("DELETE", ""),
            ("POST", "/test"),
            ("GET", "/deliveries"),
        ):
            r = client.request(method, f"/api/webhooks/{hook['id']}{suffix}")
            assert r.status_code == 404 and _code(r) == "NAME_UNKNOWN", (method, suffix)
        assert client.get("/api/webhooks/..%2F..%2Fapi%2Frepos").status_code == 404
    assert len(receiver.at(path)) == 1

    with session_client(open_stack, alice) as client:
        assert client.delete(f"/api/webhooks/{hook['id']}").status_code == 204
        assert client.get(f"/api/webhooks/{hook['id']}").status_code == 404
        assert client.delete(f"/api/webhooks/{hook['id']}").status_code == 404
        for i in range(19):
            _create(client, receiver.url(f"/limit/{i}"))
        r = client.post("/api/webhooks", json={"url": receiver.url("/limit/20")})
        assert r.status_code == 403 and "20 webhooks" in r.json()["errors"][0]["message"]


def test_ec_webhooks_verbs(open_stack: Stack, receiver: Receiver, tmp_path: Path) -> None:
    user, _ = open_stack.create_user()
    ec = make_ec(tmp_path / "home", open_stack)
    ec.login(open_stack, user)
    assert ec.ok("storage", "registry", "webhooks", "ls").stdout == ""
    out = ec.ok(
        "storage", "registry", "webhooks", "create", "--url", receiver.url(f"/ec/{user}")
    ).stdout
    assert "Created webhook wh_" in out
    assert any(line.startswith("whsec_") for line in out.splitlines())
    secret = ec.ok(
        "storage", "registry", "webhooks", "create", "-q", "--url", receiver.url(f"/ec/{user}/q")
    ).stdout.strip()
    assert secret.startswith("whsec_") and "\n" not in secret
    made = ec.ok(
        "--json", "storage", "registry", "webhooks", "create",
        "--url", receiver.url(f"/ec/{user}/d"), "--format", "distribution", "--secret-stdin",
        stdin="a-secret-of-my-own-choosing\n",
    ).json()  # fmt: skip
    assert made["format"] == "distribution" and made["secret"] == "a-secret-of-my-own-choosing"
    listed = ec.ok("--json", "storage", "registry", "webhooks", "ls").json()
    assert len(listed) == 3 and all("secret" not in h for h in listed)
    rows = ec.ok("storage", "registry", "webhooks", "ls").stdout.splitlines()
    assert [r.split("\t")[0] for r in rows] == [h["id"] for h in listed]
    assert any(made["id"] in r and "distribution" in r for r in rows)
    ids = ec.ok("storage", "registry", "webhooks", "ls", "-q").stdout.split()
    assert ids == [h["id"] for h in listed]
    assert (
        "Delivered (HTTP 200" in ec.ok("storage", "registry", "webhooks", "test", made["id"]).stdout
    )
    log = ec.ok("--json", "storage", "registry", "webhooks", "deliveries", made["id"]).json()
    assert [d["outcome"] for d in log] == ["delivered"]
    receiver.plan(f"/ec/{user}", fail_first=5, status=500)
    line = ec.fails("storage", "registry", "webhooks", "test", listed[0]["id"])
    assert "test delivery failed: HTTP 500" in line
    assert "--yes" in ec.fails("storage", "registry", "webhooks", "rm", made["id"])
    assert (
        "Deleted webhook"
        in ec.ok("storage", "registry", "webhooks", "rm", made["id"], "--yes").stdout
    )
    assert "not found" in ec.fails("storage", "registry", "webhooks", "rm", made["id"], "--yes")
    assert "--format" in ec.fails(
        "storage", "registry", "webhooks", "create", "--url", "http://x/", "--format", "xml"
    )
    line = ec.fails("storage", "registry", "webhooks", "ls", EC_TOKEN="ecloud_" + "a" * 40)
    assert "login session" in line
