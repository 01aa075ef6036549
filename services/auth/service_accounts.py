"""Service accounts and their ``ecloud_`` tokens: scopes, storage, authentication.

A service account belongs to one user and holds service-account scopes
(`shared.scopes.SaScope`) over that user's own repositories. It can have
several tokens, so one can be replaced before the other is revoked. A token is
shown once at creation and stored only as a hash; revoking it (or deleting its
account) also revokes the refresh tokens issued with it, so the very next token
request fails.

`ServiceAccounts` is both the store behind ``/api/service-accounts`` and the
`ServiceAccountResolver` the token endpoint authenticates ``ecloud_`` tokens
with.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from services.auth.accounts import Principal
from services.auth.ids import constant_time_equal, new_id, secret_hash
from services.auth.sa_secrets import is_well_formed, new_secret
from services.auth.store import Store, User
from shared.database import MetadataDB
from shared.names import namespace_of
from shared.scopes import SaScope, ScopeError, parse_sa_scope

__all__ = [
    "DEFAULT_EXPIRY",
    "EXPIRY_CHOICES",
    "IssuedToken",
    "LimitReachedError",
    "NameTakenError",
    "SaToken",
    "ServiceAccount",
    "ServiceAccounts",
    "normalize_scopes",
    "parse_expiry",
    "validate_name",
]

# expires_in → lifetime in seconds (None: until revoked).
EXPIRY_CHOICES: dict[str, int | None] = {
    "30d": 30 * 86400,
    "90d": 90 * 86400,
    "365d": 365 * 86400,
    "never": None,
}
DEFAULT_EXPIRY = "90d"
MAX_SCOPES = 32
MAX_ACCOUNTS_PER_USER = 100
MAX_ACTIVE_TOKENS = 20
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# last_used_at is informational: refresh it at most this often to spare writes.
_LAST_USED_GRANULARITY = 60.0


class NameTakenError(ValueError):
    """The caller already has a service account with this name."""


class LimitReachedError(ValueError):
    """Too many service accounts or active tokens."""


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    id: str
    user_id: str
    name: str
    scopes: tuple[SaScope, ...]
    created_at: float
    updated_at: float

    @classmethod
    def from_row(cls, row: Any) -> ServiceAccount:
        scopes = tuple(parse_sa_scope(s) for s in json.loads(row["scopes"]))
        return cls(
            id=row["id"],
            user_id=row["user_id"],
            name=row["name"],
            scopes=scopes,
            created_at=float(row["created_at"]),
            updated_at=float(row["updated_at"]),
        )


@dataclass(frozen=True, slots=True)
class SaToken:
    """A service-account token as listed: never the secret, only its last characters."""

    id: str
    service_account_id: str
    user_id: str
    name: str
    hint: str
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    last_used_at: float | None

    @classmethod
    def from_row(cls, row: Any) -> SaToken:
        def opt(key: str) -> float | None:
            return None if row[key] is None else float(row[key])

        return cls(
            id=row["id"],
            service_account_id=row["service_account_id"],
            user_id=row["user_id"],
            name=row["name"],
            hint=row["hint"],
            created_at=float(row["created_at"]),
            expires_at=opt("expires_at"),
            revoked_at=opt("revoked_at"),
            last_used_at=opt("last_used_at"),
        )

    def usable(self, now: float) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A freshly created token with its secret, which is never available again."""

    token: SaToken
    secret: str


def validate_name(name: object) -> str:
    if not isinstance(name, str) or _NAME_RE.fullmatch(name) is None:
        raise ValueError(
            "name must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


def parse_expiry(value: object) -> int | None:
    """Lifetime in seconds for an ``expires_in`` value (None: never expires)."""
    if value is None:
        value = DEFAULT_EXPIRY
    if not isinstance(value, str) or value not in EXPIRY_CHOICES:
        raise ValueError(f"expires_in must be one of {', '.join(EXPIRY_CHOICES)}")
    return EXPIRY_CHOICES[value]


def normalize_scopes(values: object, user: User) -> tuple[SaScope, ...]:
    """Parse and check the scopes a user asks for; merge those naming the same target.

    A user can only hold scopes over their own id (``me`` stands for it) and,
    for a single repository, only inside their own namespace.
    """
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ScopeError("scopes must be a list of strings")
    if not values:
        raise ScopeError(
            "at least one scope is required, e.g. storage.me.registry=read,create,delete"
        )
    if len(values) > MAX_SCOPES:
        raise ScopeError(f"at most {MAX_SCOPES} scopes")
    merged: dict[str | None, set[str]] = {}
    for value in values:
        scope = parse_sa_scope(value, me=user.id)
        if scope.user_id != user.id:
            raise ScopeError(
                f"scope {value[:200]!r} names user {scope.user_id[:64]!r}; a service account"
                f" can only hold scopes over your own user id ({user.id}) or 'me'"
            )
        if scope.repository is not None and namespace_of(scope.repository) != user.username:
            raise ScopeError(
                f"repository {scope.repository[:200]!r} is outside your namespace"
                f" {user.username + '/'!r}"
            )
        merged.setdefault(scope.repository, set()).update(scope.actions)
    ordered = sorted(merged.items(), key=lambda item: (item[0] is not None, item[0] or ""))
    return tuple(SaScope(user.id, repo, frozenset(actions)) for repo, actions in ordered)


def _scopes_json(scopes: Sequence[SaScope]) -> str:
    return json.dumps([str(s) for s in scopes])


class ServiceAccounts:
    """Service accounts of users and their tokens; resolves ``ecloud_`` tokens to principals."""

    def __init__(self, db: MetadataDB, store: Store) -> None:
        self.db = db
        self.store = store

    # accounts --------------------------------------------------------------

    async def create(self, user: User, name: str, scopes: Sequence[SaScope]) -> ServiceAccount:
        now = time.time()
        account = ServiceAccount(new_id("sa"), user.id, name, tuple(scopes), now, now)
        async with self.db.write() as conn:
            count = await conn.fetch_val(
                "SELECT COUNT(*) FROM service_accounts WHERE user_id = :u", {"u": user.id}
            )
            if int(count or 0) >= MAX_ACCOUNTS_PER_USER:
                raise LimitReachedError(f"at most {MAX_ACCOUNTS_PER_USER} service accounts")
            # ON CONFLICT keeps the name check race-free on PostgreSQL too.
            await conn.execute(
                "INSERT INTO service_accounts (id, user_id, name, scopes, created_at, updated_at)"
                " VALUES (:id, :u, :n, :s, :t, :t) ON CONFLICT (user_id, name) DO NOTHING",
                {"id": account.id, "u": user.id, "n": name, "s": _scopes_json(scopes), "t": now},
            )
            winner = await conn.fetch_val(
                "SELECT id FROM service_accounts WHERE user_id = :u AND name = :n",
                {"u": user.id, "n": name},
            )
        if winner != account.id:
            raise NameTakenError(f"a service account named {name!r} already exists")
        return account

    async def list_accounts(self, user_id: str) -> list[ServiceAccount]:
        rows = await self.db.fetch_all(
            "SELECT * FROM service_accounts WHERE user_id = :u ORDER BY name", {"u": user_id}
        )
        return [ServiceAccount.from_row(r) for r in rows]

    async def get(self, user_id: str, account_id: str) -> ServiceAccount | None:
        """The account when it exists and belongs to `user_id`."""
        row = await self.db.fetch_one(
            "SELECT * FROM service_accounts WHERE id = :id AND user_id = :u",
            {"id": account_id, "u": user_id},
        )
        return ServiceAccount.from_row(row) if row else None

    async def set_scopes(
        self, user_id: str, account_id: str, scopes: Sequence[SaScope]
    ) -> ServiceAccount | None:
        async with self.db.write() as conn:
            await conn.execute(
                "UPDATE service_accounts SET scopes = :s, updated_at = :t"
                " WHERE id = :id AND user_id = :u",
                {"s": _scopes_json(scopes), "t": time.time(), "id": account_id, "u": user_id},
            )
            row = await conn.fetch_one(
                "SELECT * FROM service_accounts WHERE id = :id AND user_id = :u",
                {"id": account_id, "u": user_id},
            )
        return ServiceAccount.from_row(row) if row else None

    async def delete(self, user_id: str, account_id: str) -> bool:
        """Delete an account, its tokens and the refresh tokens issued with them."""
        async with self.db.write() as conn:
            owned = await conn.fetch_val(
                "SELECT 1 FROM service_accounts WHERE id = :id AND user_id = :u",
                {"id": account_id, "u": user_id},
            )
            if not owned:
                return False
            await conn.execute(
                "DELETE FROM refresh_tokens WHERE sa_token_id IN"
                " (SELECT id FROM sa_tokens WHERE service_account_id = :sa)",
                {"sa": account_id},
            )
            await conn.execute(
                "DELETE FROM sa_tokens WHERE service_account_id = :sa", {"sa": account_id}
            )
            await conn.execute("DELETE FROM service_accounts WHERE id = :id", {"id": account_id})
        return True

    # tokens ----------------------------------------------------------------

    async def create_token(
        self, user_id: str, account_id: str, name: str, lifetime: int | None
    ) -> IssuedToken | None:
        """A new token for the caller's account (None when the account is not theirs)."""
        secret = new_secret()
        now = time.time()
        token = SaToken(
            id=new_id("tok"),
            service_account_id=account_id,
            user_id=user_id,
            name=name,
            hint=secret[-4:],
            created_at=now,
            expires_at=None if lifetime is None else now + lifetime,
            revoked_at=None,
            last_used_at=None,
        )
        async with self.db.write() as conn:
            owned = await conn.fetch_val(
                "SELECT 1 FROM service_accounts WHERE id = :id AND user_id = :u",
                {"id": account_id, "u": user_id},
            )
            if not owned:
                return None
            active = await conn.fetch_val(
                "SELECT COUNT(*) FROM sa_tokens WHERE service_account_id = :sa"
                " AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > :now)",
                {"sa": account_id, "now": now},
            )
            if int(active or 0) >= MAX_ACTIVE_TOKENS:
                raise LimitReachedError(
                    f"at most {MAX_ACTIVE_TOKENS} active tokens per service account;"
                    " revoke one first"
                )
            await conn.execute(
                "INSERT INTO sa_tokens (id, service_account_id, user_id, token_hash, name, hint,"
                " created_at, expires_at) VALUES (:id, :sa, :u, :h, :n, :hint, :t, :e)",
                {
                    "id": token.id,
                    "sa": account_id,
                    "u": user_id,
                    "h": secret_hash(secret),
                    "n": name,
                    "hint": token.hint,
                    "t": now,
                    "e": token.expires_at,
                },
            )
        return IssuedToken(token, secret)

    async def list_tokens(self, user_id: str, account_id: str) -> list[SaToken] | None:
        """The unrevoked tokens of the caller's account (None when the account is not theirs)."""
        if await self.get(user_id, account_id) is None:
            return None
        rows = await self.db.fetch_all(
            "SELECT * FROM sa_tokens WHERE service_account_id = :sa AND user_id = :u"
            " AND revoked_at IS NULL ORDER BY created_at, id",
            {"sa": account_id, "u": user_id},
        )
        return [SaToken.from_row(r) for r in rows]

    async def get_token(self, user_id: str, token_id: str) -> SaToken | None:
        row = await self.db.fetch_one(
            "SELECT * FROM sa_tokens WHERE id = :id AND user_id = :u AND revoked_at IS NULL",
            {"id": token_id, "u": user_id},
        )
        return SaToken.from_row(row) if row else None

    async def revoke_token(self, user_id: str, token_id: str) -> bool:
        """Revoke the caller's token and the refresh tokens issued with it."""
        now = time.time()
        async with self.db.write() as conn:
            live = await conn.fetch_val(
                "SELECT 1 FROM sa_tokens WHERE id = :id AND user_id = :u AND revoked_at IS NULL",
                {"id": token_id, "u": user_id},
            )
            if not live:
                return False
            await conn.execute(
                "UPDATE sa_tokens SET revoked_at = :t WHERE id = :id", {"t": now, "id": token_id}
            )
            await conn.execute(
                "UPDATE refresh_tokens SET revoked_at = :t"
                " WHERE sa_token_id = :id AND revoked_at IS NULL",
                {"t": now, "id": token_id},
            )
        return True

    # ServiceAccountResolver --------------------------------------------------

    async def authenticate_token(self, secret: str) -> Principal | None:
        # The checksum turns away typos and guesses before any database work.
        if not is_well_formed(secret):
            return None
        digest = secret_hash(secret)
        row = await self.db.fetch_one(
            "SELECT * FROM sa_tokens WHERE token_hash = :h", {"h": digest}
        )
        if row is None or not constant_time_equal(row["token_hash"], digest):
            return None
        return await self._principal(SaToken.from_row(row))

    async def principal_for_token_id(self, sa_token_id: str) -> Principal | None:
        row = await self.db.fetch_one("SELECT * FROM sa_tokens WHERE id = :id", {"id": sa_token_id})
        return await self._principal(SaToken.from_row(row)) if row else None

    async def _principal(self, token: SaToken) -> Principal | None:
        now = time.time()
        if not token.usable(now):
            return None
        account = await self.get(token.user_id, token.service_account_id)
        user = await self.store.user_by_id(token.user_id)
        if account is None or user is None:
            return None
        if token.last_used_at is None or now - token.last_used_at > _LAST_USED_GRANULARITY:
            await self.db.execute(
                "UPDATE sa_tokens SET last_used_at = :t WHERE id = :id", {"t": now, "id": token.id}
            )
        return Principal(
            user=user,
            service_account_id=account.id,
            service_account_name=account.name,
            sa_token_id=token.id,
            sa_scopes=account.scopes,
        )
