"""The CLI's config file: ``$XDG_CONFIG_HOME/ec/config.json`` (or ``~/.config/ec/``).

It holds credentials (the login session, its refresh token, and what docker
stores through ``docker-credential-ec``), so the directory is 0700 and the
file 0600, written atomically (a reader never sees half a file, and a crash
never leaves one). Changes go through `update_config`, which holds a lock
while it reads, changes and writes, so ``ec`` refreshing its session and
docker calling the credential helper at the same moment lose nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cli.errors import CliError

__all__ = ["Config", "DockerCredential", "config_path", "load_config", "update_config"]

_STRINGS = ("token", "username", "auth_url", "registry_url", "refresh_token", "refresh_expires_at")


@dataclass(frozen=True, slots=True)
class DockerCredential:
    """What ``docker login`` handed to ``docker-credential-ec store`` for one registry."""

    username: str
    secret: str


@dataclass(slots=True)
class Config:
    token: str | None = None
    username: str | None = None
    auth_url: str | None = None
    registry_url: str | None = None
    refresh_token: str | None = None
    refresh_expires_at: str | None = None  # ISO 8601
    docker: dict[str, DockerCredential] = field(default_factory=dict)

    def forget_login(self) -> None:
        self.token = self.refresh_token = self.refresh_expires_at = None


def config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    xdg = env.get("XDG_CONFIG_HOME")
    base = Path(xdg) if xdg else Path(env.get("HOME") or Path.home()) / ".config"
    return base / "ec" / "config.json"


def _parse(path: Path, text: str) -> Config:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"{path} is not valid JSON ({exc.msg}); fix or delete it") from exc
    if not isinstance(data, dict):
        raise CliError(f"{path} must hold a JSON object; fix or delete it")
    config = Config()
    for name in _STRINGS:
        if isinstance(data.get(name), str):
            setattr(config, name, data[name])
    docker = data.get("docker")
    if isinstance(docker, dict):
        for host, entry in docker.items():
            if (
                isinstance(entry, dict)
                and isinstance(entry.get("username"), str)
                and isinstance(entry.get("secret"), str)
            ):
                config.docker[host] = DockerCredential(entry["username"], entry["secret"])
    return config


def load_config(path: Path, *, warn: bool = True) -> Config:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Config()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from exc
    if warn and os.name == "posix" and path.stat().st_mode & 0o077:
        print(
            f"warning: {path} is readable by other users; run `chmod 600 {path}`",
            file=sys.stderr,
        )
    return _parse(path, text)


def _serialize(config: Config) -> dict[str, Any]:
    data: dict[str, Any] = {
        name: getattr(config, name) for name in _STRINGS if getattr(config, name) is not None
    }
    if config.docker:
        data["docker"] = {
            host: {"username": c.username, "secret": c.secret}
            for host, c in sorted(config.docker.items())
        }
    return data


def _prepare_folder(folder: Path) -> None:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, stat.S_IRWXU)


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    with open(folder / ".config.lock", "a", encoding="utf-8") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _write(path: Path, config: Config) -> None:
    fd, temp = tempfile.mkstemp(prefix=".config-", dir=path.parent)  # created 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(_serialize(config), handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, stat.S_IRUSR | stat.S_IWUSR)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def update_config(path: Path, change: Callable[[Config], None]) -> Config:
    """Apply `change` to the file's current content under a lock; return what was written."""
    try:
        _prepare_folder(path.parent)
        with _locked(path.parent):
            config = load_config(path, warn=False)
            change(config)
            _write(path, config)
            return config
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror}") from exc
