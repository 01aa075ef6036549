"""``GET /v2/<name>/tags/list`` with ``n``, ``last`` and the ``Link`` header."""

from __future__ import annotations

import httpx

from tests.conftest import Stack
from tests.registry.manifest_helpers import OCI_INDEX, Repo, empty_index, error_code

TAGS = ["v1", "A", "b", "latest", "1.0", "_x", "v1.1", "Z-9"]


def push_tags(repo: Repo, tags: list[str]) -> None:
    body = empty_index()
    for tag in tags:
        assert repo.put_manifest(tag, body, OCI_INDEX).status_code == 201


def test_full_list_is_sorted_bytewise(rstack: Stack) -> None:
    repo = Repo.create(rstack)
    push_tags(repo, TAGS)
    r = repo.request("GET", "tags/list")
    assert r.status_code == 200
    assert r.json() == {"name": repo.name, "tags": sorted(TAGS)}
    assert "link" not in r.headers


def test_pages_follow_the_link_header(rstack: Stack) -> None:
    repo = Repo.create(rstack)
    push_tags(repo, TAGS)
    seen: list[str] = []
    url = repo.url("tags/list?n=3")
    pages = 0
    while url:
        r = httpx.get(url, headers=repo.headers)
        assert r.status_code == 200
        tags = r.json()["tags"]
        assert 0 < len(tags) <= 3
        seen += tags
        pages += 1
        link = r.headers.get("link")
        if link is None:
            break
        assert link.startswith(f"</v2/{repo.name}/tags/list?n=3&last=")
        assert link.endswith('>; rel="next"')
        url = rstack.registry_url + link[1 : link.index(">")]
    assert seen == sorted(TAGS) and pages == 3


def test_last_and_n(rstack: Stack) -> None:
    repo = Repo.create(rstack)
    push_tags(repo, TAGS)
    ordered = sorted(TAGS)
    r = repo.request("GET", "tags/list", params={"last": ordered[2]})
    assert r.json()["tags"] == ordered[3:]
    r = repo.request("GET", "tags/list", params={"n": 2, "last": ordered[2]})
    assert r.json()["tags"] == ordered[3:5]
    assert "last=" + ordered[4] in r.headers["link"]
    r = repo.request("GET", "tags/list", params={"last": ordered[-1]})
    assert r.json()["tags"] == [] and "link" not in r.headers
    # A `last` that is not a tag still orders lexically.
    r = repo.request("GET", "tags/list", params={"last": "c"})
    assert r.json()["tags"] == [t for t in ordered if t > "c"]
    r = repo.request("GET", "tags/list", params={"n": len(TAGS)})
    assert r.json()["tags"] == ordered and "link" not in r.headers


def test_n_zero_and_invalid_n(rstack: Stack) -> None:
    repo = Repo.create(rstack)
    push_tags(repo, ["a"])
    r = repo.request("GET", "tags/list", params={"n": 0})
    assert r.status_code == 200 and r.json() == {"name": repo.name, "tags": []}
    for bad in ("-1", "abc", "1.5", "9" * 30):
        r = repo.request("GET", "tags/list", params={"n": bad})
        assert r.status_code == 400 and error_code(r) == "PAGINATION_NUMBER_INVALID", bad


def test_unknown_repository_and_empty_repository(rstack: Stack) -> None:
    repo = Repo.create(rstack)
    r = repo.request("GET", "tags/list")
    assert r.status_code == 404 and error_code(r) == "NAME_UNKNOWN"
    push_tags(repo, ["only"])
    assert repo.request("DELETE", "manifests/only").status_code == 202
    r = repo.request("GET", "tags/list")
    assert r.status_code == 200 and r.json()["tags"] == []


def test_needs_pull_and_ownership(rstack: Stack) -> None:
    repo = Repo.create(rstack)
    push_tags(repo, ["a"])
    r = httpx.get(repo.url("tags/list"))
    assert r.status_code == 401 and "www-authenticate" in r.headers
    other, _ = rstack.create_user()
    token = rstack.token(other, f"repository:{repo.name}:pull")
    r = httpx.get(repo.url("tags/list"), headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and error_code(r) == "UNAUTHORIZED"
    r = httpx.get(rstack.registry_url + "/v2/Bad_Name/x/tags/list", headers=repo.headers)
    assert r.status_code == 400 and error_code(r) == "NAME_INVALID"
