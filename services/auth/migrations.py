"""Schema versions of the auth database (users, sessions, tokens, service accounts)."""

from __future__ import annotations

from shared.database import Migration

__all__ = ["MIGRATIONS", "MIGRATION_LOCK"]

# Replicas starting together take this lock so each migration runs once.
MIGRATION_LOCK = "ecloud-auth-migrations"

MIGRATIONS: list[Migration] = [
    Migration(
        1,
        "users, sessions, refresh tokens, service accounts",
        """
        CREATE TABLE users (
            id TEXT PRIMARY KEY,
            username TEXT NOT NULL UNIQUE,
            password_hash TEXT NOT NULL,
            is_admin INTEGER NOT NULL DEFAULT 0,
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL
        );
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL,
            revoked_at DOUBLE PRECISION
        );
        CREATE INDEX sessions_user ON sessions (user_id);
        CREATE INDEX sessions_revoked ON sessions (revoked_at, expires_at);
        CREATE TABLE refresh_tokens (
            id TEXT PRIMARY KEY,
            token_hash TEXT NOT NULL UNIQUE,
            user_id TEXT NOT NULL,
            sa_token_id TEXT,
            client_id TEXT NOT NULL,
            service TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL,
            revoked_at DOUBLE PRECISION,
            last_used_at DOUBLE PRECISION
        );
        CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
        CREATE TABLE service_accounts (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            name TEXT NOT NULL,
            scopes TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL,
            UNIQUE (user_id, name)
        );
        CREATE TABLE sa_tokens (
            id TEXT PRIMARY KEY,
            service_account_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            token_hash TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            hint TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION,
            revoked_at DOUBLE PRECISION,
            last_used_at DOUBLE PRECISION
        );
        CREATE INDEX sa_tokens_account ON sa_tokens (service_account_id)
        """,
    ),
    Migration(
        2,
        "index refresh tokens by service-account token",
        # Revoking an ecloud_ token revokes the refresh tokens issued with it.
        "CREATE INDEX refresh_tokens_sa_token ON refresh_tokens (sa_token_id)",
    ),
]
