"""Who is calling: passwords, service-account tokens and refresh tokens → a Principal.

The token endpoint accepts a password or an ``ecloud_`` service-account token
as the Basic password; the session login accepts passwords only (a
service-account token never becomes a session).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

from services.auth.argon2_slots import Argon2Slots
from services.auth.passwords import MAX_PASSWORD_BYTES, Passwords
from services.auth.store import RefreshToken, Store, User
from shared.requestuser import identify_user
from shared.scopes import SaScope

__all__ = ["SA_TOKEN_PREFIX", "Authenticator", "Principal", "ServiceAccountResolver"]

SA_TOKEN_PREFIX = "ecloud_"  # noqa: S105 - a prefix, not a secret


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: a user, possibly acting through a service account."""

    user: User
    service_account_id: str | None = None
    sa_token_id: str | None = None
    sa_scopes: tuple[SaScope, ...] | None = None

    @property
    def is_service_account(self) -> bool:
        return self.service_account_id is not None


class ServiceAccountResolver(Protocol):
    async def authenticate_token(self, secret: str) -> Principal | None:
        """The principal of a valid, unrevoked, unexpired ``ecloud_`` token."""

    async def principal_for_token_id(self, sa_token_id: str) -> Principal | None:
        """The principal of a service-account token still valid, by its id (refresh grants)."""


class Authenticator:
    def __init__(
        self,
        store: Store,
        passwords: Passwords,
        slots: Argon2Slots,
        service_accounts: ServiceAccountResolver | None = None,
    ) -> None:
        self.store = store
        self.passwords = passwords
        self.slots = slots
        self.service_accounts = service_accounts

    async def password(self, username: str, password: str) -> Principal | None:
        """A user by username and password; rehashes when the Argon2 parameters changed.

        Raises `Argon2BusyError` when no Argon2 slot is free.
        """
        if len(password.encode("utf-8", "surrogatepass")) > MAX_PASSWORD_BYTES:
            return None  # no password is that long: refuse without hashing it
        user = await self.store.user_by_name(username) if 0 < len(username) <= 200 else None
        # Verify even for unknown users so that timing does not reveal them. Argon2
        # is deliberately slow and releases the GIL: run it off the event loop.
        ok = await self.slots.run(
            self.passwords.verify, user.password_hash if user else None, password
        )
        if user is None or not ok:
            return None
        if self.passwords.needs_rehash(user.password_hash):
            new_hash = await self.slots.run(self.passwords.hash, password)
            await self.store.rehash_password(user.id, user.password_hash, new_hash)
            user = replace(user, password_hash=new_hash)
        return _identified(Principal(user))

    async def hash_password(self, password: str) -> str:
        """An Argon2id hash of a new password (raises `Argon2BusyError` when no slot is free)."""
        return await self.slots.run(self.passwords.hash, password)

    async def basic(self, username: str, secret: str) -> Principal | None:
        """Basic credentials of the token endpoint: a password, or an ``ecloud_`` token.

        With a service-account token the username is ignored, as docker sends
        whatever the user typed.
        """
        if secret.startswith(SA_TOKEN_PREFIX):
            if self.service_accounts is None:
                return None
            return _identified(await self.service_accounts.authenticate_token(secret))
        return await self.password(username, secret)

    async def refresh(self, token: RefreshToken) -> Principal | None:
        if token.sa_token_id is not None:
            if self.service_accounts is None:
                return None
            return _identified(
                await self.service_accounts.principal_for_token_id(token.sa_token_id)
            )
        user = await self.store.user_by_id(token.user_id)
        return _identified(Principal(user)) if user else None


def _identified(principal: Principal | None) -> Principal | None:
    """`principal`, named as the current request's user for the access log."""
    if principal is not None:
        identify_user(
            user_id=principal.user.id,
            username=principal.user.username,
            service_account=principal.service_account_id,
        )
    return principal
