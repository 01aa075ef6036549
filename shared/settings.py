"""Reading ``ECLOUD_*`` environment values: the parsing both services' settings share."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["SettingsError", "env_choice", "env_int", "env_list"]


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
