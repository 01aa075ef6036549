"""Reading ``ECLOUD_*`` environment values: the parsing both services' settings share."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

__all__ = [
    "DEFAULT_REGISTRY_URL",
    "SettingsError",
    "env_bool",
    "env_choice",
    "env_float",
    "env_int",
    "env_list",
    "env_url",
    "url_origin",
]

# The registry's public URL on the embedded defaults (``./scripts/run``); both
# services read ECLOUD_REGISTRY_URL.
DEFAULT_REGISTRY_URL = "http://127.0.0.1:5000"


class SettingsError(ValueError):
    """A setting with a value that cannot be used."""


def env_int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    """An integer setting; unset or empty means `default`."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from exc
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}")
    return value


def env_float(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    """A number of seconds (or any float) setting; unset or empty means `default`."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from exc
    if not value >= minimum:  # also refuses NaN
        raise SettingsError(f"{name} must be at least {minimum:g}")
    return value


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    """A yes/no setting (1/0, true/false, yes/no, on/off); unset or empty means `default`."""
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise SettingsError(f"{name} must be true or false, got {raw[:20]!r}")


def env_list(raw: str | None) -> tuple[str, ...]:
    """A comma-separated setting, blanks dropped."""
    return tuple(item.strip() for item in (raw or "").split(",") if item.strip())


def env_choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str | None:
    """One of `choices` (case-insensitive); unset or empty means None (the caller's default)."""
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return None
    if raw not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def env_url(env: Mapping[str, str], name: str, default: str) -> str:
    """An absolute http(s) URL setting without a trailing slash; unset or empty means
    `default`."""
    raw = (env.get(name) or default).strip()
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError as exc:
        raise SettingsError(f"{name} must be an http(s) URL, got {raw!r}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(f"{name} must be an http(s) URL such as {default}, got {raw!r}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise SettingsError(f"{name} must be a plain URL (no credentials, query or fragment)")
    return raw.rstrip("/")


def url_origin(url: str) -> str:
    """The origin a browser sends for pages under `url`: ``scheme://host[:port]``,
    lowercase, the scheme's default port left out."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    default = {"http": 80, "https": 443}.get(scheme)
    return f"{scheme}://{host}" if port in (None, default) else f"{scheme}://{host}:{port}"
