"""The CLI's config file: ``$XDG_CONFIG_HOME/ec/config.json`` (or ``~/.config/ec/``).

It holds a credential, so the directory is 0700 and the file 0600, written
atomically (a reader never sees half a file, and a crash never leaves one).
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from cli.errors import CliError

__all__ = ["Config", "config_path", "load_config", "save_config"]


@dataclass(slots=True)
class Config:
    token: str | None = None
    username: str | None = None
    auth_url: str | None = None
    registry_url: str | None = None


def config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    xdg = env.get("XDG_CONFIG_HOME")
    base = Path(xdg) if xdg else Path(env.get("HOME") or Path.home()) / ".config"
    return base / "ec" / "config.json"


def load_config(path: Path) -> Config:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Config()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from exc
    if os.name == "posix" and path.stat().st_mode & 0o077:
        print(
            f"warning: {path} is readable by other users; run `chmod 600 {path}`",
            file=sys.stderr,
        )
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"{path} is not valid JSON ({exc.msg}); fix or delete it") from exc
    if not isinstance(data, dict):
        raise CliError(f"{path} must hold a JSON object; fix or delete it")
    known = {f.name for f in fields(Config)}
    values = {k: v for k, v in data.items() if k in known and isinstance(v, str)}
    return Config(**values)


def save_config(path: Path, config: Config) -> None:
    data = {k: v for k, v in asdict(config).items() if v is not None}
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(path.parent, stat.S_IRWXU)
        fd, temp = tempfile.mkstemp(prefix=".config-", dir=path.parent)  # created 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=2)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temp, stat.S_IRUSR | stat.S_IWUSR)
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror}") from exc
