"""The registry service's settings, read once from ``ECLOUD_*`` environment variables."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from services.registry.events.model import FORMATS
from services.registry.metadata.gc_queue import ReviewDelays
from shared.database import sqlite_url
from shared.logsetup import LOG_FORMATS
from shared.settings import (
    DEFAULT_REGISTRY_URL,
    SettingsError,
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_url,
)
from shared.tokens import DEFAULT_SESSION_AUDIENCE

__all__ = ["EventSettings", "OperatorWebhook", "RegistrySettings", "S3Settings", "SettingsError"]


@dataclass(frozen=True, slots=True)
class S3Settings:
    """Where and as whom the S3 driver connects (used when the storage URL is ``s3://``)."""

    endpoint: str | None = None  # None: AWS S3 in `region`
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    addressing: str = "path"  # or "virtual": <bucket>.<endpoint host>
    # Idempotent requests that fail with a 5xx, SlowDown or a transport error are
    # retried with jittered exponential backoff, this many attempts in all, and
    # never past this many seconds after the first.
    retry_attempts: int = 5
    retry_timeout: float = 20.0
    redirect: bool = False  # blob GET answers 307 to a presigned URL
    redirect_ttl: int = 300

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> S3Settings:
        return cls(
            endpoint=(env.get("ECLOUD_S3_ENDPOINT") or "").rstrip("/") or None,
            region=env.get("ECLOUD_S3_REGION") or "us-east-1",
            access_key_id=env.get("ECLOUD_S3_ACCESS_KEY_ID") or env.get("AWS_ACCESS_KEY_ID"),
            secret_access_key=env.get("ECLOUD_S3_SECRET_ACCESS_KEY")
            or env.get("AWS_SECRET_ACCESS_KEY"),
            session_token=env.get("ECLOUD_S3_SESSION_TOKEN") or env.get("AWS_SESSION_TOKEN"),
            addressing=env_choice(env, "ECLOUD_S3_ADDRESSING", ("path", "virtual")) or "path",
            retry_attempts=env_int(env, "ECLOUD_S3_RETRY_ATTEMPTS", 5, minimum=1),
            retry_timeout=env_float(env, "ECLOUD_S3_RETRY_TIMEOUT", 20.0, minimum=0.1),
            redirect=env_bool(env, "ECLOUD_S3_REDIRECT", False),
            redirect_ttl=_redirect_ttl(env),
        )


def _redirect_ttl(env: Mapping[str, str]) -> int:
    ttl = env_int(env, "ECLOUD_S3_REDIRECT_TTL", 300, minimum=1)
    if ttl > 604800:
        raise SettingsError("ECLOUD_S3_REDIRECT_TTL must be at most 604800 (7 days, S3's limit)")
    return ttl


_STREAM_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SUBJECT_PREFIX = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")


@dataclass(frozen=True, slots=True)
class OperatorWebhook:
    """One endpoint of ``ECLOUD_WEBHOOKS``: receives every event of every namespace."""

    url: str
    secret: str = field(repr=False)
    format: str = "cloudevents"

    @property
    def target(self) -> str:
        """A stable key for this endpoint in the delivery records (never shows the URL)."""
        return "op:" + hashlib.sha256(self.url.encode()).hexdigest()[:16]


def _operator_webhooks(raw: str | None) -> tuple[OperatorWebhook, ...]:
    if not raw or not raw.strip():
        return ()
    try:
        entries = json.loads(raw)
    except ValueError as exc:
        raise SettingsError("ECLOUD_WEBHOOKS must be a JSON array of objects") from exc
    if not isinstance(entries, list):
        raise SettingsError("ECLOUD_WEBHOOKS must be a JSON array of objects")
    hooks = []
    for i, entry in enumerate(entries):
        where = f"ECLOUD_WEBHOOKS[{i}]"
        if not isinstance(entry, dict):
            raise SettingsError(f"{where} must be an object with url, secret and format")
        unknown = set(entry) - {"url", "secret", "format"}
        if unknown:
            raise SettingsError(f"{where} has unknown keys {sorted(unknown)}")
        url, secret = entry.get("url"), entry.get("secret")
        fmt = entry.get("format", "cloudevents")
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            raise SettingsError(f"{where}.url must be an http:// or https:// URL")
        if not urlsplit(url).hostname:
            raise SettingsError(f"{where}.url has no host")
        if not isinstance(secret, str) or not secret:
            # The value is never echoed: it is a secret even when malformed.
            raise SettingsError(f"{where}.secret must be a non-empty string")
        if fmt not in FORMATS:
            raise SettingsError(f"{where}.format must be one of {', '.join(FORMATS)}")
        hooks.append(OperatorWebhook(url=url, secret=secret, format=fmt))
    return tuple(hooks)


@dataclass(frozen=True, slots=True)
class EventSettings:
    """Where events go and how hard the dispatcher tries (see ``services.registry.events``)."""

    nats_url: str | None = field(default=None, repr=False)  # may carry credentials
    nats_stream: str = "ECLOUD_REGISTRY"
    nats_subject_prefix: str = "ecloud.registry"
    webhooks: tuple[OperatorWebhook, ...] = ()
    allow_private: bool = False
    key_file: Path = Path("webhook-secrets.key")
    dispatch: bool = True
    poll_seconds: float = 1.0
    lease_seconds: float = 60.0
    retry_base: float = 1.0
    retry_max: float = 600.0
    max_age: float = 86400.0
    retention: float = 7 * 86400.0
    webhook_timeout: float = 10.0

    @classmethod
    def from_env(cls, env: Mapping[str, str], data_dir: Path) -> EventSettings:
        stream = env.get("ECLOUD_EVENTS_NATS_STREAM") or "ECLOUD_REGISTRY"
        if not _STREAM_NAME.fullmatch(stream):
            raise SettingsError(
                "ECLOUD_EVENTS_NATS_STREAM must be 1 to 64 letters, digits, '_' or '-'"
            )
        prefix = env.get("ECLOUD_EVENTS_NATS_SUBJECT_PREFIX") or "ecloud.registry"
        if not _SUBJECT_PREFIX.fullmatch(prefix):
            raise SettingsError(
                "ECLOUD_EVENTS_NATS_SUBJECT_PREFIX must be dot-separated tokens of"
                " letters, digits, '_' or '-'"
            )
        nats_url = (env.get("ECLOUD_EVENTS_NATS_URL") or "").strip() or None
        if nats_url is not None and urlsplit(nats_url).scheme not in ("nats", "tls", "ws", "wss"):
            raise SettingsError("ECLOUD_EVENTS_NATS_URL must be a nats:// (or tls://) URL")
        key_file = env.get("ECLOUD_WEBHOOK_KEY_FILE")
        return cls(
            nats_url=nats_url,
            nats_stream=stream,
            nats_subject_prefix=prefix,
            webhooks=_operator_webhooks(env.get("ECLOUD_WEBHOOKS")),
            allow_private=env_bool(env, "ECLOUD_WEBHOOK_ALLOW_PRIVATE", False),
            key_file=Path(key_file) if key_file else data_dir / "webhook-secrets.key",
            dispatch=env_bool(env, "ECLOUD_EVENTS_DISPATCH", True),
            poll_seconds=env_float(env, "ECLOUD_EVENTS_POLL_SECONDS", 1.0, minimum=0.05),
            lease_seconds=env_float(env, "ECLOUD_EVENTS_LEASE_SECONDS", 60.0, minimum=1.0),
            retry_base=env_float(env, "ECLOUD_EVENTS_RETRY_BASE", 1.0, minimum=0.01),
            retry_max=env_float(env, "ECLOUD_EVENTS_RETRY_MAX", 600.0, minimum=0.01),
            max_age=env_float(env, "ECLOUD_EVENTS_MAX_AGE", 86400.0, minimum=1.0),
            retention=env_float(env, "ECLOUD_EVENTS_RETENTION", 7 * 86400.0, minimum=60.0),
            webhook_timeout=env_float(env, "ECLOUD_WEBHOOK_TIMEOUT", 10.0, minimum=0.5),
        )


@dataclass(frozen=True, slots=True)
class RegistrySettings:
    data_dir: Path
    database_url: str
    storage_url: str
    auth_url: str
    auth_internal_url: str
    # Public URL of this registry: the host in the dashboard's docker commands.
    registry_url: str
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
    events: EventSettings = field(default_factory=EventSettings)
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
            registry_url=env_url(env, "ECLOUD_REGISTRY_URL", DEFAULT_REGISTRY_URL),
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
            events=EventSettings.from_env(env, data_dir),
            gc_interval=env_int(env, "ECLOUD_GC_INTERVAL", 86400),
            gc_grace=env_int(env, "ECLOUD_GC_GRACE", 3600),
            gc_untagged_ttl=env_int(env, "ECLOUD_GC_UNTAGGED_TTL", 7 * 86400),
            gc_upload_max_age=env_int(env, "ECLOUD_GC_UPLOAD_MAX_AGE", 86400),
            gc_lease_seconds=env_int(env, "ECLOUD_GC_LEASE_SECONDS", 120, minimum=1),
        )
