"""The registry's token decisions, driven directly: revocation staleness, key refetch.

`RegistryAuth` runs in the test process with an injected clock (its
constructor's, never the environment: ``serve`` has no way to set one) and
talks over real HTTP on 127.0.0.1 to a small stand-in for the auth
service whose JWKS and revocation list the test controls, or to a port
where nothing listens. Tokens are signed with real keys. The end-to-end
versions (real auth service stopped; real key rotation) are in
``test_auth_bounds.py``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request

from services.registry.auth import (
    MAX_REVOCATION_STALENESS,
    UNKNOWN_KID_REFRESH_INTERVAL,
    Caller,
    RegistryAuth,
    RevocationList,
    VerifiedTokens,
)
from services.registry.errors import RegistryError
from services.registry.settings import RegistrySettings
from shared.keys import SigningKey, generate_private_key_pem, jwks_document, load_signing_key
from shared.scopes import Scope
from shared.tokens import TokenIssuer
from tests.conftest import free_port

ISSUER = "ecloud-auth"


@dataclass
class FakeAuth:
    """The two auth-service endpoints the registry polls, under the test's control."""

    keys: list[SigningKey]
    revoked: list[str] = field(default_factory=list)
    status: int = 200
    hits: dict[str, int] = field(default_factory=dict)

    def answer(self, path: str) -> tuple[int, bytes]:
        self.hits[path] = self.hits.get(path, 0) + 1
        if self.status != 200:
            return self.status, b'{"error":"down"}'
        if path == "/.well-known/jwks.json":
            return 200, json.dumps(jwks_document(k.verify_key for k in self.keys)).encode()
        if path == "/internal/sessions/revoked":
            return 200, json.dumps({"revoked": self.revoked}).encode()
        return 404, b"{}"


@pytest.fixture
def fake_auth() -> Iterator[tuple[FakeAuth, str]]:
    state = FakeAuth([load_signing_key(generate_private_key_pem("EdDSA"))])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = state.answer(self.path)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def settings_for(url: str, tmp_path: Path, **env: str) -> RegistrySettings:
    return RegistrySettings.from_env(
        {
            "ECLOUD_DATA_DIR": str(tmp_path),
            "ECLOUD_AUTH_URL": url,
            "ECLOUD_KEY_REFRESH_SECONDS": "3600",
            **env,
        }
    )


def request_with(token: str) -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/v2/",
            "headers": [(b"authorization", f"Bearer {token}".encode())],
        }
    )


def session_token(key: SigningKey, sid: str = "ses_1", username: str = "alice") -> str:
    token, _ = TokenIssuer(key, ISSUER).issue_session_token(
        subject="usr_alice", username=username, admin=False, session_id=sid, ttl_seconds=600
    )
    return token


def registry_token(key: SigningKey, *scopes: str) -> str:
    from shared.scopes import parse_scope

    token, _ = TokenIssuer(key, ISSUER).issue_registry_token(
        subject="usr_alice",
        audience="registry",
        access=[parse_scope(s) for s in scopes],
        ttl_seconds=300,
    )
    return token


async def started(settings: RegistrySettings, clock: Clock) -> RegistryAuth:
    """A RegistryAuth after its start-up loads (keys, one poll), without its poll loop."""
    import httpx

    auth = RegistryAuth(settings, httpx.AsyncClient(), clock)
    await auth.key_source.refresh()
    await auth.poll_revocations()
    return auth


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# -- the revocation list's bound ------------------------------------------------------


def test_revocation_list_is_fresh_up_to_the_bound_and_no_longer() -> None:
    clock = Clock()
    revocations = RevocationList(clock=clock)
    assert not revocations.is_fresh(), "never fetched: stale"
    revocations.update(["ses_x"])
    assert revocations.revoked == frozenset({"ses_x"})
    clock.now += MAX_REVOCATION_STALENESS
    assert revocations.is_fresh()
    clock.now += 0.001
    assert not revocations.is_fresh()
    revocations.update([])
    assert revocations.is_fresh() and revocations.revoked == frozenset()
    assert MAX_REVOCATION_STALENESS == 60.0  # the README's promise


def test_sessions_are_refused_once_the_list_is_older_than_the_bound(
    fake_auth: tuple[FakeAuth, str], tmp_path: Path
) -> None:
    state, url = fake_auth
    clock = Clock()
    key = state.keys[0]

    async def scenario() -> None:
        auth = await started(settings_for(url, tmp_path), clock)
        try:
            session = request_with(session_token(key))
            caller = await auth.authenticate(session)
            assert caller == Caller(
                kind="session", subject="usr_alice", username="alice", session_id="ses_1"
            )
            state.status = 500  # the list endpoint fails from now on
            clock.now += MAX_REVOCATION_STALENESS
            assert (await auth.authenticate(session)) is not None  # at the bound: still fresh
            polls = state.hits["/internal/sessions/revoked"]
            clock.now += 0.5
            with pytest.raises(RegistryError) as refused:
                await auth.authenticate(session)
            assert refused.value.code == "UNAUTHORIZED"
            assert "cannot confirm the session is still valid" in refused.value.message
            assert state.hits["/internal/sessions/revoked"] == polls + 1, "no fresh poll was tried"
            # Registry tokens do not depend on the list.
            token = registry_token(key, "repository:alice/app:pull")
            caller = await auth.authenticate(request_with(token))
            assert caller is not None and caller.kind == "registry"
            # The list answers again: the next session request polls and is accepted.
            state.status = 200
            assert (await auth.authenticate(session)) is not None
        finally:
            await auth.client.aclose()

    run(scenario())


def test_sessions_are_refused_when_the_auth_service_is_unreachable(tmp_path: Path) -> None:
    key = load_signing_key(generate_private_key_pem("EdDSA"))
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(jwks_document([key.verify_key])))
    clock = Clock()
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there

    async def scenario() -> None:
        auth = await started(settings_for(url, tmp_path, ECLOUD_JWKS_FILE=str(jwks)), clock)
        try:
            with pytest.raises(RegistryError, match="cannot confirm"):
                await auth.authenticate(request_with(session_token(key)))
            token = registry_token(key, "repository:alice/app:pull")
            assert (await auth.authenticate(request_with(token))) is not None
        finally:
            await auth.client.aclose()

    run(scenario())


def test_a_revoked_session_is_refused_and_others_are_not(
    fake_auth: tuple[FakeAuth, str], tmp_path: Path
) -> None:
    state, url = fake_auth
    state.revoked = ["ses_gone"]
    key = state.keys[0]

    async def scenario() -> None:
        auth = await started(settings_for(url, tmp_path), Clock())
        try:
            with pytest.raises(RegistryError, match="revoked"):
                await auth.authenticate(request_with(session_token(key, "ses_gone")))
            assert (await auth.authenticate(request_with(session_token(key, "ses_ok")))) is not None
        finally:
            await auth.client.aclose()

    run(scenario())


# -- keys: refetch on an unknown kid, throttled ---------------------------------------


def test_a_token_of_a_newly_published_key_is_accepted_after_a_refetch(
    fake_auth: tuple[FakeAuth, str], tmp_path: Path
) -> None:
    state, url = fake_auth
    clock = Clock()
    old = state.keys[0]
    new = load_signing_key(generate_private_key_pem("ES256"))

    async def scenario() -> None:
        auth = await started(settings_for(url, tmp_path), clock)
        try:
            fetched = state.hits["/.well-known/jwks.json"]
            state.keys = [new, old]  # the rotation: new key first, the old one still published
            token = registry_token(new, "repository:alice/app:pull")
            # Within the throttle after the last fetch: no refetch, the unknown key is refused.
            clock.now += UNKNOWN_KID_REFRESH_INTERVAL / 2
            with pytest.raises(RegistryError, match="unknown key"):
                await auth.authenticate(request_with(token))
            assert state.hits["/.well-known/jwks.json"] == fetched
            # Past it, the unknown kid makes the registry fetch the keys again.
            clock.now += UNKNOWN_KID_REFRESH_INTERVAL
            caller = await auth.authenticate(request_with(token))
            assert caller is not None and caller.actions_for("alice/app") == {"pull"}
            assert state.hits["/.well-known/jwks.json"] == fetched + 1
            # Both keys are kept: a token of the old one still verifies, with no refetch.
            assert (await auth.authenticate(request_with(registry_token(old)))) is not None
            assert state.hits["/.well-known/jwks.json"] == fetched + 1
            # A known kid never refetches before the refresh interval.
            clock.now += UNKNOWN_KID_REFRESH_INTERVAL * 2
            assert (await auth.authenticate(request_with(token))) is not None
            assert state.hits["/.well-known/jwks.json"] == fetched + 1
            # A key that is not published stays refused, after one more (throttled) try.
            stranger = load_signing_key(generate_private_key_pem("EdDSA"))
            with pytest.raises(RegistryError, match="unknown key"):
                await auth.authenticate(request_with(registry_token(stranger)))
            assert state.hits["/.well-known/jwks.json"] == fetched + 2
        finally:
            await auth.client.aclose()

    run(scenario())


def test_keys_are_refreshed_when_older_than_the_refresh_interval(
    fake_auth: tuple[FakeAuth, str], tmp_path: Path
) -> None:
    state, url = fake_auth
    clock = Clock()

    async def scenario() -> None:
        settings = settings_for(url, tmp_path, ECLOUD_KEY_REFRESH_SECONDS="100")
        auth = await started(settings, clock)
        try:
            fetched = state.hits["/.well-known/jwks.json"]
            clock.now += 100
            await auth.key_source.ensure(None)
            assert state.hits["/.well-known/jwks.json"] == fetched, "refreshed too early"
            clock.now += 0.5
            await auth.key_source.ensure(None)
            assert state.hits["/.well-known/jwks.json"] == fetched + 1
            # A failed fetch keeps the keys it had.
            state.status = 503
            clock.now += 200
            await auth.key_source.ensure(None)
            assert len(auth.key_source.keys) == 1
        finally:
            await auth.client.aclose()

    run(scenario())


def test_callers_hold_exactly_their_grants() -> None:
    repo = "alice/app"
    session = Caller(kind="session", subject="usr_a", username="alice", session_id="s")
    assert session.actions_for(repo) == {"pull", "push", "delete"}
    assert session.actions_for("alicex/app") == frozenset()
    assert session.actions_for("bob/app") == frozenset()
    assert session.has_catalog()
    nameless = Caller(kind="session", subject="usr_a", username=None)
    assert nameless.actions_for(repo) == frozenset()
    anonymous = Caller(kind="registry", subject="")
    assert anonymous.is_anonymous and not anonymous.has_catalog()
    anonymous_session = Caller(kind="session", subject="", username="alice")
    assert anonymous_session.actions_for(repo) == frozenset()
    assert not anonymous_session.has_catalog()
    token = Caller(
        kind="registry",
        subject="usr_a",
        access=(
            Scope("repository", repo, frozenset({"pull"})),
            Scope("repository", repo, frozenset({"push"})),
            Scope("repository", "alice/other", frozenset({"delete"})),
        ),
    )
    assert not token.is_anonymous
    assert token.actions_for(repo) == {"pull", "push"}
    assert token.actions_for("alice/other") == {"delete"}
    assert token.actions_for("alice/none") == frozenset()
    assert not token.has_catalog()
    catalog = Caller(
        kind="registry", subject="usr_a", access=(Scope("registry", "catalog", frozenset({"*"})),)
    )
    assert catalog.has_catalog()
    assert catalog.actions_for("registry") == frozenset()


def test_only_repository_scopes_grant_repository_actions_and_only_sessions_all() -> None:
    repo = "alice/app"
    for type_ in ("registry", "aaa", "zzz", "repositorz"):
        caller = Caller(
            kind="registry", subject="usr_a", access=(Scope(type_, repo, frozenset({"pull"})),)
        )
        assert caller.actions_for(repo) == frozenset(), type_
    for kind in ("token", "zzz", "registry"):
        other = Caller(kind=kind, subject="usr_a", username="alice")
        assert other.actions_for(repo) == frozenset() and not other.has_catalog(), kind
    import dataclasses

    with pytest.raises(dataclasses.FrozenInstanceError):
        Caller(kind="registry", subject="usr_a").subject = "usr_b"  # type: ignore[misc]


def test_the_refetch_throttle_is_ten_seconds() -> None:
    assert UNKNOWN_KID_REFRESH_INTERVAL == 10.0  # the README's "at most once per 10 s"


def test_no_bearer_token_is_no_caller_and_a_bad_one_is_refused(
    fake_auth: tuple[FakeAuth, str], tmp_path: Path
) -> None:
    state, url = fake_auth

    async def scenario() -> None:
        auth = await started(settings_for(url, tmp_path), Clock())
        try:
            for header in ("Basic YWxpY2U6cHc=", "Bearer", "Bearer   ", "Token abc", "Aaa x"):
                request = Request(
                    {"type": "http", "method": "GET", "path": "/v2/",
                     "headers": [(b"authorization", header.encode())]}
                )  # fmt: skip
                assert (await auth.authenticate(request)) is None, header
            with pytest.raises(RegistryError):
                await auth.authenticate(request_with("not-a-jwt"))
            token = registry_token(state.keys[0]).encode()
            lower = Request(
                {"type": "http", "method": "GET", "path": "/v2/",
                 "headers": [(b"authorization", b"bearer " + token)]}
            )  # fmt: skip
            assert (await auth.authenticate(lower)) is not None
        finally:
            await auth.client.aclose()

    run(scenario())


def test_the_poll_loop_picks_up_revocations_and_stops_cleanly(
    fake_auth: tuple[FakeAuth, str], tmp_path: Path
) -> None:
    state, url = fake_auth
    key = state.keys[0]

    async def scenario() -> None:
        import httpx

        settings = settings_for(url, tmp_path, ECLOUD_REVOCATION_POLL_SECONDS="1")
        auth = RegistryAuth(settings, httpx.AsyncClient())
        await auth.start()
        try:
            session = request_with(session_token(key, "ses_later"))
            assert (await auth.authenticate(session)) is not None
            state.revoked = ["ses_later"]
            for _ in range(600):  # the loop polls every second; wait up to a minute
                if "ses_later" in auth.revocations.revoked:
                    break
                await asyncio.sleep(0.1)
            with pytest.raises(RegistryError, match="revoked"):
                await auth.authenticate(session)
        finally:
            await auth.stop()  # cancels the loop without raising
            await auth.client.aclose()
        assert auth._poll_task is not None and auth._poll_task.cancelled()

    run(scenario())


def test_verified_tokens_never_outlive_exp_nor_their_key_and_stay_bounded() -> None:
    clock = Clock()
    keys: dict[str, object] = {"k1": object()}
    cache = VerifiedTokens(keys.get, size=2, clock=clock)
    alice = Caller(kind="registry", subject="usr_alice")
    cache.put("t1", alice, expires_at=clock.now + 10, kid="k1")
    assert cache.get("t1") is alice
    clock.now += 10  # at exp: no longer served (the verifier decides again)
    assert cache.get("t1") is None and len(cache) == 0
    cache.put("t1", alice, expires_at=clock.now + 10, kid="k1")
    keys["k1"] = object()  # the key under that kid was replaced (rotation)
    assert cache.get("t1") is None
    cache.put("t1", alice, expires_at=clock.now + 10, kid="k1")
    del keys["k1"]  # retired
    assert cache.get("t1") is None
    keys["k1"] = object()
    for token in ("a", "b", "c"):
        cache.put(token, alice, expires_at=clock.now + 10, kid="k1")
    assert len(cache) == 2 and cache.get("a") is None and cache.get("c") is alice
    cache.put("d", alice, expires_at=clock.now + 10, kid="unknown")  # no key: not kept
    assert cache.get("d") is None


def test_a_cached_session_is_refused_once_revoked_and_a_cached_token_at_exp(
    fake_auth: tuple[FakeAuth, str], tmp_path: Path
) -> None:
    state, url = fake_auth
    key = state.keys[0]

    async def scenario() -> None:
        auth = await started(settings_for(url, tmp_path), Clock())
        try:
            session = session_token(key, "ses_cached")
            first = await auth.authenticate(request_with(session))
            assert first is not None and len(auth.verified) == 1
            assert await auth.authenticate(request_with(session)) is first  # from the cache
            state.revoked = ["ses_cached"]
            await auth.poll_revocations()
            with pytest.raises(RegistryError, match="revoked"):
                await auth.authenticate(request_with(session))
            assert len(auth.verified) == 0
            token = registry_token(key, "repository:alice/app:pull")
            caller = await auth.authenticate(request_with(token))
            assert caller is not None and await auth.authenticate(request_with(token)) is caller
            later = lambda: time.time() + 400  # noqa: E731 - past exp (300 s) and the leeway
            auth.verified._clock = later
            auth.verifier._clock = later
            with pytest.raises(RegistryError, match="expired"):
                await auth.authenticate(request_with(token))
        finally:
            await auth.client.aclose()

    run(scenario())
