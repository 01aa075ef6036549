"""``ecloud-registry``: run the registry and administer its storage.

Examples:
  ecloud-registry serve --host 127.0.0.1 --port 5000
  ecloud-registry migrate
  ecloud-registry gc --dry-run
  ecloud-registry events deliver
"""

from __future__ import annotations

import asyncio

import typer

from services.registry.metadata.migrations import MIGRATION_LOCK, MIGRATIONS
from services.registry.settings import RegistrySettings, SettingsError
from shared.database import migrate_database
from shared.dbcheck import DatabaseMissing, DatabasePlace, open_existing
from shared.logsetup import configure_logging
from shared.metrics import prepare_multiprocess_dir
from shared.private_files import private_umask

__all__ = ["app", "main"]

app = typer.Typer(
    help=__doc__, no_args_is_help=True, add_completion=True, pretty_exceptions_enable=False
)


def _place(settings: RegistrySettings) -> DatabasePlace:
    return DatabasePlace(
        settings.database_url,
        settings.data_dir,
        "ECLOUD_REGISTRY_DATABASE_URL",
        "ecloud-registry migrate",
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
    workers: int | None = typer.Option(
        None, "--workers", min=1, help="Worker processes (default ECLOUD_WORKERS, 1)."
    ),
) -> None:
    """Run the registry (OCI Distribution API under /v2/, dashboard API under /api/)."""
    import uvicorn

    from services.registry.app import create_app
    from shared.coalesce import protocol_class

    settings = _settings()
    log_config = configure_logging(settings.log_level, settings.log_format, "registry")
    try:
        application = create_app(settings)
    except ValueError as exc:  # an unusable storage URL or storage settings
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    count = workers or settings.workers
    # Several workers build their own app from the environment (a factory by
    # import path); the one built above has checked the settings and made the
    # files they share (e.g. a generated signing key) before they start, and
    # migrations run here once, before any of them.
    asyncio.run(migrate_database(settings.database_url, MIGRATIONS, MIGRATION_LOCK))
    with prepare_multiprocess_dir(count):
        uvicorn.run(
            application if count == 1 else "services.registry.app:create_app",
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


@app.command()
def gc(
    dry_run: bool = typer.Option(False, "--dry-run", help="Report what would go; change nothing."),
    grace: int | None = typer.Option(
        None,
        "--grace",
        min=0,
        help="Override every age protection: links, blobs and files younger than this"
        " stay, and everything queued for review (deleted tags' manifests, untagged"
        " manifests, deleted links' blobs) is due once queued this long ago."
        " 0 collects all unreferenced content now. Default: ECLOUD_GC_GRACE for"
        " links, blobs and files, and each queued item's own review time.",
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

    from services.registry.events.model import Actor, Origin
    from services.registry.events.recorder import EventRecorder
    from services.registry.gc import Collector, Deletion, GCPolicy, LeaseBusy
    from services.registry.storage import open_storage

    settings = _settings()

    def show(deletion: Deletion, dry: bool) -> None:
        verb = "would delete" if dry else "deleted"
        typer.echo(f"{verb} {deletion.kind} {deletion.label} ({deletion.size} bytes)")

    async def run() -> None:
        # The database first: run from the wrong folder, the command must say
        # so rather than create an empty registry and sweep nothing.
        db = await open_existing(_place(settings))
        try:
            try:
                storage = open_storage(settings.storage_url, settings.s3)
            except ValueError as exc:
                raise DatabaseMissing(str(exc)) from exc
            await db.migrate(MIGRATIONS, MIGRATION_LOCK)
            # The crash hook lives here only: `serve` never reads it.
            policy = dataclasses.replace(
                GCPolicy.from_settings(settings, grace), crash_after=test_crash_after
            )
            collector = Collector(
                db,
                storage,
                policy,
                on_delete=show,
                # The registry's dispatchers deliver these when they next poll.
                events=lambda: EventRecorder(Origin(actor=Actor(kind="system", name="gc"))),
            )
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
    except DatabaseMissing as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    except LeaseBusy as exc:
        typer.echo(f"error: {exc}; try again later", err=True)
        raise typer.Exit(2) from exc


events_app = typer.Typer(
    help="""The event outbox (see the README's "Events" section).

Examples:

  ecloud-registry events deliver
""",
    no_args_is_help=True,
)
app.add_typer(events_app, name="events")


@events_app.command("deliver")
def events_deliver() -> None:
    """Deliver the events due now, once, and exit (safe while registries run).

    Useful when ECLOUD_EVENTS_DISPATCH is off, or to drain the outbox by hand.
    Exits 0 when nothing is left pending, 3 when some events wait for a retry.
    """
    from services.registry.context import RegistryMetrics
    from services.registry.events.dispatcher import Dispatcher
    from services.registry.events.http_sender import WebhookSender
    from services.registry.events.secretbox import SecretBox
    from services.registry.metadata.outbox import pending_count

    settings = _settings()
    configure_logging(settings.log_level, settings.log_format, "registry")

    async def run() -> tuple[int, int]:
        db = await open_existing(_place(settings))
        sender = WebhookSender(settings.events.webhook_timeout, settings.events.allow_private)
        dispatcher = Dispatcher(
            db,
            settings.events,
            RegistryMetrics.create(),
            SecretBox(settings.events.key_file),
            sender,
        )
        try:
            await db.migrate(MIGRATIONS, MIGRATION_LOCK)
            handled = await dispatcher.run_once()
            return handled, await pending_count(db)
        finally:
            await dispatcher.close()
            await sender.aclose()
            await db.disconnect()

    try:
        handled, pending = asyncio.run(run())
    except DatabaseMissing as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"worked on {handled} events; {pending} pending")
    if pending:
        raise typer.Exit(3)


def main() -> None:
    # Data files 0600, folders 0700, whatever creates them (SQLite, blobs, keys).
    private_umask()
    app()
