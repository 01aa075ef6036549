"""The registry service's settings, read once from ``ECLOUD_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from services.registry.metadata.gc_queue import ReviewDelays
from shared.database import sqlite_url
from shared.logsetup import LOG_FORMATS
from shared.settings import SettingsError, env_choice, env_int, env_list
from shared.tokens import DEFAULT_SESSION_AUDIENCE

__all__ = ["RegistrySettings", "S3Settings", "SettingsError"]


@dataclass(frozen=True, slots=True)
class S3Settings:
    """Where and as whom the S3 driver connects (used when the storage URL is ``s3://``)."""

    endpoint: str | None = None  # None: AWS S3 in `region`
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> S3Settings:
        return cls(
            endpoint=(env.get("ECLOUD_S3_ENDPOINT") or "").rstrip("/") or None,
            region=env.get("ECLOUD_S3_REGION") or "us-east-1",
            access_key_id=env.get("ECLOUD_S3_ACCESS_KEY_ID") or env.get("AWS_ACCESS_KEY_ID"),
            secret_access_key=env.get("ECLOUD_S3_SECRET_ACCESS_KEY")
            or env.get("AWS_SECRET_ACCESS_KEY"),
        )


@dataclass(frozen=True, slots=True)
class RegistrySettings:
    data_dir: Path
    database_url: str
    storage_url: str
    auth_url: str
    auth_internal_url: str
    jwks_url: str
    jwks_file: Path | None
    service: str
    issuer: str
    session_audience: str
    cors_origins: tuple[str, ...]
    key_refresh_seconds: int
    revocation_poll_seconds: int
    log_level: str
    log_format: str | None = None  # None: text on a terminal, JSON otherwise
    workers: int = 1
    s3: S3Settings = field(default_factory=S3Settings)
    # Garbage collection (see services/registry/gc.py).
    gc_interval: int = 86400
    gc_grace: int = 3600
    gc_untagged_ttl: int = 7 * 86400
    gc_upload_max_age: int = 86400
    gc_lease_seconds: int = 120

    @property
    def review_delays(self) -> ReviewDelays:
        return ReviewDelays(grace=float(self.gc_grace), untagged_ttl=float(self.gc_untagged_ttl))

    @property
    def token_realm(self) -> str:
        return self.auth_url.rstrip("/") + "/v2/token"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RegistrySettings:
        env = os.environ if env is None else env
        data_dir = Path(env.get("ECLOUD_DATA_DIR") or "./data").resolve()
        auth_url = (env.get("ECLOUD_AUTH_URL") or "http://127.0.0.1:5001").rstrip("/")
        internal = (env.get("ECLOUD_AUTH_INTERNAL_URL") or auth_url).rstrip("/")
        jwks_file = env.get("ECLOUD_JWKS_FILE")
        return cls(
            data_dir=data_dir,
            database_url=env.get("ECLOUD_REGISTRY_DATABASE_URL")
            or sqlite_url(data_dir / "registry.db"),
            storage_url=env.get("ECLOUD_STORAGE_URL") or f"file://{data_dir / 'storage'}",
            auth_url=auth_url,
            auth_internal_url=internal,
            jwks_url=env.get("ECLOUD_JWKS_URL") or internal + "/.well-known/jwks.json",
            jwks_file=Path(jwks_file) if jwks_file else None,
            service=env.get("ECLOUD_SERVICE") or "registry",
            issuer=env.get("ECLOUD_ISSUER") or "ecloud-auth",
            session_audience=env.get("ECLOUD_SESSION_AUDIENCE") or DEFAULT_SESSION_AUDIENCE,
            cors_origins=env_list(env.get("ECLOUD_CORS_ORIGINS")),
            key_refresh_seconds=env_int(env, "ECLOUD_KEY_REFRESH_SECONDS", 300, minimum=1),
            revocation_poll_seconds=env_int(env, "ECLOUD_REVOCATION_POLL_SECONDS", 30, minimum=1),
            log_level=(env.get("ECLOUD_LOG_LEVEL") or "info").lower(),
            log_format=env_choice(env, "ECLOUD_LOG_FORMAT", LOG_FORMATS),
            workers=env_int(env, "ECLOUD_WORKERS", 1, minimum=1),
            s3=S3Settings.from_env(env),
            gc_interval=env_int(env, "ECLOUD_GC_INTERVAL", 86400),
            gc_grace=env_int(env, "ECLOUD_GC_GRACE", 3600),
            gc_untagged_ttl=env_int(env, "ECLOUD_GC_UNTAGGED_TTL", 7 * 86400),
            gc_upload_max_age=env_int(env, "ECLOUD_GC_UPLOAD_MAX_AGE", 86400),
            gc_lease_seconds=env_int(env, "ECLOUD_GC_LEASE_SECONDS", 120, minimum=1),
        )
