"""Everything a request handler of the auth service needs, built once at start-up."""

from __future__ import annotations

from dataclasses import dataclass

from services.auth.accounts import Authenticator
from services.auth.guard import Policies
from services.auth.passwords import Passwords
from services.auth.ratelimit import RateLimits
from services.auth.service_accounts import ServiceAccounts
from services.auth.settings import AuthSettings
from services.auth.store import Store
from shared.database import MetadataDB
from shared.keys import SigningKey, VerifyKey
from shared.metrics import Counter, Histogram, Registry
from shared.tokens import TokenIssuer, TokenVerifier

__all__ = ["AuthContext", "AuthMetrics"]


@dataclass(slots=True)
class AuthMetrics:
    registry: Registry
    requests: Counter
    latency: Histogram
    tokens_issued: Counter
    auth_failures: Counter
    rate_limited: Counter
    argon2_busy: Counter

    @classmethod
    def create(cls) -> AuthMetrics:
        registry = Registry()
        return cls(
            registry=registry,
            requests=registry.counter(
                "ecloud_auth_http_requests_total", "HTTP requests", ("method", "route", "status")
            ),
            latency=registry.histogram(
                "ecloud_auth_http_request_seconds", "Time to first response byte", ("route",)
            ),
            tokens_issued=registry.counter(
                "ecloud_auth_tokens_issued_total", "Tokens issued", ("kind",)
            ),
            auth_failures=registry.counter(
                "ecloud_auth_failures_total", "Failed authentications", ("endpoint",)
            ),
            rate_limited=registry.counter(
                "ecloud_auth_rate_limited_total", "Requests refused by a rate limit", ("limit",)
            ),
            argon2_busy=registry.counter(
                "ecloud_auth_argon2_busy_total",
                "Requests refused with 503 because every Argon2 slot was taken",
                ("endpoint",),
            ),
        )


@dataclass(slots=True)
class AuthContext:
    settings: AuthSettings
    db: MetadataDB
    store: Store
    passwords: Passwords
    signing_key: SigningKey
    published_keys: list[VerifyKey]
    issuer: TokenIssuer
    verifier: TokenVerifier
    authenticator: Authenticator
    service_accounts: ServiceAccounts
    limits: RateLimits
    policies: Policies
    metrics: AuthMetrics
