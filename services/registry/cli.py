"""``ecloud-registry``: run the registry and administer its storage.

Examples:
  ecloud-registry serve --host 127.0.0.1 --port 5000
  ecloud-registry migrate
  ecloud-registry gc --dry-run
"""

from __future__ import annotations

import asyncio

import typer

from services.registry.metadata.migrations import MIGRATION_LOCK, MIGRATIONS
from services.registry.settings import RegistrySettings, SettingsError
from shared.database import MetadataDB, migrate_database
from shared.logsetup import configure_logging

__all__ = ["app", "main"]

app = typer.Typer(
    help=__doc__, no_args_is_help=True, add_completion=True, pretty_exceptions_enable=False
)


def _settings() -> RegistrySettings:
    try:
        return RegistrySettings.from_env()
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(5000, help="Port to listen on."),
) -> None:
    """Run the registry (OCI Distribution API under /v2/, dashboard API under /api/)."""
    import uvicorn

    from services.registry.app import create_app

    settings = _settings()
    configure_logging(settings.log_level)
    try:
        application = create_app(settings)
    except ValueError as exc:  # an unusable storage URL or storage settings
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    # proxy_headers=False: uvicorn would otherwise believe X-Forwarded-For from
    # 127.0.0.1 before the app sees the request; ECLOUD_TRUSTED_PROXIES decides alone.
    uvicorn.run(
        application,
        host=host,
        port=port,
        log_level=settings.log_level,
        access_log=False,
        proxy_headers=False,
    )


@app.command()
def migrate() -> None:
    """Apply pending database migrations and exit."""
    settings = _settings()

    applied = asyncio.run(migrate_database(settings.database_url, MIGRATIONS, MIGRATION_LOCK))
    typer.echo(f"applied migrations: {applied}" if applied else "database is up to date")


@app.command()
def gc(
    dry_run: bool = typer.Option(False, "--dry-run", help="Report what would go; change nothing."),
    grace: int | None = typer.Option(
        None,
        "--grace",
        min=0,
        help="Seconds under which links, blobs and files are never removed"
        " (default ECLOUD_GC_GRACE).",
    ),
    test_crash_after: int = typer.Option(
        0,
        "--test-crash-after",
        envvar="ECLOUD_GC_TEST_CRASH_AFTER",
        min=0,
        hidden=True,
        help="Test hook: die (exit 137) inside the Nth deleting transaction.",
    ),
) -> None:
    """Run one garbage collection sweep now (safe while the registry runs).

    Exits 0 after a sweep, 2 when another sweep holds the lease.
    """
    import dataclasses

    from services.registry.gc import Collector, Deletion, GCPolicy, LeaseBusy
    from services.registry.storage import open_storage

    settings = _settings()
    try:
        storage = open_storage(settings.storage_url, settings.s3)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc

    def show(deletion: Deletion, dry: bool) -> None:
        verb = "would delete" if dry else "deleted"
        typer.echo(f"{verb} {deletion.kind} {deletion.label} ({deletion.size} bytes)")

    async def run() -> None:
        db = MetadataDB(settings.database_url)
        await db.connect()
        try:
            await db.migrate(MIGRATIONS, MIGRATION_LOCK)
            # The crash hook lives here only: `serve` never reads it.
            policy = dataclasses.replace(
                GCPolicy.from_settings(settings, grace), crash_after=test_crash_after
            )
            collector = Collector(db, storage, policy, on_delete=show)
            report = await collector.sweep(dry_run=dry_run)
        finally:
            await db.disconnect()
        verb = "would delete" if dry_run else "deleted"
        kinds = ", ".join(
            f"{report.count(k)} {k}(s)" for k in ("manifest", "link", "blob", "upload", "orphan")
        )
        typer.echo(f"{verb} {report.count()} objects ({kinds}), {report.bytes()} bytes")

    try:
        asyncio.run(run())
    except LeaseBusy as exc:
        typer.echo(f"error: {exc}; try again later", err=True)
        raise typer.Exit(2) from exc


def main() -> None:
    app()
