"""Every decision of `access.py`, driven in-process: grant, owner re-check, create, mount.

The registry's real context (SQLite file, keys from a JWKS file, the real
`RegistryAuth`) answers requests built in the test, with tokens signed by a
real key; no server starts, so the mutation run (``./scripts/mutation
services/registry/access.py``) can afford it for every mutant. The same
rules over HTTP, with real clients, are in ``test_mount_owner.py``,
``test_isolation_matrix.py`` and the route suites.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request

from services.registry.access import (
    _may_create,
    authenticate,
    authenticate_user,
    mount_source,
    require,
    require_repository,
    scope_string,
    validate_name,
)
from services.registry.app import build_context
from services.registry.auth import Caller
from services.registry.context import RegistryContext
from services.registry.errors import RegistryError
from services.registry.metadata.migrations import MIGRATION_LOCK, MIGRATIONS
from services.registry.metadata.repositories import ensure_repository, get_repository
from services.registry.settings import RegistrySettings
from shared.keys import SigningKey, generate_private_key_pem, jwks_document, load_signing_key
from shared.logsetup import FIELDS
from shared.scopes import Scope, parse_scope
from shared.tokens import TokenIssuer
from tests.registry.challenges import parse_challenge

KEY = load_signing_key(generate_private_key_pem("EdDSA"))


class Registry:
    def __init__(self, ctx: RegistryContext, key: SigningKey) -> None:
        self.ctx = ctx
        self.app = Starlette()
        self.app.state.ctx = ctx
        self.issuer = TokenIssuer(key, ctx.settings.issuer)

    def token(self, subject: str, *scopes: str, username: str | None = None) -> str:
        token, _ = self.issuer.issue_registry_token(
            subject=subject,
            audience=self.ctx.settings.service,
            access=[parse_scope(s) for s in scopes],
            ttl_seconds=300,
            username=username,
        )
        return token

    def session(self, subject: str, username: str) -> str:
        token, _ = self.issuer.issue_session_token(
            subject=subject,
            username=username,
            admin=False,
            session_id="ses_" + subject,
            ttl_seconds=300,
            audience=self.ctx.settings.session_audience,
        )
        return token

    def request(self, token: str | None = None) -> Request:
        headers = [] if token is None else [(b"authorization", f"Bearer {token}".encode())]
        return Request(
            {
                "type": "http",
                "method": "GET",
                "path": "/v2/",
                "query_string": b"",
                "headers": headers,
                "client": ("127.0.0.1", 40000),
                "app": self.app,
            }
        )


@asynccontextmanager
async def registry(tmp_path: Path) -> AsyncIterator[Registry]:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(jwks_document([KEY.verify_key])))
    settings = RegistrySettings.from_env(
        {
            "ECLOUD_DATA_DIR": str(tmp_path),
            # Nothing listens there: keys come from the file, revocations are set below.
            "ECLOUD_AUTH_URL": "http://127.0.0.1:9",
            "ECLOUD_JWKS_FILE": str(jwks),
        }
    )
    ctx = build_context(settings)
    await ctx.db.connect()
    try:
        await ctx.db.migrate(MIGRATIONS, MIGRATION_LOCK)
        await ctx.auth.key_source.refresh()
        ctx.auth.revocations.update([])
        yield Registry(ctx, KEY)
    finally:
        await ctx.webhook_sender.aclose()
        await ctx.http.aclose()
        await ctx.db.disconnect()


def run(tmp_path: Path, body: Callable[[Registry], Coroutine[Any, Any, None]]) -> None:
    async def main() -> None:
        async with registry(tmp_path) as reg:
            await body(reg)

    asyncio.run(main())


def refused(exc: pytest.ExceptionInfo[RegistryError]) -> dict[str, str]:
    """The 401's challenge parameters (asserting it is a 401 with one)."""
    assert exc.value.code == "UNAUTHORIZED" and exc.value.status == 401
    return parse_challenge(exc.value.headers["WWW-Authenticate"])


def test_scope_strings_list_actions_in_canonical_order() -> None:
    assert scope_string("alice/app", frozenset({"delete", "pull"})) == (
        "repository:alice/app:pull,delete"
    )
    assert scope_string("a/b", ("push", "delete", "pull")) == "repository:a/b:pull,push,delete"
    assert scope_string("a/b", ("fly",)) == "repository:a/b:"


def test_names_are_checked_against_the_grammar() -> None:
    validate_name("alice/app")
    for bad in ["Alice/app", "alice/../x", "", "a" * 256, "a" * 400]:
        with pytest.raises(RegistryError) as exc:
            validate_name(bad)
        assert exc.value.code == "NAME_INVALID" and exc.value.detail == {"name": bad[:300]}


def test_authentication_no_token_a_bad_one_an_anonymous_one(tmp_path: Path) -> None:
    async def body(reg: Registry) -> None:
        scope = "repository:alice/app:pull"
        with pytest.raises(RegistryError) as exc:
            await authenticate(reg.request(), scope)
        assert refused(exc) == {
            "realm": reg.ctx.settings.token_realm,
            "service": reg.ctx.settings.service,
            "scope": scope,
        }
        with pytest.raises(RegistryError) as exc:
            await authenticate(reg.request("not-a-jwt"), scope)
        assert refused(exc)["error"] == "invalid_token"

        anonymous = reg.token("", "repository:alice/app:pull")
        request = reg.request(anonymous)
        caller = await authenticate(request, scope)
        assert caller.is_anonymous and request.state.caller is caller
        with pytest.raises(RegistryError) as exc:
            await authenticate_user(reg.request(anonymous))
        assert "error" not in refused(exc)

        user = await authenticate_user(reg.request(reg.token("usr_a", username="alice")))
        assert user.subject == "usr_a" and user.username == "alice"

    run(tmp_path, body)


def test_require_grants_exactly_the_tokens_actions(tmp_path: Path) -> None:
    async def body(reg: Registry) -> None:
        token = reg.token("usr_a", "repository:alice/app:pull", username="alice")
        caller = await require(reg.request(token), "alice/app", "pull")
        assert caller.subject == "usr_a"
        also = ("repository:alice/src:pull",)
        with pytest.raises(RegistryError) as exc:
            await require(reg.request(token), "alice/app", "pull", "push", also=also)
        assert refused(exc) == {
            "realm": reg.ctx.settings.token_realm,
            "service": reg.ctx.settings.service,
            "scope": "repository:alice/app:pull,push repository:alice/src:pull",
            "error": "insufficient_scope",
        }
        assert "insufficient scope" in exc.value.message
        # Another repository of the same owner, and a bad name before any token.
        with pytest.raises(RegistryError) as exc:
            await require(reg.request(token), "alice/other", "pull")
        assert refused(exc)["error"] == "insufficient_scope"
        with pytest.raises(RegistryError) as exc:
            await require(reg.request(), "Alice/App", "pull")
        assert exc.value.code == "NAME_INVALID"

    run(tmp_path, body)


def test_the_recorded_owner_decides_and_only_the_namespace_owner_creates(
    tmp_path: Path,
) -> None:
    async def body(reg: Registry) -> None:
        db = reg.ctx.db
        await ensure_repository(db, "alice/app", "usr_a")
        await ensure_repository(db, "carol/base", "usr_old_carol")
        alice = reg.token("usr_a", "repository:alice/app:pull,push", username="alice")
        caller, repo = await require_repository(reg.request(alice), "alice/app", "pull")
        assert caller.subject == "usr_a" and repo is not None and repo.owner_id == "usr_a"

        # A new user holding the reused name "carol": granted by name, refused by owner,
        # with the very answer of a missing grant.
        carol = reg.token(
            "usr_new_carol", "repository:carol/base:pull", "repository:carol/zero:pull"
        )
        await ensure_repository(db, "carol/zero", "usr_0")  # an owner id sorting before hers
        with pytest.raises(RegistryError) as exc:
            await require_repository(reg.request(carol), "carol/zero", "pull")
        assert refused(exc)["error"] == "insufficient_scope"
        with pytest.raises(RegistryError) as exc:
            await require_repository(reg.request(carol), "carol/base", "pull")
        assert refused(exc) == {
            "realm": reg.ctx.settings.token_realm,
            "service": reg.ctx.settings.service,
            "scope": "repository:carol/base:pull",
            "error": "insufficient_scope",
        }

        # Missing: None without create; created for the namespace's owner with create.
        fresh = reg.token("usr_a", "repository:alice/new:pull,push", username="alice")
        assert await require_repository(reg.request(fresh), "alice/new", "pull") == (
            await authenticate(reg.request(fresh)),
            None,
        )
        assert await get_repository(db, "alice/new") is None
        _, made = await require_repository(reg.request(fresh), "alice/new", "push", create=True)
        assert made is not None and made.owner_id == "usr_a"
        assert await get_repository(db, "alice/new") == made

        session = reg.session("usr_a", "alice")
        _, by_session = await require_repository(
            reg.request(session), "alice/web", "push", create=True
        )
        assert by_session is not None and by_session.owner_id == "usr_a"

        # Pull alone does not create, nor does a name without a namespace.
        pull_only = reg.token("usr_a", "repository:alice/ro:pull", username="alice")
        with pytest.raises(RegistryError) as exc:
            await require_repository(reg.request(pull_only), "alice/ro", "pull", create=True)
        assert refused(exc)["scope"] == "repository:alice/ro:pull"
        bare = reg.token("usr_a", "repository:app:pull,push", username="alice")
        with pytest.raises(RegistryError) as exc:
            await require_repository(
                reg.request(bare), "app", "push", create=True, also=("repository:x/y:pull",)
            )
        assert refused(exc)["scope"] == "repository:app:push repository:x/y:pull"
        assert await get_repository(db, "alice/ro") is None
        assert await get_repository(db, "app") is None

    run(tmp_path, body)


def test_only_the_namespace_owner_may_create() -> None:
    def registry_caller(subject: str, *scopes: str) -> Caller:
        access = tuple(parse_scope(s) for s in scopes)
        return Caller(kind="registry", subject=subject, access=access)

    assert _may_create(registry_caller("usr_a", "repository:alice/app:push"), "alice/app")
    assert not _may_create(registry_caller("usr_a", "repository:alice/app:pull"), "alice/app")
    assert not _may_create(registry_caller("usr_a", "repository:app:push"), "app")
    # An anonymous caller never creates, whatever its token lists.
    anonymous = Caller(
        kind="registry",
        subject="",
        access=(Scope("repository", "alice/app", frozenset({"push"})),),
    )
    assert not _may_create(anonymous, "alice/app")
    session = Caller(kind="session", subject="usr_a", username="alice", session_id="s")
    assert _may_create(session, "alice/app")
    assert not _may_create(session, "alicex/app")
    # Namespaces sorting after and before the caller's alike.
    assert not _may_create(session, "bob/app")
    assert not _may_create(session, "aaron/app")
    assert not _may_create(Caller(kind="session", subject="", username="alice"), "alice/app")


def test_a_mount_source_needs_pull_and_the_recorded_owner(tmp_path: Path) -> None:
    async def body(reg: Registry) -> None:
        db = reg.ctx.db
        target = await ensure_repository(db, "alice/app", "usr_a")
        source = await ensure_repository(db, "alice/base", "usr_a")
        earlier = await ensure_repository(db, "alice/aaa", "usr_a")  # sorts before the target
        await ensure_repository(db, "alice/old", "usr_previous_alice")
        await ensure_repository(db, "alice/older", "usr_0")  # an owner id sorting before ours
        granted = Caller(
            kind="registry",
            subject="usr_a",
            access=(
                Scope("repository", "alice/app", frozenset({"pull", "push"})),
                Scope("repository", "alice/base", frozenset({"pull"})),
                Scope("repository", "alice/aaa", frozenset({"pull"})),
                Scope("repository", "alice/old", frozenset({"pull"})),
                Scope("repository", "alice/older", frozenset({"pull"})),
                Scope("repository", "alice/gone", frozenset({"pull"})),
                Scope("repository", "alice/pushonly", frozenset({"push"})),
            ),
        )
        assert await mount_source(reg.ctx, granted, target, "alice/base") == source
        assert await mount_source(reg.ctx, granted, target, "alice/aaa") == earlier
        for refused_source in [
            None,
            "",
            "Alice/Base",
            "alice/app",  # the target itself
            "alice/old",  # someone else's, under a name now granted to us
            "alice/older",
            "alice/gone",  # no such repository
            "alice/pushonly",
            "alice/other",  # not granted at all
        ]:
            assert await mount_source(reg.ctx, granted, target, refused_source) is None
        await ensure_repository(db, "alice/pushonly", "usr_a")
        assert await mount_source(reg.ctx, granted, target, "alice/pushonly") is None
        session = Caller(kind="session", subject="usr_a", username="alice", session_id="s")
        assert await mount_source(reg.ctx, session, target, "alice/base") == source
        assert await mount_source(reg.ctx, session, target, "alice/old") is None

    run(tmp_path, body)


def test_a_refusal_without_credentials_is_audited_when_it_names_a_scope(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def denials() -> list[dict[str, Any]]:
        return [
            getattr(r, FIELDS)
            for r in caplog.records
            if r.name == "ecloud.audit" and r.getMessage() == "authz.denied"
        ]

    async def body(reg: Registry) -> None:
        with caplog.at_level(logging.INFO, logger="ecloud.audit"):
            with pytest.raises(RegistryError):
                await authenticate(reg.request())  # the bare GET /v2/ probe
            assert denials() == []
            with pytest.raises(RegistryError):
                await require(reg.request(), "alice/app", "pull")
            assert [(d["reason"], d["scope"]) for d in denials()] == [
                ("no_credentials", "repository:alice/app:pull")
            ]

    run(tmp_path, body)
