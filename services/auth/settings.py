"""The auth service's settings, read once from ``ECLOUD_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from shared.database import sqlite_url
from shared.logsetup import LOG_FORMATS
from shared.settings import SettingsError, env_choice, env_int, env_list
from shared.tokens import DEFAULT_SESSION_AUDIENCE

__all__ = ["AuthSettings", "RateLimit", "SettingsError"]


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most `limit` events per `window` seconds."""

    limit: int
    window: float

    @classmethod
    def parse(cls, name: str, text: str) -> RateLimit:
        try:
            count, _, seconds = text.partition("/")
            limit, window = int(count), float(seconds or "60")
        except ValueError as exc:
            raise SettingsError(f"{name} must look like COUNT/SECONDS, got {text!r}") from exc
        if limit < 1 or window <= 0:
            raise SettingsError(f"{name} needs a positive count and window")
        return cls(limit, window)


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
    trusted_proxies: tuple[str, ...]
    argon2_time_cost: int
    argon2_memory_kib: int
    argon2_parallelism: int
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
            request_rate=RateLimit.parse(
                "ECLOUD_RATE_LIMIT_REQUESTS", env.get("ECLOUD_RATE_LIMIT_REQUESTS") or "600/60"
            ),
            failure_rate=RateLimit.parse(
                "ECLOUD_RATE_LIMIT_FAILURES", env.get("ECLOUD_RATE_LIMIT_FAILURES") or "10/300"
            ),
            trusted_proxies=env_list(env.get("ECLOUD_TRUSTED_PROXIES")),
            argon2_time_cost=env_int(env, "ECLOUD_ARGON2_TIME_COST", 3, minimum=1),
            argon2_memory_kib=env_int(env, "ECLOUD_ARGON2_MEMORY_KIB", 65536, minimum=8),
            argon2_parallelism=env_int(env, "ECLOUD_ARGON2_PARALLELISM", 4, minimum=1),
            log_level=(env.get("ECLOUD_LOG_LEVEL") or "info").lower(),
            log_format=env_choice(env, "ECLOUD_LOG_FORMAT", LOG_FORMATS),
            workers=env_int(env, "ECLOUD_WORKERS", 1, minimum=1),
        )
