"""Who is calling the registry, and what they may do.

The registry trusts the auth service only through signatures: it holds the
auth service's public keys (from a file, or fetched from its JWKS URL and
refreshed, several at once so keys rotate without downtime) and verifies
``Authorization: Bearer`` tokens. A session token is tried first (``typ`` says
which kind a token claims to be; the signature and audience decide), then a
registry token. Session tokens are also checked against the auth service's
revocation list, polled every few seconds; when that list is older than
`MAX_REVOCATION_STALENESS`, sessions are refused rather than trusted blindly.

Verified tokens are remembered (`VerifiedTokens`, bounded): a token seen
again skips the signature check, but only before its ``exp``, only while the
key that signed it is still the one the key set holds under its ``kid``, and
a session is checked against the revocation list on every request, cached or
not, so a revoked session is refused as soon as the list has it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.requests import Request

from services.registry.errors import RegistryError
from services.registry.settings import RegistrySettings
from shared.keys import KeyError_, KeySet, load_verify_keys
from shared.names import namespace_of
from shared.scopes import REPOSITORY_ACTIONS, Scope
from shared.tokens import TokenError, TokenVerifier, is_session_token, unverified_kid

__all__ = [
    "MAX_REVOCATION_STALENESS",
    "Caller",
    "KeySource",
    "RegistryAuth",
    "RevocationList",
    "VerifiedTokens",
    "challenge",
    "quoted_string",
]

logger = logging.getLogger("ecloud.registry.auth")

MAX_REVOCATION_STALENESS = 60.0
UNKNOWN_KID_REFRESH_INTERVAL = 10.0


@dataclass(frozen=True, slots=True)
class Caller:
    """A verified bearer of a token.

    `subject` is the user id ("" for an anonymous registry token). A session
    grants every action on the caller's own namespace; a registry token grants
    exactly its ``access`` claim. `username` and `service_account_name` say
    who acted (audit, events); a registry token from an older auth service
    may lack them.
    """

    kind: str  # "session" or "registry"
    subject: str
    username: str | None = None
    access: tuple[Scope, ...] = ()
    service_account: str | None = None
    session_id: str | None = None
    service_account_name: str | None = None

    @property
    def is_anonymous(self) -> bool:
        return not self.subject

    def actions_for(self, repository: str) -> frozenset[str]:
        """Actions this caller holds on `repository` (before the owner re-check)."""
        if self.is_anonymous:
            return frozenset()
        if self.kind == "session":
            if self.username and namespace_of(repository) == self.username:
                return frozenset(REPOSITORY_ACTIONS)
            return frozenset()
        actions: set[str] = set()
        for scope in self.access:
            if scope.type == "repository" and scope.name == repository:
                actions |= scope.actions
        return frozenset(actions)

    def has_catalog(self) -> bool:
        if self.is_anonymous:
            return False
        if self.kind == "session":
            return True
        return any(s.is_catalog for s in self.access)


def quoted_string(value: str) -> str:
    """`value` as an RFC 9110 quoted-string that cannot end early or break the header.

    Quotes and backslashes are escaped; anything outside printable ASCII
    (control characters, non-ASCII) is percent-encoded as UTF-8, so no value,
    however it was built, adds a parameter (a second ``realm``) or a header line.
    """
    out = []
    for char in value:
        if char in '"\\':
            out.append("\\" + char)
        elif " " <= char <= "~":
            out.append(char)
        else:
            out.append("".join(f"%{b:02X}" for b in char.encode("utf-8", "surrogatepass")))
    return '"' + "".join(out) + '"'


def challenge(
    settings: RegistrySettings, scope: str | None = None, error: str | None = None
) -> str:
    """The ``WWW-Authenticate`` value for a 401; every parameter value is escaped.

    `scope` may hold several space-separated scopes (a mount names its target
    and its source). Callers validate repository names before building one.
    """
    params = [("realm", settings.token_realm), ("service", settings.service)]
    if scope:
        params.append(("scope", scope))
    if error:
        params.append(("error", error))
    return "Bearer " + ",".join(f"{key}={quoted_string(value)}" for key, value in params)


class KeySource:
    """The auth service's public keys, from a file or its JWKS URL."""

    def __init__(
        self,
        settings: RegistrySettings,
        client: httpx.AsyncClient,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._client = client
        self._clock = clock
        self.keys = KeySet()
        self._loaded_at = 0.0
        self._last_attempt = 0.0
        self._file_mtime: float | None = None
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        async with self._lock:
            self._last_attempt = self._clock()
            try:
                if self._settings.jwks_file is not None:
                    path = self._settings.jwks_file
                    mtime = path.stat().st_mtime
                    if mtime != self._file_mtime:
                        self.keys.replace(load_verify_keys(path.read_bytes()))
                        self._file_mtime = mtime
                else:
                    response = await self._client.get(self._settings.jwks_url, timeout=5.0)
                    response.raise_for_status()
                    self.keys.replace(load_verify_keys(response.content))
                self._loaded_at = self._clock()
            except (httpx.HTTPError, OSError, KeyError_) as exc:
                logger.warning("cannot load the auth service's public keys: %s", exc)

    async def ensure(self, kid: str | None) -> None:
        """Refresh when the keys are stale, or when a token names a key we lack."""
        now = self._clock()
        stale = now - self._loaded_at > self._settings.key_refresh_seconds
        missing = kid is not None and self.keys.get(kid) is None
        if (stale or missing or not len(self.keys)) and (
            now - self._last_attempt > UNKNOWN_KID_REFRESH_INTERVAL or not len(self.keys)
        ):
            await self.refresh()


@dataclass(slots=True)
class RevocationList:
    """Session ids revoked at the auth service, as last polled."""

    revoked: frozenset[str] = frozenset()
    fetched_at: float = 0.0
    clock: Callable[[], float] = field(default=time.monotonic)

    def is_fresh(self) -> bool:
        return self.clock() - self.fetched_at <= MAX_REVOCATION_STALENESS

    def update(self, sids: list[str]) -> None:
        self.revoked = frozenset(sids)
        self.fetched_at = self.clock()


@dataclass(frozen=True, slots=True)
class _Verified:
    caller: Caller
    expires_at: float
    kid: str
    key: Any


class VerifiedTokens:
    """Tokens whose signature and claims were verified, up to `size` of them (the
    oldest go first). An entry is used only before its token's ``exp`` (on the
    verifier's wall clock) and while `key_lookup(kid)` still gives the very key
    that verified it (a key rotated out or replaced drops its tokens)."""

    def __init__(
        self,
        key_lookup: Callable[[str], Any],
        size: int = 2048,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._lookup = key_lookup
        self._size = size
        self._clock = clock
        self._entries: dict[str, _Verified] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str) -> Caller | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        if self._clock() >= entry.expires_at or self._lookup(entry.kid) is not entry.key:
            self._entries.pop(token, None)
            return None
        return entry.caller

    def put(self, token: str, caller: Caller, expires_at: float, kid: str | None) -> None:
        key = None if kid is None else self._lookup(kid)
        if kid is None or key is None:
            return
        if len(self._entries) >= self._size:
            self._entries.pop(next(iter(self._entries)), None)
        self._entries[token] = _Verified(caller, expires_at, kid, key)

    def discard(self, token: str) -> None:
        self._entries.pop(token, None)


class RegistryAuth:
    def __init__(
        self,
        settings: RegistrySettings,
        client: httpx.AsyncClient,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # `clock` (key and revocation-list ages) is for tests; `serve` never passes one.
        self.settings = settings
        self.client = client
        self.key_source = KeySource(settings, client, clock)
        self.revocations = RevocationList(clock=clock)
        self.verifier = TokenVerifier(self.key_source.keys.get, issuer=settings.issuer)
        self.verified = VerifiedTokens(self.key_source.keys.get)
        self._poll_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.key_source.refresh()
        await self.poll_revocations()
        self._poll_task = asyncio.create_task(self._poll_forever())

    async def stop(self) -> None:
        if self._poll_task is not None:
            self._poll_task.cancel()
            try:
                await self._poll_task
            except asyncio.CancelledError:
                pass

    async def poll_revocations(self) -> None:
        # Not published by the Ingress: the registry reaches it in-cluster only.
        url = self.settings.auth_internal_url + "/internal/sessions/revoked"
        try:
            response = await self.client.get(url, timeout=5.0)
            response.raise_for_status()
            sids = response.json().get("revoked", [])
            if isinstance(sids, list):
                self.revocations.update([s for s in sids if isinstance(s, str)])
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            logger.warning("cannot poll revoked sessions: %s", exc)

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.revocation_poll_seconds)
            await self.poll_revocations()
            await self.key_source.ensure(None)

    async def authenticate(self, request: Request) -> Caller | None:
        """The verified caller, None when no bearer token was sent.

        Raises `RegistryError` UNAUTHORIZED when a token was sent but is not valid.
        """
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        # Stale keys are refreshed first, so a key rotated out drops its tokens now.
        await self.key_source.ensure(None)
        cached = self.verified.get(token)
        if cached is not None:
            if cached.kind == "session":
                await self._check_session(token, cached.session_id)
            return cached
        kid = unverified_kid(token)
        await self.key_source.ensure(kid)
        try:
            if is_session_token(token):
                claims = self.verifier.verify_session_token(token, self.settings.session_audience)
                await self._check_session(token, claims.session_id)
                caller = Caller(
                    kind="session",
                    subject=claims.subject,
                    username=claims.username,
                    session_id=claims.session_id,
                )
                self.verified.put(token, caller, claims.expires_at, kid)
                return caller
            registry_claims = self.verifier.verify_registry_token(token, self.settings.service)
        except TokenError as exc:
            raise RegistryError("UNAUTHORIZED", str(exc)) from exc
        caller = Caller(
            kind="registry",
            subject=registry_claims.subject,
            username=registry_claims.username,
            access=registry_claims.access,
            service_account=registry_claims.service_account,
            service_account_name=registry_claims.service_account_name,
        )
        self.verified.put(token, caller, registry_claims.expires_at, kid)
        return caller

    async def _check_session(self, token: str, session_id: str | None) -> None:
        """UNAUTHORIZED unless the revocation list is fresh and does not name the session."""
        if not self.revocations.is_fresh():
            await self.poll_revocations()
        if not self.revocations.is_fresh():
            self.verified.discard(token)
            raise RegistryError(
                "UNAUTHORIZED", "cannot confirm the session is still valid; retry later"
            )
        if session_id in self.revocations.revoked:
            self.verified.discard(token)
            raise RegistryError("UNAUTHORIZED", "the session has been revoked")
