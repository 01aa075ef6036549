"""The auth service's settings, read once from ``ECLOUD_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path

from shared.database import sqlite_url
from shared.logsetup import LOG_FORMATS
from shared.settings import SettingsError, env_choice, env_int, env_list
from shared.tokens import DEFAULT_SESSION_AUDIENCE

__all__ = ["AuthSettings", "RateLimit", "SettingsError", "default_argon2_max_concurrent"]

# Memory the concurrent Argon2 checks may take together by default: with the
# process's own ~100 MiB this stays well under a 512 MiB container limit.
ARGON2_MEMORY_BUDGET_KIB = 256 * 1024
_RATE_LIMIT_SCHEMES = ("memory://", "redis://", "rediss://")


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most `limit` events per `window` seconds."""

    limit: int
    window: int

    @classmethod
    def parse(cls, name: str, text: str) -> RateLimit:
        try:
            count, _, seconds = text.partition("/")
            limit, window = int(count), int(seconds or "60")
        except ValueError as exc:
            raise SettingsError(f"{name} must look like COUNT/SECONDS, got {text!r}") from exc
        if limit < 1 or window < 1:
            raise SettingsError(f"{name} needs a positive count and window")
        return cls(limit, window)


def default_argon2_max_concurrent(memory_kib: int) -> int:
    """How many Argon2 checks fit in the memory budget at once (at least one)."""
    return max(1, ARGON2_MEMORY_BUDGET_KIB // memory_kib)


def _rate(env: Mapping[str, str], name: str, default: str) -> RateLimit:
    return RateLimit.parse(name, env.get(name) or default)


def _rate_limit_storage(env: Mapping[str, str]) -> str:
    url = env.get("ECLOUD_RATE_LIMIT_STORAGE") or "memory://"
    if not url.startswith(_RATE_LIMIT_SCHEMES):
        raise SettingsError(
            "ECLOUD_RATE_LIMIT_STORAGE must be memory:// or redis://host:port/db"
            f" (or rediss://), got {url.split('://')[0][:20]!r}://…"
        )
    return url


@dataclass(frozen=True, slots=True)
class AuthSettings:
    data_dir: Path
    database_url: str
    signing_key_file: Path
    signing_algorithm: str
    extra_public_keys_file: Path | None
    issuer: str
    service: str
    session_audience: str
    token_ttl: int
    session_ttl: int
    refresh_ttl: int
    cors_origins: tuple[str, ...]
    request_rate: RateLimit
    failure_rate: RateLimit
    account_failure_rate: RateLimit
    address_failure_rate: RateLimit
    rate_limit_storage: str
    rate_limit_prefix: str
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...]
    argon2_time_cost: int
    argon2_memory_kib: int
    argon2_parallelism: int
    argon2_max_concurrent: int
    log_level: str = "info"
    log_format: str | None = None  # None: text on a terminal, JSON otherwise
    workers: int = 1
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AuthSettings:
        env = os.environ if env is None else env
        data_dir = Path(env.get("ECLOUD_DATA_DIR") or "./data").resolve()
        algorithm = env.get("ECLOUD_SIGNING_ALGORITHM") or "EdDSA"
        if algorithm not in ("EdDSA", "ES256"):
            raise SettingsError("ECLOUD_SIGNING_ALGORITHM must be EdDSA or ES256")
        memory_kib = env_int(env, "ECLOUD_ARGON2_MEMORY_KIB", 65536, minimum=8)
        return cls(
            data_dir=data_dir,
            database_url=env.get("ECLOUD_AUTH_DATABASE_URL") or sqlite_url(data_dir / "auth.db"),
            signing_key_file=Path(
                env.get("ECLOUD_SIGNING_KEY_FILE") or data_dir / "signing-key.pem"
            ),
            signing_algorithm=algorithm,
            extra_public_keys_file=(
                Path(env["ECLOUD_EXTRA_PUBLIC_KEYS_FILE"])
                if env.get("ECLOUD_EXTRA_PUBLIC_KEYS_FILE")
                else None
            ),
            issuer=env.get("ECLOUD_ISSUER") or "ecloud-auth",
            service=env.get("ECLOUD_SERVICE") or "registry",
            session_audience=env.get("ECLOUD_SESSION_AUDIENCE") or DEFAULT_SESSION_AUDIENCE,
            token_ttl=env_int(env, "ECLOUD_TOKEN_TTL", 300, minimum=60),
            session_ttl=env_int(env, "ECLOUD_SESSION_TTL", 12 * 3600, minimum=60),
            refresh_ttl=env_int(env, "ECLOUD_REFRESH_TTL", 30 * 86400, minimum=60),
            cors_origins=env_list(env.get("ECLOUD_CORS_ORIGINS")),
            request_rate=_rate(env, "ECLOUD_RATE_LIMIT_REQUESTS", "600/60"),
            failure_rate=_rate(env, "ECLOUD_RATE_LIMIT_FAILURES", "10/300"),
            account_failure_rate=_rate(env, "ECLOUD_RATE_LIMIT_ACCOUNT_FAILURES", "100/300"),
            address_failure_rate=_rate(env, "ECLOUD_RATE_LIMIT_ADDRESS_FAILURES", "100/300"),
            rate_limit_storage=_rate_limit_storage(env),
            rate_limit_prefix=env.get("ECLOUD_RATE_LIMIT_PREFIX") or "ecloud-auth",
            trusted_proxies=_networks(env.get("ECLOUD_TRUSTED_PROXIES")),
            argon2_time_cost=env_int(env, "ECLOUD_ARGON2_TIME_COST", 3, minimum=1),
            argon2_memory_kib=memory_kib,
            argon2_parallelism=env_int(env, "ECLOUD_ARGON2_PARALLELISM", 4, minimum=1),
            argon2_max_concurrent=env_int(
                env,
                "ECLOUD_ARGON2_MAX_CONCURRENT",
                default_argon2_max_concurrent(memory_kib),
                minimum=1,
            ),
            log_level=(env.get("ECLOUD_LOG_LEVEL") or "info").lower(),
            log_format=env_choice(env, "ECLOUD_LOG_FORMAT", LOG_FORMATS),
            workers=env_int(env, "ECLOUD_WORKERS", 1, minimum=1),
        )


def _networks(raw: str | None) -> tuple[IPv4Network | IPv6Network, ...]:
    """``ECLOUD_TRUSTED_PROXIES``: CIDRs (or single addresses); a bad one stops the start."""
    networks = []
    for item in env_list(raw):
        try:
            networks.append(ip_network(item, strict=False))
        except ValueError as exc:
            raise SettingsError(
                f"ECLOUD_TRUSTED_PROXIES: {item[:60]!r} is not an address or CIDR"
            ) from exc
    return tuple(networks)
