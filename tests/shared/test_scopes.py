"""The scope grammar, service-account scopes and granting."""

from __future__ import annotations

import pytest

from shared.scopes import (
    SaScope,
    Scope,
    ScopeError,
    format_scopes,
    grant,
    parse_sa_scope,
    parse_scope,
    parse_scopes,
)


def scope(name: str, *actions: str) -> Scope:
    return Scope("repository", name, frozenset(actions))


def test_parse_repository_scope_with_path_dots_dashes() -> None:
    s = parse_scope("repository:alice/my.app_x/sub-dir:pull,push")
    assert s == scope("alice/my.app_x/sub-dir", "pull", "push")
    assert str(s) == "repository:alice/my.app_x/sub-dir:pull,push"


def test_star_means_every_repository_action() -> None:
    assert parse_scope("repository:alice/app:*").actions == {"pull", "push", "delete"}


def test_catalog_scope() -> None:
    s = parse_scope("registry:catalog:*")
    assert s.is_catalog and s.actions == {"*"}


def test_resource_class_is_reduced() -> None:
    assert parse_scope("repository(plugin):alice/app:pull") == scope("alice/app", "pull")


def test_unknown_actions_are_dropped_and_none_left_is_an_error() -> None:
    assert parse_scope("repository:alice/app:pull,fly").actions == {"pull"}
    with pytest.raises(ScopeError):
        parse_scope("repository:alice/app:fly")


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "repository",
        "repository:alice/app",
        ":alice/app:pull",
        "repository::pull",
        "repository:Alice/App:pull",
        "repository:alice/../etc:pull",
        "repository:" + "a" * 256 + ":pull",
        "teleport:alice/app:pull",
        "registry:catalog:pull",
        "repository(x:alice/app:pull",
    ],
)
def test_malformed_scopes_are_errors(bad: str) -> None:
    with pytest.raises(ScopeError):
        parse_scope(bad)


def test_several_scopes_in_params_and_space_separated_values_merge() -> None:
    scopes, rejected = parse_scopes(
        [
            "repository:alice/a:pull repository:alice/b:pull",
            "repository:alice/a:push",
            "registry:catalog:*",
            "garbage",
        ]
    )
    assert scopes == [
        scope("alice/a", "pull", "push"),
        scope("alice/b", "pull"),
        Scope("registry", "catalog", frozenset({"*"})),
    ]
    assert rejected == ["garbage"]
    assert format_scopes(scopes).split() == [
        "repository:alice/a:pull,push",
        "repository:alice/b:pull",
        "registry:catalog:*",
    ]


def test_owner_gets_what_was_asked_others_nothing() -> None:
    requested = [
        scope("alice/app", "pull", "push", "delete"),
        scope("bob/app", "pull"),
        scope("alicex/app", "pull"),
        scope("alice", "pull"),
    ]
    got = grant(requested, user_id="usr_a", username="alice")
    assert got == [scope("alice/app", "pull", "push", "delete")]
    assert grant(requested, user_id="usr_b", username="bob") == [scope("bob/app", "pull")]


def test_catalog_granted_to_users_and_to_all_repository_service_accounts_only() -> None:
    catalog = Scope("registry", "catalog", frozenset({"*"}))
    assert grant([catalog], user_id="u", username="alice") == [catalog]
    one_repo = [SaScope("u", "alice/app", frozenset({"pull"}))]
    assert grant([catalog], user_id="u", username="alice", sa_scopes=one_repo) == []
    all_repos = [SaScope("u", None, frozenset({"pull"}))]
    assert grant([catalog], user_id="u", username="alice", sa_scopes=all_repos) == [catalog]


def test_service_account_scopes_intersect() -> None:
    requested = [scope("alice/app", "pull", "push", "delete"), scope("alice/other", "pull")]
    sa = [SaScope("u", "alice/app", frozenset({"pull", "push"}))]
    assert grant(requested, user_id="u", username="alice", sa_scopes=sa) == [
        scope("alice/app", "pull", "push")
    ]
    # A scope recorded for another user id never grants anything.
    foreign = [SaScope("other", None, frozenset({"pull"}))]
    assert grant(requested, user_id="u", username="alice", sa_scopes=foreign) == []


def test_parse_sa_scope_both_vocabularies_and_me() -> None:
    s = parse_sa_scope("storage.me.registry=read,create,delete", me="usr_1")
    assert s == SaScope("usr_1", None, frozenset({"pull", "push", "delete"}))
    assert str(s) == "storage.usr_1.registry=pull,push,delete"
    one = parse_sa_scope("storage.usr_1.registry.alice/my.app=pull,update")
    assert one == SaScope("usr_1", "alice/my.app", frozenset({"pull", "push"}))
    assert one.covers("alice/my.app") and not one.covers("alice/other")


@pytest.mark.parametrize(
    "bad",
    [
        "storage.me.registry",
        "storage.me.registry=",
        "storage.me.registry=fly",
        "storage..registry=read",
        "storage.me.compute=read",
        "blob.me.registry=read",
        "storage.me.registry.Bad/Name=read",
    ],
)
def test_bad_sa_scopes(bad: str) -> None:
    with pytest.raises(ScopeError):
        parse_sa_scope(bad, me="usr_1")


def test_me_needs_a_caller() -> None:
    with pytest.raises(ScopeError):
        parse_sa_scope("storage.me.registry=read")
