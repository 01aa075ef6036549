"""``ec auth configure-docker [HOST]``: let docker take its credentials from ``ec``.

Adds ``"credHelpers": {HOST: "ec"}`` to docker's ``config.json`` (in
``$DOCKER_CONFIG``, else ``~/.docker``), so docker runs
``docker-credential-ec`` for that registry. Everything else in the file is
kept as it was; the file is replaced atomically and keeps its permissions
(0600 when it is new).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer

from cli.commands.common import state_of
from cli.errors import CliError, ExitCode
from cli.output import JsonFlag, Mode, emit_json, mode_of, notice, say

__all__ = ["HELPER_NAME", "configure_docker", "docker_config_file", "registry_host"]

HELPER_NAME = "ec"  # docker runs docker-credential-<this>


def docker_config_file() -> Path:
    folder = os.environ.get("DOCKER_CONFIG")
    return (Path(folder) if folder else Path.home() / ".docker") / "config.json"


def registry_host(value: str) -> str:
    """``host[:port]`` as docker names a registry, from a URL or a bare host."""
    value = value.strip()
    if "://" in value:
        value = urlsplit(value).netloc
    host = value.split("/", 1)[0].lower()
    if not host or any(c.isspace() for c in host) or "@" in host:
        raise CliError(
            f"{value!r} is not a registry host such as registry.example.com", ExitCode.USAGE
        )
    return host


def _read(path: Path) -> tuple[dict[str, Any], int | None]:
    try:
        text = path.read_text(encoding="utf-8")
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return {}, None
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from exc
    if not text.strip():
        return {}, mode
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"{path} is not valid JSON ({exc.msg}); fix it first") from exc
    if not isinstance(data, dict):
        raise CliError(f"{path} must hold a JSON object; fix it first")
    return data, mode


def _write(path: Path, data: dict[str, Any], mode: int | None) -> None:
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=".config-", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent="\t")  # docker's own layout
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temp, mode if mode is not None else 0o600)
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror}") from exc


def configure_docker(
    ctx: typer.Context,
    host: Annotated[
        str | None,
        typer.Argument(
            help="The registry host (default: the host of the configured registry URL).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Make docker use `ec` credentials for the registry (no `docker login` needed).

    Adds credHelpers for HOST to docker's config.json ($DOCKER_CONFIG or
    ~/.docker), keeping the rest of the file. Docker then runs
    docker-credential-ec, which hands it your ec login's refresh token.

    Examples:

      ec auth configure-docker

      ec auth configure-docker registry.example.com
    """
    mode = mode_of(ctx, as_json=as_json)
    state = state_of(ctx)
    if host is None:
        if not state.registry_url:
            raise CliError(
                "name the registry host, or configure the registry"
                " (--base DOMAIN, --registry-url URL or EC_REGISTRY_URL)",
                ExitCode.USAGE,
            )
        host = state.registry_url
    host = registry_host(host)
    path = docker_config_file()
    data, file_mode = _read(path)
    helpers = data.get("credHelpers")
    if helpers is None:
        helpers = data["credHelpers"] = {}
    if not isinstance(helpers, dict):
        raise CliError(f"{path}: credHelpers is not a JSON object; fix it first")
    changed = helpers.get(host) != HELPER_NAME
    helpers[host] = HELPER_NAME
    if changed:
        _write(path, data, file_mode)
    if mode is Mode.JSON:
        emit_json({"config": str(path), "host": host, "changed": changed})
    elif mode is not Mode.QUIET:
        say(
            f"Docker now takes its credentials for {host} from ec ({path})."
            if changed
            else f"Docker already takes its credentials for {host} from ec ({path})."
        )
    stale = data.get("auths")
    if isinstance(stale, dict) and host in stale:
        notice(
            f"note: {path} still holds a `docker login` credential for {host} under"
            f" auths; docker no longer uses it (`docker logout {host}` removes it)."
        )
    if shutil.which(f"docker-credential-{HELPER_NAME}") is None:
        notice(
            f"warning: docker-credential-{HELPER_NAME} is not on PATH; docker will not find it"
            " (install ec so that its scripts are on PATH)"
        )
