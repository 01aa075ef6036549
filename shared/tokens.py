"""Issuing and verifying the two JWTs: registry tokens and session tokens.

Registry token: ``iss``, ``sub`` (user id, empty for anonymous), ``aud`` (the
service), ``exp``, ``nbf``, ``iat``, ``jti``, ``access``, ``sa`` when a
service account was used, and, in tokens issued since events were added,
``username`` and ``sa_name`` (who acted, for the registry's audit trail and
events; optional, so older tokens still verify). Session token: ``iss``, ``sub``, ``aud`` (the
session audience), ``typ: "session"``, ``sid``, ``username``, ``admin``,
``exp``, ``iat``.

Verification is strict: the header's ``alg`` must be on the allow-list and
equal to the algorithm of the key its ``kid`` names (no ``none``, no HMAC with
a public key, no key confusion), and ``iss``, ``aud``, ``exp``, ``nbf`` are
checked with a small leeway. A token of one kind is never accepted as the other.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from shared.keys import SUPPORTED_ALGORITHMS, SigningKey, VerifyKey
from shared.scopes import Scope, ScopeError

__all__ = [
    "DEFAULT_SESSION_AUDIENCE",
    "SESSION_TYPE",
    "RegistryClaims",
    "SessionClaims",
    "TokenError",
    "TokenIssuer",
    "TokenVerifier",
    "is_session_token",
    "unverified_kid",
]

SESSION_TYPE = "session"
DEFAULT_SESSION_AUDIENCE = "ecloud-session"
DEFAULT_LEEWAY_SECONDS = 30


class TokenError(Exception):
    """Any reason a token is not accepted; the message is safe to show a client."""


@dataclass(frozen=True, slots=True)
class RegistryClaims:
    issuer: str
    subject: str
    audience: str
    issued_at: int
    not_before: int
    expires_at: int
    token_id: str
    access: tuple[Scope, ...]
    service_account: str | None = None
    username: str | None = None
    service_account_name: str | None = None

    def actions_for(self, type_: str, name: str) -> frozenset[str]:
        actions: set[str] = set()
        for scope in self.access:
            if scope.type == type_ and scope.name == name:
                actions |= scope.actions
        return frozenset(actions)


@dataclass(frozen=True, slots=True)
class SessionClaims:
    issuer: str
    subject: str
    audience: str
    session_id: str
    username: str
    admin: bool
    issued_at: int
    expires_at: int


def _new_jti() -> str:
    return secrets.token_urlsafe(16)


class TokenIssuer:
    """Signs tokens with the service's private key."""

    def __init__(self, key: SigningKey, issuer: str, clock: Callable[[], float] = time.time):
        self._key = key
        self._issuer = issuer
        self._clock = clock

    @property
    def key(self) -> SigningKey:
        return self._key

    def _sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(
            claims,
            self._key.private_key,
            algorithm=self._key.alg,
            headers={"kid": self._key.kid, "typ": "JWT"},
        )

    def issue_registry_token(
        self,
        *,
        subject: str,
        audience: str,
        access: Iterable[Scope],
        ttl_seconds: int,
        service_account: str | None = None,
        username: str | None = None,
        service_account_name: str | None = None,
    ) -> tuple[str, RegistryClaims]:
        now = int(self._clock())
        claims = RegistryClaims(
            issuer=self._issuer,
            subject=subject,
            audience=audience,
            issued_at=now,
            not_before=now,
            expires_at=now + ttl_seconds,
            token_id=_new_jti(),
            access=tuple(access),
            service_account=service_account,
            username=username,
            service_account_name=service_account_name,
        )
        payload: dict[str, Any] = {
            "iss": claims.issuer,
            "sub": claims.subject,
            "aud": claims.audience,
            "exp": claims.expires_at,
            "nbf": claims.not_before,
            "iat": claims.issued_at,
            "jti": claims.token_id,
            "access": [s.to_claim() for s in claims.access],
        }
        if service_account is not None:
            payload["sa"] = service_account
        if username is not None:
            payload["username"] = username
        if service_account_name is not None:
            payload["sa_name"] = service_account_name
        return self._sign(payload), claims

    def issue_session_token(
        self,
        *,
        subject: str,
        username: str,
        admin: bool,
        session_id: str,
        ttl_seconds: int,
        audience: str = DEFAULT_SESSION_AUDIENCE,
    ) -> tuple[str, SessionClaims]:
        now = int(self._clock())
        claims = SessionClaims(
            issuer=self._issuer,
            subject=subject,
            audience=audience,
            session_id=session_id,
            username=username,
            admin=admin,
            issued_at=now,
            expires_at=now + ttl_seconds,
        )
        payload = {
            "iss": claims.issuer,
            "sub": claims.subject,
            "aud": claims.audience,
            "typ": SESSION_TYPE,
            "sid": claims.session_id,
            "username": claims.username,
            "admin": claims.admin,
            "exp": claims.expires_at,
            "iat": claims.issued_at,
        }
        return self._sign(payload), claims


def is_session_token(token: str) -> bool:
    """Peek (without verifying) whether a JWT claims to be a session token.

    Only used to choose which verification to run; the chosen verification
    checks the claim again under the signature.
    """
    try:
        payload = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return False
    return isinstance(payload, dict) and payload.get("typ") == SESSION_TYPE


def unverified_kid(token: str) -> str | None:
    """The ``kid`` a token's header names, unverified: only to pick or fetch a key."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError:
        return None
    return kid if isinstance(kid, str) else None


def _optional_name(value: object) -> str | None:
    """A display name claim: a short string, or absent (older tokens)."""
    if isinstance(value, str) and 0 < len(value) <= 256:
        return value
    return None


class TokenVerifier:
    """Verifies tokens against a set of public keys looked up by ``kid``."""

    def __init__(
        self,
        key_lookup: Callable[[str], VerifyKey | None],
        *,
        issuer: str,
        algorithms: Sequence[str] = SUPPORTED_ALGORITHMS,
        leeway_seconds: int = DEFAULT_LEEWAY_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        unknown = set(algorithms) - set(SUPPORTED_ALGORITHMS)
        if unknown:
            raise ValueError(f"unsupported algorithms {sorted(unknown)}")
        self._lookup = key_lookup
        self._issuer = issuer
        self._algorithms = tuple(algorithms)
        self._leeway = leeway_seconds
        self._clock = clock

    def _decode(self, token: str, audience: str, required: list[str]) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenError("malformed token") from exc
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in self._algorithms:
            raise TokenError(f"token algorithm {str(alg)[:20]!r} is not accepted")
        if not isinstance(kid, str) or not kid:
            raise TokenError("token has no key id")
        key = self._lookup(kid)
        if key is None:
            raise TokenError("token signed by an unknown key")
        if key.alg != alg:
            raise TokenError("token algorithm does not match its key")
        try:
            payload: dict[str, Any] = jwt.decode(
                token,
                key.public_key,
                algorithms=[key.alg],
                audience=audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": required, "verify_iat": False},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenError("token has expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise TokenError("token is not valid yet") from exc
        except jwt.InvalidAudienceError as exc:
            raise TokenError("token is for another audience") from exc
        except jwt.InvalidIssuerError as exc:
            raise TokenError("token is from another issuer") from exc
        except jwt.PyJWTError as exc:
            raise TokenError("invalid token") from exc
        # PyJWT checks exp/nbf against its own clock; check ours too so tests and
        # skewed deployments agree.
        now = self._clock()
        if payload["exp"] < now - self._leeway:
            raise TokenError("token has expired")
        if "nbf" in payload and payload["nbf"] > now + self._leeway:
            raise TokenError("token is not valid yet")
        if not isinstance(payload.get("sub"), str):
            raise TokenError("token subject must be a string")
        return payload

    def verify_registry_token(self, token: str, audience: str) -> RegistryClaims:
        payload = self._decode(token, audience, ["exp", "nbf", "iat", "iss", "aud", "sub"])
        if "typ" in payload:
            raise TokenError("a session token is not a registry token")
        raw_access = payload.get("access", [])
        if not isinstance(raw_access, list):
            raise TokenError("token access claim must be a list")
        try:
            access = tuple(Scope.from_claim(entry) for entry in raw_access)
        except ScopeError as exc:
            raise TokenError("token access claim is malformed") from exc
        sa = payload.get("sa")
        return RegistryClaims(
            issuer=payload["iss"],
            subject=payload["sub"],
            audience=audience,
            issued_at=int(payload["iat"]),
            not_before=int(payload["nbf"]),
            expires_at=int(payload["exp"]),
            token_id=str(payload.get("jti", "")),
            access=access,
            service_account=sa if isinstance(sa, str) else None,
            username=_optional_name(payload.get("username")),
            service_account_name=_optional_name(payload.get("sa_name")),
        )

    def verify_session_token(
        self, token: str, audience: str = DEFAULT_SESSION_AUDIENCE
    ) -> SessionClaims:
        payload = self._decode(token, audience, ["exp", "iat", "iss", "aud", "sub"])
        if payload.get("typ") != SESSION_TYPE:
            raise TokenError("not a session token")
        sid, username = payload.get("sid"), payload.get("username")
        if not isinstance(sid, str) or not sid or not isinstance(username, str) or not username:
            raise TokenError("session token lacks sid or username")
        return SessionClaims(
            issuer=payload["iss"],
            subject=payload["sub"],
            audience=audience,
            session_id=sid,
            username=username,
            admin=payload.get("admin") is True,
            issued_at=int(payload["iat"]),
            expires_at=int(payload["exp"]),
        )
