"""``GET /v2/_catalog``: only the caller's repositories, paged, never anonymous."""

from __future__ import annotations

import httpx

from tests.conftest import Stack
from tests.registry.manifest_helpers import OCI_INDEX, Repo, empty_index, error_code


def make_repos(stack: Stack, user: str, paths: list[str]) -> list[str]:
    names = []
    for path in paths:
        repo = Repo.create(stack, user, path)
        assert repo.put_manifest("v1", empty_index(), OCI_INDEX).status_code == 201
        names.append(repo.name)
    return names


def catalog(stack: Stack, token: str, **params: object) -> httpx.Response:
    return httpx.get(
        stack.registry_url + "/v2/_catalog",
        params=params,  # type: ignore[arg-type]
        headers={"Authorization": f"Bearer {token}"},
    )


def test_lists_only_the_callers_repositories(rstack: Stack) -> None:
    alice, _ = rstack.create_user()
    bob, _ = rstack.create_user()
    mine = make_repos(rstack, alice, ["web", "api", "tools/cli", "a-b", "a.b"])
    theirs = make_repos(rstack, bob, ["web"])
    r = catalog(rstack, rstack.token(alice, "registry:catalog:*"))
    assert r.status_code == 200
    assert r.json() == {"repositories": sorted(mine)}
    r = catalog(rstack, rstack.token(bob, "registry:catalog:*"))
    assert r.json() == {"repositories": theirs}
    # A session token and a plain registry token list the owner's repositories too.
    r = catalog(rstack, rstack.session(alice))
    assert r.json() == {"repositories": sorted(mine)}
    r = catalog(rstack, rstack.token(alice, f"repository:{mine[0]}:pull"))
    assert r.json() == {"repositories": sorted(mine)}


def test_pagination(rstack: Stack) -> None:
    user, _ = rstack.create_user()
    names = sorted(make_repos(rstack, user, ["r1", "r2", "r3", "r4", "r5"]))
    token = rstack.token(user, "registry:catalog:*")
    r = catalog(rstack, token, n=2)
    assert r.json()["repositories"] == names[:2]
    assert (
        r.headers["link"] == f'</v2/_catalog?n=2&last={names[1].replace("/", "%2F")}>; rel="next"'
    )
    seen: list[str] = []
    url = rstack.registry_url + "/v2/_catalog?n=2"
    while True:
        r = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
        seen += r.json()["repositories"]
        if "link" not in r.headers:
            break
        link = r.headers["link"]
        url = rstack.registry_url + link[1 : link.index(">")]
    assert seen == names
    r = catalog(rstack, token, n=2, last=names[3])
    assert r.json()["repositories"] == names[4:] and "link" not in r.headers
    r = catalog(rstack, token, n=0)
    assert r.status_code == 200 and r.json() == {"repositories": []}
    r = catalog(rstack, token, n="x")
    assert r.status_code == 400 and error_code(r) == "PAGINATION_NUMBER_INVALID"


def test_requires_a_token(rstack: Stack) -> None:
    r = httpx.get(rstack.registry_url + "/v2/_catalog")
    assert r.status_code == 401 and error_code(r) == "UNAUTHORIZED"
    assert r.headers["www-authenticate"].startswith("Bearer realm=")
    r = httpx.get(rstack.registry_url + "/v2/_catalog", headers={"Authorization": "Bearer junk"})
    assert r.status_code == 401


def test_user_without_repositories_gets_an_empty_list(rstack: Stack) -> None:
    user, _ = rstack.create_user()
    r = catalog(rstack, rstack.token(user, "registry:catalog:*"))
    assert r.status_code == 200 and r.json() == {"repositories": []}


def service_account_token(stack: Stack, user: str, scopes: list[str]) -> str:
    """A registry token as the auth service issues it for a service account.

    Signed with the stack's own signing key, so the real registry verifies it
    exactly like one from the token endpoint.
    """
    import jwt

    from shared.keys import load_signing_key
    from shared.scopes import parse_scopes
    from shared.tokens import TokenIssuer

    subject = jwt.decode(stack.token(user), options={"verify_signature": False})["sub"]
    key = load_signing_key((stack.root / "data" / "signing-key.pem").read_bytes())
    access, rejected = parse_scopes(scopes)
    assert not rejected
    token, _ = TokenIssuer(key, "ecloud-auth").issue_registry_token(
        subject=subject,
        audience="registry",
        access=access,
        ttl_seconds=300,
        service_account="sa_test",
    )
    return token


def test_service_account_without_catalog_grant_sees_only_its_repositories(
    rstack: Stack,
) -> None:
    user, _ = rstack.create_user()
    names = sorted(make_repos(rstack, user, ["one", "two", "three"]))
    narrow = service_account_token(rstack, user, [f"repository:{names[1]}:pull"])
    r = catalog(rstack, narrow)
    assert r.status_code == 200 and r.json() == {"repositories": [names[1]]}
    # Naming another user's repository in the claim reveals nothing.
    other, _ = rstack.create_user()
    foreign = make_repos(rstack, other, ["secret"])
    sneaky = service_account_token(rstack, user, [f"repository:{foreign[0]}:pull"])
    assert catalog(rstack, sneaky).json() == {"repositories": []}
    wide = service_account_token(rstack, user, ["registry:catalog:*"])
    assert catalog(rstack, wide).json() == {"repositories": names}
