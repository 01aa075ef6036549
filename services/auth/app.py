"""Wiring of the auth service: settings → context → routes and middleware."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from services.auth.accounts import Authenticator
from services.auth.argon2_slots import Argon2Slots
from services.auth.context import AuthContext, AuthMetrics
from services.auth.guard import Policies
from services.auth.migrations import MIGRATION_LOCK, MIGRATIONS
from services.auth.passwords import Passwords
from services.auth.ratelimit import RateLimits
from services.auth.routes import (
    admin,
    credentials,
    internal,
    meta,
    service_accounts,
    session,
    token,
)
from services.auth.service_accounts import ServiceAccounts
from services.auth.settings import AuthSettings
from services.auth.store import Store
from shared.cors import cors_middleware
from shared.database import MetadataDB
from shared.keys import load_or_create_signing_key, load_verify_keys
from shared.observe import ObserveMiddleware
from shared.private_files import tighten
from shared.security_headers import SecurityHeadersMiddleware
from shared.tokens import TokenIssuer, TokenVerifier

__all__ = ["build_context", "create_app"]

logger = logging.getLogger("ecloud.auth")


def build_context(settings: AuthSettings) -> AuthContext:
    tighten(settings.data_dir, settings.signing_key_file)
    signing_key = load_or_create_signing_key(settings.signing_key_file, settings.signing_algorithm)
    published = [signing_key.verify_key]
    if settings.extra_public_keys_file is not None:
        extra = load_verify_keys(settings.extra_public_keys_file.read_bytes())
        published += [k for k in extra if k.kid != signing_key.kid]
    by_kid = {k.kid: k for k in published}
    db = MetadataDB(settings.database_url)
    store = Store(db)
    passwords = Passwords(
        settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism
    )
    accounts = ServiceAccounts(db, store)
    return AuthContext(
        settings=settings,
        db=db,
        store=store,
        passwords=passwords,
        signing_key=signing_key,
        published_keys=published,
        issuer=TokenIssuer(signing_key, settings.issuer),
        verifier=TokenVerifier(by_kid.get, issuer=settings.issuer),
        authenticator=Authenticator(
            store, passwords, Argon2Slots(settings.argon2_max_concurrent), service_accounts=accounts
        ),
        service_accounts=accounts,
        limits=RateLimits(settings.rate_limit_storage, settings.rate_limit_prefix),
        policies=Policies.from_settings(settings),
        metrics=AuthMetrics.create(),
    )


def create_app(settings: AuthSettings | None = None, ctx: AuthContext | None = None) -> Starlette:
    if ctx is None:
        ctx = build_context(settings or AuthSettings.from_env())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await ctx.db.connect()
        await ctx.db.migrate(MIGRATIONS, MIGRATION_LOCK)
        try:
            yield
        finally:
            await ctx.db.disconnect()

    middleware = cors_middleware(
        ctx.settings.allowed_origins, ["GET", "POST", "PUT", "DELETE", "OPTIONS"]
    )
    app = Starlette(
        routes=[
            *token.routes,
            *session.routes,
            *credentials.routes,
            *internal.routes,
            *service_accounts.routes,
            *admin.routes,
            *meta.routes,
        ],
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={404: _not_found, 405: _not_allowed},
    )
    app.state.ctx = ctx
    app.add_middleware(
        ObserveMiddleware,
        requests=ctx.metrics.requests,
        latency=ctx.metrics.latency,
        crash_response=_internal_error,
        logger=logger,
    )
    # Outermost, so that even the 500 of a crash carries the headers. Every
    # answer of this service may carry a credential: none is stored by a cache
    # (the public keys say otherwise themselves).
    app.add_middleware(SecurityHeadersMiddleware, no_store=("/",))
    return app


def _internal_error() -> Response:
    return JSONResponse({"error": {"code": "INTERNAL", "message": "internal server error"}}, 500)


async def _not_found(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": {"code": "NOT_FOUND", "message": "no such endpoint"}}, 404)


async def _not_allowed(request: Request, exc: Exception) -> Response:
    return JSONResponse(
        {"error": {"code": "METHOD_NOT_ALLOWED", "message": "method not allowed"}}, 405
    )
