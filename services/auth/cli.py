"""``ecloud-auth``: run the auth service and administer it from the server side.

Examples:
  ecloud-auth serve --host 127.0.0.1 --port 5001
  echo 's3cret-pass' | ecloud-auth users create alice --password-stdin --admin
  ecloud-auth users list
  echo 'n3w-pass-phrase' | ecloud-auth users set-password alice --password-stdin
  ecloud-auth users revoke alice
  ecloud-auth users delete alice
  ecloud-auth keys generate --out signing-key.pem
  ecloud-auth migrate
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import typer

from services.auth.migrations import MIGRATION_LOCK, MIGRATIONS
from services.auth.passwords import Passwords, password_problem
from services.auth.settings import AuthSettings, SettingsError
from services.auth.store import Revoked, Store, User, UserExistsError
from shared.database import MetadataDB, migrate_database
from shared.dbcheck import DatabaseMissing, DatabasePlace, open_existing
from shared.keys import KeyError_, generate_private_key_pem, load_signing_key
from shared.logsetup import configure_logging
from shared.metrics import prepare_multiprocess_dir
from shared.names import is_valid_username
from shared.private_files import private_umask

__all__ = ["app", "main"]

app = typer.Typer(
    help=__doc__, no_args_is_help=True, add_completion=True, pretty_exceptions_enable=False
)
users_app = typer.Typer(help="Manage users (server side).", no_args_is_help=True)
keys_app = typer.Typer(help="Manage signing keys.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def _settings() -> AuthSettings:
    try:
        return AuthSettings.from_env()
    except SettingsError as exc:
        raise _fail(str(exc)) from exc


async def _open_existing(settings: AuthSettings) -> MetadataDB:
    """The database for commands that read it: never created here (see shared.dbcheck)."""
    place = DatabasePlace(
        settings.database_url, settings.data_dir, "ECLOUD_AUTH_DATABASE_URL", "ecloud-auth migrate"
    )
    try:
        db = await open_existing(place)
    except DatabaseMissing as exc:
        raise _fail(str(exc)) from exc
    await db.migrate(MIGRATIONS, MIGRATION_LOCK)
    return db


async def _open(settings: AuthSettings) -> MetadataDB:
    db = MetadataDB(settings.database_url)
    await db.connect()
    await db.migrate(MIGRATIONS, MIGRATION_LOCK)
    return db


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(5001, help="Port to listen on."),
    workers: int | None = typer.Option(
        None, "--workers", min=1, help="Worker processes (default ECLOUD_WORKERS, 1)."
    ),
) -> None:
    """Run the auth service (token endpoint, sessions, JWKS)."""
    import uvicorn

    from services.auth.app import create_app
    from shared.coalesce import protocol_class

    settings = _settings()
    log_config = configure_logging(settings.log_level, settings.log_format, "auth")
    try:
        application = create_app(settings)
    except (KeyError_, OSError) as exc:
        raise _fail(f"cannot load the signing key {settings.signing_key_file}: {exc}") from exc
    count = workers or settings.workers
    # Several workers build their own app from the environment (a factory by
    # import path); the one built above has checked the settings and made the
    # files they share (e.g. a generated signing key) before they start, and
    # migrations run here once, before any of them.
    asyncio.run(migrate_database(settings.database_url, MIGRATIONS, MIGRATION_LOCK))
    with prepare_multiprocess_dir(count):
        uvicorn.run(
            application if count == 1 else "services.auth.app:create_app",
            factory=count > 1,
            workers=count,
            # A worker answers the supervisor's health pings only once it has
            # imported everything: on a loaded machine that takes longer than
            # uvicorn's 5 s default, and a worker killed for it never starts.
            timeout_worker_healthcheck=60,
            host=host,
            port=port,
            log_config=log_config,
            log_level=settings.log_level,
            access_log=False,  # shared.observe writes one access line per request
            # Client addresses come from ECLOUD_TRUSTED_PROXIES only, never
            # from uvicorn's own X-Forwarded-For handling.
            proxy_headers=False,
            # Headers and a small body leave in one send (shared/coalesce.py).
            http=protocol_class(),
        )


@app.command()
def migrate() -> None:
    """Apply pending database migrations and exit."""
    settings = _settings()

    applied = asyncio.run(migrate_database(settings.database_url, MIGRATIONS, MIGRATION_LOCK))
    typer.echo(f"applied migrations: {applied}" if applied else "database is up to date")


@users_app.command("create")
def users_create(
    username: str = typer.Argument(..., help="Username; also the user's namespace."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from standard input."
    ),
    admin: bool = typer.Option(False, "--admin", help="Make the user an administrator."),
) -> None:
    """Create a user. Example: echo "$PW" | ecloud-auth users create alice --password-stdin"""
    if not is_valid_username(username):
        raise _fail("username must be 2-64 lowercase letters, digits, '.', '_' or '-'")
    password = _read_password(password_stdin)
    settings = _settings()
    passwords = _passwords(settings)

    async def run() -> str:
        db = await _open(settings)
        try:
            user = await Store(db).create_user(username, passwords.hash(password), admin=admin)
            return user.id
        finally:
            await db.disconnect()

    try:
        user_id = asyncio.run(run())
    except UserExistsError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"created user {username} ({user_id}){' as administrator' if admin else ''}")


@users_app.command("set-password")
def users_set_password(
    username: str = typer.Argument(..., help="The user whose password to replace."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the new password from standard input."
    ),
) -> None:
    """Set a user's password; ends all their sessions and refresh tokens.

    Example: echo "$NEW_PW" | ecloud-auth users set-password alice --password-stdin
    """
    password = _read_password(password_stdin)
    settings = _settings()
    new_hash = _passwords(settings).hash(password)

    async def change(store: Store, user: User) -> Revoked | None:
        return await store.change_password(user.id, new_hash)

    revoked = _with_user(settings, username, change)
    typer.echo(f"set the password of {username}; {_revoked_text(revoked)}")


@users_app.command("revoke")
def users_revoke(username: str = typer.Argument(..., help="The user to sign out.")) -> None:
    """End every session and refresh token of a user (service-account tokens stay)."""

    async def revoke(store: Store, user: User) -> Revoked | None:
        return await store.revoke_everything(user.id)

    revoked = _with_user(_settings(), username, revoke)
    typer.echo(f"revoked {username}: {_revoked_text(revoked)}")


@users_app.command("delete")
def users_delete(
    username: str = typer.Argument(..., help="The user to delete."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Delete a user with their sessions, refresh tokens and service accounts.

    Their repositories stay in the registry; the name cannot sign in any more.
    """
    if not yes:
        typer.confirm(f"Delete user {username}?", abort=True)

    async def delete(store: Store, user: User) -> Revoked | None:
        return Revoked(0, 0) if await store.delete_user(user.id) else None

    _with_user(_settings(), username, delete)
    typer.echo(f"deleted user {username}")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    problem = password_problem(password)
    if problem is not None:
        raise _fail(problem)
    return password


def _passwords(settings: AuthSettings) -> Passwords:
    return Passwords(
        settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism
    )


def _with_user(
    settings: AuthSettings,
    username: str,
    action: Callable[[Store, User], Awaitable[Revoked | None]],
) -> Revoked:
    """Run `action` on the named user; a missing user ends in one error line."""

    async def run() -> Revoked | None:
        db = await _open_existing(settings)
        try:
            store = Store(db)
            user = await store.user_by_name(username)
            return None if user is None else await action(store, user)
        finally:
            await db.disconnect()

    result = asyncio.run(run())
    if result is None:
        raise _fail(f"no user named {username!r}")
    return result


def _revoked_text(revoked: Revoked) -> str:
    return f"ended {revoked.sessions} session(s) and {revoked.refresh_tokens} refresh token(s)"


@users_app.command("list")
def users_list() -> None:
    """List users."""
    settings = _settings()

    async def run() -> list[tuple[str, str, bool]]:
        db = await _open_existing(settings)
        try:
            return [(u.id, u.username, u.is_admin) for u in await Store(db).list_users()]
        finally:
            await db.disconnect()

    for user_id, username, is_admin in asyncio.run(run()):
        typer.echo(f"{user_id}\t{username}\t{'admin' if is_admin else ''}".rstrip())


@keys_app.command("generate")
def keys_generate(
    alg: str = typer.Option("EdDSA", help="EdDSA (Ed25519) or ES256 (P-256)."),
    out: Path | None = typer.Option(None, help="Write the key here (mode 0600); stdout if absent."),
) -> None:
    """Generate a signing key as PEM. Example: ecloud-auth keys generate --out key.pem"""
    try:
        pem = generate_private_key_pem(alg)
    except KeyError_ as exc:
        raise _fail(str(exc)) from exc
    key = load_signing_key(pem)
    if out is None:
        sys.stdout.write(pem.decode())
        return
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise _fail(f"{out} exists; refusing to overwrite a key") from exc
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    typer.echo(f"wrote {alg} key {key.kid} to {out}", err=True)


def main() -> None:
    # Data files 0600, folders 0700, whatever creates them (SQLite, blobs, keys).
    private_umask()
    app()
