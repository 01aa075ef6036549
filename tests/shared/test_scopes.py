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
    # A repository scope covers that one name: not those sorting before it either.
    assert not one.covers("alice/app") and not one.covers("alice/my")
    # Only the word "me" stands for the caller: ids sorting before it are ids.
    for user_id in ("m", "alice_id", "usr_1"):
        explicit = parse_sa_scope(f"storage.{user_id}.registry=read", me="usr_caller")
        assert explicit.user_id == user_id
        assert parse_sa_scope(f"storage.{user_id}.registry=read").user_id == user_id


@pytest.mark.parametrize(
    "bad",
    [
        "storage.me.registry",
        "storage.me.registry=",
        "storage.me.registry=fly",
        "storage..registry=read",
        "storage.me.compute=read",
        "storage.me.volumes=read",
        "blob.me.registry=read",
        "vault.me.registry=read",
        "storage.me.registry.Bad/Name=read",
    ],
)
def test_bad_sa_scopes(bad: str) -> None:
    with pytest.raises(ScopeError):
        parse_sa_scope(bad, me="usr_1")


def test_me_needs_a_caller() -> None:
    with pytest.raises(ScopeError):
        parse_sa_scope("storage.me.registry=read")


def test_access_claims_round_trip_and_malformed_entries_are_refused() -> None:
    for s in (scope("alice/app", "pull", "push"), Scope("registry", "catalog", frozenset("*"))):
        assert Scope.from_claim(s.to_claim()) == s
    assert Scope.from_claim({"type": "repository", "name": "a/b", "actions": []}).actions == set()
    good = {"type": "repository", "name": "alice/app", "actions": ["pull"]}
    for bad in (
        None,
        ["repository", "alice/app", ["pull"]],
        "repository:alice/app:pull",
        {**good, "type": 1},
        {**good, "name": None},
        {**good, "actions": "pull"},
        {**good, "actions": ["pull", 7]},
        {"name": "alice/app", "actions": ["pull"]},
    ):
        with pytest.raises(ScopeError):
            Scope.from_claim(bad)


def test_service_account_scopes_match_the_user_id_by_value() -> None:
    # Ids built at run time (as parsed from requests and tokens), never the same object.
    user_id = "".join(["usr_", "dyn"])
    sa = parse_sa_scope("storage." + "usr_dyn" + ".registry=read")
    assert sa.user_id == user_id and sa.user_id is not user_id
    requested = [scope("alice/app", "pull", "push"), Scope("registry", "catalog", frozenset("*"))]
    granted = grant(requested, user_id=user_id, username="alice", sa_scopes=[sa])
    assert granted == [scope("alice/app", "pull"), requested[1]]
    assert grant(requested, user_id="usr_other", username="alice", sa_scopes=[sa]) == []
    # Only the very same id: not one sorting before or after it.
    for other in ("usr_a", "usr_zzz"):
        assert grant(requested, user_id=other, username="alice", sa_scopes=[sa]) == []


def test_only_the_catalog_is_a_registry_resource() -> None:
    # Names and types sorting before and after "registry:catalog" alike.
    for bad in (
        "teleport:alice/app:*",
        "helm:alice/app:*",
        "registry:other:*",
        "registry:base:*",
        "registry:catalog2:*",
    ):
        with pytest.raises(ScopeError):
            parse_scope(bad)


def test_grant_ignores_resource_types_it_does_not_know() -> None:
    for type_ in ("zzz", "aaa", "repositorz"):
        odd = Scope(type_, "alice/app", frozenset({"pull"}))
        assert grant([odd], user_id="usr_a", username="alice") == []


def test_scopes_are_immutable() -> None:
    import dataclasses

    s = scope("alice/app", "pull")
    sa = parse_sa_scope("storage.usr_a.registry.alice/app=read", me=None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.actions = frozenset({"pull", "push", "delete"})  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        sa.repository = None  # type: ignore[misc]


def test_catalog_request_does_not_stop_the_grant_of_what_follows() -> None:
    catalog = Scope("registry", "catalog", frozenset("*"))
    requested = [catalog, scope("alice/app", "pull")]
    assert grant(requested, user_id="usr_a", username="alice") == requested


@pytest.mark.parametrize("bad", ["storage.usr_a=read", "storage=read", "storage.usr_a"])
def test_short_sa_scopes_are_scope_errors(bad: str) -> None:
    with pytest.raises(ScopeError):
        parse_sa_scope(bad)


LONG = "x" * 300


@pytest.mark.parametrize(
    ("bad", "shown"),
    [
        (LONG, LONG[:200]),
        ("repository(" + LONG + ":alice/app:pull", ("repository(" + LONG)[:200]),
        ("repository:" + LONG.upper() + ":pull", ("repository:" + LONG.upper())[:200]),
        ("repository:alice/app:" + "z" * 300, ("repository:alice/app:" + "z" * 300)[:200]),
        (LONG + ":alice/app:pull", LONG[:50]),
    ],
)
def test_scope_errors_show_a_bounded_prefix_of_the_input(bad: str, shown: str) -> None:
    with pytest.raises(ScopeError) as err:
        parse_scope(bad)
    assert repr(shown) in str(err.value)


@pytest.mark.parametrize(
    ("bad", "shown"),
    [
        (LONG, LONG[:200]),
        ("storage.usr_a.nope" + LONG + "=read", ("storage.usr_a.nope" + LONG + "=read")[:200]),
        ("storage.usr_a.registry." + LONG.upper() + "=read", LONG.upper()[:200]),
        ("storage.usr_a.registry=" + "," * 300, ("storage.usr_a.registry=" + "," * 300)[:200]),
        ("storage.usr_a.registry=" + "fly" * 30, ("fly" * 30)[:50]),
    ],
)
def test_sa_scope_errors_show_a_bounded_prefix_of_the_input(bad: str, shown: str) -> None:
    with pytest.raises(ScopeError) as err:
        parse_sa_scope(bad)
    assert repr(shown) in str(err.value)


def test_an_unknown_sa_action_is_named_first_come() -> None:
    with pytest.raises(ScopeError, match="unknown action 'fly'"):
        parse_sa_scope("storage.me.registry=read,fly,swim", me="usr_1")
