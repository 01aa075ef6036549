"""``ec storage registry inspect REF``: a manifest, its platforms, layers, size and referrers.

For an index (multi-platform image) each platform's manifest is fetched too,
so the size counts every platform's layers (each blob once). On a terminal
the result is a summary and tables; piped, one ``kind<TAB>values`` line per
fact (``layer``, ``platform``, ``referrer``…) for ``awk``; ``--json`` has
everything, the raw manifest included; ``-q`` prints the digest.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.commands.common import registry_service, state_of
from cli.completers import complete_references
from cli.errors import CliError, ExitCode
from cli.http import Bearer, Service
from cli.output import (
    Column,
    JsonFlag,
    Mode,
    QuietFlag,
    emit_json,
    emit_record,
    emit_rows,
    human_size,
    mode_of,
    say,
)
from cli.registry_api import (
    Manifest,
    fetch_blob_json,
    fetch_manifest,
    parse_reference,
    registry_bearer,
)

__all__ = ["inspect"]

MAX_PLATFORMS = 64  # an index with more is summarized from its descriptors only


def _descriptor(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "digest": d.get("digest"),
        "size": d.get("size"),
        "media_type": d.get("mediaType"),
    }


def _platform_name(platform: Any) -> str:
    if not isinstance(platform, dict):
        return "unknown"
    parts = [str(platform.get("os", "?")), str(platform.get("architecture", "?"))]
    if platform.get("variant"):
        parts.append(str(platform["variant"]))
    return "/".join(parts)


def _image_parts(manifest: Manifest) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    config = manifest.body.get("config")
    layers = manifest.body.get("layers") or []
    return (
        _descriptor(config) if isinstance(config, dict) else None,
        [_descriptor(layer) for layer in layers if isinstance(layer, dict)],
    )


def _blob_sizes(config: dict[str, Any] | None, layers: list[dict[str, Any]]) -> dict[str, int]:
    sizes = {}
    for blob in ([config] if config else []) + layers:
        if isinstance(blob.get("digest"), str) and isinstance(blob.get("size"), int):
            sizes[blob["digest"]] = blob["size"]
    return sizes


def _image_platform(
    registry: Service, bearer: str | Bearer, name: str, config: dict[str, Any] | None
) -> str | None:
    if not config or config.get("media_type") not in (
        "application/vnd.oci.image.config.v1+json",
        "application/vnd.docker.container.image.v1+json",
    ):
        return None  # an artifact: its config is not an image configuration
    try:
        body = fetch_blob_json(registry, bearer, name, str(config["digest"]))
    except CliError:
        return None
    return _platform_name({k: body.get(k) for k in ("os", "architecture", "variant")})


def _referrers(
    registry: Service, bearer: str | Bearer, name: str, digest: str
) -> list[dict[str, Any]]:
    try:
        body = registry.json("GET", f"/v2/{name}/referrers/{digest}", bearer=bearer)
    except CliError as exc:
        if exc.exit_code == ExitCode.NOT_FOUND:
            return []
        raise
    return [
        {**_descriptor(d), "artifact_type": d.get("artifactType")}
        for d in (body or {}).get("manifests", [])
        if isinstance(d, dict)
    ]


def describe(registry: Service, bearer: str | Bearer, name: str, target: str) -> dict[str, Any]:
    manifest = fetch_manifest(registry, bearer, name, target)
    blobs: dict[str, int] = {}
    manifests_size = manifest.size
    platforms: list[dict[str, Any]] = []
    config: dict[str, Any] | None = None
    layers: list[dict[str, Any]] = []
    if manifest.is_index:
        children = [c for c in manifest.body.get("manifests", []) if isinstance(c, dict)]
        for index, child in enumerate(children):
            entry: dict[str, Any] = {
                "platform": _platform_name(child.get("platform")),
                **_descriptor(child),
            }
            if index < MAX_PLATFORMS and isinstance(child.get("digest"), str):
                sub = fetch_manifest(registry, bearer, name, child["digest"])
                sub_config, sub_layers = _image_parts(sub)
                sub_blobs = _blob_sizes(sub_config, sub_layers)
                entry["layers"] = sub_layers
                entry["total_size"] = sub.size + sum(sub_blobs.values())
                blobs.update(sub_blobs)
                manifests_size += sub.size
            platforms.append(entry)
    else:
        config, layers = _image_parts(manifest)
        blobs = _blob_sizes(config, layers)
        platform = _image_platform(registry, bearer, name, config)
        if platform:
            platforms.append({"platform": platform, "digest": manifest.digest})
    return {
        "name": name,
        "reference": target,
        "digest": manifest.digest,
        "media_type": manifest.media_type,
        "artifact_type": manifest.body.get("artifactType"),
        "size": manifests_size + sum(blobs.values()),
        "manifest_size": manifest.size,
        "platforms": platforms,
        "config": config,
        "layers": layers,
        "subject": (manifest.body.get("subject") or {}).get("digest"),
        "referrers": _referrers(registry, bearer, name, manifest.digest),
        "manifest": manifest.body,
    }


def _plain(info: dict[str, Any]) -> None:
    for key in ("name", "reference", "digest", "media_type", "artifact_type", "size", "subject"):
        print(f"{key}\t{info.get(key) if info.get(key) is not None else ''}")
    for p in info["platforms"]:
        print(f"platform\t{p['platform']}\t{p.get('digest') or ''}\t{p.get('total_size') or ''}")
    if info["config"]:
        print(f"config\t{info['config']['digest']}\t{info['config']['size']}")
    for layer in info["layers"]:
        print(f"layer\t{layer['digest']}\t{layer['size']}\t{layer['media_type']}")
    for r in info["referrers"]:
        print(f"referrer\t{r['digest']}\t{r.get('artifact_type') or ''}\t{r['size']}")


def _table(info: dict[str, Any]) -> None:
    fields: list[tuple[str, Any]] = [
        ("Name", f"{info['name']}@{info['digest']}"),
        ("Media type", info["media_type"]),
    ]
    if info["artifact_type"]:
        fields.append(("Artifact type", info["artifact_type"]))
    if info["subject"]:
        fields.append(("Subject", info["subject"]))
    fields.append(("Size", f"{human_size(info['size'])} ({info['size']} bytes)"))
    if len(info["platforms"]) == 1 and not info["platforms"][0].get("layers"):
        fields.append(("Platform", info["platforms"][0]["platform"]))
    emit_record(Mode.TABLE, info, ident=None, fields=fields)
    if any("layers" in p for p in info["platforms"]) or len(info["platforms"]) > 1:
        say("")
        emit_rows(
            Mode.TABLE,
            (Column("PLATFORM"), Column("DIGEST"), Column("SIZE", "size")),
            ((p["platform"], p["digest"], p.get("total_size")) for p in info["platforms"]),
            data=None,
            empty="",
        )
    if info["layers"]:
        say("")
        emit_rows(
            Mode.TABLE,
            (Column("LAYER"), Column("SIZE", "size"), Column("MEDIA TYPE")),
            ((layer["digest"], layer["size"], layer["media_type"]) for layer in info["layers"]),
            data=None,
            empty="",
        )
    say("")
    emit_rows(
        Mode.TABLE,
        (Column("REFERRER"), Column("ARTIFACT TYPE"), Column("SIZE", "size")),
        ((r["digest"], r.get("artifact_type"), r["size"]) for r in info["referrers"]),
        data=None,
        empty="No referrers.",
    )


def inspect(
    ctx: typer.Context,
    reference: Annotated[
        str,
        typer.Argument(
            metavar="REFERENCE",
            help="REPOSITORY[:TAG] or REPOSITORY@DIGEST (the tag defaults to latest).",
            autocompletion=complete_references,
        ),
    ],
    as_json: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Show a manifest: digest, media type, platforms, layers, total size, referrers.

    Examples:

      ec storage registry inspect alice/app:v1

      ec storage registry inspect alice/app@sha256:4f2a...

      ec storage registry inspect alice/app:v1 | awk '$1 == "layer" {print $2}'

      ec storage registry inspect alice/app:v1 -q
    """
    mode = mode_of(ctx, as_json=as_json, quiet=quiet)
    ref = parse_reference(reference, None, default_tag="latest")
    state = state_of(ctx)
    registry = registry_service(state)
    bearer = registry_bearer(state, registry, f"repository:{ref.name}:pull")
    info = describe(registry, bearer, ref.name, ref.target)
    if mode is Mode.JSON:
        emit_json(info)
    elif mode is Mode.QUIET:
        print(info["digest"])
    elif mode is Mode.PLAIN:
        _plain(info)
    else:
        _table(info)
