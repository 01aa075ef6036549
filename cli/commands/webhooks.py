"""``ec storage registry webhooks ls|create|rm|test|deliveries``: your registry's webhooks.

A webhook receives a signed HTTP POST for every event of your repositories
(pushes, tag and manifest deletions, repositories created or emptied), as
CloudEvents 1.0 JSON or in distribution's notification format. Managing
webhooks needs a login session (``ec auth login``), not a service-account
token.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from cli.commands.common import registry_service, segment, state_of
from cli.errors import CliError, ExitCode
from cli.output import (
    Column,
    JsonFlag,
    QuietFlag,
    YesFlag,
    confirm,
    emit_done,
    emit_json,
    emit_rows,
    emit_secret,
    mode_of,
)

__all__ = ["app"]

app = typer.Typer(
    help="""Webhooks: your registry events, POSTed and signed to an endpoint of yours.

Examples:

  ec storage registry webhooks create --url https://ci.example.com/hooks/registry

  ec storage registry webhooks create --url https://deploy.example.com/ --format distribution

  ec storage registry webhooks ls

  ec storage registry webhooks test wh_0123456789abcdef01234567

  ec storage registry webhooks rm wh_0123456789abcdef01234567
""",
    no_args_is_help=True,
)

IdArgument = Annotated[str, typer.Argument(metavar="ID", help="The webhook's id (wh_…).")]


def _call(ctx: typer.Context, method: str, path: str, **kwargs: Any) -> Any:
    state = state_of(ctx)
    return registry_service(state).json(method, path, bearer=state.need_session(), **kwargs)


def _last(hook: dict[str, Any]) -> str | None:
    last = hook.get("last_delivery")
    if not isinstance(last, dict):
        return None
    status = last.get("status_code")
    return f"{last.get('outcome')} ({status})" if status else str(last.get("outcome"))


@app.command("ls")
def list_webhooks(ctx: typer.Context, as_json: JsonFlag = False, quiet: QuietFlag = False) -> None:
    """List your webhooks with their last delivery.

    Examples:

      ec storage registry webhooks ls
    """
    mode = mode_of(ctx, as_json=as_json, quiet=quiet)
    body = _call(ctx, "GET", "/api/webhooks")
    hooks: list[dict[str, Any]] = body.get("webhooks", []) if body else []
    emit_rows(
        mode,
        (
            Column("ID"),
            Column("URL"),
            Column("FORMAT"),
            Column("CREATED", "time"),
            Column("LAST DELIVERY"),
        ),
        (
            (h.get("id"), h.get("url"), h.get("format"), h.get("created_at"), _last(h))
            for h in hooks
        ),
        data=hooks,
        empty="No webhooks.",
    )


@app.command()
def create(
    ctx: typer.Context,
    url: Annotated[str, typer.Option("--url", help="Where to POST events (http:// or https://).")],
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="cloudevents (CloudEvents 1.0 JSON) or distribution (distribution's envelope).",
        ),
    ] = "cloudevents",
    secret_stdin: Annotated[
        bool,
        typer.Option(
            "--secret-stdin",
            help="Read the signing secret (16 to 256 characters) from stdin instead of"
            " letting the registry generate one.",
        ),
    ] = False,
    as_json: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Create a webhook; its signing secret is shown once (-q prints only the secret).

    Every delivery carries `Ecloud-Signature: t=<unix>,v1=<hex HMAC-SHA256 of
    "<t>.<body>">`: verify it with the secret and reject old timestamps.

    Examples:

      ec storage registry webhooks create --url https://ci.example.com/hooks/registry

      ec storage registry webhooks create --url https://x.example/ --secret-stdin < secret.txt
    """
    mode = mode_of(ctx, as_json=as_json, quiet=quiet)
    if fmt not in ("cloudevents", "distribution"):
        raise CliError("--format must be cloudevents or distribution", ExitCode.USAGE)
    payload: dict[str, Any] = {"url": url, "format": fmt}
    if secret_stdin:
        secret = sys.stdin.read().strip()
        if not secret:
            raise CliError("--secret-stdin: nothing was read from stdin", ExitCode.USAGE)
        payload["secret"] = secret
    hook = _call(ctx, "POST", "/api/webhooks", json=payload)
    if not isinstance(hook, dict):
        raise CliError("the registry answered without the new webhook")
    emit_secret(
        mode,
        str(hook.get("secret")),
        hook,
        heading=f"Created webhook {hook.get('id')} for {hook.get('url')}; its signing secret:",
    )


@app.command("rm")
def remove(
    ctx: typer.Context,
    webhook_id: IdArgument,
    yes: YesFlag = False,
    as_json: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Delete a webhook (events already sent are not recalled).

    Examples:

      ec storage registry webhooks rm wh_0123456789abcdef01234567 --yes
    """
    mode = mode_of(ctx, as_json=as_json, quiet=quiet)
    confirm(f"Delete webhook {webhook_id}?", yes=yes)
    _call(ctx, "DELETE", f"/api/webhooks/{segment(webhook_id)}")
    emit_done(mode, f"Deleted webhook {webhook_id}.", {"deleted": webhook_id})


@app.command()
def test(ctx: typer.Context, webhook_id: IdArgument, as_json: JsonFlag = False) -> None:
    """Send a signed test delivery now; exits 1 when the endpoint does not accept it.

    Examples:

      ec storage registry webhooks test wh_0123456789abcdef01234567
    """
    mode = mode_of(ctx, as_json=as_json)
    result = _call(ctx, "POST", f"/api/webhooks/{segment(webhook_id)}/test")
    if not isinstance(result, dict):
        raise CliError("the registry answered without a result")
    if as_json or mode.value == "json":
        emit_json(result)
    if not result.get("delivered"):
        raise CliError(f"test delivery failed: {result.get('error') or 'not accepted'}")
    message = f"Delivered (HTTP {result.get('status_code')}, {result.get('latency_ms')} ms)."
    if mode.value != "json":
        emit_done(mode, message, result)


@app.command()
def deliveries(
    ctx: typer.Context,
    webhook_id: IdArgument,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100, help="How many.")] = 20,
    as_json: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Show a webhook's last delivery attempts, newest first.

    Examples:

      ec storage registry webhooks deliveries wh_0123456789abcdef01234567 --limit 5
    """
    mode = mode_of(ctx, as_json=as_json, quiet=quiet)
    body = _call(ctx, "GET", f"/api/webhooks/{segment(webhook_id)}/deliveries", params={"n": limit})
    found: list[dict[str, Any]] = body.get("deliveries", []) if body else []
    emit_rows(
        mode,
        (
            Column("EVENT"),
            Column("AT", "time"),
            Column("TYPE"),
            Column("ATTEMPT"),
            Column("OUTCOME"),
            Column("STATUS"),
            Column("MS"),
            Column("ERROR"),
        ),
        (
            (
                d.get("event_id"),
                d.get("at"),
                d.get("event_type"),
                d.get("attempt"),
                d.get("outcome"),
                d.get("status_code"),
                d.get("latency_ms"),
                d.get("error"),
            )
            for d in found
        ),
        data=found,
        empty="No deliveries yet.",
    )
