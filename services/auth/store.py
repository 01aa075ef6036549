"""Users, sessions and refresh tokens in the auth database.

Service accounts and their tokens live in `service_accounts.py`; this module
owns the rows every login touches.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from services.auth.ids import constant_time_equal, new_id, secret_hash
from shared.database import MetadataDB

__all__ = [
    "IssuedRefreshToken",
    "RefreshToken",
    "Revoked",
    "Session",
    "Store",
    "User",
    "UserExistsError",
]


class UserExistsError(ValueError):
    """The username is taken."""


@dataclass(frozen=True, slots=True)
class User:
    id: str
    username: str
    password_hash: str
    is_admin: bool
    created_at: float

    @classmethod
    def from_row(cls, row: Any) -> User:
        return cls(
            id=row["id"],
            username=row["username"],
            password_hash=row["password_hash"],
            is_admin=bool(row["is_admin"]),
            created_at=float(row["created_at"]),
        )


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    user_id: str
    created_at: float
    expires_at: float
    revoked_at: float | None


@dataclass(frozen=True, slots=True)
class RefreshToken:
    id: str
    user_id: str
    sa_token_id: str | None
    client_id: str
    service: str
    expires_at: float
    created_at: float = 0.0
    last_used_at: float | None = None

    @classmethod
    def from_row(cls, row: Any) -> RefreshToken:
        return cls(
            id=row["id"],
            user_id=row["user_id"],
            sa_token_id=row["sa_token_id"],
            client_id=row["client_id"],
            service=row["service"],
            expires_at=float(row["expires_at"]),
            created_at=float(row["created_at"]),
            last_used_at=None if row["last_used_at"] is None else float(row["last_used_at"]),
        )


@dataclass(frozen=True, slots=True)
class IssuedRefreshToken:
    """A new refresh token with its secret, which is never available again."""

    id: str
    secret: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class Revoked:
    """How many live sessions and refresh tokens a revocation ended."""

    sessions: int
    refresh_tokens: int


class Store:
    def __init__(self, db: MetadataDB) -> None:
        self.db = db

    # users -----------------------------------------------------------------

    async def create_user(self, username: str, password_hash: str, *, admin: bool) -> User:
        now = time.time()
        user = User(new_id("usr"), username, password_hash, admin, now)
        async with self.db.write() as conn:
            taken = await conn.fetch_val("SELECT 1 FROM users WHERE username = :u", {"u": username})
            if taken:
                raise UserExistsError(f"user {username!r} already exists")
            await conn.execute(
                "INSERT INTO users (id, username, password_hash, is_admin, created_at, updated_at)"
                " VALUES (:id, :u, :h, :a, :t, :t)",
                {"id": user.id, "u": username, "h": password_hash, "a": int(admin), "t": now},
            )
        return user

    async def user_by_name(self, username: str) -> User | None:
        row = await self.db.database.fetch_one(
            "SELECT * FROM users WHERE username = :u", {"u": username}
        )
        return User.from_row(row) if row else None

    async def user_by_id(self, user_id: str) -> User | None:
        row = await self.db.database.fetch_one(
            "SELECT * FROM users WHERE id = :id", {"id": user_id}
        )
        return User.from_row(row) if row else None

    async def list_users(self) -> list[User]:
        rows = await self.db.database.fetch_all("SELECT * FROM users ORDER BY username")
        return [User.from_row(r) for r in rows]

    async def rehash_password(self, user_id: str, old_hash: str, new_hash: str) -> None:
        """Store a rehash of the same password (parameters changed): nothing is revoked.

        Only over `old_hash`: a password change that landed meanwhile wins.
        """
        await self.db.database.execute(
            "UPDATE users SET password_hash = :h, updated_at = :t WHERE id = :id AND"
            " password_hash = :old",
            {"h": new_hash, "t": time.time(), "id": user_id, "old": old_hash},
        )

    async def change_password(
        self, user_id: str, password_hash: str, *, expected_hash: str | None = None
    ) -> Revoked | None:
        """Set a new password and revoke every session and refresh token of the user.

        With `expected_hash`, the change applies only if the stored hash is still
        that one (the current password was checked against it): two concurrent
        changes cannot both win. None when the user is gone or the hash moved.
        """
        async with self.db.write() as conn:
            row = await conn.fetch_one(
                "SELECT password_hash FROM users WHERE id = :id", {"id": user_id}
            )
            if row is None or (expected_hash is not None and row["password_hash"] != expected_hash):
                return None
            await conn.execute(
                "UPDATE users SET password_hash = :h, updated_at = :t WHERE id = :id",
                {"h": password_hash, "t": time.time(), "id": user_id},
            )
            return await _revoke_everything(conn, user_id)

    async def delete_user(self, user_id: str) -> bool:
        """Delete a user with everything that lets them in; return whether it existed."""
        now = time.time()
        async with self.db.write() as conn:
            existed = await conn.fetch_val("SELECT 1 FROM users WHERE id = :id", {"id": user_id})
            if not existed:
                return False
            # Revoked (not deleted) sessions: the registry polls them until they expire.
            await conn.execute(
                "UPDATE sessions SET revoked_at = :t WHERE user_id = :id AND revoked_at IS NULL",
                {"t": now, "id": user_id},
            )
            for table in ("refresh_tokens", "sa_tokens", "service_accounts"):
                await conn.execute(f"DELETE FROM {table} WHERE user_id = :id", {"id": user_id})  # noqa: S608
            await conn.execute("DELETE FROM users WHERE id = :id", {"id": user_id})
        return True

    # sessions --------------------------------------------------------------

    async def create_session(self, user_id: str, ttl_seconds: int) -> Session:
        now = time.time()
        session = Session(new_id("ses"), user_id, now, now + ttl_seconds, None)
        await self.db.database.execute(
            "INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES (:id, :u, :c, :e)",
            {"id": session.id, "u": user_id, "c": now, "e": session.expires_at},
        )
        return session

    async def session_is_active(self, session_id: str, user_id: str) -> bool:
        row = await self.db.database.fetch_one(
            "SELECT user_id, expires_at, revoked_at FROM sessions WHERE id = :id",
            {"id": session_id},
        )
        return bool(
            row
            and row["user_id"] == user_id
            and row["revoked_at"] is None
            and float(row["expires_at"]) > time.time()
        )

    async def revoke_session(self, session_id: str) -> None:
        await self.db.database.execute(
            "UPDATE sessions SET revoked_at = :t WHERE id = :id AND revoked_at IS NULL",
            {"t": time.time(), "id": session_id},
        )

    async def revoke_everything(self, user_id: str) -> Revoked:
        """Revoke every session and refresh token of a user (service-account tokens stay)."""
        async with self.db.write() as conn:
            return await _revoke_everything(conn, user_id)

    async def revoked_session_ids(self) -> list[str]:
        """Sessions revoked before their expiry and not expired yet: what verifiers must refuse."""
        rows = await self.db.database.fetch_all(
            "SELECT id FROM sessions WHERE revoked_at IS NOT NULL AND expires_at > :now",
            {"now": time.time()},
        )
        return [r["id"] for r in rows]

    # refresh tokens --------------------------------------------------------

    async def create_refresh_token(
        self,
        *,
        user_id: str,
        sa_token_id: str | None,
        client_id: str,
        service: str,
        ttl_seconds: int,
    ) -> IssuedRefreshToken:
        issued = IssuedRefreshToken(
            new_id("rtk"), "rt_" + secrets.token_urlsafe(32), time.time() + ttl_seconds
        )
        await self.db.database.execute(
            "INSERT INTO refresh_tokens (id, token_hash, user_id, sa_token_id, client_id, service,"
            " created_at, expires_at) VALUES (:id, :h, :u, :sa, :c, :s, :t, :e)",
            {
                "id": issued.id,
                "h": secret_hash(issued.secret),
                "u": user_id,
                "sa": sa_token_id,
                "c": client_id[:200],
                "s": service,
                "t": issued.expires_at - ttl_seconds,
                "e": issued.expires_at,
            },
        )
        return issued

    async def find_refresh_token(self, secret: str) -> RefreshToken | None:
        digest = secret_hash(secret)
        row = await self.db.database.fetch_one(
            "SELECT * FROM refresh_tokens WHERE token_hash = :h", {"h": digest}
        )
        if (
            row is None
            or not constant_time_equal(row["token_hash"], digest)
            or row["revoked_at"] is not None
            or float(row["expires_at"]) <= time.time()
        ):
            return None
        await self.db.database.execute(
            "UPDATE refresh_tokens SET last_used_at = :t WHERE id = :id",
            {"t": time.time(), "id": row["id"]},
        )
        return RefreshToken.from_row(row)

    async def list_refresh_tokens(self, user_id: str) -> list[RefreshToken]:
        """The user's refresh tokens that still work (unrevoked, unexpired), oldest first."""
        rows = await self.db.database.fetch_all(
            "SELECT * FROM refresh_tokens WHERE user_id = :u AND revoked_at IS NULL"
            " AND expires_at > :now ORDER BY created_at, id",
            {"u": user_id, "now": time.time()},
        )
        return [RefreshToken.from_row(r) for r in rows]

    async def revoke_refresh_token(self, user_id: str, token_id: str) -> bool:
        """Revoke one live refresh token of the user; False when there is none by that id."""
        now = time.time()
        async with self.db.write() as conn:
            live = await conn.fetch_val(
                "SELECT 1 FROM refresh_tokens WHERE id = :id AND user_id = :u"
                " AND revoked_at IS NULL AND expires_at > :now",
                {"id": token_id, "u": user_id, "now": now},
            )
            if not live:
                return False
            await conn.execute(
                "UPDATE refresh_tokens SET revoked_at = :t WHERE id = :id",
                {"t": now, "id": token_id},
            )
        return True

    async def refresh_token_id(self, secret: str) -> str | None:
        """The id of the refresh token with this secret, whatever its state."""
        value = await self.db.database.fetch_val(
            "SELECT id FROM refresh_tokens WHERE token_hash = :h", {"h": secret_hash(secret)}
        )
        return None if value is None else str(value)


async def _revoke_everything(conn: Any, user_id: str) -> Revoked:
    """Inside a write transaction: revoke the user's live sessions and refresh tokens."""
    now = time.time()
    params = {"u": user_id, "now": now}
    sessions = await conn.fetch_val(
        "SELECT COUNT(*) FROM sessions WHERE user_id = :u AND revoked_at IS NULL"
        " AND expires_at > :now",
        params,
    )
    refresh = await conn.fetch_val(
        "SELECT COUNT(*) FROM refresh_tokens WHERE user_id = :u AND revoked_at IS NULL"
        " AND expires_at > :now",
        params,
    )
    await conn.execute(
        "UPDATE sessions SET revoked_at = :now WHERE user_id = :u AND revoked_at IS NULL", params
    )
    await conn.execute(
        "UPDATE refresh_tokens SET revoked_at = :now WHERE user_id = :u AND revoked_at IS NULL",
        params,
    )
    return Revoked(int(sessions or 0), int(refresh or 0))
