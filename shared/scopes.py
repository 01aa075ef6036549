"""The scope model: OCI token scopes, service-account scopes, and granting.

OCI scope (Docker token spec): ``repository:<name>:<actions>`` with actions
``pull``, ``push``, ``delete`` or ``*``; and ``registry:catalog:*``. A request
may carry several scopes, in several parameters or space-separated in one.

Service-account scope: ``storage.<user-id>.registry=<actions>`` (all of the
user's repositories) or ``storage.<user-id>.registry.<repository>=<actions>``
(one). Actions come in two vocabularies: ``read``/``create``/``update``/
``delete`` and ``pull``/``push``/``delete``. ``me`` stands for the caller.

Granted = requested ∩ ownership ∩ service-account scopes. Fewer rights than
asked is not an error; malformed scopes grant nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from shared.names import is_valid_name, namespace_of

__all__ = [
    "CATALOG",
    "REPOSITORY_ACTIONS",
    "SA_ACTION_MAP",
    "SaScope",
    "Scope",
    "ScopeError",
    "format_scopes",
    "grant",
    "merge_scopes",
    "parse_sa_scope",
    "parse_scope",
    "parse_scopes",
]

# Canonical order, used when formatting.
REPOSITORY_ACTIONS: tuple[str, ...] = ("pull", "push", "delete")
CATALOG = ("registry", "catalog")

SA_ACTION_MAP: dict[str, str] = {
    "read": "pull",
    "create": "push",
    "update": "push",
    "delete": "delete",
    "pull": "pull",
    "push": "push",
}


class ScopeError(ValueError):
    """A scope string that does not follow the grammar."""


def _ordered(actions: Iterable[str]) -> tuple[str, ...]:
    present = set(actions)
    known = [a for a in REPOSITORY_ACTIONS if a in present]
    return tuple(known + sorted(present - set(REPOSITORY_ACTIONS)))


@dataclass(frozen=True, slots=True)
class Scope:
    """One resource and the actions on it, as carried in a token's ``access`` claim."""

    type: str
    name: str
    actions: frozenset[str]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(_ordered(self.actions))}"

    @property
    def is_catalog(self) -> bool:
        return (self.type, self.name) == CATALOG

    def to_claim(self) -> dict[str, object]:
        return {"type": self.type, "name": self.name, "actions": list(_ordered(self.actions))}

    @classmethod
    def from_claim(cls, entry: object) -> Scope:
        if not isinstance(entry, dict):
            raise ScopeError("access entry is not an object")
        type_, name, actions = entry.get("type"), entry.get("name"), entry.get("actions")
        if not isinstance(type_, str) or not isinstance(name, str) or not isinstance(actions, list):
            raise ScopeError("access entry lacks type, name or actions")
        if not all(isinstance(a, str) for a in actions):
            raise ScopeError("access entry actions must be strings")
        return cls(type_, name, frozenset(actions))


def parse_scope(value: str) -> Scope:
    """Parse one ``type:name:actions`` scope.

    The name may itself hold ``:`` (a host with a port), so the type ends at the
    first colon and the actions start after the last one. ``repository(plugin)``
    style resource classes are reduced to their type.
    """
    first, last = value.find(":"), value.rfind(":")
    if first <= 0 or last == first:
        raise ScopeError(f"malformed scope {value[:200]!r}")
    type_, name, actions_text = value[:first], value[first + 1 : last], value[last + 1 :]
    if "(" in type_:
        if not type_.endswith(")"):
            raise ScopeError(f"malformed resource type in {value[:200]!r}")
        type_ = type_[: type_.index("(")]
    actions = {a.strip() for a in actions_text.split(",") if a.strip()}
    if type_ == "repository":
        if not is_valid_name(name):
            raise ScopeError(f"invalid repository name in scope {value[:200]!r}")
        if "*" in actions:
            actions = set(REPOSITORY_ACTIONS)
        actions &= set(REPOSITORY_ACTIONS)
    elif (type_, name) == CATALOG:
        actions &= {"*"}
    else:
        raise ScopeError(f"unknown resource type {type_[:50]!r}")
    if not actions:
        raise ScopeError(f"no known action in scope {value[:200]!r}")
    return Scope(type_, name, frozenset(actions))


def parse_scopes(values: Iterable[str]) -> tuple[list[Scope], list[str]]:
    """Parse every scope in `values`, each of which may hold several space-separated scopes.

    Returns the merged valid scopes and the malformed strings (which grant nothing).
    """
    scopes: list[Scope] = []
    rejected: list[str] = []
    for value in values:
        for item in value.split():
            try:
                scopes.append(parse_scope(item))
            except ScopeError:
                rejected.append(item)
    return merge_scopes(scopes), rejected


def merge_scopes(scopes: Iterable[Scope]) -> list[Scope]:
    """Union the actions of scopes naming the same resource, keeping first-seen order."""
    merged: dict[tuple[str, str], set[str]] = {}
    for scope in scopes:
        merged.setdefault((scope.type, scope.name), set()).update(scope.actions)
    return [Scope(t, n, frozenset(a)) for (t, n), a in merged.items() if a]


def format_scopes(scopes: Iterable[Scope]) -> str:
    return " ".join(str(s) for s in scopes)


@dataclass(frozen=True, slots=True)
class SaScope:
    """A service-account scope with its actions already mapped to OCI actions."""

    user_id: str
    repository: str | None
    actions: frozenset[str]

    def __str__(self) -> str:
        target = "registry" if self.repository is None else f"registry.{self.repository}"
        return f"storage.{self.user_id}.{target}={','.join(_ordered(self.actions))}"

    def covers(self, repository: str) -> bool:
        return self.repository is None or self.repository == repository


def parse_sa_scope(value: str, *, me: str | None = None) -> SaScope:
    """Parse ``storage.<user-id>.registry[.<repository>]=<actions>``.

    ``me`` as the user id is replaced by `me` when given; otherwise it is an error.
    """
    target, sep, actions_text = value.strip().partition("=")
    if not sep:
        raise ScopeError(f"scope {value[:200]!r} lacks '=<actions>'")
    parts = target.split(".", 3)
    if len(parts) < 3 or parts[0] != "storage" or parts[2] != "registry" or not parts[1]:
        raise ScopeError(
            f"scope {value[:200]!r} is not storage.<user-id>.registry[.<repository>]=<actions>"
        )
    user_id = parts[1]
    if user_id == "me":
        if me is None:
            raise ScopeError("'me' cannot be resolved here")
        user_id = me
    repository = parts[3] if len(parts) == 4 else None
    if repository is not None and not is_valid_name(repository):
        raise ScopeError(f"invalid repository name {repository[:200]!r} in scope")
    words = [a.strip() for a in actions_text.split(",") if a.strip()]
    if not words:
        raise ScopeError(f"scope {value[:200]!r} names no action")
    unknown = [w for w in words if w not in SA_ACTION_MAP]
    if unknown:
        raise ScopeError(
            f"unknown action {unknown[0][:50]!r}; use read, create, update, delete, pull or push"
        )
    return SaScope(user_id, repository, frozenset(SA_ACTION_MAP[w] for w in words))


def grant(
    requested: Iterable[Scope],
    *,
    user_id: str,
    username: str,
    sa_scopes: Iterable[SaScope] | None = None,
) -> list[Scope]:
    """What a caller receives: requested ∩ ownership ∩ service-account scopes.

    Ownership: a repository belongs to the user whose username is its namespace;
    a name without a namespace belongs to nobody. The catalog is granted to any
    authenticated caller (the registry lists only the caller's own repositories),
    and to a service account only when one of its scopes covers every repository.
    """
    sa_list = None if sa_scopes is None else [s for s in sa_scopes if s.user_id == user_id]
    granted: list[Scope] = []
    for scope in requested:
        if scope.is_catalog:
            if sa_list is None or any(s.repository is None and s.actions for s in sa_list):
                granted.append(scope)
            continue
        if scope.type != "repository" or namespace_of(scope.name) != username:
            continue
        actions = set(scope.actions)
        if sa_list is not None:
            allowed: set[str] = set()
            for sa in sa_list:
                if sa.covers(scope.name):
                    allowed |= sa.actions
            actions &= allowed
        if actions:
            granted.append(Scope(scope.type, scope.name, frozenset(actions)))
    return granted
