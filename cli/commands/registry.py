"""``ec storage registry ls|tags|rm|inspect``: your repositories, their tags and manifests.

Listings use the registry's dashboard API; ``rm`` by digest and ``inspect``
use the OCI API. Credentials: see `cli.registry_api`.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.commands import inspect, webhooks
from cli.commands.common import registry_service, state_of
from cli.completers import complete_references, complete_repositories, complete_tags
from cli.output import (
    Column,
    JsonFlag,
    QuietFlag,
    YesFlag,
    confirm,
    emit_done,
    emit_rows,
    mode_of,
)
from cli.registry_api import check_name, parse_reference, registry_bearer

__all__ = ["app"]

app = typer.Typer(
    help="""Your repositories, tags and manifests in the registry.

Examples:

  ec storage registry ls

  ec storage registry tags alice/app

  ec storage registry inspect alice/app:v1

  ec storage registry rm alice/app:v1.0.0
""",
    no_args_is_help=True,
)
app.command("inspect")(inspect.inspect)
app.add_typer(webhooks.app, name="webhooks")


@app.command("ls")
def list_repositories(
    ctx: typer.Context, as_json: JsonFlag = False, quiet: QuietFlag = False
) -> None:
    """List your repositories with their tag count, size and last push.

    Examples:

      ec storage registry ls

      ec storage registry ls | awk '{print $1}'

      ec --json storage registry ls | jq -r '.[].name'
    """
    mode = mode_of(ctx, as_json=as_json, quiet=quiet)
    state = state_of(ctx)
    registry = registry_service(state)
    bearer = registry_bearer(state, registry, "registry:catalog:*")
    body = registry.json("GET", "/api/repos", bearer=bearer)
    repositories: list[dict[str, Any]] = body.get("repositories", []) if body else []
    emit_rows(
        mode,
        (Column("NAME"), Column("TAGS"), Column("SIZE", "size"), Column("LAST PUSHED", "time")),
        (
            (r.get("name"), r.get("tag_count"), r.get("total_size"), r.get("last_pushed"))
            for r in repositories
        ),
        data=repositories,
        empty="No repositories.",
    )


@app.command()
def tags(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Argument(
            metavar="REPOSITORY", help="e.g. alice/app", autocompletion=complete_repositories
        ),
    ],
    as_json: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """List the tags of a repository with digest, size and push date.

    Examples:

      ec storage registry tags alice/app

      ec storage registry tags alice/app -q
    """
    mode = mode_of(ctx, as_json=as_json, quiet=quiet)
    state = state_of(ctx)
    registry = registry_service(state)
    name = check_name(name)
    bearer = registry_bearer(state, registry, f"repository:{name}:pull")
    body = registry.json("GET", f"/api/repos/{name}/tags", bearer=bearer)
    tag_list: list[dict[str, Any]] = body.get("tags", []) if body else []
    emit_rows(
        mode,
        (Column("TAG"), Column("DIGEST"), Column("SIZE", "size"), Column("PUSHED", "time")),
        ((t.get("name"), t.get("digest"), t.get("size"), t.get("pushed_at")) for t in tag_list),
        data=tag_list,
        empty=f"No tags in {name}.",
    )


@app.command("rm")
def remove(
    ctx: typer.Context,
    reference: Annotated[
        str,
        typer.Argument(
            metavar="REFERENCE",
            help="REPOSITORY:TAG (e.g. alice/app:v1), REPOSITORY@DIGEST, or REPOSITORY followed"
            " by TAG or DIGEST.",
            autocompletion=complete_references,
        ),
    ],
    tag: Annotated[
        str | None,
        typer.Argument(
            metavar="[TAG|DIGEST]",
            help="The tag or digest, when not part of REFERENCE.",
            autocompletion=complete_tags,
            show_default=False,
        ),
    ] = None,
    yes: YesFlag = False,
    as_json: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Delete a tag, or a manifest by digest (with every tag pointing at it).

    Content nothing else uses is garbage-collected later.

    Examples:

      ec storage registry rm alice/app:v1.0.0

      ec storage registry rm alice/app v1.0.0 --yes

      ec storage registry rm alice/app@sha256:4f2a...
    """
    mode = mode_of(ctx, as_json=as_json, quiet=quiet)
    ref = parse_reference(reference, tag, default_tag=None)
    state = state_of(ctx)
    registry = registry_service(state)
    bearer = registry_bearer(state, registry, f"repository:{ref.name}:delete")
    if ref.digest:
        confirm(f"Delete manifest {ref} and every tag pointing at it?", yes=yes)
        registry.request("DELETE", f"/v2/{ref.name}/manifests/{ref.digest}", bearer=bearer)
    else:
        confirm(f"Delete tag {ref}?", yes=yes)
        registry.request("DELETE", f"/api/repos/{ref.name}/tags/{ref.tag}", bearer=bearer)
    emit_done(mode, f"Deleted {ref}.", {"deleted": str(ref)})
