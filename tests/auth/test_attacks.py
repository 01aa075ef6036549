"""Issue 11 on the auth service, as an attacker tries it: real parallel requests against a
real server with the production Argon2 memory cost (64 MiB per check), on PostgreSQL.

1. A burst of 100 parallel wrong passwords for one account gets at most the
   limit's number of 401s; the rest are 429 (or 503 while the Argon2 slots
   are full): the failure place is reserved before the password is checked.
2. 100 parallel logins keep the process under the Kubernetes limit of 512 MiB
   (peak RSS, ``VmHWM``): at most ``ECLOUD_ARGON2_MAX_CONCURRENT`` checks run,
   a few wait, the rest get 503 with ``Retry-After``.
3. 1,000 wrong passwords from one address lock nobody out: the victim logs
   in from another address, and their ``ecloud_`` token works from anywhere,
   the attacker's address and the victim's username included.
5. Bodies are capped before they are read: a declared or streamed 300 MB
   body gets 413 at once, on every endpoint that reads JSON.
8. Hostile JSON and credentials (deep nesting, 5000-digit numbers, lone
   surrogates, NUL on PostgreSQL, huge integers) get a 4xx, never a 500.

Client addresses come from ``X-Forwarded-For`` through a listed proxy
(127.0.0.2), as behind the ingress.
"""

from __future__ import annotations

import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.conftest import Stack, build_stack, fresh_pg_database

PROXY = "127.0.0.2"
FAILURE_LIMIT = 10
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def attacked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with fresh_pg_database() as url:
        stack = build_stack(
            tmp_path_factory.mktemp("attacked"),
            {
                "ECLOUD_AUTH_DATABASE_URL": url,
                # The production memory cost: what the memory bound is about.
                "ECLOUD_ARGON2_MEMORY_KIB": "65536",
                "ECLOUD_ARGON2_TIME_COST": "1",
                "ECLOUD_ARGON2_PARALLELISM": "1",
                "ECLOUD_RATE_LIMIT_FAILURES": f"{FAILURE_LIMIT}/300",
                "ECLOUD_RATE_LIMIT_ACCOUNT_FAILURES": "100/300",
                "ECLOUD_RATE_LIMIT_ADDRESS_FAILURES": "100000/300",
                "ECLOUD_RATE_LIMIT_REQUESTS": "100000/60",
                "ECLOUD_TRUSTED_PROXIES": f"{PROXY}/32",
            },
        )
        _BASE[:] = [stack.auth_url]
        try:
            yield stack
            log = (stack.root / "auth.log").read_text(errors="replace")
            assert "Traceback" not in log, log[log.find("Traceback") :][:3000]
        finally:
            stack.stop()


_BASE: list[str] = []


def _client(address: str) -> httpx.Client:
    """A client that the auth service sees at `address` (through the trusted proxy)."""
    return httpx.Client(
        base_url=_BASE[0],
        transport=httpx.HTTPTransport(local_address=PROXY),
        headers={"X-Forwarded-For": address},
        timeout=120,
    )


def _burst(count: int, request: Callable[[httpx.Client, int], httpx.Response]) -> list[int]:
    """`count` requests sent at once (each on its own connection); their statuses."""
    start = threading.Barrier(count)

    def one(i: int) -> int:
        with _client("198.51.100.10") as client:
            start.wait()
            return request(client, i).status_code

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


def _peak_rss(stack: Stack) -> int:
    assert stack.auth.proc is not None
    with open(f"/proc/{stack.auth.proc.pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def _login(client: httpx.Client, username: str, password: str) -> httpx.Response:
    return client.post("/api/login", json={"username": username, "password": password})


def test_parallel_guesses_get_no_further_than_the_limit_and_memory_stays_bounded(
    attacked: Stack,
) -> None:
    url = attacked.auth_url
    victim, password = attacked.create_user()
    statuses = _burst(
        100, lambda c, i: c.post(url + "/api/login", json={"username": victim, "password": "x"})
    )
    counted = Counter(statuses)
    assert set(counted) <= {401, 429, 503}, counted
    assert 1 <= counted[401] <= FAILURE_LIMIT, counted
    # The token endpoint shares the budget: still no more than the limit in all.
    more = _burst(
        30,
        lambda c, i: c.get(url + "/v2/token", auth=(victim, f"guess{i}")),
    )
    assert Counter(more)[401] <= FAILURE_LIMIT - counted[401], (counted, Counter(more))
    # And the right password from the same address is refused too: locked for this address.
    with _client("198.51.100.10") as c:
        assert _login(c, victim, password).status_code == 429
    # 100 parallel password checks for 100 accounts: each one reaches Argon2.
    statuses = _burst(
        100,
        lambda c, i: c.post(url + "/api/login", json={"username": f"nobody{i}", "password": "x"}),
    )
    counted = Counter(statuses)
    assert set(counted) <= {401, 503}, counted
    assert counted[503] > 0, f"no check was refused: the slots do not bound anything {counted}"
    peak = _peak_rss(attacked)
    assert peak < 512 * MIB, f"peak RSS {peak / MIB:.0f} MiB during 100 parallel logins"
    with _client("198.51.100.11") as c:
        r = _login(c, "nobody-again", "x")
        if r.status_code == 503:
            assert int(r.headers["retry-after"]) >= 1


def _sa_secret(stack: Stack, user: str) -> str:
    session = {"Authorization": f"Bearer {stack.session(user)}"}
    r = httpx.post(
        stack.auth_url + "/api/service-accounts",
        json={"name": "ci", "scopes": ["storage.me.registry=read,create"]},
        headers=session,
        timeout=30,
    )
    assert r.status_code == 201, r.text
    r = httpx.post(
        f"{stack.auth_url}/api/service-accounts/{r.json()['id']}/tokens",
        json={},
        headers=session,
        timeout=30,
    )
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def test_nobody_can_lock_a_user_out(attacked: Stack) -> None:
    victim, password = attacked.create_user()
    secret = _sa_secret(attacked, victim)
    url = attacked.auth_url
    attacker = "203.0.113.66"

    def guess(client: httpx.Client, i: int) -> int:
        if i % 2:
            return client.get(url + "/v2/token", auth=(victim, f"guess{i}")).status_code
        return _login(client, victim, f"guess{i}").status_code

    with ThreadPoolExecutor(max_workers=20) as pool:

        def batch(start: int) -> list[int]:
            with _client(attacker) as client:
                return [guess(client, i) for i in range(start, start + 50)]

        statuses = [s for part in pool.map(batch, range(0, 1000, 50)) for s in part]
    counted = Counter(statuses)
    assert counted[401] <= FAILURE_LIMIT and counted[429] >= 1000 - FAILURE_LIMIT - 100, counted
    # Wrong ecloud_ tokens in the victim's name never count against the account.
    with _client(attacker) as c:
        for i in range(20):
            r = c.get(url + "/v2/token", auth=(victim, f"ecloud_{i:0>49}"))
            assert r.status_code == 401
    # The victim, from their own address: a session and a registry token.
    with _client("198.51.100.7") as c:
        assert _login(c, victim, password).status_code == 200
        assert c.get(url + "/v2/token", auth=(victim, password)).status_code == 200
    # Their CI token works from anywhere, under their name too, the attacker's address included.
    for address in ("198.51.100.8", attacker):
        with _client(address) as c:
            for username in (victim, "anything"):
                r = c.get(
                    url + "/v2/token",
                    params={"service": "registry", "scope": f"repository:{victim}/app:pull"},
                    auth=(username, secret),
                )
                assert r.status_code == 200, (address, username, r.text)
                form = {
                    "grant_type": "password",
                    "username": username,
                    "password": secret,
                    "client_id": "ci",
                    "service": "registry",
                }
                assert c.post(url + "/v2/token", data=form).status_code == 200


def _raw(stack: Stack, request: bytes) -> tuple[int, bytes]:
    """Send a raw request; the status and the whole answer."""
    with socket.create_connection(("127.0.0.1", stack.auth.port), timeout=60) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1]), answer


def test_bodies_are_capped_before_they_are_read(attacked: Stack) -> None:
    if not any(u.startswith("admin") for u in attacked.passwords):
        attacked.create_user()  # the first user made on a stack brings its administrator
    admin = attacked.session(next(u for u in attacked.passwords if u.startswith("admin")))
    paths = [
        ("/api/login", ""),
        ("/api/service-accounts", admin),
        ("/admin/users", admin),
        ("/api/password", admin),
    ]
    for path, session in paths:
        auth = f"Authorization: Bearer {session}\r\n" if session else ""
        declared = (
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{auth}"
            f"Content-Length: {300 * MIB}\r\nConnection: close\r\n\r\n"
        ).encode()
        # Refused on the declared length, before a byte of the body is read.
        status, answer = _raw(attacked, declared)
        assert status == 413 and b"TOO_LARGE" in answer, (path, answer[:300])
        # No length declared: refused once the stream passes the cap.
        chunked = (
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{auth}"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        ).encode()
        piece = b"4000\r\n" + b" " * 0x4000 + b"\r\n"
        status, answer = _raw(attacked, chunked + piece * 5 + b"0\r\n\r\n")
        assert status == 413 and b"TOO_LARGE" in answer, (path, answer[:300])


HOSTILE_LOGINS: list[tuple[str, bytes]] = [
    ("deep nesting", b'{"username": "a", "password": ' + b"[" * 30000 + b"]" * 30000 + b"}"),
    ("5000-digit number", b'{"username": "a", "password": "b", "refresh": ' + b"9" * 5000 + b"}"),
    ("lone surrogate", b'{"username": "a\\ud800", "password": "b"}'),
    ("NUL in the username", b'{"username": "a\\u0000b", "password": "bbbbbbbb"}'),
    ("NUL in the password", b'{"username": "a", "password": "b\\u0000"}'),
    ("bad UTF-8", b'{"username": "caf\xe9", "password": "b"}'),
    ("Infinity", b'{"username": "a", "password": "b", "refresh": Infinity}'),
    ("not an object", b"[1, 2]"),
]


@pytest.mark.parametrize(("what", "body"), HOSTILE_LOGINS, ids=[h[0] for h in HOSTILE_LOGINS])
def test_hostile_login_bodies_get_400(attacked: Stack, what: str, body: bytes) -> None:
    with _client(f"198.51.100.{20 + len(what)}") as c:
        r = c.post(
            attacked.auth_url + "/api/login",
            content=body,
            headers={"Content-Type": "application/json"},
        )
    assert r.status_code in (400, 401), (what, r.status_code, r.text)
    assert r.json()["error"]["code"] in ("BAD_REQUEST", "UNAUTHORIZED")


def test_hostile_credentials_and_service_account_bodies_get_4xx(attacked: Stack) -> None:
    user, _ = attacked.create_user()
    session = {"Authorization": f"Bearer {attacked.session(user)}"}
    url = attacked.auth_url
    hostile: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/api/service-accounts", {"content": b'{"name": ' + b"9" * 5000 + b"}"}),
        ("POST", "/api/service-accounts", {"content": b'{"name": "ci", "scopes": 1e99999}'}),
        ("POST", "/api/service-accounts", {"json": {"name": "c\x00i", "scopes": ["x"]}}),
        ("POST", "/api/service-accounts", {"json": {"name": "ci", "scopes": ["a\x00"]}}),
        ("POST", "/api/session/refresh", {"json": {"refresh_token": "rt_\x00"}}),
        ("POST", "/api/logout", {"json": {"refresh_token": "rt_\x00"}}),
        ("DELETE", "/api/refresh-tokens/a%00b", {}),
        ("GET", "/api/service-accounts/sa_%00", {}),
        ("DELETE", "/api/tokens/t%00", {}),
    ]
    with httpx.Client(timeout=30, headers=session) as c:
        for method, path, kwargs in hostile:
            if "content" in kwargs:
                kwargs = {**kwargs, "headers": {"Content-Type": "application/json"}}
            r = c.request(method, url + path, **kwargs)
            assert 400 <= r.status_code < 500, (method, path, r.status_code, r.text)
    # NUL and friends in Basic credentials and in the OAuth2 form (PostgreSQL refuses NUL).
    with _client("198.51.100.99") as c:
        for username, password in [("a\x00b", "pw"), ("a", "p\x00w"), ("a\ud800b", "pw")]:
            raw = f"{username}:{password}".encode("utf-8", "surrogatepass")
            import base64

            header = {"Authorization": "Basic " + base64.b64encode(raw).decode()}
            r = c.get(url + "/v2/token", params={"service": "registry"}, headers=header)
            assert r.status_code == 401, (username, r.text)
        form = {
            "grant_type": "password",
            "username": "a\x00b",
            "password": "pw",
            "client_id": "x",
            "service": "registry",
        }
        assert c.post(url + "/v2/token", data=form).status_code == 400
        r = c.get(
            url + "/v2/token",
            params={"service": "registry", "scope": "repository:a\x00b:pull" + "9" * 5000},
        )
        assert r.status_code == 200 and r.json()["token"]
