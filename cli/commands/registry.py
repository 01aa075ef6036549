"""``ec storage registry ls|tags|rm``: your repositories through the registry's dashboard API.

With a session token the dashboard API is called directly. With a
service-account token the CLI first exchanges it, at the token endpoint the
registry's challenge names, for a registry token scoped to what the command
needs — as docker would.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer

from cli.commands import webhooks
from cli.commands.common import JsonFlag, registry_service, state_of, wants_json
from cli.errors import CliError
from cli.http import Service
from cli.output import console, emit_json, human_size, table
from cli.state import State
from shared.names import is_valid_name, is_valid_tag

__all__ = ["app"]

app = typer.Typer(
    help="""Your repositories and tags in the registry.

Examples:

  ec storage registry ls

  ec storage registry tags alice/app

  ec storage registry rm alice/app:v1.0.0
""",
    no_args_is_help=True,
)
app.add_typer(webhooks.app, name="webhooks")

_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


def _registry_bearer(state: State, registry: Service, scope: str) -> str:
    token = state.need_token()
    if not state.is_sa_token:
        return token
    probe = registry.request("GET", "/v2/", ok=(200, 401))
    challenge = dict(_CHALLENGE_PARAM.findall(probe.headers.get("www-authenticate", "")))
    realm = challenge.get("realm")
    if not realm or not realm.startswith(("http://", "https://")):
        raise CliError("the registry did not say where to get a token (no Bearer challenge)")
    body = Service("token endpoint", realm, state.timeout).json(
        "GET",
        "",
        basic=("ec", token),
        params={"service": challenge.get("service", "registry"), "scope": scope},
        unauthorized="the service-account token was refused: revoked, expired or mistyped",
    )
    if not isinstance(body, dict) or not isinstance(body.get("token"), str):
        raise CliError("the token endpoint answered without a token")
    return str(body["token"])


def _check_name(name: str) -> str:
    if not is_valid_name(name) or "/" not in name:
        raise CliError(f"{name!r} is not a repository name such as alice/app")
    return name


@app.command("ls")
def list_repositories(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """List your repositories with their tag count, size and last push.

    Examples:

      ec storage registry ls

      ec --json storage registry ls | jq -r '.[].name'
    """
    state = state_of(ctx)
    registry = registry_service(state)
    bearer = _registry_bearer(state, registry, "registry:catalog:*")
    body = registry.json("GET", "/api/repos", bearer=bearer)
    repositories: list[dict[str, Any]] = body.get("repositories", []) if body else []
    if wants_json(ctx, as_json):
        emit_json(repositories)
        return
    table(
        ("NAME", "TAGS", "SIZE", "LAST PUSHED"),
        (
            (
                r.get("name"),
                r.get("tag_count"),
                human_size(r.get("total_size")),
                r.get("last_pushed"),
            )
            for r in repositories
        ),
        empty="No repositories.",
    )


@app.command()
def tags(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="REPOSITORY", help="e.g. alice/app")],
    as_json: JsonFlag = False,
) -> None:
    """List the tags of a repository with digest, size and push date.

    Examples:

      ec storage registry tags alice/app
    """
    state = state_of(ctx)
    registry = registry_service(state)
    name = _check_name(name)
    bearer = _registry_bearer(state, registry, f"repository:{name}:pull")
    body = registry.json("GET", f"/api/repos/{name}/tags", bearer=bearer)
    tag_list: list[dict[str, Any]] = body.get("tags", []) if body else []
    if wants_json(ctx, as_json):
        emit_json(tag_list)
        return
    table(
        ("TAG", "DIGEST", "SIZE", "PUSHED"),
        (
            (t.get("name"), t.get("digest"), human_size(t.get("size")), t.get("pushed_at"))
            for t in tag_list
        ),
        empty=f"No tags in {name}.",
    )


def _split_reference(reference: str, tag: str | None) -> tuple[str, str]:
    if tag is None:
        name, sep, tag = reference.rpartition(":")
        if not sep or "/" in tag:
            raise CliError("name the tag: ec storage registry rm alice/app:v1 (or alice/app v1)")
        reference = name
    if not is_valid_tag(tag):
        raise CliError(f"{tag!r} is not a valid tag")
    return _check_name(reference), tag


@app.command("rm")
def remove(
    ctx: typer.Context,
    reference: Annotated[
        str,
        typer.Argument(
            metavar="REFERENCE",
            help="REPOSITORY:TAG, e.g. alice/app:v1.0.0, or REPOSITORY followed by TAG.",
        ),
    ],
    tag: Annotated[
        str | None, typer.Argument(metavar="TAG", help="The tag, when not given as REPOSITORY:TAG.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Delete a tag; content no other tag uses is garbage-collected later.

    Examples:

      ec storage registry rm alice/app:v1.0.0

      ec storage registry rm alice/app v1.0.0
    """
    state = state_of(ctx)
    registry = registry_service(state)
    name, tag = _split_reference(reference, tag)
    bearer = _registry_bearer(state, registry, f"repository:{name}:delete")
    registry.request("DELETE", f"/api/repos/{name}/tags/{tag}", bearer=bearer)
    if wants_json(ctx, as_json):
        emit_json({"deleted": f"{name}:{tag}"})
    else:
        console.print(f"Deleted {name}:{tag}.", highlight=False)
