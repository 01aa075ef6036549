"""``GET /v2/_catalog``: only the caller's repositories, paged, never anonymous."""

from __future__ import annotations

import httpx

from tests.conftest import Stack
from tests.registry.manifest_helpers import OCI_INDEX, Repo, empty_index, error_code, oci_stack

__all__ = ["oci_stack"]


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


def test_lists_only_the_callers_repositories(oci_stack: Stack) -> None:
    alice, _ = oci_stack.create_user()
    bob, _ = oci_stack.create_user()
    mine = make_repos(oci_stack, alice, ["web", "api", "tools/cli", "a-b", "a.b"])
    theirs = make_repos(oci_stack, bob, ["web"])
    r = catalog(oci_stack, oci_stack.token(alice, "registry:catalog:*"))
    assert r.status_code == 200
    assert r.json() == {"repositories": sorted(mine)}
    r = catalog(oci_stack, oci_stack.token(bob, "registry:catalog:*"))
    assert r.json() == {"repositories": theirs}
    # A session token and a plain registry token list the owner's repositories too.
    r = catalog(oci_stack, oci_stack.session(alice))
    assert r.json() == {"repositories": sorted(mine)}
    r = catalog(oci_stack, oci_stack.token(alice, f"repository:{mine[0]}:pull"))
    assert r.json() == {"repositories": sorted(mine)}


def test_pagination(oci_stack: Stack) -> None:
    user, _ = oci_stack.create_user()
    names = sorted(make_repos(oci_stack, user, ["r1", "r2", "r3", "r4", "r5"]))
    token = oci_stack.token(user, "registry:catalog:*")
    r = catalog(oci_stack, token, n=2)
    assert r.json()["repositories"] == names[:2]
    assert (
        r.headers["link"] == f'</v2/_catalog?n=2&last={names[1].replace("/", "%2F")}>; rel="next"'
    )
    seen: list[str] = []
    url = oci_stack.registry_url + "/v2/_catalog?n=2"
    while True:
        r = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
        seen += r.json()["repositories"]
        if "link" not in r.headers:
            break
        link = r.headers["link"]
        url = oci_stack.registry_url + link[1 : link.index(">")]
    assert seen == names
    r = catalog(oci_stack, token, n=2, last=names[3])
    assert r.json()["repositories"] == names[4:] and "link" not in r.headers
    r = catalog(oci_stack, token, n=0)
    assert r.status_code == 200 and r.json() == {"repositories": []}
    r = catalog(oci_stack, token, n="x")
    assert r.status_code == 400 and error_code(r) == "PAGINATION_NUMBER_INVALID"


def test_requires_a_token(oci_stack: Stack) -> None:
    r = httpx.get(oci_stack.registry_url + "/v2/_catalog")
    assert r.status_code == 401 and error_code(r) == "UNAUTHORIZED"
    assert r.headers["www-authenticate"].startswith("Bearer realm=")
    r = httpx.get(oci_stack.registry_url + "/v2/_catalog", headers={"Authorization": "Bearer junk"})
    assert r.status_code == 401


def test_user_without_repositories_gets_an_empty_list(oci_stack: Stack) -> None:
    user, _ = oci_stack.create_user()
    r = catalog(oci_stack, oci_stack.token(user, "registry:catalog:*"))
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
    oci_stack: Stack,
) -> None:
    user, _ = oci_stack.create_user()
    names = sorted(make_repos(oci_stack, user, ["one", "two", "three"]))
    narrow = service_account_token(oci_stack, user, [f"repository:{names[1]}:pull"])
    r = catalog(oci_stack, narrow)
    assert r.status_code == 200 and r.json() == {"repositories": [names[1]]}
    # Naming another user's repository in the claim reveals nothing.
    other, _ = oci_stack.create_user()
    foreign = make_repos(oci_stack, other, ["secret"])
    sneaky = service_account_token(oci_stack, user, [f"repository:{foreign[0]}:pull"])
    assert catalog(oci_stack, sneaky).json() == {"repositories": []}
    wide = service_account_token(oci_stack, user, ["registry:catalog:*"])
    assert catalog(oci_stack, wide).json() == {"repositories": names}
